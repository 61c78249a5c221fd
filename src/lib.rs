#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![warn(clippy::exhaustive_enums, clippy::exhaustive_structs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(any(feature = "aws-lc", feature = "rust-crypto")))]
compile_error!(
    "confidant needs a crypto backend: enable the `aws-lc` (default) or `rust-crypto` feature"
);

mod assertion;
pub mod authority;
#[cfg(feature = "azure-core")]
mod azure_core_credential;
pub mod cache;
mod clock;
pub mod credential;
mod error;
mod flows;
#[doc(hidden)]
pub mod fuzz_support;
pub mod http;
mod secret;
mod server_error;
pub mod signer;
mod token_source;
pub mod validator;

pub use crate::assertion::{
    CLIENT_ASSERTION_TYPE, ClientAssertion, ClientAssertionBuilder,
    MAX_LIFETIME as MAX_ASSERTION_LIFETIME, ThumbprintHeader,
};
pub use crate::authority::Authority;
pub use crate::cache::{CacheOptions, CacheStats, TokenCache};
pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::credential::{
    ManagedIdentity, ManagedIdentityBuilder, ManagedIdentityId, ManagedIdentitySource,
    WorkloadIdentity,
};
pub use crate::error::{Error, ErrorKind};
#[doc(hidden)]
pub use crate::flows::bench_support as __bench_support;
pub use crate::flows::{
    Account, AuthCodeFlow, AuthenticationResult, AuthorizationRequest, AuthorizationResponse,
    Challenge, ClientBuilder, ConfidentialClient, NoCredential, ResponseMode, TokenOrigin,
    WithCredential,
};
pub use crate::secret::{AccessToken, ClientSecret, Password};
pub use crate::server_error::{ServerError, ServerErrorClass};
pub use crate::signer::{
    Algorithm, Backend, Certificate, KeyVaultCertificate, KeyVaultSecretSigner, KeyVaultSigner,
    PemSigner, Pkcs12Signer, Signature, Signer, SignerError, SignerErrorKind, SignerOptions,
};
pub use crate::token_source::{StaticToken, TokenRequest, TokenSource};

/// The `async-trait` attribute, re-exported for implementing [`Signer`] and
/// [`http::HttpClient`] without a version match.
pub use async_trait::async_trait;

/// The `reqwest` version confidant is built against, for passing your own client to
/// [`http::ReqwestClient::from_client`].
pub use reqwest;

//! Signing keys: the [`Signer`] trait, its local implementations and the certificate data the
//! client assertion carries.
//!
//! - [`PemSigner`]: a certificate (chain) and private key from PEM.
//! - [`Pkcs12Signer`]: a PFX / PKCS#12 file with its password.
//!
//! Implement [`Signer`] yourself for an HSM or KMS: sign the bytes you are given (the JWS signing
//! input; hash it yourself if your device takes a digest) with the algorithm asked for, and return
//! the raw JWS signature (for ES256 the 64-byte `r || s`, not DER).
//!
//! ```
//! use confidant::async_trait;
//! use confidant::signer::{Algorithm, Certificate, Signature, Signer, SignerError, SignerErrorKind};
//!
//! #[derive(Debug)]
//! struct MyHsm { certificate: Certificate }
//!
//! #[async_trait]
//! impl Signer for MyHsm {
//!     fn algorithms(&self) -> &[Algorithm] { &[Algorithm::Rs256] }
//!     fn key_id(&self) -> Option<&str> { None }
//!     fn certificate(&self) -> Option<&Certificate> { Some(&self.certificate) }
//!     async fn sign(&self, alg: Algorithm, message: &[u8]) -> Result<Signature, SignerError> {
//!         // Hash `message` with SHA-256 and ask the device for an RSASSA-PKCS1-v1_5 signature.
//!         # let _ = (alg, message);
//!         Err(SignerError::new(SignerErrorKind::Remote, "device offline"))
//!     }
//! }
//! ```

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

mod backend;
mod certificate;
mod error;
mod key;
mod key_vault;
mod pem;
mod pkcs12;

pub use self::backend::Backend;
pub(crate) use self::backend::{PublicKey, fill_random};
pub use self::certificate::Certificate;
pub use self::error::{SignerError, SignerErrorKind};
pub use self::key::SignerOptions;
pub(crate) use self::key_vault::fuzz_responses as fuzz_key_vault;
pub use self::key_vault::{
    DEFAULT_KEY_VAULT_API_VERSION, DEFAULT_ROTATION_CHECK_INTERVAL, KeyVaultCertificate,
    KeyVaultSecretSigner, KeyVaultSecretSignerBuilder, KeyVaultSigner, KeyVaultSignerBuilder,
};
pub use self::pem::{PemSigner, PemSignerBuilder};
pub use self::pkcs12::Pkcs12Signer;

/// A JWS signature algorithm ([RFC 7518 §3.1]).
///
/// [RFC 7518 §3.1]: https://www.rfc-editor.org/rfc/rfc7518#section-3.1
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt; Entra ID's default.
    Ps256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256; the signature is the raw 64-byte `r || s`.
    Es256,
}

impl Algorithm {
    /// The JWS `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Ps256 => "PS256",
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
        }
    }

    /// Parses a JWS `alg` name; `None` for algorithms confidant does not produce.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "PS256" => Some(Algorithm::Ps256),
            "RS256" => Some(Algorithm::Rs256),
            "ES256" => Some(Algorithm::Es256),
            _ => None,
        }
    }

    /// Whether this is an RSA algorithm.
    pub fn is_rsa(self) -> bool {
        matches!(self, Algorithm::Ps256 | Algorithm::Rs256)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A JWS signature as it goes into the token (raw `r || s` for ES256).
#[derive(Clone, PartialEq, Eq)]
pub struct Signature(Vec<u8>);

impl Signature {
    /// Wraps signature bytes produced by a signer.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The signature bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({} bytes)", self.0.len())
    }
}

/// A private key that signs JWS input, wherever it lives.
///
/// Object-safe and async so that a remote signer (Key Vault, an HSM) is a first-class citizen;
/// hold it as `Arc<dyn Signer>`. Parsing and checks run once in the implementation's
/// constructor, never per signature.
#[async_trait]
pub trait Signer: fmt::Debug + Send + Sync {
    /// The JWS algorithms this key can produce, preferred first (an RSA key: PS256, RS256).
    fn algorithms(&self) -> &[Algorithm];

    /// The `kid` header value, if any.
    fn key_id(&self) -> Option<&str>;

    /// Data for `x5t#S256`, `x5t` and `x5c`, if a certificate backs the key.
    fn certificate(&self) -> Option<&Certificate>;

    /// Signs `message`, the full JWS signing input (not pre-hashed), with `alg`.
    async fn sign(&self, alg: Algorithm, message: &[u8]) -> Result<Signature, SignerError>;

    /// For a signer whose key can change while it is in use (a rotating Key Vault
    /// certificate): the signer to use for one signature, fixed. The assertion builder takes
    /// the header (certificate, algorithms) and the signature from the same snapshot, so a
    /// rotation between the two cannot pair one key's thumbprint with another key's signature.
    /// `None` (the default): this signer itself.
    fn snapshot(&self) -> Option<Arc<dyn Signer>> {
        None
    }
}

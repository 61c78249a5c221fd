//! What proves the client: a secret, a certificate (any [`Signer`]), an assertion you supply, a
//! federated token file; and the host's managed identity.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::assertion::ClientAssertionBuilder;
use crate::error::Error;
use crate::secret::ClientSecret;
use crate::signer::Signer;

mod managed_identity;
mod workload_identity;

pub(crate) use self::workload_identity::FederatedTokenFile;
pub use self::workload_identity::WorkloadIdentity;

pub use self::managed_identity::{
    ManagedIdentity, ManagedIdentityBuilder, ManagedIdentityId, ManagedIdentitySource, RetryPolicy,
};

/// What an assertion provider is told about the request it signs for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AssertionContext {
    /// The token endpoint the assertion will be posted to: its `aud`.
    pub token_endpoint: String,
    /// The client id: its `iss` and `sub`.
    pub client_id: String,
}

/// The future an [`AssertionCallback`] returns: a compact JWT, or an error message.
pub type AssertionFuture =
    Pin<Box<dyn Future<Output = Result<String, Box<dyn std::error::Error + Send + Sync>>> + Send>>;

/// A client assertion made elsewhere: a federated token (workload identity), a custom signer,
/// another library's JWT.
#[derive(Clone)]
pub struct AssertionCallback(Arc<dyn Fn(AssertionContext) -> AssertionFuture + Send + Sync>);

impl AssertionCallback {
    /// Wraps an async closure returning the assertion JWT.
    pub fn new<F, Fut, E>(callback: F) -> Self
    where
        F: Fn(AssertionContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        Self(Arc::new(move |context| {
            let future = callback(context);
            Box::pin(async move { future.await.map_err(Into::into) })
        }))
    }
}

impl fmt::Debug for AssertionCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AssertionCallback")
    }
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone)]
pub(crate) enum Credential {
    Secret(ClientSecret),
    Certificate {
        signer: Arc<dyn Signer>,
        assertions: Arc<ClientAssertionBuilder>,
    },
    Callback(AssertionCallback),
    TokenFile(FederatedTokenFile),
}

/// The form fields that authenticate the client (`client_secret`, or `client_assertion_type` +
/// `client_assertion`), as zeroizing strings.
pub(crate) enum ClientAuth {
    Secret(ClientSecret),
    Assertion(zeroize::Zeroizing<String>),
}

impl Credential {
    pub(crate) async fn client_auth(
        &self,
        token_endpoint: &str,
        client_id: &str,
    ) -> Result<ClientAuth, Error> {
        match self {
            Credential::Secret(secret) => Ok(ClientAuth::Secret(secret.clone())),
            Credential::Certificate { signer, assertions } => {
                let assertion = assertions.sign(signer.as_ref()).await?;
                Ok(ClientAuth::Assertion(zeroize::Zeroizing::new(
                    assertion.expose_secret().to_owned(),
                )))
            }
            Credential::Callback(callback) => {
                let context = AssertionContext {
                    token_endpoint: token_endpoint.to_owned(),
                    client_id: client_id.to_owned(),
                };
                let jwt = (callback.0)(context).await.map_err(|e| {
                    Error::Configuration(format!("the client assertion callback failed: {e}"))
                })?;
                Ok(ClientAuth::Assertion(zeroize::Zeroizing::new(
                    jwt.trim().to_owned(),
                )))
            }
            Credential::TokenFile(file) => Ok(ClientAuth::Assertion(file.read()?)),
        }
    }
}

/// The managed-identity response parser, for the fuzz targets.
pub(crate) fn fuzz_managed_identity(data: &[u8], now: std::time::SystemTime) -> bool {
    managed_identity::parse_token(data, now, "https://vault.azure.net").is_ok()
}

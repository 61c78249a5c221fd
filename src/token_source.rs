//! [`TokenSource`]: anything that hands out access tokens for scopes. Key Vault signing and
//! secret loading take one, so the vault can be reached with a client credential, a managed
//! identity or a token obtained elsewhere.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::cache::CachedToken;
use crate::error::Error;
use crate::flows::{AuthenticationResult, ConfidentialClient, TokenOrigin};
use crate::secret::AccessToken;

/// Access tokens by scope, with their expiry.
///
/// Implemented by [`ConfidentialClient`] (client credentials) and [`StaticToken`]; implement it
/// for any other way your service obtains tokens.
#[async_trait]
pub trait TokenSource: fmt::Debug + Send + Sync {
    /// A token valid for `scopes` (e.g. `["https://vault.azure.net/.default"]`), from a cache
    /// when one is fresh.
    async fn get_token(&self, scopes: &[&str]) -> Result<AuthenticationResult, Error>;
}

#[async_trait]
impl TokenSource for ConfidentialClient {
    async fn get_token(&self, scopes: &[&str]) -> Result<AuthenticationResult, Error> {
        self.acquire_token_for_client(scopes).await
    }
}

#[async_trait]
impl<T: TokenSource + ?Sized> TokenSource for Arc<T> {
    async fn get_token(&self, scopes: &[&str]) -> Result<AuthenticationResult, Error> {
        (**self).get_token(scopes).await
    }
}

/// One token obtained elsewhere, handed out for every scope until it expires (then an error).
#[derive(Debug, Clone)]
pub struct StaticToken {
    token: AuthenticationResult,
}

impl StaticToken {
    /// `token`, valid until `expires_on`.
    pub fn new(token: impl Into<AccessToken>, expires_on: SystemTime) -> Self {
        let now = SystemTime::now();
        let lifetime = expires_on.duration_since(now).unwrap_or(Duration::ZERO);
        Self {
            token: AuthenticationResult::new(
                CachedToken::new(
                    token.into(),
                    "Bearer".to_owned(),
                    now,
                    lifetime,
                    None,
                    None,
                    Vec::new(),
                ),
                TokenOrigin::Cache,
            ),
        }
    }
}

#[async_trait]
impl TokenSource for StaticToken {
    async fn get_token(&self, _scopes: &[&str]) -> Result<AuthenticationResult, Error> {
        if self.token.expires_on() <= SystemTime::now() {
            return Err(Error::Configuration(
                "the static token has expired".to_owned(),
            ));
        }
        Ok(self.token.clone())
    }
}

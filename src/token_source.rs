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

/// A token request beyond its scopes: a forced refresh or a claims challenge (a resource's CAE
/// or step-up answer), both of which skip the cache. What a [`TokenSource`] is asked for, and
/// the options of the client-credentials, silent and on-behalf-of flows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenRequest {
    /// The scopes, such as `["https://vault.azure.net/.default"]`.
    pub scopes: Vec<String>,
    /// Skip the cache.
    pub force_refresh: bool,
    /// A claims challenge (JSON) from the resource; implies skipping the cache.
    pub claims: Option<String>,
    /// The Entra tenant to ask, when not the client's own (a multi-tenant app calling into a
    /// customer's tenant).
    pub tenant: Option<String>,
}

impl TokenRequest {
    /// A request for `scopes`.
    pub fn new<S: AsRef<str>>(scopes: &[S]) -> Self {
        Self {
            scopes: scopes.iter().map(|s| s.as_ref().to_owned()).collect(),
            ..Self::default()
        }
    }

    /// Skips the cache.
    pub fn force_refresh(mut self, force: bool) -> Self {
        self.force_refresh = force;
        self
    }

    /// Sends a claims challenge (and skips the cache).
    pub fn claims(mut self, claims: impl Into<String>) -> Self {
        self.claims = Some(claims.into());
        self
    }

    /// Asks `tenant` (a GUID or a domain) instead of the client's own tenant, as MSAL's
    /// `WithTenantId` does: for an app registered as multi-tenant and consented there, or a
    /// client whose authority is `organizations`. [`ConfidentialClient`] honours it for app and
    /// on-behalf-of tokens and refuses it for silent requests (a user signs in per tenant);
    /// [`ManagedIdentity`](crate::ManagedIdentity), which has one tenant, refuses it rather
    /// than return a token for another; [`StaticToken`] returns its one token as for any
    /// request.
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }
}

/// Access tokens by scope, with their expiry.
///
/// Implemented by [`ConfidentialClient`] (client credentials),
/// [`ManagedIdentity`](crate::ManagedIdentity) and [`StaticToken`]; implement
/// [`token`](Self::token) for any other way your service obtains tokens.
#[async_trait]
pub trait TokenSource: fmt::Debug + Send + Sync {
    /// A token for the request: from a cache when one is fresh and neither a refresh nor
    /// claims were asked for.
    async fn token(&self, request: &TokenRequest) -> Result<AuthenticationResult, Error>;

    /// A token valid for `scopes` (e.g. `["https://vault.azure.net/.default"]`), from a cache
    /// when one is fresh.
    async fn get_token(&self, scopes: &[&str]) -> Result<AuthenticationResult, Error> {
        self.token(&TokenRequest::new(scopes)).await
    }
}

#[async_trait]
impl TokenSource for ConfidentialClient {
    async fn token(&self, request: &TokenRequest) -> Result<AuthenticationResult, Error> {
        self.acquire_token_for_client_with(request).await
    }
}

#[async_trait]
impl<T: TokenSource + ?Sized> TokenSource for Arc<T> {
    async fn token(&self, request: &TokenRequest) -> Result<AuthenticationResult, Error> {
        (**self).token(request).await
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
    /// The one token, whatever is asked; a refresh or claims cannot be honoured, so the token
    /// is still returned and the resource decides.
    async fn token(&self, _request: &TokenRequest) -> Result<AuthenticationResult, Error> {
        if self.token.expires_on() <= SystemTime::now() {
            return Err(Error::Configuration(
                "the static token has expired".to_owned(),
            ));
        }
        Ok(self.token.clone())
    }
}

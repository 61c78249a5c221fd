//! The client-credentials grant: app tokens, cached, one request per key.

use std::sync::Arc;

use super::{AuthenticationResult, ConfidentialClient, Inner, TokenOrigin, token_request};
use crate::cache::single_flight::FlightResult;
use crate::cache::{CacheKey, CachedToken};
use crate::error::Error;
use crate::token_source::TokenRequest;

impl ConfidentialClient {
    /// An app-only token for `scopes` (for example `["https://vault.azure.net/.default"]`):
    /// from the cache while more than 5 minutes remain, else from the authority, with one
    /// request however many callers ask at once.
    pub async fn acquire_token_for_client<S: AsRef<str>>(
        &self,
        scopes: &[S],
    ) -> Result<AuthenticationResult, Error> {
        self.acquire_token_for_client_with(&TokenRequest::new(scopes))
            .await
    }

    /// [`acquire_token_for_client`](Self::acquire_token_for_client) with options: a forced
    /// refresh, a claims challenge, or another [tenant](TokenRequest::tenant).
    pub async fn acquire_token_for_client_with(
        &self,
        request: &TokenRequest,
    ) -> Result<AuthenticationResult, Error> {
        self.for_request(request)?.app_token(request).await
    }

    /// The client-credentials grant at this client's own authority.
    async fn app_token(&self, request: &TokenRequest) -> Result<AuthenticationResult, Error> {
        let scopes: Vec<&str> = request
            .scopes
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        if scopes.is_empty() {
            return Err(Error::Configuration(
                "at least one scope is required".into(),
            ));
        }
        let inner = &self.inner;
        let key = CacheKey::new(Arc::clone(&inner.app_partition), &scopes);
        let owned: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();

        if request.force_refresh || request.claims.is_some() {
            let token = fetch(Arc::clone(inner), key, owned, request.claims.clone(), false).await?;
            return Ok(AuthenticationResult::from_shared(
                token,
                TokenOrigin::IdentityProvider,
            ));
        }

        let now = inner.clock.now();
        let (token, cached) = inner
            .cache
            .get_or_fetch(&key, now, || {
                fetch(Arc::clone(inner), key.clone(), owned.clone(), None, true)
            })
            .await?;
        Ok(AuthenticationResult::looked_up(token, cached))
    }
}

/// Requests the token and files it in the cache.
async fn fetch(
    inner: Arc<Inner>,
    key: CacheKey,
    scopes: Vec<String>,
    claims: Option<String>,
    use_store: bool,
) -> FlightResult {
    let scope = scopes.join(" ");
    let mut fields = vec![
        ("grant_type", "client_credentials"),
        ("client_info", "1"),
        ("scope", scope.as_str()),
    ];
    let claims = super::merge_capabilities(&inner, claims.as_deref())?;
    if let Some(claims) = &claims {
        fields.push(("claims", claims.as_str()));
    }
    let requested: Vec<&str> = scopes.iter().map(String::as_str).collect();
    // Another process may have the token: the L2 before the network (not for a claims
    // challenge, which needs a new token).
    if use_store
        && claims.is_none()
        && let Some(token) = super::l2_cached(&inner, super::Scope::App, &key).await
    {
        tracing::debug!("app token from the token store");
        return Ok(token);
    }
    let token: Arc<CachedToken> =
        Arc::new(token_request::execute(&inner, &key, &fields, &requested).await?);
    inner.cache.insert(key, Arc::clone(&token));
    super::l2_save(&inner, super::Scope::App).await;
    Ok(token)
}

/// Hooks for the cache benchmarks: not part of the API, may change at any time.
#[doc(hidden)]
pub mod bench_support {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::ConfidentialClient;
    use crate::cache::{CacheKey, CachedToken};
    use crate::secret::AccessToken;

    /// Files an app token for `scopes` as if `client` had received it now.
    pub fn seed_app_token(
        client: &ConfidentialClient,
        scopes: &[&str],
        access_token: &str,
        expires_in: Duration,
    ) {
        let inner = &client.inner;
        let key = CacheKey::new(Arc::clone(&inner.app_partition), scopes);
        let token = CachedToken::new(
            AccessToken::new(access_token),
            "Bearer".into(),
            inner.clock.now(),
            expires_in,
            None,
            None,
            scopes.iter().map(|s| (*s).to_owned()).collect(),
        );
        inner.cache.insert(key, Arc::new(token));
    }

    /// One L1 probe for `scopes`, as the hit path does it.
    pub fn probe_app_token(client: &ConfidentialClient, scopes: &[&str]) -> bool {
        let inner = &client.inner;
        let key = CacheKey::new(Arc::clone(&inner.app_partition), scopes);
        inner
            .cache
            .get(&key)
            .is_some_and(|t| t.is_usable(inner.clock.now()))
    }
}

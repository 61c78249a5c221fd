//! On-behalf-of (WIRE.md section 3): a middle-tier API trades its caller's token for one to a
//! downstream API, for the same user. Tokens are cached per incoming assertion (its SHA-256),
//! looked up before any request.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

use super::{AuthenticationResult, ConfidentialClient, Inner, TokenOrigin, environment, realm};
use crate::cache::{CacheKey, CachedToken};
use crate::error::Error;
use crate::token_source::TokenRequest;

const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// `b64url(SHA-256(assertion))`: MSAL's `user_assertion_hash`, the OBO cache partition.
pub(crate) fn assertion_hash(assertion: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(assertion.trim().as_bytes()))
}

impl ConfidentialClient {
    /// A token for a downstream API on behalf of the user whose access token (`user_assertion`,
    /// whose audience is this app) the caller presented: from the cache for the same
    /// assertion and scopes, else one request however many callers ask.
    pub async fn acquire_token_on_behalf_of<S: AsRef<str>>(
        &self,
        user_assertion: &str,
        scopes: &[S],
    ) -> Result<AuthenticationResult, Error> {
        self.acquire_token_on_behalf_of_with(user_assertion, &TokenRequest::new(scopes))
            .await
    }

    /// [`acquire_token_on_behalf_of`](Self::acquire_token_on_behalf_of) with options: a
    /// forced refresh, a claims challenge, or another [tenant](TokenRequest::tenant) (a guest
    /// user's resource tenant).
    pub async fn acquire_token_on_behalf_of_with(
        &self,
        user_assertion: &str,
        request: &TokenRequest,
    ) -> Result<AuthenticationResult, Error> {
        self.for_request(request)?
            .on_behalf_of(user_assertion, request)
            .await
    }

    /// The on-behalf-of grant at this client's own authority.
    async fn on_behalf_of(
        &self,
        user_assertion: &str,
        request: &TokenRequest,
    ) -> Result<AuthenticationResult, Error> {
        let assertion = user_assertion.trim();
        if assertion.split('.').count() != 3 {
            return Err(Error::Configuration(
                "the user assertion is not a compact JWT".into(),
            ));
        }
        let scopes: Vec<String> = request
            .scopes
            .iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if scopes.is_empty() {
            return Err(Error::Configuration(
                "at least one scope is required".into(),
            ));
        }
        let inner = &self.inner;
        let partition: Arc<str> = format!(
            "{}|{}|{}|obo:{}",
            environment(&inner.authority),
            realm(&inner.authority),
            inner.client_id.to_ascii_lowercase(),
            assertion_hash(assertion)
        )
        .into();
        let requested: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let key = CacheKey::new(partition, &requested);
        let assertion: Arc<zeroize::Zeroizing<String>> =
            Arc::new(zeroize::Zeroizing::new(assertion.to_owned()));
        let claims = super::merge_capabilities(inner, request.claims.as_deref())?;
        if request.force_refresh || request.claims.is_some() {
            let token = fetch(
                Arc::clone(inner),
                key,
                Arc::clone(&assertion),
                scopes,
                claims,
                false,
            )
            .await?;
            return Ok(AuthenticationResult::from_shared(
                token,
                TokenOrigin::IdentityProvider,
            ));
        }
        let now = inner.clock.now();
        let (token, cached) = inner
            .cache
            .get_or_fetch(&key, now, || {
                fetch(
                    Arc::clone(inner),
                    key.clone(),
                    Arc::clone(&assertion),
                    scopes.clone(),
                    claims.clone(),
                    true,
                )
            })
            .await?;
        Ok(AuthenticationResult::looked_up(token, cached))
    }
}

async fn fetch(
    inner: Arc<Inner>,
    key: CacheKey,
    assertion: Arc<zeroize::Zeroizing<String>>,
    scopes: Vec<String>,
    claims: Option<String>,
    use_store: bool,
) -> Result<Arc<CachedToken>, Error> {
    let hash = assertion_hash(assertion.as_str());
    if use_store && let Some(token) = super::l2_cached(&inner, super::Scope::Obo(&hash), &key).await
    {
        return Ok(token);
    }
    let scope = super::auth_code::with_reserved(&scopes);
    let mut fields = vec![
        ("grant_type", JWT_BEARER_GRANT),
        ("assertion", assertion.as_str()),
        ("requested_token_use", "on_behalf_of"),
        ("scope", scope.as_str()),
        ("client_info", "1"),
    ];
    if let Some(claims) = &claims {
        fields.push(("claims", claims.as_str()));
    }
    let requested: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let token = super::token_request::execute_with(&inner, &key, &fields, true, |body, now| {
        super::token_request::parse_success(body, now, &requested)
    })
    .await?;
    let token = Arc::new(token);
    inner.cache.insert(key, Arc::clone(&token));
    super::l2_save(&inner, super::Scope::Obo(&hash)).await;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assertion_hash_is_msal_s() {
        // b64url(SHA-256("abc")), as MSAL.NET writes user_assertion_hash.
        assert_eq!(
            assertion_hash("abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
    }
}

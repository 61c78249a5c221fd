//! The authorization code flow with PKCE, accounts, and silent acquisition with refresh tokens
//! (WIRE.md section 3): a web app signs users in and calls APIs on their behalf.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use url::Url;
use zeroize::{Zeroize, Zeroizing};

use super::{AuthenticationResult, ConfidentialClient, Inner, TokenOrigin, environment, realm};
use crate::cache::{CacheKey, CachedToken};
use crate::error::Error;
use crate::server_error::ServerError;

/// Scopes every user grant carries besides the resource's.
const RESERVED_SCOPES: [&str; 3] = ["openid", "profile", "offline_access"];

/// How `/authorize` returns to the redirect URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ResponseMode {
    /// `?code=…&state=…` on a `GET` (the default).
    #[default]
    Query,
    /// A `POST` of the same fields as a form: the code stays out of URLs and logs.
    FormPost,
}

impl ResponseMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::FormPost => "form_post",
        }
    }
}

/// What to send the user to `/authorize` with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthorizationRequest {
    /// Where the authority sends the user back: registered with the app, exactly.
    pub redirect_uri: String,
    /// The API scopes (`api://{id}/Accounts.Read`); `openid profile offline_access` are added.
    pub scopes: Vec<String>,
    /// `login`, `none`, `consent` or `select_account`.
    pub prompt: Option<String>,
    /// Pre-fills (or, on the testkit, picks) the user.
    pub login_hint: Option<String>,
    /// `organizations`, `consumers`, or a federated domain.
    pub domain_hint: Option<String>,
    /// A claims request (JSON), such as a step-up's `acrs`.
    pub claims: Option<String>,
    /// How the code comes back.
    pub response_mode: ResponseMode,
}

impl AuthorizationRequest {
    /// A sign-in returning to `redirect_uri` for `scopes`.
    pub fn new<S: AsRef<str>>(redirect_uri: impl Into<String>, scopes: &[S]) -> Self {
        Self {
            redirect_uri: redirect_uri.into(),
            scopes: scopes.iter().map(|s| s.as_ref().to_owned()).collect(),
            prompt: None,
            login_hint: None,
            domain_hint: None,
            claims: None,
            response_mode: ResponseMode::Query,
        }
    }

    /// Sets `prompt`.
    pub fn prompt(mut self, prompt: impl Into<String>) -> Self {
        self.prompt = Some(prompt.into());
        self
    }

    /// Sets `login_hint`.
    pub fn login_hint(mut self, hint: impl Into<String>) -> Self {
        self.login_hint = Some(hint.into());
        self
    }

    /// Sets `domain_hint`.
    pub fn domain_hint(mut self, hint: impl Into<String>) -> Self {
        self.domain_hint = Some(hint.into());
        self
    }

    /// Asks for `claims` (JSON), for example a step-up challenge's.
    pub fn claims(mut self, claims: impl Into<String>) -> Self {
        self.claims = Some(claims.into());
        self
    }

    /// Sets how the code comes back.
    pub fn response_mode(mut self, mode: ResponseMode) -> Self {
        self.response_mode = mode;
        self
    }
}

/// What the app keeps in the user's session between the redirect and the callback: `state`,
/// `nonce`, the PKCE verifier and the request. Serializable for a server-side session store;
/// the verifier is a secret (keep it out of cookies the user can read, and out of logs).
#[derive(Clone, Serialize, Deserialize)]
pub struct AuthCodeFlow {
    state: String,
    nonce: String,
    code_verifier: String,
    redirect_uri: String,
    scopes: Vec<String>,
    claims: Option<String>,
    /// The token endpoint the code must be redeemed at.
    token_endpoint: String,
}

impl AuthCodeFlow {
    /// The `state` sent, to find the flow again when the callback arrives.
    pub fn state(&self) -> &str {
        &self.state
    }

    /// The redirect URI sent.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The scopes asked for (without the reserved ones).
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }
}

impl fmt::Debug for AuthCodeFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthCodeFlow")
            .field("state", &self.state)
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .field("code_verifier", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl Drop for AuthCodeFlow {
    fn drop(&mut self) {
        self.code_verifier.zeroize();
    }
}

/// The parameters the authority sent back to the redirect URI (query or form).
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct AuthorizationResponse {
    /// The authorization code.
    pub code: Option<String>,
    /// The `state` echoed.
    pub state: Option<String>,
    /// The error code when the sign-in failed (`access_denied`, `interaction_required`, ...).
    pub error: Option<String>,
    /// The error's description.
    pub error_description: Option<String>,
}

impl fmt::Debug for AuthorizationResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationResponse")
            .field("code", &self.code.as_ref().map(|_| "[redacted]"))
            .field("state", &self.state)
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .finish()
    }
}

impl AuthorizationResponse {
    /// From the callback's query string (`response_mode=query`) or form body (`form_post`):
    /// both are `application/x-www-form-urlencoded`.
    pub fn from_form(encoded: &str) -> Self {
        let mut response = Self::default();
        for (name, value) in url::form_urlencoded::parse(encoded.as_bytes()) {
            let slot = match name.as_ref() {
                "code" => &mut response.code,
                "state" => &mut response.state,
                "error" => &mut response.error,
                "error_description" => &mut response.error_description,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value.into_owned());
            }
        }
        response
    }
}

/// A signed-in user, as the cache knows them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Account {
    /// `{uid}.{utid}` from `client_info`: the user's id in their home tenant.
    pub home_account_id: String,
    /// The authority's cache environment (`login.microsoftonline.com`).
    pub environment: String,
    /// The tenant the tokens were issued in.
    pub tenant_id: String,
    /// The sign-in name (`preferred_username`), if the ID token had one.
    pub username: String,
    /// The display name, if the ID token had one.
    pub name: Option<String>,
    /// The object id (`oid`, else `sub`) in `tenant_id`.
    pub local_account_id: String,
}

/// What the client keeps per signed-in user besides access tokens.
pub(crate) struct UserRecord {
    pub(crate) account: Account,
    pub(crate) refresh_token: Option<Zeroizing<String>>,
    /// The last ID token (validated when it came with a sign-in), for the persistent cache.
    pub(crate) id_token: Option<Zeroizing<String>>,
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("account", &self.account)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// Signed-in users by home account id.
pub(crate) type Users = std::sync::Mutex<HashMap<String, UserRecord>>;

/// `n` random bytes as base64url: state, nonce, PKCE verifier.
fn random_b64(n: usize) -> Result<String, Error> {
    let mut bytes = vec![0u8; n];
    crate::signer::fill_random(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(&bytes))
}

/// Constant-time string equality, for `state`.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The requested scopes plus `openid profile offline_access`, space-joined, each once.
pub(super) fn with_reserved(scopes: &[String]) -> String {
    let mut all: Vec<&str> = Vec::new();
    for scope in scopes.iter().map(String::as_str).chain(RESERVED_SCOPES) {
        let scope = scope.trim();
        if !scope.is_empty() && !all.iter().any(|s| s.eq_ignore_ascii_case(scope)) {
            all.push(scope);
        }
    }
    all.join(" ")
}

/// The user-facing scopes: without the reserved ones.
fn resource_scopes<S: AsRef<str>>(scopes: &[S]) -> Vec<String> {
    scopes
        .iter()
        .map(|s| s.as_ref().trim())
        .filter(|s| !s.is_empty() && !RESERVED_SCOPES.iter().any(|r| r.eq_ignore_ascii_case(s)))
        .map(str::to_owned)
        .collect()
}

/// A user grant's success body beyond the access token.
#[derive(Deserialize)]
struct UserGrantBody {
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    client_info: Option<String>,
}

struct UserTokens {
    token: CachedToken,
    refresh_token: Option<Zeroizing<String>>,
    id_token: Option<Zeroizing<String>>,
    client_info: Option<(String, String)>,
}

fn parse_user_tokens(body: &[u8], now: SystemTime, scopes: &[&str]) -> Result<UserTokens, Error> {
    let token = super::token_request::parse_success(body, now, scopes)?;
    let extra: UserGrantBody = serde_json::from_slice(body)
        .map_err(|_| Error::InvalidResponse("token response is not JSON".into()))?;
    let client_info = extra.client_info.as_deref().and_then(|encoded| {
        let bytes = URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('=')).ok()?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        Some((
            value.get("uid")?.as_str()?.to_owned(),
            value.get("utid")?.as_str()?.to_owned(),
        ))
    });
    Ok(UserTokens {
        token,
        refresh_token: extra
            .refresh_token
            .filter(|t| !t.is_empty())
            .map(Zeroizing::new),
        id_token: extra.id_token.filter(|t| !t.is_empty()).map(Zeroizing::new),
        client_info,
    })
}

impl ConfidentialClient {
    /// The URL to send the user to, and the flow state to keep in their session until the
    /// callback: PKCE S256, a fresh `state` and `nonce`, the scopes plus
    /// `openid profile offline_access`.
    pub fn authorization_url(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<(Url, AuthCodeFlow), Error> {
        if request.redirect_uri.trim().is_empty() {
            return Err(Error::Configuration("the redirect URI is empty".into()));
        }
        let inner = &self.inner;
        // Refused before the user is sent away: the callback could not validate the ID token.
        self.id_token_validator()?;
        let scopes = resource_scopes(&request.scopes);
        let claims = super::merge_capabilities(inner, request.claims.as_deref())?;
        let verifier = Zeroizing::new(random_b64(32)?);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let flow = AuthCodeFlow {
            state: random_b64(16)?,
            nonce: random_b64(16)?,
            code_verifier: verifier.as_str().to_owned(),
            redirect_uri: request.redirect_uri.clone(),
            scopes,
            claims: claims.clone(),
            token_endpoint: inner.authority.token_endpoint().to_string(),
        };
        let mut url = inner.authority.authorization_endpoint().clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("client_id", &inner.client_id)
                .append_pair("response_type", "code")
                .append_pair("redirect_uri", &flow.redirect_uri)
                .append_pair("response_mode", request.response_mode.as_str())
                .append_pair("scope", &with_reserved(&flow.scopes))
                .append_pair("state", &flow.state)
                .append_pair("nonce", &flow.nonce)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256")
                .append_pair("client_info", "1");
            for (name, value) in [
                ("prompt", &request.prompt),
                ("login_hint", &request.login_hint),
                ("domain_hint", &request.domain_hint),
                ("claims", &claims),
            ] {
                if let Some(value) = value {
                    query.append_pair(name, value);
                }
            }
        }
        Ok((url, flow))
    }

    /// Redeems the code of a callback: checks `state`, sends the PKCE verifier, validates the
    /// ID token (signature, issuer, audience, nonce, lifetime), and keeps the account, its
    /// refresh token and the access token. A failed callback keeps nothing.
    pub async fn acquire_token_by_auth_code(
        &self,
        flow: &AuthCodeFlow,
        response: &AuthorizationResponse,
    ) -> Result<AuthenticationResult, Error> {
        if let Some(error) = &response.error {
            return Err(
                ServerError::from_redirect(error, response.error_description.as_deref()).into(),
            );
        }
        let state = response.state.as_deref().unwrap_or_default();
        if !same(state, &flow.state) {
            return Err(Error::AuthorizationResponse(
                "the state does not match the flow's (a forged or stale callback)".into(),
            ));
        }
        let code = response
            .code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| Error::AuthorizationResponse("the callback carries no code".into()))?;
        let inner = &self.inner;
        if flow.token_endpoint != inner.authority.token_endpoint().as_str() {
            return Err(Error::AuthorizationResponse(
                "the flow was started for another authority".into(),
            ));
        }
        let scope = with_reserved(&flow.scopes);
        let mut fields = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", flow.redirect_uri.as_str()),
            ("code_verifier", flow.code_verifier.as_str()),
            ("scope", scope.as_str()),
            ("client_info", "1"),
        ];
        if let Some(claims) = &flow.claims {
            fields.push(("claims", claims.as_str()));
        }
        let requested: Vec<&str> = flow.scopes.iter().map(String::as_str).collect();
        let throttle_key = CacheKey::new(Arc::clone(&inner.app_partition), &["authorization_code"]);
        let tokens =
            super::token_request::execute_with(inner, &throttle_key, &fields, true, |body, now| {
                parse_user_tokens(body, now, &requested)
            })
            .await?;
        let id_token = tokens.id_token.as_ref().ok_or_else(|| {
            Error::InvalidResponse(
                "the token response has no id_token although openid was asked for".into(),
            )
        })?;
        let validated = self
            .id_token_validator()?
            .validate_id_token(id_token, &inner.client_id, &flow.nonce)
            .await
            .map_err(Error::IdToken)?;
        let local_account_id = validated
            .object_id()
            .or_else(|| validated.subject())
            .unwrap_or_default()
            .to_owned();
        let tenant_id = validated.tenant_id().unwrap_or_default().to_owned();
        let home_account_id = match &tokens.client_info {
            Some((uid, utid)) => format!("{uid}.{utid}"),
            None => format!("{local_account_id}.{tenant_id}"),
        };
        let account = Account {
            home_account_id,
            environment: environment(&inner.authority),
            tenant_id,
            username: validated
                .claim_str("preferred_username")
                .or_else(|| validated.claim_str("upn"))
                .or_else(|| validated.claim_str("email"))
                .unwrap_or_default()
                .to_owned(),
            name: validated.claim_str("name").map(str::to_owned),
            local_account_id,
        };
        let result = store_user_tokens(inner, &account, tokens, &flow.scopes);
        super::l2_save(inner, super::Scope::User(&account.home_account_id)).await;
        Ok(result)
    }

    /// The signed-in users this client holds tokens for.
    pub fn accounts(&self) -> Vec<Account> {
        let users = self.inner.users.lock().unwrap_or_else(|p| p.into_inner());
        let mut accounts: Vec<Account> = users.values().map(|u| u.account.clone()).collect();
        accounts.sort_by(|a, b| a.home_account_id.cmp(&b.home_account_id));
        accounts
    }

    /// Forgets an account: its refresh token and its access tokens' lookups.
    pub fn remove_account(&self, account: &Account) {
        self.inner
            .users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&account.home_account_id);
        self.inner
            .scope_sets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(user_partition(&self.inner, account).as_ref());
    }

    /// A token for `account` and `scopes` without the user: the cached access token while
    /// fresh, else one refresh (the rotated refresh token is kept), one request however many
    /// callers ask. Without a usable refresh token: an `InteractionRequired` server error,
    /// with the claims to ask for when the authority named some.
    pub async fn acquire_token_silent<S: AsRef<str>>(
        &self,
        account: &Account,
        scopes: &[S],
    ) -> Result<AuthenticationResult, Error> {
        self.acquire_token_silent_with(account, &crate::TokenRequest::new(scopes))
            .await
    }

    /// [`acquire_token_silent`](Self::acquire_token_silent) with a forced refresh or a claims
    /// challenge (a resource's step-up or CAE answer), which skip the cache. When the sign-in
    /// cannot satisfy the claims, the error is `InteractionRequired` with
    /// [`ServerError::claims`](crate::ServerError::claims): pass them to
    /// [`AuthorizationRequest::claims`] for the step-up sign-in.
    pub async fn acquire_token_silent_with(
        &self,
        account: &Account,
        request: &crate::TokenRequest,
    ) -> Result<AuthenticationResult, Error> {
        if request.tenant.is_some() {
            return Err(Error::Configuration(
                "a silent request cannot name a tenant: sign the user in with the client of \
                 that tenant (ConfidentialClient::for_tenant)"
                    .into(),
            ));
        }
        let scopes = resource_scopes(&request.scopes);
        if scopes.is_empty() {
            return Err(Error::Configuration(
                "at least one scope is required".into(),
            ));
        }
        let inner = &self.inner;
        let known = |inner: &Inner| {
            inner
                .users
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&account.home_account_id)
        };
        // Signed in by another process: the L2 has the account.
        if !known(inner) {
            super::l2_load(inner, super::Scope::User(&account.home_account_id)).await;
        }
        if !known(inner) {
            return Err(ServerError::interaction_required(
                "this client holds no sign-in for the account",
                request.claims.clone(),
            )
            .into());
        }
        let requested: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let key = CacheKey::new(user_partition(inner, account), &requested);
        if request.force_refresh || request.claims.is_some() {
            let token = refresh(
                Arc::clone(inner),
                account.clone(),
                key,
                scopes,
                request.claims.clone(),
                false,
            )
            .await?;
            return Ok(
                AuthenticationResult::from_shared(token, TokenOrigin::IdentityProvider)
                    .with_account(account.clone()),
            );
        }
        let now = inner.clock.now();
        // No token for exactly these scopes, but one for more of them: MSAL serves that too.
        // (Only when such a broader set was filed, so a plain hit probes the cache once.)
        let broader = broader_scope_sets(inner, &key);
        if !broader.is_empty()
            && !inner.cache.get(&key).is_some_and(|t| t.is_usable(now))
            && let Some(token) = broader
                .iter()
                .find_map(|held| inner.cache.get(held).filter(|t| t.is_usable(now)))
        {
            inner.cache.record_hit();
            return Ok(AuthenticationResult::looked_up(token, true).with_account(account.clone()));
        }
        let (token, cached) = inner
            .cache
            .get_or_fetch(&key, now, || {
                refresh(
                    Arc::clone(inner),
                    account.clone(),
                    key.clone(),
                    scopes.clone(),
                    None,
                    true,
                )
            })
            .await?;
        Ok(AuthenticationResult::looked_up(token, cached).with_account(account.clone()))
    }

    /// The validator for this client's ID tokens (audience: the client id), built once.
    fn id_token_validator(&self) -> Result<&crate::validator::BearerValidator, Error> {
        let inner = &self.inner;
        if let Some(validator) = inner.id_tokens.get() {
            return Ok(validator);
        }
        let mut builder = crate::validator::BearerValidator::builder(inner.authority.clone())
            .audience(inner.client_id.clone())
            .http_client(Arc::clone(&inner.http))
            .clock(Arc::clone(&inner.clock));
        if inner.authority.is_multi_tenant() {
            builder = match &inner.sign_in_tenants {
                super::SignInTenants::Unset => {
                    return Err(Error::Configuration(
                        "at `organizations` or `common`, say whose users may sign in: \
                         ClientBuilder::allowed_sign_in_tenants (tenant ids) or \
                         danger_accept_sign_in_from_any_tenant"
                            .into(),
                    ));
                }
                super::SignInTenants::Listed(tenants) => builder.allowed_tenants(tenants.clone()),
                super::SignInTenants::Any => builder.danger_accept_any_tenant(),
            };
        }
        let validator = builder.build()?;
        Ok(inner.id_tokens.get_or_init(|| validator))
    }
}

/// `{environment}|{realm}|{client_id}|{home_account_id}`: one user's access tokens.
fn user_partition(inner: &Inner, account: &Account) -> Arc<str> {
    format!(
        "{}|{}|{}|{}",
        environment(&inner.authority),
        realm(&inner.authority),
        inner.client_id.to_ascii_lowercase(),
        account.home_account_id.to_ascii_lowercase()
    )
    .into()
}

/// How many scope sets [`broader_scope_sets`] looks through per user.
pub(crate) const SCOPE_SETS_PER_USER: usize = 8;

/// Notes that a user token was filed under `key`, so that fewer scopes can find it.
pub(crate) fn remember_scope_set(inner: &Inner, key: &CacheKey) {
    let mut sets = inner.scope_sets.lock().unwrap_or_else(|p| p.into_inner());
    let entry = sets.entry(Arc::from(key.partition())).or_default();
    entry.retain(|k| k != key);
    if entry.len() >= SCOPE_SETS_PER_USER {
        entry.remove(0);
    }
    entry.push(key.clone());
}

/// The user's filed scope sets that hold more than `key`'s scopes, the newest first.
fn broader_scope_sets(inner: &Inner, key: &CacheKey) -> Vec<CacheKey> {
    inner
        .scope_sets
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(key.partition())
        .map(|sets| {
            sets.iter()
                .rev()
                .filter(|held| *held != key && held.covers(key))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Files a user grant's tokens: the account with its (rotated) refresh token, the access token
/// under the user's partition.
fn store_user_tokens(
    inner: &Inner,
    account: &Account,
    tokens: UserTokens,
    scopes: &[String],
) -> AuthenticationResult {
    {
        let mut users = inner.users.lock().unwrap_or_else(|p| p.into_inner());
        let record = users
            .entry(account.home_account_id.clone())
            .or_insert_with(|| UserRecord {
                account: account.clone(),
                refresh_token: None,
                id_token: None,
            });
        record.account = account.clone();
        if let Some(refresh_token) = tokens.refresh_token {
            record.refresh_token = Some(refresh_token);
        }
        if let Some(id_token) = tokens.id_token {
            record.id_token = Some(id_token);
        }
    }
    let requested: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let key = CacheKey::new(user_partition(inner, account), &requested);
    let token = Arc::new(tokens.token);
    remember_scope_set(inner, &key);
    inner.cache.insert(key, Arc::clone(&token));
    AuthenticationResult::from_shared(token, TokenOrigin::IdentityProvider)
        .with_account(account.clone())
}

/// The refresh grant for `account`; files the new tokens, or forgets a refresh token the
/// authority no longer accepts.
async fn refresh(
    inner: Arc<Inner>,
    account: Account,
    key: CacheKey,
    scopes: Vec<String>,
    claims: Option<String>,
    use_store: bool,
) -> Result<Arc<CachedToken>, Error> {
    let scope_l2 = super::Scope::User(&account.home_account_id);
    if use_store && let Some(token) = super::l2_cached(&inner, scope_l2, &key).await {
        tracing::debug!("user token from the token store");
        return Ok(token);
    }
    let refresh_token = inner
        .users
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&account.home_account_id)
        .and_then(|u| u.refresh_token.clone())
        .ok_or_else(|| {
            Error::from(ServerError::interaction_required(
                "no refresh token for the account",
                None,
            ))
        })?;
    let scope = with_reserved(&scopes);
    let claims = super::merge_capabilities(&inner, claims.as_deref())?;
    let mut fields = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
        ("scope", scope.as_str()),
        ("client_info", "1"),
    ];
    if let Some(claims) = &claims {
        fields.push(("claims", claims.as_str()));
    }
    let requested: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let result = super::token_request::execute_with(&inner, &key, &fields, true, |body, now| {
        parse_user_tokens(body, now, &requested)
    })
    .await;
    let tokens = match result {
        Ok(tokens) => tokens,
        Err(e) => {
            if e.server_error()
                .is_some_and(|s| s.error() == "invalid_grant")
            {
                // The refresh token is dead (revoked, reused, expired): forget it. A step-up
                // the sign-in cannot satisfy (`interaction_required`) leaves it alone.
                if let Some(user) = inner
                    .users
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_mut(&account.home_account_id)
                {
                    user.refresh_token = None;
                }
            }
            return Err(e);
        }
    };
    let result = store_user_tokens(&inner, &account, tokens, &scopes);
    super::l2_save(&inner, scope_l2).await;
    Ok(Arc::clone(&result.token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_scopes_are_added_once() {
        assert_eq!(
            with_reserved(&["api://a/Read".into(), "openid".into()]),
            "api://a/Read openid profile offline_access"
        );
        assert_eq!(
            resource_scopes(&["OpenId", "api://a/Read", " ", "offline_access"]),
            ["api://a/Read"]
        );
    }

    #[test]
    fn callbacks_parse_from_query_or_form() {
        let r = AuthorizationResponse::from_form("code=abc&state=xyz&session_state=1");
        assert_eq!(r.code.as_deref(), Some("abc"));
        assert_eq!(r.state.as_deref(), Some("xyz"));
        assert!(!format!("{r:?}").contains("abc"), "the code is redacted");
        let e = AuthorizationResponse::from_form(
            "error=access_denied&error_description=AADSTS65004%3A+declined&state=s",
        );
        assert_eq!(e.error.as_deref(), Some("access_denied"));
        assert_eq!(
            e.error_description.as_deref(),
            Some("AADSTS65004: declined")
        );
        let twice = AuthorizationResponse::from_form("state=a&state=b");
        assert_eq!(twice.state.as_deref(), Some("a"));
    }

    #[test]
    fn state_comparison() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(!same("", "a"));
    }
}

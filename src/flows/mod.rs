//! [`ConfidentialClient`]: the authority, the credential, the HTTP client and the token cache,
//! and the flows that use them.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::assertion::ClientAssertionBuilder;
use crate::authority::{Authority, AzureCloud};
use crate::cache::{CacheKey, CachedToken, TokenCache};
use crate::clock::{Clock, SystemClock};
use crate::credential::{AssertionCallback, Credential};
use crate::error::Error;
use crate::http::{HttpClient, ReqwestClient};
use crate::secret::{AccessToken, ClientSecret};
use crate::signer::{Algorithm, Signer};
use crate::token_source::TokenRequest;

mod auth_code;
mod client_credentials;
mod on_behalf_of;
mod persistence;

pub(crate) use self::persistence::parse_document as parse_cache_document;
use self::persistence::{Scope, l2_cached, l2_load, l2_save};
mod step_up;
mod token_request;

pub use self::step_up::Challenge;
pub(crate) use self::step_up::merge_capabilities;

pub use self::auth_code::{
    Account, AuthCodeFlow, AuthorizationRequest, AuthorizationResponse, ResponseMode,
};

#[doc(hidden)]
pub use self::client_credentials::bench_support;
pub(crate) use self::token_request::retry_after;

/// Where a token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenOrigin {
    /// The in-memory cache.
    Cache,
    /// A token request to the authority.
    IdentityProvider,
}

/// A token and where it came from. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuthenticationResult {
    token: Arc<CachedToken>,
    source: TokenOrigin,
    account: Option<Account>,
}

impl AuthenticationResult {
    pub(crate) fn new(token: CachedToken, source: TokenOrigin) -> Self {
        Self {
            token: Arc::new(token),
            source,
            account: None,
        }
    }

    pub(crate) fn from_shared(token: Arc<CachedToken>, source: TokenOrigin) -> Self {
        Self {
            token,
            source,
            account: None,
        }
    }

    /// The result of a cache lookup that may have fetched: from the cache or the authority.
    pub(crate) fn looked_up(token: Arc<CachedToken>, cached: bool) -> Self {
        let source = if cached {
            TokenOrigin::Cache
        } else {
            TokenOrigin::IdentityProvider
        };
        Self::from_shared(token, source)
    }

    pub(crate) fn with_account(mut self, account: Account) -> Self {
        self.account = Some(account);
        self
    }

    /// The signed-in user a delegated token is for; `None` for app tokens.
    pub fn account(&self) -> Option<&Account> {
        self.account.as_ref()
    }

    /// The access token, for an `Authorization: Bearer` header.
    pub fn access_token(&self) -> &AccessToken {
        self.token.access_token()
    }

    /// The token with its times and scopes.
    pub fn token(&self) -> &CachedToken {
        &self.token
    }

    /// When the token expires.
    pub fn expires_on(&self) -> SystemTime {
        self.token.expires_on()
    }

    /// Cache or network.
    pub fn source(&self) -> TokenOrigin {
        self.source
    }

    /// Whether it came from the cache.
    pub fn is_from_cache(&self) -> bool {
        self.source == TokenOrigin::Cache
    }
}

/// A confidential client application: one app registration at one authority.
///
/// ```no_run
/// # async fn run() -> Result<(), confidant::Error> {
/// use std::sync::Arc;
/// use confidant::{Authority, ConfidentialClient, PemSigner};
///
/// let signer = PemSigner::from_combined_pem_file("app.pem", None)?;
/// let client = ConfidentialClient::builder(
///     Authority::parse("https://login.microsoftonline.com/contoso.onmicrosoft.com")?,
///     "00000000-0000-0000-0000-000000000001",
/// )
/// .certificate(Arc::new(signer))
/// .build()?;
/// let token = client.acquire_token_for_client(&["https://management.azure.com/.default"]).await?;
/// # let _ = token; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ConfidentialClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) authority: Authority,
    pub(crate) client_id: String,
    pub(crate) credential: Credential,
    pub(crate) http: Arc<dyn HttpClient>,
    pub(crate) cache: Arc<TokenCache>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) retry_delay: Duration,
    /// `{environment}|{realm}|{client_id}|`: the cache partition of app tokens.
    pub(crate) app_partition: Arc<str>,
    /// Requests throttled by `Retry-After`, until when.
    pub(crate) throttled: Mutex<HashMap<CacheKey, SystemTime>>,
    /// Signed-in users: accounts and refresh tokens.
    pub(crate) users: auth_code::Users,
    /// Client capabilities (`CP1`) merged into every request's `claims`.
    pub(crate) capabilities: Vec<String>,
    /// Whose users may sign in at a multi-tenant authority.
    pub(crate) sign_in_tenants: SignInTenants,
    /// The L2: tokens shared with other processes or machines.
    pub(crate) store: Option<Arc<dyn crate::cache::TokenStore>>,
    /// The last cache document loaded, kept so serializing preserves what this client does
    /// not own.
    pub(crate) persisted: Mutex<serde_json::Map<String, serde_json::Value>>,
    /// Validates ID tokens; built on the first sign-in.
    pub(crate) id_tokens: std::sync::OnceLock<crate::validator::BearerValidator>,
    /// The same app in other tenants, for requests that name one, by lower-cased tenant.
    pub(crate) tenants: Mutex<HashMap<String, ConfidentialClient>>,
    /// The scope sets of the user tokens filed, by user partition (the newest last, at most
    /// [`auth_code::SCOPE_SETS_PER_USER`]): a silent request for fewer scopes is served from
    /// one of them.
    pub(crate) scope_sets: Mutex<HashMap<Arc<str>, Vec<CacheKey>>>,
}

/// The builder before a credential is chosen.
#[derive(Debug)]
#[non_exhaustive]
pub struct NoCredential;

/// The builder once a credential is chosen.
#[derive(Debug)]
#[non_exhaustive]
pub struct WithCredential;

/// Configures a [`ConfidentialClient`]: first a credential, then anything else, then
/// [`build`](ClientBuilder::build).
#[derive(Debug)]
pub struct ClientBuilder<State = NoCredential> {
    authority: Authority,
    client_id: String,
    credential: Option<PendingCredential>,
    http: Option<Arc<dyn HttpClient>>,
    cache: Option<Arc<TokenCache>>,
    clock: Arc<dyn Clock>,
    retry_delay: Duration,
    send_x5c: bool,
    assertion_algorithm: Option<Algorithm>,
    capabilities: Vec<String>,
    sign_in_tenants: SignInTenants,
    store: Option<Arc<dyn crate::cache::TokenStore>>,
    state: PhantomData<State>,
}

/// The tenants whose users may sign in when the authority is `organizations` or `common`
/// (VALIDATION.md C4 for ID tokens).
#[derive(Debug, Clone, Default)]
pub(crate) enum SignInTenants {
    /// Not chosen: a sign-in at a multi-tenant authority is refused before it starts.
    #[default]
    Unset,
    /// These tenant ids.
    Listed(Vec<String>),
    /// Any tenant (`danger_accept_sign_in_from_any_tenant`).
    Any,
}

#[derive(Debug)]
enum PendingCredential {
    Secret(ClientSecret),
    Certificate(Arc<dyn Signer>),
    Callback(AssertionCallback),
    TokenFile(std::path::PathBuf),
}

impl ConfidentialClient {
    /// Starts configuring a client for `client_id` at `authority`.
    pub fn builder(
        authority: Authority,
        client_id: impl Into<String>,
    ) -> ClientBuilder<NoCredential> {
        ClientBuilder {
            authority,
            client_id: client_id.into(),
            credential: None,
            http: None,
            cache: None,
            clock: Arc::new(SystemClock),
            retry_delay: Duration::from_secs(1),
            send_x5c: false,
            assertion_algorithm: None,
            capabilities: Vec::new(),
            sign_in_tenants: SignInTenants::Unset,
            store: None,
            state: PhantomData,
        }
    }

    /// The authority.
    pub fn authority(&self) -> &Authority {
        &self.inner.authority
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The token cache.
    pub fn cache(&self) -> &Arc<TokenCache> {
        &self.inner.cache
    }

    /// The same app at another B2C user flow of its tenant (the MFA flow of a step-up),
    /// sharing the credential, HTTP client, cache and clock. Its sign-ins are its own
    /// accounts (B2C's home account ids name the flow).
    pub fn for_b2c_policy(&self, policy: &str) -> Result<ConfidentialClient, Error> {
        let authority = self.inner.authority.with_b2c_policy(policy)?;
        Ok(self.at_authority(authority))
    }

    /// The same app in another Entra tenant: a multi-tenant app calling into a customer's
    /// tenant where it has been consented, or an app whose authority is `organizations` asking
    /// for an app token (which needs a real tenant). Shares the credential, HTTP client, cache,
    /// token store and clock; its tokens are cached under that tenant. Refused for authorities
    /// that are not Entra ID.
    ///
    /// For one request at a time, [`TokenRequest::tenant`] does the same and keeps the
    /// per-tenant clients for you.
    ///
    /// ```no_run
    /// # async fn run(client: confidant::ConfidentialClient) -> Result<(), confidant::Error> {
    /// let fabrikam = client.for_tenant("fabrikam.onmicrosoft.com")?;
    /// let token = fabrikam
    ///     .acquire_token_for_client(&["https://graph.microsoft.com/.default"])
    ///     .await?;
    /// # let _ = token; Ok(()) }
    /// ```
    pub fn for_tenant(&self, tenant: &str) -> Result<ConfidentialClient, Error> {
        let authority = self.inner.authority.with_tenant(tenant)?;
        Ok(self.at_authority(authority))
    }

    /// The client to send `request` through: this one, or the one for the request's tenant
    /// (made once per tenant and kept).
    pub(crate) fn for_request(&self, request: &TokenRequest) -> Result<ConfidentialClient, Error> {
        let Some(tenant) = request.tenant.as_deref() else {
            return Ok(self.clone());
        };
        let own = self.inner.authority.tenant();
        if own.is_some_and(|own| own.eq_ignore_ascii_case(tenant)) {
            return Ok(self.clone());
        }
        // Tenant ids are usually lower-case already: no allocation on the hit path then.
        let key: std::borrow::Cow<'_, str> = if tenant.bytes().any(|b| b.is_ascii_uppercase()) {
            tenant.to_ascii_lowercase().into()
        } else {
            tenant.into()
        };
        if let Some(client) = self
            .inner
            .tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key.as_ref())
        {
            return Ok(client.clone());
        }
        let client = self.for_tenant(tenant)?;
        let mut tenants = self.inner.tenants.lock().unwrap_or_else(|p| p.into_inner());
        if tenants.len() >= MAX_TENANT_CLIENTS {
            // A bound against a caller passing untrusted tenant names: the kept clients are a
            // convenience, and a new one works as well (without its throttle state).
            tenants.clear();
        }
        Ok(tenants.entry(key.into_owned()).or_insert(client).clone())
    }

    /// This app, with its credential, HTTP client, cache, store and clock, at `authority`.
    fn at_authority(&self, authority: Authority) -> ConfidentialClient {
        let inner = &self.inner;
        let credential = match &inner.credential {
            Credential::Certificate { signer, assertions } => Credential::Certificate {
                signer: Arc::clone(signer),
                assertions: Arc::new(assertions.for_other_authority(&authority)),
            },
            other => other.clone(),
        };
        ConfidentialClient {
            inner: Arc::new(Inner {
                app_partition: app_partition(&authority, &inner.client_id),
                authority,
                client_id: inner.client_id.clone(),
                credential,
                http: Arc::clone(&inner.http),
                cache: Arc::clone(&inner.cache),
                clock: Arc::clone(&inner.clock),
                retry_delay: inner.retry_delay,
                throttled: Mutex::new(HashMap::new()),
                users: Mutex::new(HashMap::new()),
                capabilities: inner.capabilities.clone(),
                sign_in_tenants: inner.sign_in_tenants.clone(),
                store: inner.store.clone(),
                persisted: Mutex::new(serde_json::Map::new()),
                id_tokens: std::sync::OnceLock::new(),
                tenants: Mutex::new(HashMap::new()),
                scope_sets: Mutex::new(HashMap::new()),
            }),
        }
    }
}

/// How many per-tenant clients [`ConfidentialClient::for_request`] keeps.
const MAX_TENANT_CLIENTS: usize = 1024;

/// `{environment}|{realm}|{client_id}|`: the cache partition of an app's tokens.
fn app_partition(authority: &Authority, client_id: &str) -> Arc<str> {
    format!(
        "{}|{}|{}|",
        environment(authority),
        realm(authority),
        client_id.to_ascii_lowercase()
    )
    .into()
}

impl<S> ClientBuilder<S> {
    fn with_credential(self, credential: PendingCredential) -> ClientBuilder<WithCredential> {
        ClientBuilder {
            authority: self.authority,
            client_id: self.client_id,
            credential: Some(credential),
            http: self.http,
            cache: self.cache,
            clock: self.clock,
            retry_delay: self.retry_delay,
            send_x5c: self.send_x5c,
            assertion_algorithm: self.assertion_algorithm,
            capabilities: self.capabilities,
            sign_in_tenants: self.sign_in_tenants,
            store: self.store,
            state: PhantomData,
        }
    }

    /// Authenticates with a client secret (sent in the request body).
    pub fn client_secret(self, secret: impl Into<ClientSecret>) -> ClientBuilder<WithCredential> {
        self.with_credential(PendingCredential::Secret(secret.into()))
    }

    /// Authenticates with signed client assertions (RFC 7523) from `signer`.
    pub fn certificate(self, signer: Arc<dyn Signer>) -> ClientBuilder<WithCredential> {
        self.with_credential(PendingCredential::Certificate(signer))
    }

    /// Authenticates with assertions from `callback` (federated tokens, custom signing).
    pub fn client_assertion(self, callback: AssertionCallback) -> ClientBuilder<WithCredential> {
        self.with_credential(PendingCredential::Callback(callback))
    }

    /// Authenticates with the federated token in `path` (workload identity), read afresh for
    /// every token request so that a rotated token is picked up. See also
    /// [`WorkloadIdentity`](crate::WorkloadIdentity), which reads the standard variables.
    pub fn federated_token_file(
        self,
        path: impl Into<std::path::PathBuf>,
    ) -> ClientBuilder<WithCredential> {
        self.with_credential(PendingCredential::TokenFile(path.into()))
    }

    /// The tenants (ids, GUIDs) whose users may sign in when the authority is `organizations`
    /// or `common`: ID tokens of any other tenant are refused (`bad_issuer`). A multi-tenant
    /// web app needs this or
    /// [`danger_accept_sign_in_from_any_tenant`](Self::danger_accept_sign_in_from_any_tenant)
    /// before [`authorization_url`](ConfidentialClient::authorization_url). Not used at a
    /// single-tenant authority, which accepts its own tenant only.
    pub fn allowed_sign_in_tenants<I, T>(mut self, tenants: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let listed = tenants.into_iter().map(Into::into);
        match &mut self.sign_in_tenants {
            SignInTenants::Listed(existing) => existing.extend(listed),
            other => *other = SignInTenants::Listed(listed.collect()),
        }
        self
    }

    /// Dangerous: at `organizations` or `common`, users of every Entra tenant may sign in
    /// (what a multi-tenant SaaS sign-up page wants). The ID token is still checked in full:
    /// signature, an issuer whose tenant is the token's `tid`, audience, nonce, lifetime.
    /// Authorize the tenant or user yourself after the sign-in.
    pub fn danger_accept_sign_in_from_any_tenant(mut self) -> Self {
        self.sign_in_tenants = SignInTenants::Any;
        self
    }

    /// Declares client capabilities (`CP1`: this client handles claims challenges, so Entra
    /// may issue long-lived CAE tokens), merged into every token request's `claims`.
    pub fn client_capabilities<C: AsRef<str>>(mut self, capabilities: &[C]) -> Self {
        self.capabilities = capabilities
            .iter()
            .map(|c| c.as_ref().trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect();
        self
    }

    /// Sends the certificate chain as `x5c` (subject name + issuer registrations).
    pub fn send_x5c(mut self, send: bool) -> Self {
        self.send_x5c = send;
        self
    }

    /// Signs client assertions with `alg` only, for a provider that pins a client to one
    /// algorithm (an OpenID provider's `token_endpoint_auth_signing_alg`). By default the
    /// signer's first of PS256, RS256, ES256 is used (RS256 only for a signer without PSS).
    pub fn assertion_algorithm(mut self, alg: Algorithm) -> Self {
        self.assertion_algorithm = Some(alg);
        self
    }

    /// Uses `http` for every request (default: a [`ReqwestClient`] with default settings).
    pub fn http_client(mut self, http: Arc<dyn HttpClient>) -> Self {
        self.http = Some(http);
        self
    }

    /// Shares tokens through `store` (a [`FileStore`](crate::cache::FileStore) for processes on
    /// one machine, Redis for several): consulted on a miss before the network, written after
    /// every token request. Its failures are reported and fall back to the network.
    pub fn token_store(mut self, store: Arc<dyn crate::cache::TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Uses (and shares) `cache` (default: a new cache of default size per client).
    pub fn cache(mut self, cache: Arc<TokenCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Reads time from `clock` (expiry, assertion times).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The wait before the one retry of a 5xx answer or a failed connection (default 1 s).
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }
}

impl ClientBuilder<WithCredential> {
    /// Checks the configuration and builds the client.
    pub fn build(self) -> Result<ConfidentialClient, Error> {
        if self.client_id.trim().is_empty() {
            return Err(Error::Configuration("client_id must not be empty".into()));
        }
        let credential = match self.credential {
            Some(PendingCredential::Secret(secret)) => {
                if secret.expose_secret().is_empty() {
                    return Err(Error::Configuration("the client secret is empty".into()));
                }
                Credential::Secret(secret)
            }
            Some(PendingCredential::Certificate(signer)) => {
                let mut assertions =
                    ClientAssertionBuilder::for_authority(&self.authority, self.client_id.clone())
                        .x5c(self.send_x5c)
                        .clock(Arc::clone(&self.clock));
                if let Some(alg) = self.assertion_algorithm {
                    if !signer.algorithms().contains(&alg) {
                        return Err(Error::Configuration(format!(
                            "the signer cannot sign {}",
                            alg.as_str()
                        )));
                    }
                    assertions = assertions.algorithm(alg);
                }
                Credential::Certificate {
                    signer,
                    assertions: Arc::new(assertions),
                }
            }
            Some(PendingCredential::Callback(callback)) => Credential::Callback(callback),
            Some(PendingCredential::TokenFile(path)) => {
                Credential::TokenFile(crate::credential::FederatedTokenFile::new(path))
            }
            None => return Err(Error::Configuration("no credential was configured".into())),
        };
        let http = match self.http {
            Some(http) => http,
            None => Arc::new(ReqwestClient::new()?),
        };
        let app_partition = app_partition(&self.authority, &self.client_id);
        Ok(ConfidentialClient {
            inner: Arc::new(Inner {
                authority: self.authority,
                client_id: self.client_id,
                credential,
                http,
                cache: self.cache.unwrap_or_default(),
                clock: self.clock,
                retry_delay: self.retry_delay,
                app_partition,
                throttled: Mutex::new(HashMap::new()),
                users: Mutex::new(HashMap::new()),
                capabilities: self.capabilities,
                sign_in_tenants: self.sign_in_tenants,
                store: self.store,
                persisted: Mutex::new(serde_json::Map::new()),
                id_tokens: std::sync::OnceLock::new(),
                tenants: Mutex::new(HashMap::new()),
                scope_sets: Mutex::new(HashMap::new()),
            }),
        })
    }
}

/// The cache environment: the cloud's primary login host for any of its aliases, else the host.
pub(crate) fn environment(authority: &Authority) -> String {
    let host = authority
        .token_endpoint()
        .host_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let port = authority
        .token_endpoint()
        .port()
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    match AzureCloud::from_host(&host) {
        Some(cloud) => cloud.login_host().to_owned(),
        None => format!("{host}{port}"),
    }
}

/// The realm: the tenant segment, or the issuer for a generic OpenID provider.
fn realm(authority: &Authority) -> String {
    match authority.tenant() {
        Some(tenant) => match authority.policy() {
            Some(policy) => format!("{}/{policy}", tenant.to_ascii_lowercase()),
            None => tenant.to_ascii_lowercase(),
        },
        None => authority.url().as_str().to_owned(),
    }
}

/// The token endpoint's success parser, for the fuzz targets.
pub(crate) fn fuzz_parse_success(data: &[u8], now: std::time::SystemTime) -> bool {
    token_request::parse_success(data, now, &["api://fuzz/.default"]).is_ok()
}

/// The `Retry-After` reader, for the fuzz targets.
pub(crate) fn fuzz_retry_after(
    headers: &http::HeaderMap,
    now: std::time::SystemTime,
) -> Option<std::time::Duration> {
    token_request::retry_after(headers, now)
}

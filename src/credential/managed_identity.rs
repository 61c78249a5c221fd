//! [`ManagedIdentity`]: tokens from the Azure host's managed identity (IMDS on VMs, AKS and
//! scale sets; the identity endpoint on App Service, Functions and Container Apps), with the
//! retry table of WIRE.md section 6, a cache with half-life refresh and one request per expiry.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::Deserialize;
use url::Url;
use zeroize::Zeroizing;

use crate::cache::{CacheKey, CachedToken, TokenCache};
use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::flows::{AuthenticationResult, TokenOrigin};
use crate::http::{HttpClient, ReqwestClient, check_endpoint};
use crate::secret::AccessToken;
use crate::server_error::ServerError;
use crate::token_source::{TokenRequest, TokenSource};

/// IMDS's address: plain `http` on a link-local address, the one exception to the https rule.
const IMDS_ORIGIN: &str = "http://169.254.169.254";
const IMDS_PATH: &str = "/metadata/identity/oauth2/token";
const IMDS_API_VERSION: &str = "2018-02-01";
const APP_SERVICE_API_VERSION: &str = "2019-08-01";
/// Ten years: a longer lifetime is a broken response, not a token to keep.
const MAX_LIFETIME: Duration = Duration::from_secs(10 * 365 * 86_400);

/// Which managed identity to use.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ManagedIdentityId {
    /// The host's system-assigned identity.
    #[default]
    SystemAssigned,
    /// A user-assigned identity by client (application) id.
    ClientId(String),
    /// A user-assigned identity by object (principal) id.
    ObjectId(String),
    /// A user-assigned identity by ARM resource id.
    ResourceId(String),
}

impl ManagedIdentityId {
    /// The query parameter that selects it at `source`, if any.
    fn query(&self, source: ManagedIdentitySource) -> Option<(&'static str, &str)> {
        let imds = source == ManagedIdentitySource::Imds;
        match self {
            Self::SystemAssigned => None,
            Self::ClientId(id) => Some(("client_id", id)),
            Self::ObjectId(id) => Some((if imds { "object_id" } else { "principal_id" }, id)),
            Self::ResourceId(id) => Some((if imds { "msi_res_id" } else { "mi_res_id" }, id)),
        }
    }
}

impl fmt::Display for ManagedIdentityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SystemAssigned => f.write_str("system-assigned"),
            Self::ClientId(id) => write!(f, "client_id={id}"),
            Self::ObjectId(id) => write!(f, "object_id={id}"),
            Self::ResourceId(id) => write!(f, "resource_id={id}"),
        }
    }
}

/// Where the host serves managed-identity tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ManagedIdentitySource {
    /// The Instance Metadata Service (VMs, scale sets, AKS).
    Imds,
    /// The App Service identity endpoint (App Service, Functions, Container Apps).
    AppService,
}

impl ManagedIdentitySource {
    /// `imds` or `app_service`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Imds => "imds",
            Self::AppService => "app_service",
        }
    }
}

/// The delays of WIRE.md section 6's retry table; shrink them in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after 404, 408, 429, 5xx, a failed connection or a timeout (default 3).
    pub max_retries: u32,
    /// The first retry's delay, doubled for each further one (default 1 s), ±20 % jitter.
    pub base_delay: Duration,
    /// The longest `Retry-After` honoured (default 60 s).
    pub max_retry_after: Duration,
    /// The delay between attempts while IMDS answers 410 (default 10 s).
    pub gone_interval: Duration,
    /// How long 410 answers are retried, counted in `gone_interval`s slept since the first
    /// attempt (default 70 s).
    pub gone_budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(60),
            gone_interval: Duration::from_secs(10),
            gone_budget: Duration::from_secs(70),
        }
    }
}

impl RetryPolicy {
    /// Every delay divided by `factor` (for tests: `scaled_down(1000)` turns seconds into
    /// milliseconds). The retry counts stay.
    pub fn scaled_down(mut self, factor: u32) -> Self {
        let factor = factor.max(1);
        self.base_delay /= factor;
        self.max_retry_after /= factor;
        self.gone_interval /= factor;
        self.gone_budget /= factor;
        self
    }

    /// The delay before retry number `retry` (0-based): `base × 2^retry`, ±20 %.
    fn backoff(&self, retry: u32) -> Duration {
        let base = self.base_delay.saturating_mul(1 << retry.min(16));
        let mut bytes = [0u8; 4];
        let unit = match crate::signer::fill_random(&mut bytes) {
            Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
            Err(_) => 0.5,
        };
        base.mul_f64(0.8 + 0.4 * unit)
    }
}

/// The source and its endpoint, resolved.
#[derive(Clone)]
enum Endpoint {
    Imds(Url),
    AppService {
        url: Url,
        header: Arc<Zeroizing<String>>,
    },
}

impl Endpoint {
    fn source(&self) -> ManagedIdentitySource {
        match self {
            Self::Imds(_) => ManagedIdentitySource::Imds,
            Self::AppService { .. } => ManagedIdentitySource::AppService,
        }
    }

    fn url(&self) -> &Url {
        match self {
            Self::Imds(url) | Self::AppService { url, .. } => url,
        }
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The App Service header is a secret: only the endpoint is shown.
        f.debug_struct("Endpoint")
            .field("source", &self.source())
            .field("url", &self.url().as_str())
            .finish()
    }
}

/// Tokens of the host's managed identity, for one identity; a [`TokenSource`].
///
/// ```no_run
/// # async fn run() -> Result<(), confidant::Error> {
/// use confidant::{ManagedIdentity, ManagedIdentityId};
///
/// // The environment says which endpoint (IMDS, or App Service's IDENTITY_ENDPOINT).
/// let identity = ManagedIdentity::builder()
///     .id(ManagedIdentityId::ClientId("00000000-0000-0000-0000-000000000001".into()))
///     .build()?;
/// let token = identity.acquire_token("https://vault.azure.net").await?;
/// # let _ = token; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ManagedIdentity {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    endpoint: Endpoint,
    id: ManagedIdentityId,
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    cache: Arc<TokenCache>,
    partition: Arc<str>,
}

/// Reads one environment variable.
type VarLookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Configures a [`ManagedIdentity`].
#[derive(Default)]
pub struct ManagedIdentityBuilder {
    id: ManagedIdentityId,
    imds: Option<String>,
    app_service: Option<(String, Zeroizing<String>)>,
    vars: Option<VarLookup>,
    http: Option<Arc<dyn HttpClient>>,
    clock: Option<Arc<dyn Clock>>,
    retry: RetryPolicy,
    cache: Option<Arc<TokenCache>>,
}

impl fmt::Debug for ManagedIdentityBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagedIdentityBuilder")
            .field("id", &self.id)
            .field("imds", &self.imds)
            .field(
                "app_service",
                &self.app_service.as_ref().map(|(url, _)| url),
            )
            .field("vars", &self.vars.as_ref().map(|_| "custom"))
            .finish_non_exhaustive()
    }
}

impl ManagedIdentity {
    /// Configures a managed identity; without further settings, the system-assigned identity
    /// at the endpoint the environment names.
    pub fn builder() -> ManagedIdentityBuilder {
        ManagedIdentityBuilder::default()
    }

    /// The system-assigned identity at the endpoint the environment names.
    pub fn system_assigned() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// IMDS or App Service.
    pub fn source(&self) -> ManagedIdentitySource {
        self.inner.endpoint.source()
    }

    /// Which identity.
    pub fn id(&self) -> &ManagedIdentityId {
        &self.inner.id
    }

    /// A token for `resource` (`https://vault.azure.net`) or its scope
    /// (`https://vault.azure.net/.default`): cached until 5 minutes before expiry, refreshed in
    /// the background from half its lifetime on, one request however many callers ask.
    pub async fn acquire_token(&self, resource: &str) -> Result<AuthenticationResult, Error> {
        let resource = resource_of(resource)?;
        let inner = &self.inner;
        let key = CacheKey::new(Arc::clone(&inner.partition), &[resource.as_str()]);
        let now = inner.clock.now();
        let (token, cached) = inner
            .cache
            .get_or_fetch(&key, now, || {
                fetch(Arc::clone(inner), key.clone(), resource.clone())
            })
            .await?;
        Ok(AuthenticationResult::looked_up(token, cached))
    }

    /// A new token for `resource`, past the cache (which it then replaces).
    async fn acquire_token_fresh(&self, resource: &str) -> Result<AuthenticationResult, Error> {
        let resource = resource_of(resource)?;
        let inner = &self.inner;
        let key = CacheKey::new(Arc::clone(&inner.partition), &[resource.as_str()]);
        let token = fetch(Arc::clone(inner), key, resource).await?;
        Ok(AuthenticationResult::from_shared(
            token,
            TokenOrigin::IdentityProvider,
        ))
    }
}

#[async_trait]
impl TokenSource for ManagedIdentity {
    /// One scope (`{resource}/.default`) or resource; managed identity cannot combine several.
    /// The endpoints take no claims: a claims challenge skips the cache like a forced refresh.
    async fn token(&self, request: &TokenRequest) -> Result<AuthenticationResult, Error> {
        if request.tenant.is_some() {
            return Err(Error::Configuration(
                "a managed identity has one tenant; a request cannot name another".into(),
            ));
        }
        let [scope] = request.scopes.as_slice() else {
            return Err(Error::Configuration(
                "managed identity takes exactly one scope (`{resource}/.default`)".into(),
            ));
        };
        if request.force_refresh || request.claims.is_some() {
            self.acquire_token_fresh(scope).await
        } else {
            self.acquire_token(scope).await
        }
    }
}

/// The resource a scope names: the scope minus `/.default` (WIRE.md section 6).
fn resource_of(scope: &str) -> Result<String, Error> {
    let scope = scope.trim();
    let resource = scope.strip_suffix("/.default").unwrap_or(scope);
    if resource.is_empty() || resource.contains(char::is_whitespace) {
        return Err(Error::Configuration(format!(
            "`{scope}` is not a resource or a `{{resource}}/.default` scope"
        )));
    }
    Ok(resource.to_owned())
}

impl ManagedIdentityBuilder {
    /// A user-assigned identity (default: system-assigned).
    pub fn id(mut self, id: ManagedIdentityId) -> Self {
        self.id = id;
        self
    }

    /// Uses IMDS at `endpoint` (the full token URL) instead of detecting the source: for the
    /// testkit, or a proxy. Must be https or loopback, or IMDS's own address.
    pub fn imds_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.imds = Some(endpoint.into());
        self.app_service = None;
        self
    }

    /// Uses the App Service endpoint `endpoint` with `identity_header` (the values of
    /// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`) instead of detecting the source.
    pub fn app_service(
        mut self,
        endpoint: impl Into<String>,
        identity_header: impl Into<String>,
    ) -> Self {
        self.app_service = Some((endpoint.into(), Zeroizing::new(identity_header.into())));
        self.imds = None;
        self
    }

    /// Detects the source by reading variables through `var` instead of the process
    /// environment (tests, embedding): the same names (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`,
    /// `AZURE_POD_IDENTITY_AUTHORITY_HOST`, ...) and rules.
    pub fn from_vars(
        mut self,
        var: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.vars = Some(Box::new(var));
        self
    }

    /// Sends requests with `http` (default: 2 s to connect, 10 s per response).
    pub fn http_client(mut self, http: Arc<dyn HttpClient>) -> Self {
        self.http = Some(http);
        self
    }

    /// Reads time from `clock` (expiry, `Retry-After` dates).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The retry delays.
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Files tokens in `cache` (default: a cache of its own).
    pub fn cache(mut self, cache: Arc<TokenCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Resolves the source and checks the endpoint.
    pub fn build(self) -> Result<ManagedIdentity, Error> {
        let endpoint = match (self.imds, self.app_service) {
            (Some(imds), _) => Endpoint::Imds(imds_url(&imds)?),
            (None, Some((url, header))) => Endpoint::AppService {
                url: check_endpoint(&url)?,
                header: Arc::new(header),
            },
            (None, None) => match &self.vars {
                Some(var) => detect(var)?,
                None => detect(|name| std::env::var(name).ok())?,
            },
        };
        if let ManagedIdentityId::ClientId(id)
        | ManagedIdentityId::ObjectId(id)
        | ManagedIdentityId::ResourceId(id) = &self.id
            && id.trim().is_empty()
        {
            return Err(Error::Configuration(
                "a user-assigned identity's id must not be empty".into(),
            ));
        }
        let http = match self.http {
            Some(http) => http,
            None => Arc::new(
                ReqwestClient::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .timeout(Duration::from_secs(10))
                    .build()?,
            ),
        };
        let partition: Arc<str> = format!("mi|{}|{}|", endpoint.url(), self.id).into();
        tracing::debug!(source = endpoint.source().as_str(), identity = %self.id, "managed identity configured");
        Ok(ManagedIdentity {
            inner: Arc::new(Inner {
                endpoint,
                id: self.id,
                http,
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                retry: self.retry,
                cache: self.cache.unwrap_or_default(),
                partition,
            }),
        })
    }
}

/// IMDS's token URL: https, loopback, or `http://169.254.169.254`.
fn imds_url(endpoint: &str) -> Result<Url, Error> {
    let url = Url::parse(endpoint)
        .map_err(|e| Error::InvalidEndpoint(format!("`{endpoint}` is not a URL: {e}")))?;
    if url.scheme() == "http" && url.host_str() == Some("169.254.169.254") && url.port().is_none() {
        return Ok(url);
    }
    check_endpoint(endpoint)
}

/// WIRE.md section 6: Service Fabric is checked before App Service so that it is not mistaken
/// for it; Azure Arc and Cloud Shell are recognised and refused; else IMDS.
fn detect(var: impl Fn(&str) -> Option<String>) -> Result<Endpoint, Error> {
    let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    let unsupported = |host: &str| {
        Err(Error::Configuration(format!(
            "the environment is {host}, whose managed identity confidant does not support yet"
        )))
    };
    let endpoint = set("IDENTITY_ENDPOINT");
    let header = set("IDENTITY_HEADER");
    if endpoint.is_some() && header.is_some() && set("IDENTITY_SERVER_THUMBPRINT").is_some() {
        return unsupported("Service Fabric");
    }
    if let (Some(endpoint), Some(header)) = (&endpoint, header) {
        return Ok(Endpoint::AppService {
            url: check_endpoint(endpoint)?,
            header: Arc::new(Zeroizing::new(header)),
        });
    }
    if endpoint.is_some() && set("IMDS_ENDPOINT").is_some() {
        return unsupported("Azure Arc");
    }
    if endpoint.is_some() {
        return Err(Error::Configuration(
            "IDENTITY_ENDPOINT is set without IDENTITY_HEADER".into(),
        ));
    }
    if set("MSI_ENDPOINT").is_some() {
        return unsupported("Cloud Shell");
    }
    let origin = set("AZURE_POD_IDENTITY_AUTHORITY_HOST");
    let origin = origin
        .as_deref()
        .unwrap_or(IMDS_ORIGIN)
        .trim_end_matches('/');
    Ok(Endpoint::Imds(imds_url(&format!("{origin}{IMDS_PATH}"))?))
}

/// Requests the token (with the retry table) and files it in the cache.
async fn fetch(
    inner: Arc<Inner>,
    key: CacheKey,
    resource: String,
) -> Result<Arc<CachedToken>, Error> {
    let token = Arc::new(request_with_retries(&inner, &resource).await?);
    inner.cache.insert(key, Arc::clone(&token));
    Ok(token)
}

/// What to do after one attempt.
enum Next {
    Done(Result<CachedToken, Error>),
    Retry {
        error: Error,
        after: Option<Duration>,
    },
    Gone(Error),
}

async fn request_with_retries(inner: &Inner, resource: &str) -> Result<CachedToken, Error> {
    let policy = &inner.retry;
    let mut retries = 0;
    let mut gone_waited = Duration::ZERO;
    loop {
        let error = match attempt(inner, resource).await {
            Next::Done(result) => return result,
            Next::Retry { error, after } if retries < policy.max_retries => {
                let delay = after.map_or_else(
                    || policy.backoff(retries),
                    |after| after.min(policy.max_retry_after),
                );
                retries += 1;
                tracing::debug!(error = %error, retry = retries, delay_ms = delay.as_millis() as u64, "managed identity request failed; retrying");
                tokio::time::sleep(delay).await;
                continue;
            }
            Next::Gone(_) if gone_waited + policy.gone_interval <= policy.gone_budget => {
                gone_waited += policy.gone_interval;
                tracing::debug!(
                    waited_ms = gone_waited.as_millis() as u64,
                    "managed identity endpoint is updating (410); retrying"
                );
                tokio::time::sleep(policy.gone_interval).await;
                continue;
            }
            Next::Retry { error, .. } | Next::Gone(error) => error,
        };
        tracing::warn!(error = %error, source = inner.endpoint.source().as_str(), "managed identity token request failed");
        return Err(error);
    }
}

async fn attempt(inner: &Inner, resource: &str) -> Next {
    let source = inner.endpoint.source();
    let mut url = inner.endpoint.url().clone();
    {
        let mut query = url.query_pairs_mut();
        query.append_pair(
            "api-version",
            match source {
                ManagedIdentitySource::Imds => IMDS_API_VERSION,
                ManagedIdentitySource::AppService => APP_SERVICE_API_VERSION,
            },
        );
        query.append_pair("resource", resource);
        if let Some((name, value)) = inner.id.query(source) {
            query.append_pair(name, value);
        }
    }
    let mut request = http::Request::get(url.as_str());
    request = match &inner.endpoint {
        Endpoint::Imds(_) => request.header("Metadata", "true"),
        Endpoint::AppService { header, .. } => request.header("X-IDENTITY-HEADER", header.as_str()),
    };
    let request = match request.body(Vec::new()) {
        Ok(request) => request,
        Err(_) => {
            return Next::Done(Err(Error::Configuration(
                "the identity header is not a valid header value".into(),
            )));
        }
    };
    let response =
        match crate::http::send_traced(inner.http.as_ref(), "managed_identity", request).await {
            Ok(response) => response,
            Err(e) if e.is_retryable() || e.is_timeout() => {
                return Next::Retry {
                    error: e.into(),
                    after: None,
                };
            }
            Err(e) => return Next::Done(Err(e.into())),
        };
    let now = inner.clock.now();
    let status = response.status().as_u16();
    if status == 200 {
        return Next::Done(parse_token(response.body(), now, resource));
    }
    let retry_after = crate::flows::retry_after(response.headers(), now);
    let error: Error = ServerError::from_response(status, response.body(), retry_after).into();
    match status {
        410 if source == ManagedIdentitySource::Imds => Next::Gone(error),
        404 | 408 | 429 | 500..=599 => Next::Retry {
            error,
            after: retry_after,
        },
        _ => Next::Done(Err(error)),
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Integer(u64),
    Float(f64),
    Text(String),
}

impl Number {
    fn seconds(&self) -> Option<u64> {
        match self {
            Self::Integer(n) => Some(*n),
            Self::Float(f) if f.is_finite() && *f >= 0.0 => Some(*f as u64),
            Self::Float(_) => None,
            Self::Text(t) => t.trim().parse().ok(),
        }
    }
}

#[derive(Deserialize)]
struct TokenBody {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_on: Option<Number>,
    #[serde(default)]
    expires_in: Option<Number>,
    #[serde(default)]
    refresh_in: Option<Number>,
    #[serde(default)]
    resource: Option<String>,
}

/// Both hosts' shapes: numbers mostly as strings; `expires_on` (Unix seconds) preferred, else
/// `expires_in`.
pub(crate) fn parse_token(
    body: &[u8],
    now: SystemTime,
    resource: &str,
) -> Result<CachedToken, Error> {
    let invalid = |what: &str| Error::InvalidResponse(format!("managed identity response {what}"));
    let parsed: TokenBody =
        serde_json::from_slice(body).map_err(|_| invalid("is not a JSON token response"))?;
    let access_token = parsed
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("has no access_token"))?;
    if parsed
        .token_type
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
    {
        return Err(invalid("has a token_type other than Bearer"));
    }
    let now_secs = crate::clock::unix_seconds(now);
    let lifetime = match (&parsed.expires_on, &parsed.expires_in) {
        (Some(on), _) => on
            .seconds()
            .map(|on| Duration::from_secs(on.saturating_sub(now_secs))),
        (None, Some(within)) => within.seconds().map(Duration::from_secs),
        (None, None) => None,
    }
    .filter(|d| *d <= MAX_LIFETIME)
    .ok_or_else(|| invalid("has no valid expires_on or expires_in"))?;
    let refresh_in = parsed
        .refresh_in
        .as_ref()
        .and_then(Number::seconds)
        .map(Duration::from_secs)
        .filter(|r| *r <= lifetime);
    let scope = format!(
        "{}/.default",
        parsed.resource.as_deref().unwrap_or(resource)
    );
    Ok(CachedToken::new(
        AccessToken::new(access_token),
        "Bearer".to_owned(),
        now,
        lifetime,
        None,
        refresh_in,
        vec![scope],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn detection_order() {
        let imds = detect(vars(&[])).expect("imds");
        assert_eq!(imds.source(), ManagedIdentitySource::Imds);
        assert_eq!(
            imds.url().as_str(),
            "http://169.254.169.254/metadata/identity/oauth2/token"
        );
        let app = detect(vars(&[
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:41000/msi/token"),
            ("IDENTITY_HEADER", "h"),
        ]))
        .expect("app service");
        assert_eq!(app.source(), ManagedIdentitySource::AppService);
        let fabric = detect(vars(&[
            (
                "IDENTITY_ENDPOINT",
                "https://10.0.0.4:2377/metadata/identity/oauth2/token",
            ),
            ("IDENTITY_HEADER", "h"),
            ("IDENTITY_SERVER_THUMBPRINT", "AB"),
        ]))
        .expect_err("service fabric");
        assert!(fabric.to_string().contains("Service Fabric"), "{fabric}");
        let arc = detect(vars(&[
            (
                "IDENTITY_ENDPOINT",
                "http://localhost:40342/metadata/identity/oauth2/token",
            ),
            ("IMDS_ENDPOINT", "http://localhost:40342"),
        ]))
        .expect_err("arc");
        assert!(arc.to_string().contains("Azure Arc"), "{arc}");
        let shell = detect(vars(&[(
            "MSI_ENDPOINT",
            "http://localhost:50342/oauth2/token",
        )]))
        .expect_err("cloud shell");
        assert!(shell.to_string().contains("Cloud Shell"), "{shell}");
        let half = detect(vars(&[(
            "IDENTITY_ENDPOINT",
            "http://127.0.0.1:1/msi/token",
        )]))
        .expect_err("no header");
        assert!(half.is_configuration());
        let pod = detect(vars(&[(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            "http://127.0.0.1:8080/",
        )]))
        .expect("override");
        assert_eq!(
            pod.url().as_str(),
            "http://127.0.0.1:8080/metadata/identity/oauth2/token"
        );
    }

    #[test]
    fn http_only_to_loopback_or_imds() {
        assert!(imds_url("http://169.254.169.254/metadata/identity/oauth2/token").is_ok());
        assert!(imds_url("http://169.254.169.254:8080/x").is_err());
        assert!(imds_url("http://10.0.0.1/metadata/identity/oauth2/token").is_err());
        assert!(
            detect(vars(&[
                ("IDENTITY_ENDPOINT", "http://app.example/msi/token"),
                ("IDENTITY_HEADER", "h"),
            ]))
            .is_err()
        );
    }

    #[test]
    fn resources_from_scopes() {
        assert_eq!(
            resource_of("https://vault.azure.net/.default").expect("scope"),
            "https://vault.azure.net"
        );
        assert_eq!(resource_of("api://x").expect("resource"), "api://x");
        assert!(resource_of("/.default").is_err());
        assert!(resource_of("a b").is_err());
    }

    #[test]
    fn token_shapes() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let imds = br#"{"access_token":"t","refresh_token":"","expires_in":"86399","expires_on":"1700086399","not_before":"1700000000","resource":"https://vault.azure.net","token_type":"Bearer"}"#;
        let t = parse_token(imds, now, "https://vault.azure.net").expect("imds");
        assert_eq!(t.expires_on(), now + Duration::from_secs(86_399));
        assert_eq!(
            t.refresh_on(),
            Some(now + Duration::from_secs(43_199) + Duration::from_millis(500))
        );
        let app =
            br#"{"access_token":"t","expires_on":1700003600,"resource":"r","token_type":"Bearer"}"#;
        let t = parse_token(app, now, "r").expect("app service");
        assert_eq!(t.expires_on(), now + Duration::from_secs(3600));
        assert_eq!(t.refresh_on(), None);
        for broken in [
            &b"<html>"[..],
            br#"{"expires_on":"1700003600"}"#,
            br#"{"access_token":"secret-token","expires_on":"soon"}"#,
            br#"{"access_token":"secret-token","token_type":"pop","expires_in":3600}"#,
            br#"{"access_token":"secret-token"}"#,
        ] {
            let e = parse_token(broken, now, "r").expect_err("broken");
            assert!(e.is_invalid_response());
            assert!(!e.to_string().contains("secret-token"));
        }
    }

    #[test]
    fn backoff_doubles_within_jitter() {
        let policy = RetryPolicy::default();
        for retry in 0..3 {
            let base = Duration::from_secs(1 << retry);
            let delay = policy.backoff(retry);
            assert!(
                delay >= base.mul_f64(0.8) && delay <= base.mul_f64(1.2),
                "{delay:?}"
            );
        }
        let fast = RetryPolicy::default().scaled_down(1000);
        assert_eq!(fast.gone_interval, Duration::from_millis(10));
        assert_eq!(fast.max_retries, 3);
    }
}

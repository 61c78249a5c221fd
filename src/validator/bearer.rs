//! `BearerValidator`: the configured validator, its builder and its entry points.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::authz::{Requirements, ValidatedToken};
use super::claims::{self, Expect, IssuerRule, KeyFacts, Profile, Rules};
use super::error::{ValidationError, ValidationErrorKind, malformed};
use super::jwk::KeySet;
use super::jws::{self, DEFAULT_MAX_TOKEN_BYTES, MAX_TOKEN_BYTES};
use super::object::Object;
use super::source::{CONNECT_TIMEOUT, FETCH_TIMEOUT, Lifecycle, Loaded, MAX_JWKS_BYTES, Remote};
use crate::authority::{Authority, AuthorityKind, entra_v1_issuer, is_guid};
use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::http::{HttpClient, ReqwestClient};
use crate::signer::{Algorithm, Backend};

/// The default and largest clock skew (C2).
const DEFAULT_SKEW: Duration = Duration::from_secs(300);
const MAX_SKEW: Duration = Duration::from_secs(600);

/// Validates bearer access tokens (and, for the authorization-code flow, ID tokens) from one
/// authority, per VALIDATION.md: strict by default, fast with a warm key set.
///
/// Cheap to clone; clones share the key set. Use it inside a Tokio runtime (key fetches run as
/// spawned tasks, so a caller that gives up never cancels the fetch others wait for).
///
/// ```no_run
/// # async fn run(token: &str) -> Result<(), Box<dyn std::error::Error>> {
/// use confidant::Authority;
/// use confidant::validator::{BearerValidator, Requirements};
///
/// let authority = Authority::parse("https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47")?;
/// let validator = BearerValidator::builder(authority)
///     .audience("22222222-2222-2222-2222-222222222222")
///     .build()?;
/// validator.prefetch().await?;
/// let token = validator.validate(token).await?;
/// token.check(&Requirements::new().all_scopes(["Files.Read"]))?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct BearerValidator {
    inner: Arc<Inner>,
}

enum KeySource {
    Remote(Arc<Remote>),
    Static(Arc<Loaded>),
}

struct Inner {
    source: KeySource,
    algorithms: Vec<Algorithm>,
    max_token_bytes: usize,
    accept_missing_kid: bool,
    require_permissions: bool,
    clock: Arc<dyn Clock>,
    realm: Option<String>,
    authorization_endpoint: String,
    /// The `danger_…` switches in force, for `Debug`.
    dangers: Vec<&'static str>,
    summary: String,
}

impl fmt::Debug for BearerValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.inner.source {
            KeySource::Remote(remote) => format!("{remote:?}"),
            KeySource::Static(_) => "static JWKS".to_owned(),
        };
        f.debug_struct("BearerValidator")
            .field("config", &self.inner.summary)
            .field("keys", &source)
            .field("algorithms", &self.inner.algorithms)
            .field("dangers", &self.inner.dangers)
            .finish()
    }
}

impl BearerValidator {
    /// A builder for tokens from `authority`.
    pub fn builder(authority: Authority) -> BearerValidatorBuilder {
        BearerValidatorBuilder::new(authority)
    }

    /// Fetches discovery and the key set now (L9), so the first request does not wait; the
    /// `metadata` error if they cannot be had. A no-op for keys given in code.
    pub async fn prefetch(&self) -> Result<(), ValidationError> {
        match &self.inner.source {
            KeySource::Remote(remote) => remote.prefetch().await,
            KeySource::Static(_) => Ok(()),
        }
    }

    /// Validates an access token (§8.2 steps 1–10, and Z0).
    pub async fn validate(&self, token: &str) -> Result<ValidatedToken, ValidationError> {
        self.run(token, None).await
    }

    /// Validates an access token, then checks `requirements` (§7; step 11).
    pub async fn validate_with(
        &self,
        token: &str,
        requirements: &Requirements,
    ) -> Result<ValidatedToken, ValidationError> {
        let token = self.validate(token).await?;
        token.check(requirements)?;
        Ok(token)
    }

    /// Validates an ID token for the authorization-code flow (C9): the same parsing, algorithm,
    /// key and issuer rules; `aud` contains `client_id` (and `azp` equals it when `aud` has
    /// several values); `nonce` equals the one sent. An access token is `wrong_token_type`.
    pub async fn validate_id_token(
        &self,
        token: &str,
        client_id: &str,
        nonce: &str,
    ) -> Result<ValidatedToken, ValidationError> {
        self.run(
            token,
            Some(Expect::IdToken {
                client_id: client_id.to_owned(),
                nonce: nonce.to_owned(),
            }),
        )
        .await
    }

    async fn run(
        &self,
        token: &str,
        id_token: Option<Expect>,
    ) -> Result<ValidatedToken, ValidationError> {
        let inner = &*self.inner;
        // (1)–(2)
        let jws = jws::parse(token, inner.max_token_bytes).inspect_err(|e| {
            tracing::debug!(kind = e.kind().as_str(), "bearer token rejected");
        })?;
        self.run_parsed(jws, id_token).await.inspect_err(|e| {
            // §8.4: one debug event per rejection, the kid escaped and cut, never a token part.
            tracing::debug!(
                kind = e.kind().as_str(),
                alg = jws_alg_name(token),
                kid = %escaped_kid(token),
                "bearer token rejected"
            );
        })
    }

    async fn run_parsed(
        &self,
        jws: jws::CompactJws<'_>,
        id_token: Option<Expect>,
    ) -> Result<ValidatedToken, ValidationError> {
        let inner = &*self.inner;
        if !inner.algorithms.contains(&jws.alg) {
            return Err(ValidationError::new(
                ValidationErrorKind::UnsupportedAlg,
                "alg is not among the configured algorithms",
            ));
        }
        // (3)
        let loaded = match &inner.source {
            KeySource::Remote(remote) => remote.keys_for(jws.kid.as_deref()).await?,
            KeySource::Static(loaded) => Arc::clone(loaded),
        };
        let key = match (&jws.kid, inner.accept_missing_kid) {
            (None, true) => loaded.keys.sole_key().ok_or_else(|| {
                ValidationError::new(
                    ValidationErrorKind::KeyNotFound,
                    "no kid, and not exactly one usable key",
                )
            })?,
            _ => loaded.keys.select(jws.kid.as_deref())?,
        };
        // (4)–(5)
        key.verify(&jws)?;
        // (6)–(10)
        let payload = jws::decode_b64url(jws.payload)?;
        let claims = Object::parse(payload, 32).map_err(malformed)?;
        let facts = KeyFacts {
            issuer: key.issuer.as_deref(),
            clouds: key.cloud.as_deref().zip(loaded.cloud.as_deref()),
        };
        let now = inner.clock.now();
        match id_token {
            None => claims::check(&claims, &loaded.rules, now, jws.is_at_jwt, facts)?,
            Some(expect) => {
                let rules = Rules {
                    expect,
                    ..loaded.rules.clone()
                };
                claims::check(&claims, &rules, now, jws.is_at_jwt, facts)?;
                return Ok(ValidatedToken::new(claims, jws.kid.unwrap_or_default()));
            }
        }
        let token = ValidatedToken::new(claims, jws.kid.unwrap_or_default());
        // (11) Z0.
        if inner.require_permissions
            && !["scp", "scope", "roles"].iter().any(|c| token.has_claim(c))
        {
            return Err(ValidationError::new(
                ValidationErrorKind::Forbidden,
                "the token carries neither scopes nor roles",
            ));
        }
        Ok(token)
    }

    /// The `realm` of this API's challenges (§8.3): the configured one, else the tenant of a
    /// single-tenant Entra authority, `""` for a multi-tenant one, none elsewhere.
    pub fn realm(&self) -> Option<&str> {
        self.inner.realm.as_deref()
    }

    /// The authority's authorization endpoint, for the step-up challenge's `authorization_uri`.
    pub fn authorization_endpoint(&self) -> &str {
        &self.inner.authorization_endpoint
    }
}

/// The parsed `alg` of `token` (already accepted by the parser).
fn jws_alg_name(token: &str) -> &'static str {
    jws::parse(token, MAX_TOKEN_BYTES).map_or("?", |j| j.alg.as_str())
}

/// The `kid` of `token`, escaped and cut to 64 bytes, for logs.
fn escaped_kid(token: &str) -> String {
    let kid = jws::parse(token, MAX_TOKEN_BYTES)
        .ok()
        .and_then(|j| j.kid)
        .unwrap_or_default();
    let mut out: String = kid.escape_debug().collect();
    if out.len() > 64 {
        let mut cut = 64;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// Configures a [`BearerValidator`]. Every rule of VALIDATION.md is on by default; the
/// `danger_…` calls weaken one each, log a `warn` at build and show in `Debug`.
pub struct BearerValidatorBuilder {
    authority: Authority,
    audiences: Vec<String>,
    tenants: Option<Vec<String>>,
    skew: Duration,
    accept_v1: bool,
    accept_v2: bool,
    algorithms: Option<Vec<Algorithm>>,
    max_token_bytes: usize,
    policies: Vec<String>,
    lifecycle: Lifecycle,
    allow_jwks_hosts: Vec<String>,
    app_id: Option<String>,
    jwks: Option<Vec<u8>>,
    issuer: Option<String>,
    http: Option<Arc<dyn HttpClient>>,
    extra_roots: Vec<Vec<u8>>,
    clock: Arc<dyn Clock>,
    backend: Backend,
    realm: Option<String>,
    any_tenant: bool,
    without_permissions: bool,
    missing_kid: bool,
}

impl fmt::Debug for BearerValidatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerValidatorBuilder")
            .field("authority", &self.authority)
            .field("audiences", &self.audiences)
            .field("tenants", &self.tenants)
            .field("skew", &self.skew)
            .finish_non_exhaustive()
    }
}

impl BearerValidatorBuilder {
    fn new(authority: Authority) -> Self {
        Self {
            policies: authority.policy().map(str::to_owned).into_iter().collect(),
            authority,
            audiences: Vec::new(),
            tenants: None,
            skew: DEFAULT_SKEW,
            accept_v1: true,
            accept_v2: true,
            algorithms: None,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            lifecycle: Lifecycle::default(),
            allow_jwks_hosts: Vec::new(),
            app_id: None,
            jwks: None,
            issuer: None,
            http: None,
            extra_roots: Vec::new(),
            clock: Arc::new(SystemClock),
            backend: Backend::default(),
            realm: None,
            any_tenant: false,
            without_permissions: false,
            missing_kid: false,
        }
    }

    /// Accepts tokens whose `aud` is `audience` (a client id or App ID URI; C5). For Entra, a
    /// client id also accepts its `api://{client id}` App ID URI (v1 tokens carry that).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accepts tokens of these tenants (`tid`); required for `common`/`organizations` (C4).
    pub fn allowed_tenants<I, S>(mut self, tenants: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tenants
            .get_or_insert_with(Vec::new)
            .extend(tenants.into_iter().map(|t| t.into().to_ascii_lowercase()));
        self
    }

    /// The clock skew allowed on `exp`, `nbf` and `iat` (C2): 300 s by default, at most 600 s.
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.skew = skew;
        self
    }

    /// Whether Entra v1 access tokens (`sts.windows.net` issuer) are accepted (default: yes).
    pub fn accept_v1_tokens(mut self, accept: bool) -> Self {
        self.accept_v1 = accept;
        self
    }

    /// Whether Entra v2 access tokens are accepted (default: yes).
    pub fn accept_v2_tokens(mut self, accept: bool) -> Self {
        self.accept_v2 = accept;
        self
    }

    /// Narrows the algorithms accepted (A1; RS256, PS256 and ES256 by default).
    pub fn algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.algorithms = Some(algorithms.to_vec());
        self
    }

    /// The largest token accepted (P1): 16 KiB by default, at most 256 KiB.
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// Another B2C policy accepted in `tfp`/`acr` besides the authority's own (C7).
    pub fn b2c_policy(mut self, policy: impl Into<String>) -> Self {
        self.policies.push(policy.into().to_ascii_lowercase());
        self
    }

    /// How often the key set is refreshed (L6): 12 h by default, 5 min to 24 h.
    pub fn jwks_refresh_interval(mut self, interval: Duration) -> Self {
        self.lifecycle.refresh_interval = interval;
        self
    }

    /// The least time between refreshes for an unknown `kid` (L8): 5 min by default, at least
    /// 1 s.
    pub fn unknown_kid_cooldown(mut self, cooldown: Duration) -> Self {
        self.lifecycle.unknown_kid_cooldown = cooldown;
        self
    }

    /// How long after a missed refresh the last good keys are still used (L7): 24 h.
    pub fn stale_grace(mut self, grace: Duration) -> Self {
        self.lifecycle.stale_grace = grace;
        self
    }

    /// Allows the discovery document's `jwks_uri` on `host` as well (L3).
    pub fn allow_jwks_host(mut self, host: impl Into<String>) -> Self {
        self.allow_jwks_hosts.push(host.into());
        self
    }

    /// Entra app-specific signing keys: fetch `jwks_uri?appid={client_id}`.
    pub fn app_specific_keys(mut self, client_id: impl Into<String>) -> Self {
        self.app_id = Some(client_id.into());
        self
    }

    /// Uses this JWKS instead of discovery (K1: keys given in code). The issuer is the
    /// authority's, or the one set with [`issuer`](Self::issuer).
    pub fn jwks(mut self, jwks: impl Into<Vec<u8>>) -> Self {
        self.jwks = Some(jwks.into());
        self
    }

    /// The expected issuer, for keys given with [`jwks`](Self::jwks) when the authority does not
    /// imply one.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The HTTP client for discovery and JWKS (default: [`ReqwestClient`] with the §5 limits).
    pub fn http_client(mut self, http: Arc<dyn HttpClient>) -> Self {
        self.http = Some(http);
        self
    }

    /// Trusts these PEM CA certificates as well, for the default HTTP client.
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Self {
        self.extra_roots.push(pem.to_vec());
        self
    }

    /// The clock for `exp`/`nbf`/`iat` and the key lifecycle.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The verification backend.
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// The `realm` of RFC 6750 challenges.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// Dangerous: accepts any tenant of a multi-tenant authority (C4).
    pub fn danger_accept_any_tenant(mut self) -> Self {
        self.any_tenant = true;
        self
    }

    /// Dangerous: accepts tokens with neither scopes nor roles (Z0), for APIs that keep their
    /// own permission lists.
    pub fn danger_accept_tokens_without_permissions(mut self) -> Self {
        self.without_permissions = true;
        self
    }

    /// Dangerous: a token without `kid` uses the key set's only usable key (K2).
    pub fn danger_accept_missing_kid(mut self) -> Self {
        self.missing_kid = true;
        self
    }

    /// Builds the validator; a [`Error::Configuration`] for settings that can only be insecure
    /// or that break the contract's bounds.
    pub fn build(self) -> Result<BearerValidator, Error> {
        let config = |m: &str| Err(Error::Configuration(m.to_owned()));
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return config("a bearer validator needs at least one non-empty audience");
        }
        if self.skew > MAX_SKEW {
            return config("the clock skew must be at most 600 s");
        }
        if self.max_token_bytes == 0 || self.max_token_bytes > MAX_TOKEN_BYTES {
            return config("max_token_bytes must be between 1 and 256 KiB");
        }
        let lifecycle = self.lifecycle;
        if !(Duration::from_secs(300)..=Duration::from_secs(86_400))
            .contains(&lifecycle.refresh_interval)
        {
            return config("the JWKS refresh interval must be between 5 min and 24 h");
        }
        if lifecycle.unknown_kid_cooldown < Duration::from_secs(1) {
            return config("the unknown-kid cooldown must be at least 1 s");
        }
        let algorithms = self
            .algorithms
            .clone()
            .unwrap_or_else(|| vec![Algorithm::Rs256, Algorithm::Ps256, Algorithm::Es256]);
        if algorithms.is_empty() {
            return config("at least one algorithm must be allowed");
        }
        let kind = self.authority.kind();
        let multi = self.authority.is_multi_tenant();
        if multi && self.tenants.is_none() && !self.any_tenant {
            return config(
                "a multi-tenant authority needs allowed_tenants (or danger_accept_any_tenant)",
            );
        }
        if self.tenants.iter().flatten().any(|t| !is_guid(t)) {
            return config("allowed tenants must be tenant ids (GUIDs)");
        }
        if !self.accept_v1 && !self.accept_v2 {
            return config("at least one of Entra v1 and v2 tokens must be accepted");
        }
        if kind == AuthorityKind::B2c && self.policies.is_empty() {
            return config("a B2C validator needs at least one policy");
        }
        let realm = match &self.realm {
            Some(r) => Some(r.clone()),
            None if matches!(kind, AuthorityKind::Entra | AuthorityKind::Ciam) => Some(if multi {
                String::new()
            } else {
                self.authority.tenant().unwrap_or_default().to_owned()
            }),
            None => None,
        };
        if realm
            .as_deref()
            .is_some_and(|r| !r.bytes().all(super::challenge::is_quoted_safe))
        {
            return config("the realm has characters RFC 6750 does not allow");
        }

        let mut audiences = self.audiences.clone();
        if kind == AuthorityKind::Entra || kind == AuthorityKind::Ciam {
            for aud in &self.audiences {
                if is_guid(aud) {
                    audiences.push(format!("api://{aud}"));
                }
            }
        }
        let profile = match kind {
            AuthorityKind::B2c => Profile::B2c,
            AuthorityKind::Oidc => Profile::Generic,
            _ => Profile::Entra,
        };
        let base_rules = Rules {
            issuers: Vec::new(),
            audiences,
            tenants: self.tenants.clone(),
            any_tenant: self.any_tenant,
            skew: self.skew,
            profile,
            policies: self.policies.clone(),
            expect: Expect::AccessToken,
        };
        let (accept_v1, accept_v2) = (self.accept_v1, self.accept_v2);
        let derive = move |issuer: &str| -> Rules {
            let mut issuers = Vec::new();
            if kind == AuthorityKind::Entra {
                if accept_v2 {
                    issuers.push(IssuerRule::new(issuer));
                }
                if accept_v1 && let Some(v1) = entra_v1_issuer(issuer) {
                    issuers.push(IssuerRule::new(&v1));
                }
            } else {
                issuers.push(IssuerRule::new(issuer));
            }
            Rules {
                issuers,
                ..base_rules.clone()
            }
        };

        let mut dangers = Vec::new();
        for (on, name) in [
            (self.any_tenant, "danger_accept_any_tenant"),
            (
                self.without_permissions,
                "danger_accept_tokens_without_permissions",
            ),
            (self.missing_kid, "danger_accept_missing_kid"),
        ] {
            if on {
                tracing::warn!(
                    option = name,
                    "bearer validator built with a security rule weakened"
                );
                dangers.push(name);
            }
        }

        let source = match &self.jwks {
            Some(jwks) => {
                let issuer = self
                    .issuer
                    .clone()
                    .or_else(|| self.authority.issuer().map(str::to_owned));
                let Some(issuer) = issuer else {
                    return config(
                        "keys given in code need the issuer (BearerValidatorBuilder::issuer)",
                    );
                };
                if jwks.len() > MAX_JWKS_BYTES {
                    return config("the JWKS is larger than 256 KiB");
                }
                let keys = KeySet::from_json(jwks, self.backend).map_err(|e| {
                    Error::Configuration(format!("the JWKS given is not acceptable: {e}"))
                })?;
                if keys.usable_count() == 0 {
                    return config("the JWKS given has no usable key");
                }
                KeySource::Static(Arc::new(Loaded {
                    keys,
                    rules: derive(&issuer),
                    cloud: None,
                    loaded_at: std::time::SystemTime::UNIX_EPOCH,
                }))
            }
            None => {
                let http: Arc<dyn HttpClient> = match &self.http {
                    Some(http) => Arc::clone(http),
                    None => {
                        let mut builder = ReqwestClient::builder()
                            .connect_timeout(CONNECT_TIMEOUT)
                            .timeout(FETCH_TIMEOUT)
                            .max_response_bytes(MAX_JWKS_BYTES);
                        for pem in &self.extra_roots {
                            builder = builder.add_root_certificates_pem(pem);
                        }
                        Arc::new(builder.build()?)
                    }
                };
                let authority = self.authority.clone();
                let pinned = self.issuer.clone();
                KeySource::Remote(Arc::new(Remote::new(
                    http,
                    Arc::clone(&self.clock),
                    self.authority.discovery_url().clone(),
                    Box::new(move |doc_issuer: &str| match &pinned {
                        Some(expected) => doc_issuer == expected,
                        None => authority.accepts_discovered_issuer(doc_issuer),
                    }),
                    Box::new(derive),
                    self.allow_jwks_hosts.clone(),
                    self.app_id.clone(),
                    self.backend,
                    lifecycle,
                )))
            }
        };
        let summary = format!(
            "authority={} audiences={:?} tenants={:?} skew={}s v1={} v2={}",
            self.authority,
            self.audiences,
            self.tenants,
            self.skew.as_secs(),
            self.accept_v1,
            self.accept_v2
        );
        Ok(BearerValidator {
            inner: Arc::new(Inner {
                source,
                algorithms,
                max_token_bytes: self.max_token_bytes,
                accept_missing_kid: self.missing_kid,
                require_permissions: !self.without_permissions,
                clock: self.clock,
                realm,
                authorization_endpoint: self.authority.authorization_endpoint().to_string(),
                dangers,
                summary,
            }),
        })
    }
}

//! Authorities: Entra ID (public and sovereign clouds), Azure AD B2C, Entra External ID (CIAM)
//! and generic OpenID Connect providers, with the endpoints and issuer each implies.
//!
//! ```
//! use confidant::Authority;
//!
//! let a = Authority::parse("https://login.microsoftonline.com/contoso.onmicrosoft.com")?;
//! assert_eq!(
//!     a.token_endpoint().as_str(),
//!     "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
//! );
//! let b2c = Authority::parse("https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_signupsignin")?;
//! assert_eq!(b2c.policy(), Some("b2c_1_signupsignin"));
//! # Ok::<(), confidant::Error>(())
//! ```

use std::fmt;

use serde::Deserialize;
use url::Url;

use crate::error::Error;
use crate::http::{HttpClient, check_endpoint};

/// The Microsoft account (consumers) tenant id, which `consumers` tokens carry as `tid`.
pub const MSA_TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// The kind of identity provider behind an [`Authority`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthorityKind {
    /// Microsoft Entra ID (Azure AD), v2.0 endpoints.
    Entra,
    /// Azure AD B2C, one user flow or custom policy.
    B2c,
    /// Microsoft Entra External ID for customers (`ciamlogin.com`).
    Ciam,
    /// Any OpenID Connect provider, described by its discovery document.
    Oidc,
}

/// An Azure cloud, by its login host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AzureCloud {
    /// `login.microsoftonline.com`.
    Public,
    /// `login.microsoftonline.us`.
    UsGovernment,
    /// `login.chinacloudapi.cn`.
    China,
}

impl AzureCloud {
    /// The login host tokens are requested from.
    pub fn login_host(self) -> &'static str {
        match self {
            AzureCloud::Public => "login.microsoftonline.com",
            AzureCloud::UsGovernment => "login.microsoftonline.us",
            AzureCloud::China => "login.chinacloudapi.cn",
        }
    }

    /// The hosts that name the same cloud (and cache environment).
    fn aliases(self) -> &'static [&'static str] {
        match self {
            AzureCloud::Public => &[
                "login.microsoftonline.com",
                "login.windows.net",
                "login.microsoft.com",
                "sts.windows.net",
            ],
            AzureCloud::UsGovernment => &["login.microsoftonline.us", "login.usgovcloudapi.net"],
            AzureCloud::China => &["login.chinacloudapi.cn", "login.partner.microsoftonline.cn"],
        }
    }

    pub(crate) fn from_host(host: &str) -> Option<Self> {
        [
            AzureCloud::Public,
            AzureCloud::UsGovernment,
            AzureCloud::China,
        ]
        .into_iter()
        .find(|c| c.aliases().iter().any(|a| a.eq_ignore_ascii_case(host)))
    }
}

const B2C_SUFFIXES: &[&str] = &[
    ".b2clogin.com",
    ".b2clogin.cn",
    ".b2clogin.us",
    ".b2clogin.de",
];
const CIAM_SUFFIX: &str = ".ciamlogin.com";

/// Where tokens come from: the endpoints and the issuer an identity provider implies.
///
/// Build one with [`Authority::parse`] (auto-detects Entra, B2C and CIAM by host and path), the
/// explicit constructors (which also place an Entra or B2C layout on any base URL, such as the
/// testkit's), or [`Authority::discover`] for a generic OpenID provider. `http` is refused except
/// for loopback hosts.
#[derive(Clone, PartialEq, Eq)]
pub struct Authority {
    kind: AuthorityKind,
    /// The authority URL `A` of WIRE.md: endpoints hang below it.
    url: Url,
    tenant: Option<String>,
    policy: Option<String>,
    token_endpoint: Url,
    authorization_endpoint: Url,
    jwks_uri: Url,
    discovery_url: Url,
    issuer: Option<String>,
}

impl Authority {
    /// Parses an authority URL, recognising Entra, B2C and CIAM hosts.
    ///
    /// - Entra: `https://login.microsoftonline.com/{tenant}` (any cloud or alias host; a trailing
    ///   `/v2.0` is ignored).
    /// - B2C: `https://{name}.b2clogin.com/{tenant}/{policy}`, `…/tfp/{tenant}/{policy}`, or
    ///   `https://{name}.b2clogin.com/{tenant}?p={policy}`.
    /// - CIAM: `https://{name}.ciamlogin.com[/{tenant}]`.
    ///
    /// Any other host is an error: use [`Authority::discover`] for an OpenID provider, or
    /// [`Authority::entra_at`] / [`Authority::b2c_at`] for a Microsoft layout on another host.
    pub fn parse(authority: &str) -> Result<Self, Error> {
        let url = check_endpoint(authority)?;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let segments: Vec<&str> = url
            .path_segments()
            .map(|s| s.filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        let base = origin(&url);

        if AzureCloud::from_host(&host).is_some() {
            let tenant = match segments.as_slice() {
                [tenant] | [tenant, "v2.0"] => *tenant,
                [] => {
                    return Err(Error::InvalidEndpoint(
                        "an Entra authority needs a tenant: https://{host}/{tenant}".into(),
                    ));
                }
                _ => return Err(Error::InvalidEndpoint(
                    "an Entra authority is https://{host}/{tenant}, with nothing after the tenant"
                        .into(),
                )),
            };
            return Self::entra_at(&base, tenant);
        }
        if B2C_SUFFIXES.iter().any(|s| host.ends_with(s)) {
            let query_policy = url
                .query_pairs()
                .find(|(k, _)| k == "p")
                .map(|(_, v)| v.into_owned());
            let (tenant, policy) = match (segments.as_slice(), query_policy.as_deref()) {
                (["tfp", tenant, policy, ..], _) => (*tenant, policy.to_string()),
                ([tenant], Some(policy)) => (*tenant, policy.to_owned()),
                ([tenant, policy, ..], _) => (*tenant, policy.to_string()),
                _ => {
                    return Err(Error::InvalidEndpoint(
                        "a B2C authority is https://{name}.b2clogin.com/{tenant}/{policy}".into(),
                    ));
                }
            };
            return Self::b2c_at(&base, tenant, &policy);
        }
        if let Some(name) = host.strip_suffix(CIAM_SUFFIX) {
            let tenant = match segments.as_slice() {
                [] => format!("{name}.onmicrosoft.com"),
                [tenant, ..] => (*tenant).to_owned(),
            };
            return Self::ciam_at(&base, &tenant);
        }
        Err(Error::InvalidEndpoint(format!(
            "`{host}` is not a known Entra, B2C or CIAM host; use Authority::discover for an OpenID \
             provider, or Authority::entra_at/b2c_at for a Microsoft layout on another host"
        )))
    }

    /// Entra ID in `cloud` for `tenant` (a GUID, a domain, `organizations`, `common` or `consumers`).
    pub fn entra(cloud: AzureCloud, tenant: &str) -> Result<Self, Error> {
        Self::entra_at(&format!("https://{}", cloud.login_host()), tenant)
    }

    /// Entra ID's layout on any base URL, such as the testkit's `http://127.0.0.1:{port}`.
    pub fn entra_at(base: &str, tenant: &str) -> Result<Self, Error> {
        let tenant = check_segment("tenant", tenant)?;
        let base_url = check_endpoint(base)?;
        let url = join(&base_url, &[tenant])?;
        let lower = tenant.to_ascii_lowercase();
        let issuer = if lower == "common" || lower == "organizations" {
            Some(format!("{}/{{tenantid}}/v2.0", issuer_base(&base_url)))
        } else if lower == "consumers" {
            Some(format!("{}/{MSA_TENANT_ID}/v2.0", issuer_base(&base_url)))
        } else if is_guid(tenant) {
            Some(format!("{}/{lower}/v2.0", issuer_base(&base_url)))
        } else if !is_microsoft_host(&base_url) {
            // On a custom host (the testkit), the issuer follows the path as given.
            Some(format!("{}/{tenant}/v2.0", issuer_base(&base_url)))
        } else {
            None // a domain: discovery tells the tenant id
        };
        Self::microsoft_layout(AuthorityKind::Entra, url, tenant, None, issuer)
    }

    /// Azure AD B2C `https://{name}.b2clogin.com/{name}.onmicrosoft.com/{policy}`.
    pub fn b2c(name: &str, policy: &str) -> Result<Self, Error> {
        let name = check_segment("B2C tenant name", name)?;
        Self::b2c_at(
            &format!("https://{name}.b2clogin.com"),
            &format!("{name}.onmicrosoft.com"),
            policy,
        )
    }

    /// B2C's layout on any base URL: `{base}/{tenant}/{policy}`.
    pub fn b2c_at(base: &str, tenant: &str, policy: &str) -> Result<Self, Error> {
        let tenant = check_segment("tenant", tenant)?;
        let policy = check_segment("policy", policy)?.to_ascii_lowercase();
        if !policy.starts_with("b2c_1_") && !policy.starts_with("b2c_1a_") {
            return Err(Error::InvalidEndpoint(format!(
                "B2C policy `{policy}` must start with B2C_1_ (user flow) or B2C_1A_ (custom policy)"
            )));
        }
        let base_url = check_endpoint(base)?;
        let url = join(&base_url, &[tenant, &policy])?;
        let issuer = is_guid(tenant).then(|| {
            format!(
                "{}/{}/v2.0/",
                issuer_base(&base_url),
                tenant.to_ascii_lowercase()
            )
        });
        Self::microsoft_layout(AuthorityKind::B2c, url, tenant, Some(policy), issuer)
    }

    /// The v2.0 endpoints Entra, B2C and CIAM share below the authority URL.
    fn microsoft_layout(
        kind: AuthorityKind,
        url: Url,
        tenant: &str,
        policy: Option<String>,
        issuer: Option<String>,
    ) -> Result<Self, Error> {
        Ok(Self {
            kind,
            token_endpoint: join(&url, &["oauth2", "v2.0", "token"])?,
            authorization_endpoint: join(&url, &["oauth2", "v2.0", "authorize"])?,
            jwks_uri: join(&url, &["discovery", "v2.0", "keys"])?,
            discovery_url: join(&url, &["v2.0", ".well-known", "openid-configuration"])?,
            url,
            tenant: Some(tenant.to_owned()),
            policy,
            issuer,
        })
    }

    /// The same B2C tenant with another user flow: the step-up from `B2C_1_signupsignin` to
    /// `B2C_1_mfa`. Refused for authorities that are not B2C.
    pub fn with_b2c_policy(&self, policy: &str) -> Result<Self, Error> {
        let (AuthorityKind::B2c, Some(tenant)) = (self.kind, self.tenant.as_deref()) else {
            return Err(Error::Configuration(
                "only a B2C authority has user flows to switch".into(),
            ));
        };
        let mut switched = Self::b2c_at(&self.base_without(2)?, tenant, policy)?;
        if switched.issuer.is_none() {
            switched.issuer = self.issuer.clone();
        }
        Ok(switched)
    }

    /// The same Entra cloud (or base URL) with another tenant: where a multi-tenant app asks
    /// for a token in a customer's tenant. Refused for authorities that are not Entra ID (a
    /// B2C or CIAM tenant is its own host; a generic provider has no tenants).
    ///
    /// ```
    /// # fn main() -> Result<(), confidant::Error> {
    /// use confidant::Authority;
    ///
    /// let home = Authority::parse("https://login.microsoftonline.com/organizations")?;
    /// let customer = home.with_tenant("fabrikam.onmicrosoft.com")?;
    /// assert_eq!(
    ///     customer.token_endpoint().as_str(),
    ///     "https://login.microsoftonline.com/fabrikam.onmicrosoft.com/oauth2/v2.0/token"
    /// );
    /// # Ok(()) }
    /// ```
    pub fn with_tenant(&self, tenant: &str) -> Result<Self, Error> {
        if self.kind != AuthorityKind::Entra {
            return Err(Error::Configuration(
                "only an Entra ID authority can switch tenants".into(),
            ));
        }
        Self::entra_at(&self.base_without(1)?, tenant)
    }

    /// The base URL a Microsoft layout was placed on: the authority URL without its last
    /// `segments` path segments (the tenant, and a B2C policy).
    fn base_without(&self, segments: usize) -> Result<String, Error> {
        let mut base = self.url.clone();
        {
            let mut path = base.path_segments_mut().map_err(|()| {
                Error::InvalidEndpoint("the authority URL cannot have a path".into())
            })?;
            path.pop_if_empty();
            for _ in 0..segments {
                path.pop();
            }
        }
        Ok(base.as_str().trim_end_matches('/').to_owned())
    }

    /// Entra External ID (CIAM) `https://{name}.ciamlogin.com/{tenant}`.
    pub fn ciam(name: &str, tenant: Option<&str>) -> Result<Self, Error> {
        let name = check_segment("CIAM tenant name", name)?;
        let tenant = tenant.map_or_else(|| format!("{name}.onmicrosoft.com"), str::to_owned);
        Self::ciam_at(&format!("https://{name}.ciamlogin.com"), &tenant)
    }

    /// CIAM's layout (Entra's) on any base URL.
    pub fn ciam_at(base: &str, tenant: &str) -> Result<Self, Error> {
        let mut authority = Self::entra_at(base, tenant)?;
        authority.kind = AuthorityKind::Ciam;
        authority.issuer = is_guid(tenant).then(|| {
            let tid = tenant.to_ascii_lowercase();
            format!("https://{tid}.ciamlogin.com/{tid}/v2.0")
        });
        Ok(authority)
    }

    /// A generic OpenID provider from its discovery document (already fetched).
    ///
    /// The document's `issuer` must equal `issuer` (OpenID Connect Discovery §4.3), and every
    /// endpoint must pass the https rule.
    pub fn from_discovery(issuer: &str, document: &[u8]) -> Result<Self, Error> {
        let issuer_url = check_endpoint(issuer)?;
        let doc: DiscoveryDocument = serde_json::from_slice(document)
            .map_err(|e| Error::InvalidResponse(format!("discovery document is not valid: {e}")))?;
        if doc.issuer != issuer && doc.issuer != issuer.trim_end_matches('/') {
            return Err(Error::InvalidResponse(format!(
                "discovery issuer `{}` differs from the authority `{issuer}`",
                doc.issuer
            )));
        }
        let authorization_endpoint = match &doc.authorization_endpoint {
            Some(e) => check_endpoint(e)?,
            None => check_endpoint(&doc.token_endpoint)?,
        };
        Ok(Self {
            kind: AuthorityKind::Oidc,
            discovery_url: discovery_url_for(&issuer_url)?,
            url: issuer_url,
            tenant: None,
            policy: None,
            token_endpoint: check_endpoint(&doc.token_endpoint)?,
            authorization_endpoint,
            jwks_uri: check_endpoint(&doc.jwks_uri)?,
            issuer: Some(doc.issuer),
        })
    }

    /// Fetches `{issuer}/.well-known/openid-configuration` and builds a generic OpenID authority.
    pub async fn discover(http: &dyn HttpClient, issuer: &str) -> Result<Self, Error> {
        let url = discovery_url_for(&check_endpoint(issuer)?)?;
        Self::from_discovery(issuer, &fetch_discovery(http, &url).await?)
    }

    /// An authority from a URL as a user types it: [`parse`](Self::parse) for Entra, B2C and
    /// CIAM hosts; otherwise the discovery document at `{url}/.well-known/openid-configuration`
    /// decides. A URL `{base}/{tenant}/{B2C_1_policy}[/v2.0]` is B2C's layout on that base; a
    /// Microsoft-style document (with `cloud_instance_name`, such as the testkit's, for a URL
    /// `{base}/{tenant}/v2.0`) gives Entra's layout on that base; any other is a generic OpenID
    /// provider whose issuer must equal `url`.
    pub async fn resolve(http: &dyn HttpClient, url: &str) -> Result<Self, Error> {
        if let Ok(authority) = Self::parse(url) {
            return Ok(authority);
        }
        // `{base}/{tenant}/{B2C policy}[/v2.0]`: B2C's layout on another host (the testkit's).
        let trimmed = url.trim_end_matches('/');
        let trimmed = trimmed.strip_suffix("/v2.0").unwrap_or(trimmed);
        if let Some((rest, policy)) = trimmed.rsplit_once('/')
            && (policy.to_ascii_lowercase().starts_with("b2c_1_")
                || policy.to_ascii_lowercase().starts_with("b2c_1a_"))
            && let Some((base, tenant)) = rest.rsplit_once('/')
            && base
                .split_once("://")
                .is_some_and(|(_, host)| !host.is_empty())
        {
            return Self::b2c_at(base, tenant, policy);
        }
        let discovery = discovery_url_for(&check_endpoint(url)?)?;
        let body = fetch_discovery(http, &discovery).await?;
        let document: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| Error::InvalidResponse(format!("discovery document is not JSON: {e}")))?;
        if document.get("cloud_instance_name").is_some() {
            let trimmed = url.trim_end_matches('/');
            let trimmed = trimmed.strip_suffix("/v2.0").unwrap_or(trimmed);
            if let Some((base, tenant)) = trimmed.rsplit_once('/')
                && base.contains("://")
                && !base.ends_with('/')
                && base
                    .split_once("://")
                    .is_some_and(|(_, rest)| !rest.is_empty())
            {
                return Self::entra_at(base, tenant);
            }
        }
        Self::from_discovery(url, &body)
    }

    /// The kind of provider.
    pub fn kind(&self) -> AuthorityKind {
        self.kind
    }

    /// The authority URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The tenant path segment, as given (Entra, B2C, CIAM).
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// The B2C policy, lower-cased as it appears in tokens.
    pub fn policy(&self) -> Option<&str> {
        self.policy.as_deref()
    }

    /// Whether the tenant is `common` or `organizations` (issuer template `{tenantid}`).
    pub fn is_multi_tenant(&self) -> bool {
        self.tenant.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case("common") || t.eq_ignore_ascii_case("organizations")
        })
    }

    /// Whether this is a Microsoft authority (Entra, B2C or CIAM), which prefers PS256 + `x5t#S256`.
    pub fn is_microsoft(&self) -> bool {
        matches!(
            self.kind,
            AuthorityKind::Entra | AuthorityKind::B2c | AuthorityKind::Ciam
        )
    }

    /// The token endpoint; also the `aud` of client assertions.
    pub fn token_endpoint(&self) -> &Url {
        &self.token_endpoint
    }

    /// The authorization endpoint.
    pub fn authorization_endpoint(&self) -> &Url {
        &self.authorization_endpoint
    }

    /// The JWKS endpoint.
    pub fn jwks_uri(&self) -> &Url {
        &self.jwks_uri
    }

    /// The OpenID discovery document's URL.
    pub fn discovery_url(&self) -> &Url {
        &self.discovery_url
    }

    /// The issuer tokens from this authority carry, when it is known without discovery.
    ///
    /// `None` for a tenant given as a domain name (discovery maps it to the tenant id). For
    /// `common` and `organizations` this is the template with a literal `{tenantid}`.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }
}

impl Authority {
    /// L2: whether a discovery document's `issuer` is the one this authority implies. A tenant
    /// given as a domain name accepts its GUID issuer, which is then pinned.
    pub(crate) fn accepts_discovered_issuer(&self, discovered: &str) -> bool {
        // A tenant named by a domain pins its GUID from discovery, on any host.
        let domain_tenant = self.kind != AuthorityKind::Oidc
            && self.tenant.as_deref().is_some_and(|t| {
                !is_guid(t)
                    && !["common", "organizations", "consumers"]
                        .iter()
                        .any(|s| t.eq_ignore_ascii_case(s))
            });
        if let Some(expected) = self.issuer.as_ref().filter(|_| !domain_tenant) {
            return discovered == expected;
        }
        let guid_between = |prefix: &str, suffix: &str| {
            discovered
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(suffix))
                .is_some_and(|tid| is_guid(tid) && !tid.bytes().any(|b| b.is_ascii_uppercase()))
        };
        // The base URL the layout was placed on: the authority URL without its tenant (and
        // B2C policy) segments.
        let base = {
            let mut base = self.url.clone();
            if let Ok(mut path) = base.path_segments_mut() {
                path.pop();
                if self.kind == AuthorityKind::B2c {
                    path.pop();
                }
            }
            issuer_base(&base)
        };
        match self.kind {
            AuthorityKind::Entra => guid_between(&format!("{base}/"), "/v2.0"),
            AuthorityKind::B2c => guid_between(&format!("{base}/"), "/v2.0/"),
            AuthorityKind::Ciam => discovered
                .strip_prefix("https://")
                .and_then(|rest| rest.split_once(".ciamlogin.com/"))
                .is_some_and(|(tid, rest)| is_guid(tid) && rest == format!("{tid}/v2.0")),
            AuthorityKind::Oidc => false,
        }
    }
}

/// The Entra v1 issuer of the tenant whose v2 issuer is `v2` (`https://{host}/{tid}/v2.0`, `tid`
/// maybe `{tenantid}`): `https://sts.windows.net/{tid}/` in the public cloud, the China cloud's
/// `sts.chinacloudapi.cn`, the US Government login host, and on other hosts (the testkit) the v2
/// issuer without `v2.0`.
pub(crate) fn entra_v1_issuer(v2: &str) -> Option<String> {
    let without = v2.strip_suffix("v2.0")?;
    let (_, tid) = without.strip_suffix('/')?.rsplit_once('/')?;
    let host = without.split_once("://")?.1.split(['/', ':']).next()?;
    let v1_host = match AzureCloud::from_host(host) {
        Some(AzureCloud::Public) => "https://sts.windows.net",
        Some(AzureCloud::China) => "https://sts.chinacloudapi.cn",
        Some(AzureCloud::UsGovernment) => "https://login.microsoftonline.us",
        // http (loopback) or another host: the testkit's layout.
        None => return Some(without.to_owned()),
    };
    Some(format!("{v1_host}/{tid}/"))
}

/// L3: whether a JWKS on `jwks_host` may vouch for a discovery document from `discovery_host`:
/// the same host, the same Azure cloud, or the CIAM domain.
pub(crate) fn same_key_domain(discovery_host: &str, jwks_host: &str) -> bool {
    if discovery_host.eq_ignore_ascii_case(jwks_host) {
        return true;
    }
    if let (Some(a), Some(b)) = (
        AzureCloud::from_host(discovery_host),
        AzureCloud::from_host(jwks_host),
    ) {
        return a == b;
    }
    let ciam = |h: &str| h.to_ascii_lowercase().ends_with(CIAM_SUFFIX);
    ciam(discovery_host) && ciam(jwks_host)
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority")
            .field("kind", &self.kind)
            .field("url", &self.url.as_str())
            .finish()
    }
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

impl std::str::FromStr for Authority {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    token_endpoint: String,
    #[serde(default)]
    authorization_endpoint: Option<String>,
    jwks_uri: String,
}

/// GETs a discovery document; anything but 200 is an error.
async fn fetch_discovery(http: &dyn HttpClient, url: &Url) -> Result<Vec<u8>, Error> {
    let request = http::Request::get(url.as_str())
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|e| Error::InvalidEndpoint(format!("cannot build the discovery request: {e}")))?;
    let response = crate::http::send_traced(http, "discovery", request).await?;
    if response.status() != http::StatusCode::OK {
        return Err(Error::InvalidResponse(format!(
            "discovery at {} answered HTTP {}",
            url.path(),
            response.status().as_u16()
        )));
    }
    Ok(response.into_body())
}

fn discovery_url_for(issuer: &Url) -> Result<Url, Error> {
    join(issuer, &[".well-known", "openid-configuration"])
}

/// `scheme://host[:port]` of `url`.
fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// The issuer's host part: Microsoft clouds issue under their primary host whichever alias was
/// used; other hosts (the testkit) issue under themselves.
fn issuer_base(base: &Url) -> String {
    let host = base.host_str().unwrap_or_default();
    match AzureCloud::from_host(host) {
        Some(cloud) => format!("https://{}", cloud.login_host()),
        None => origin(base).trim_end_matches('/').to_owned() + base.path().trim_end_matches('/'),
    }
}

fn is_microsoft_host(url: &Url) -> bool {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    AzureCloud::from_host(&host).is_some()
        || B2C_SUFFIXES.iter().any(|s| host.ends_with(s))
        || host.ends_with(CIAM_SUFFIX)
}

/// Appends path segments to `base` (keeping any path it has), percent-encoding each.
fn join(base: &Url, segments: &[&str]) -> Result<Url, Error> {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|()| Error::InvalidEndpoint("URL cannot have a path".into()))?;
        path.pop_if_empty();
        path.extend(segments);
    }
    Ok(url)
}

/// A tenant, policy or name must be one non-empty path segment.
pub(crate) fn check_segment<'a>(what: &str, value: &'a str) -> Result<&'a str, Error> {
    let ok = !value.is_empty()
        && value.len() <= 256
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && value != "."
        && value != "..";
    if ok {
        Ok(value)
    } else {
        Err(Error::InvalidEndpoint(format!(
            "{what} must be one path segment of letters, digits, `-`, `.` and `_`"
        )))
    }
}

/// Whether `s` is a GUID in its 8-4-4-4-12 hex form.
pub(crate) fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    #[test]
    fn entra_guid_tenant() {
        let a =
            Authority::parse(&format!("https://login.microsoftonline.com/{TID}")).expect("parses");
        assert_eq!(a.kind(), AuthorityKind::Entra);
        assert_eq!(
            a.token_endpoint().as_str(),
            format!("https://login.microsoftonline.com/{TID}/oauth2/v2.0/token")
        );
        assert_eq!(
            a.authorization_endpoint().as_str(),
            format!("https://login.microsoftonline.com/{TID}/oauth2/v2.0/authorize")
        );
        assert_eq!(
            a.jwks_uri().as_str(),
            format!("https://login.microsoftonline.com/{TID}/discovery/v2.0/keys")
        );
        assert_eq!(
            a.discovery_url().as_str(),
            format!(
                "https://login.microsoftonline.com/{TID}/v2.0/.well-known/openid-configuration"
            )
        );
        assert_eq!(
            a.issuer(),
            Some(format!("https://login.microsoftonline.com/{TID}/v2.0").as_str())
        );
    }

    #[test]
    fn entra_aliases_sovereign_and_special_tenants() {
        let a = Authority::parse(&format!("https://login.windows.net/{TID}/")).expect("alias");
        assert_eq!(
            a.issuer(),
            Some(format!("https://login.microsoftonline.com/{TID}/v2.0").as_str())
        );
        let a = Authority::parse("https://login.microsoftonline.us/contoso.onmicrosoft.us/v2.0")
            .expect("gov");
        assert_eq!(
            a.token_endpoint().host_str(),
            Some("login.microsoftonline.us")
        );
        assert_eq!(a.issuer(), None, "domain tenants need discovery");
        let a = Authority::entra(AzureCloud::China, "organizations").expect("china");
        assert!(a.is_multi_tenant());
        assert_eq!(
            a.issuer(),
            Some("https://login.chinacloudapi.cn/{tenantid}/v2.0")
        );
        let a = Authority::parse("https://login.microsoftonline.com/consumers").expect("msa");
        assert_eq!(
            a.issuer(),
            Some(format!("https://login.microsoftonline.com/{MSA_TENANT_ID}/v2.0").as_str())
        );
    }

    #[test]
    fn b2c_forms() {
        let expected = "https://contoso.b2clogin.com/contoso.onmicrosoft.com/b2c_1_signupsignin/oauth2/v2.0/token";
        for url in [
            "https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_signupsignin",
            "https://contoso.b2clogin.com/tfp/contoso.onmicrosoft.com/B2C_1_signupsignin/",
            "https://contoso.b2clogin.com/contoso.onmicrosoft.com?p=B2C_1_SignUpSignIn",
        ] {
            let a = Authority::parse(url).expect(url);
            assert_eq!(a.kind(), AuthorityKind::B2c);
            assert_eq!(a.token_endpoint().as_str(), expected, "{url}");
            assert_eq!(a.policy(), Some("b2c_1_signupsignin"));
        }
        assert_eq!(
            Authority::b2c("contoso", "B2C_1A_custom")
                .expect("b2c")
                .policy(),
            Some("b2c_1a_custom")
        );
        let a = Authority::b2c_at("http://127.0.0.1:9/", TID, "B2C_1_mfa").expect("testkit layout");
        assert_eq!(
            a.issuer(),
            Some(format!("http://127.0.0.1:9/{TID}/v2.0/").as_str())
        );
        assert!(
            Authority::parse("https://contoso.b2clogin.com/contoso.onmicrosoft.com/signin")
                .is_err()
        );
        assert!(Authority::parse("https://contoso.b2clogin.com/").is_err());
    }

    #[test]
    fn ciam() {
        let a = Authority::parse("https://contoso.ciamlogin.com").expect("ciam");
        assert_eq!(a.kind(), AuthorityKind::Ciam);
        assert_eq!(a.tenant(), Some("contoso.onmicrosoft.com"));
        let a = Authority::ciam("contoso", Some(TID)).expect("ciam");
        assert_eq!(
            a.issuer(),
            Some(format!("https://{TID}.ciamlogin.com/{TID}/v2.0").as_str())
        );
    }

    #[test]
    fn testkit_layout_on_loopback() {
        let a = Authority::entra_at("http://127.0.0.1:4000", "contoso").expect("loopback");
        assert_eq!(
            a.token_endpoint().as_str(),
            "http://127.0.0.1:4000/contoso/oauth2/v2.0/token"
        );
        assert_eq!(a.issuer(), Some("http://127.0.0.1:4000/contoso/v2.0"));
    }

    #[test]
    fn refuses_bad_authorities() {
        for bad in [
            "http://login.microsoftonline.com/common",
            "https://login.microsoftonline.com",
            "https://login.microsoftonline.com/a/b/c",
            "https://example.com/tenant",
            "login.microsoftonline.com/common",
            "",
        ] {
            let e = Authority::parse(bad).expect_err(bad);
            assert!(e.is_invalid_endpoint(), "{bad}: {e}");
        }
        assert!(Authority::entra_at("https://h.example", "../x").is_err());
        assert!(Authority::entra_at("https://h.example", "a/b").is_err());
        assert!(Authority::entra_at("http://h.example", "t").is_err());
    }

    #[test]
    fn oidc_discovery_document() {
        let doc = br#"{"issuer":"https://id.example.com","token_endpoint":"https://id.example.com/token",
            "authorization_endpoint":"https://id.example.com/auth","jwks_uri":"https://id.example.com/jwks"}"#;
        let a = Authority::from_discovery("https://id.example.com", doc).expect("valid");
        assert_eq!(a.kind(), AuthorityKind::Oidc);
        assert_eq!(a.token_endpoint().as_str(), "https://id.example.com/token");
        assert_eq!(
            a.discovery_url().as_str(),
            "https://id.example.com/.well-known/openid-configuration"
        );
        let e = Authority::from_discovery("https://other.example.com", doc)
            .expect_err("issuer mismatch");
        assert!(e.is_invalid_response());
        let insecure = br#"{"issuer":"https://id.example.com","token_endpoint":"http://id.example.com/token","jwks_uri":"https://id.example.com/jwks"}"#;
        assert!(Authority::from_discovery("https://id.example.com", insecure).is_err());
        assert!(Authority::from_discovery("https://id.example.com", b"{").is_err());
    }

    #[test]
    fn validator_helpers() {
        let tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        assert_eq!(
            entra_v1_issuer(&format!("https://login.microsoftonline.com/{tid}/v2.0")).as_deref(),
            Some(format!("https://sts.windows.net/{tid}/").as_str())
        );
        assert_eq!(
            entra_v1_issuer("https://login.microsoftonline.com/{tenantid}/v2.0").as_deref(),
            Some("https://sts.windows.net/{tenantid}/")
        );
        assert_eq!(
            entra_v1_issuer(&format!("https://login.chinacloudapi.cn/{tid}/v2.0")).as_deref(),
            Some(format!("https://sts.chinacloudapi.cn/{tid}/").as_str())
        );
        assert_eq!(
            entra_v1_issuer(&format!("http://127.0.0.1:8400/{tid}/v2.0")).as_deref(),
            Some(format!("http://127.0.0.1:8400/{tid}/").as_str())
        );
        assert!(same_key_domain(
            "sts.windows.net",
            "login.microsoftonline.com"
        ));
        assert!(same_key_domain("a.ciamlogin.com", "b.ciamlogin.com"));
        assert!(!same_key_domain(
            "login.microsoftonline.com",
            "login.microsoftonline.us"
        ));
        assert!(!same_key_domain("id.example.com", "keys.example.com"));

        let by_domain =
            Authority::parse("https://login.microsoftonline.com/contoso.com").expect("ok");
        assert!(
            by_domain.accepts_discovered_issuer(&format!(
                "https://login.microsoftonline.com/{tid}/v2.0"
            ))
        );
        for other in [
            format!(
                "https://login.microsoftonline.com/{}/v2.0",
                tid.to_uppercase()
            ),
            format!("https://login.microsoftonline.us/{tid}/v2.0"),
            "https://login.microsoftonline.com/contoso.com/v2.0".to_owned(),
        ] {
            assert!(!by_domain.accepts_discovered_issuer(&other), "{other}");
        }
        let by_guid =
            Authority::parse(&format!("https://login.microsoftonline.com/{tid}")).expect("ok");
        assert!(!by_guid.accepts_discovered_issuer(
            "https://login.microsoftonline.com/0b2c5e8a-1111-4222-8333-944445555666/v2.0"
        ));
    }

    #[test]
    fn only_entra_switches_tenant() {
        let common = Authority::parse("https://login.microsoftonline.us/common").expect("ok");
        let switched = common.with_tenant(TID).expect("entra");
        assert_eq!(switched.tenant(), Some(TID));
        assert_eq!(
            switched.issuer(),
            Some(format!("https://login.microsoftonline.us/{TID}/v2.0").as_str())
        );
        let testkit = Authority::entra_at("http://127.0.0.1:4000/base", "contoso").expect("ok");
        assert_eq!(
            testkit
                .with_tenant("fabrikam")
                .expect("entra")
                .token_endpoint()
                .as_str(),
            "http://127.0.0.1:4000/base/fabrikam/oauth2/v2.0/token"
        );
        assert!(common.with_tenant("a/b").is_err());
        for other in [
            Authority::b2c("contoso", "B2C_1_signin").expect("b2c"),
            Authority::ciam("contoso", None).expect("ciam"),
        ] {
            let error = other.with_tenant(TID).expect_err("not Entra");
            assert!(error.is_configuration());
        }
    }

    #[test]
    fn guid_shape() {
        assert!(is_guid(TID));
        assert!(!is_guid("contoso.onmicrosoft.com"));
        assert!(!is_guid("72f988bf-86f1-41af-91ab-2d7cd011db4g"));
    }
}

//! Entra ID's v2.0 and v1 endpoints: discovery, JWKS and the token endpoint (client
//! credentials with a secret, a certificate assertion or a federated token).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::Shared;
use crate::assertion::{self, CERTIFICATE_AUTH};
use crate::errors::{OAuthError, json_response};
use crate::registry::{App, Resource, derived_guid};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const SECRET_AUTH: &str = "1";
/// The on-behalf-of grant type.
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const MULTI_TENANT: &[&str] = &["common", "organizations", "consumers"];

/// `organizations` or `common`: where a multi-tenant app signs in users of any tenant.
pub(crate) fn is_any_organization(tenant: &str) -> bool {
    tenant.eq_ignore_ascii_case("common") || tenant.eq_ignore_ascii_case("organizations")
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery_v2),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            get(discovery_v1),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(jwks_v2))
        .route("/{tenant}/discovery/keys", get(jwks_v1))
        .route("/{tenant}/oauth2/v2.0/token", post(token_v2))
        .route("/{tenant}/oauth2/token", post(token_v1))
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(crate::user_flows::authorize),
        )
        .route(
            "/{tenant}/{policy}/v2.0/.well-known/openid-configuration",
            get(discovery_b2c),
        )
        .route("/{tenant}/{policy}/discovery/v2.0/keys", get(jwks_b2c))
        .route("/{tenant}/{policy}/oauth2/v2.0/token", post(token_b2c))
        .route(
            "/{tenant}/{policy}/oauth2/v2.0/authorize",
            get(crate::user_flows::authorize_b2c),
        )
        .route(
            crate::managed_identity::IMDS_PATH,
            get(crate::managed_identity::imds),
        )
        .route(
            crate::managed_identity::APP_SERVICE_PATH,
            get(crate::managed_identity::app_service),
        )
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            crate::faults::middleware,
        ))
        .with_state(shared)
}

fn correlation_id(headers: &HeaderMap) -> String {
    headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The tenant segment of the URLs a discovery document lists, and the tenant id of its issuer.
fn tenant_parts(shared: &Shared, tenant: &str) -> (String, String) {
    let lower = tenant.to_ascii_lowercase();
    if MULTI_TENANT.contains(&lower.as_str()) {
        (lower, "{tenantid}".to_owned())
    } else {
        let tid = shared
            .registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .tenant_id(tenant);
        (tid.clone(), tid)
    }
}

async fn discovery_v2(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let base = &shared.base_url;
    let (segment, tid) = tenant_parts(&shared, &tenant);
    let body = json!({
        "issuer": format!("{base}/{tid}/v2.0"),
        "authorization_endpoint": format!("{base}/{segment}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/{segment}/oauth2/v2.0/token"),
        "jwks_uri": format!("{base}/{segment}/discovery/v2.0/keys"),
        "end_session_endpoint": format!("{base}/{segment}/oauth2/v2.0/logout"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "name", "nonce", "oid", "tid", "preferred_username", "email", "acr", "amr"],
        "request_uri_parameter_supported": false,
        "tenant_region_scope": "WW",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    });
    json_response(StatusCode::OK, &body, &correlation_id(&headers))
}

async fn discovery_v1(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let base = &shared.base_url;
    let (segment, tid) = tenant_parts(&shared, &tenant);
    let body = json!({
        "issuer": format!("{base}/{tid}/"),
        "authorization_endpoint": format!("{base}/{segment}/oauth2/authorize"),
        "token_endpoint": format!("{base}/{segment}/oauth2/token"),
        "jwks_uri": format!("{base}/{segment}/discovery/keys"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "cloud_instance_name": "microsoftonline.com",
    });
    json_response(StatusCode::OK, &body, &correlation_id(&headers))
}

/// Azure AD B2C's per-policy discovery document: issuer `{base}/{tid}/v2.0/`, endpoints below
/// `{base}/{tenant}/{policy}`.
async fn discovery_b2c(
    State(shared): State<Arc<Shared>>,
    Path((tenant, policy)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let base = &shared.base_url;
    let (_, tid) = tenant_parts(&shared, &tenant);
    let policy = policy.to_ascii_lowercase();
    let at = format!("{base}/{tenant}/{policy}");
    let body = json!({
        "issuer": format!("{base}/{tid}/v2.0/"),
        "authorization_endpoint": format!("{at}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{at}/oauth2/v2.0/token"),
        "end_session_endpoint": format!("{at}/oauth2/v2.0/logout"),
        "jwks_uri": format!("{at}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "response_types_supported": ["code", "code id_token", "code token", "code id_token token", "id_token", "id_token token", "token", "token id_token"],
        "scopes_supported": ["openid"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": ["oid", "sub", "tfp", "iss", "iat", "exp", "aud", "acr", "nonce", "auth_time"],
    });
    json_response(StatusCode::OK, &body, &correlation_id(&headers))
}

/// B2C keys: `kid`, `use`, `kty`, `n`, `e` (no `x5c`, `x5t` or `issuer`).
async fn jwks_b2c(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let keys: Vec<Value> = shared
        .keys
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .published
        .iter()
        .map(|k| {
            let mut jwk = k.jwk.clone();
            if let Some(object) = jwk.as_object_mut() {
                for member in ["x5c", "x5t", "issuer", "cloud_instance_name"] {
                    object.remove(member);
                }
            }
            jwk
        })
        .collect();
    json_response(
        StatusCode::OK,
        &json!({ "keys": keys }),
        &correlation_id(&headers),
    )
}

fn jwks(shared: &Shared, tenant: &str, issuer_suffix: &str, headers: &HeaderMap) -> Response {
    let (_, tid) = tenant_parts(shared, tenant);
    let issuer = format!("{}/{tid}{issuer_suffix}", shared.base_url);
    let keys: Vec<Value> = shared
        .keys
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .published
        .iter()
        .map(|k| {
            let mut jwk = k.jwk.clone();
            jwk["issuer"] = Value::String(issuer.clone());
            jwk
        })
        .collect();
    json_response(
        StatusCode::OK,
        &json!({ "keys": keys }),
        &correlation_id(headers),
    )
}

async fn jwks_v2(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    jwks(&shared, &tenant, "/v2.0", &headers)
}

async fn jwks_v1(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    jwks(&shared, &tenant, "/", &headers)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

async fn token_v2(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    token(&shared, &tenant, None, &headers, &body, Version::V2)
}

/// `POST /{tenant}/{policy}/oauth2/v2.0/token`: a B2C user flow's token endpoint.
async fn token_b2c(
    State(shared): State<Arc<Shared>>,
    Path((tenant, policy)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    token(
        &shared,
        &tenant,
        Some(&policy),
        &headers,
        &body,
        Version::V2,
    )
}

async fn token_v1(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    token(&shared, &tenant, None, &headers, &body, Version::V1)
}

fn token(
    shared: &Shared,
    tenant: &str,
    policy: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    version: Version,
) -> Response {
    let correlation_id = correlation_id(headers);
    match token_response(shared, tenant, policy, headers, body, version) {
        Ok(body) => json_response(StatusCode::OK, &body, &correlation_id),
        Err(e) if policy.is_some() => e.render_b2c(&correlation_id, shared.now_unix()),
        Err(e) => e.render(&correlation_id, shared.now_unix()),
    }
}

/// The form fields, refusing repeated ones.
fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(OAuthError::invalid_request(
            900144,
            "The request body must contain the following parameter: 'grant_type'. (Content-Type must be application/x-www-form-urlencoded.)",
        ));
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    for (i, (name, _)) in form.iter().enumerate() {
        if form[..i].iter().any(|(n, _)| n == name) {
            return Err(OAuthError::invalid_request(
                90015,
                format!("Parameter '{name}' is duplicated."),
            ));
        }
    }
    Ok(form)
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn required<'a>(form: &'a [(String, String)], name: &str) -> Result<&'a str, OAuthError> {
    field(form, name).filter(|v| !v.is_empty()).ok_or_else(|| {
        OAuthError::invalid_request(
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    })
}

/// `client_id` and secret from `Authorization: Basic` (RFC 6749 §2.3.1), if present.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return Ok(None);
    };
    let bad = || OAuthError::invalid_client(7000215, "Invalid HTTP Basic credentials.");
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let decode = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Ok(Some((
        decode(id).ok_or_else(bad)?,
        decode(secret).ok_or_else(bad)?,
    )))
}

fn token_response(
    shared: &Shared,
    tenant: &str,
    policy: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    version: Version,
) -> Result<Value, OAuthError> {
    let form = parse_form(headers, body)?;
    if let Some(policy) = policy {
        let served = shared
            .registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .b2c_policy(policy)
            .is_some();
        if !served {
            return Err(OAuthError::invalid_request(
                90057,
                format!("The policy '{policy}' does not exist in the tenant."),
            ));
        }
    }
    let policy_lower = policy.map(str::to_ascii_lowercase);
    let policy = policy_lower.as_deref();
    let grant_type = required(&form, "grant_type")?;
    let user_grant = matches!(
        grant_type,
        "authorization_code" | "refresh_token" | JWT_BEARER_GRANT
    );
    if !user_grant && grant_type != "client_credentials" {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        ));
    }
    // A code or refresh token names its user's tenant, so a multi-tenant app redeems them at
    // `organizations` or `common`; an app token needs a tenant.
    let lower_tenant = tenant.to_ascii_lowercase();
    let any_tenant =
        is_any_organization(tenant) && matches!(grant_type, "authorization_code" | "refresh_token");
    if MULTI_TENANT.contains(&lower_tenant.as_str()) && !any_tenant {
        return Err(OAuthError::invalid_request(
            50059,
            "No tenant-identifying information found in either the request or implied by any provided credentials.",
        ));
    }
    let basic = basic_credentials(headers)?;
    let client_id = match (&basic, field(&form, "client_id")) {
        (Some((id, _)), Some(form_id)) if id != form_id => {
            return Err(OAuthError::invalid_request(
                900144,
                "client_id in the body and in HTTP Basic differ.",
            ));
        }
        (Some((id, _)), _) => id.clone(),
        (None, _) => required(&form, "client_id")?.to_owned(),
    };

    let (tid, app) = {
        let registry = shared.registry.read().unwrap_or_else(|p| p.into_inner());
        (registry.tenant_id(tenant), registry.app(&client_id))
    };
    let app = app
        .filter(|a| any_tenant || a.is_in_tenant(&tid))
        .ok_or_else(|| {
            OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                700016,
                format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'."),
            )
        })?;
    if any_tenant && !app.config.multi_tenant {
        return Err(single_tenant_at_common(&client_id));
    }

    let endpoint = format!(
        "{}/{tenant}/{}",
        shared.base_url,
        if version == Version::V2 {
            "oauth2/v2.0/token"
        } else {
            "oauth2/token"
        }
    );
    let acr = authenticate(shared, &app, &form, basic.map(|(_, s)| s), &endpoint)?;
    match grant_type {
        "authorization_code" if version == Version::V2 => {
            return crate::user_flows::redeem_code(shared, &app, acr, policy, &form);
        }
        "refresh_token" if version == Version::V2 => {
            return crate::user_flows::redeem_refresh_token(shared, &app, acr, policy, &form);
        }
        JWT_BEARER_GRANT if version == Version::V2 && policy.is_none() => {
            return crate::user_flows::on_behalf_of(shared, &app, acr, &tid, &form);
        }
        _ if user_grant => {
            return Err(OAuthError::invalid_request(
                900144,
                "The testkit's v1 endpoint serves client credentials only.",
            ));
        }
        _ => {}
    }

    let resource_name = match version {
        Version::V2 => {
            let scope = required(&form, "scope")?;
            let scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
            match scopes.as_slice() {
                [one] if one.ends_with("/.default") => one.trim_end_matches("/.default").to_owned(),
                [_] => {
                    return Err(OAuthError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_scope",
                        1002012,
                        format!(
                            "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                        ),
                    ));
                }
                _ => {
                    return Err(OAuthError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_scope",
                        70011,
                        format!(
                            "The provided request must include a single 'scope' input parameter; got '{scope}'."
                        ),
                    ));
                }
            }
        }
        Version::V1 => required(&form, "resource")?.to_owned(),
    };
    let resource = shared
        .registry
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .resource(&resource_name)
        .ok_or_else(|| {
            OAuthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_resource",
                500011,
                format!("The resource principal named {resource_name} was not found in the tenant named {tenant}."),
            )
        })?;
    issue_app_token(shared, &app, &tid, &resource_name, &resource, acr)
}

/// Checks the client's one authentication method; returns its `azpacr`/`appidacr`.
fn authenticate(
    shared: &Shared,
    app: &App,
    form: &[(String, String)],
    basic_secret: Option<String>,
    endpoint: &str,
) -> Result<&'static str, OAuthError> {
    let posted_secret = field(form, "client_secret").map(str::to_owned);
    let assertion = field(form, "client_assertion");
    let methods = usize::from(posted_secret.is_some())
        + usize::from(basic_secret.is_some())
        + usize::from(assertion.is_some());
    if methods > 1 {
        return Err(OAuthError::invalid_request(
            900144,
            "The request must use exactly one client authentication method.",
        ));
    }
    if let Some(secret) = posted_secret.or(basic_secret) {
        let now = shared.now_unix();
        return match app.config.secrets.iter().find(|s| s.value == secret) {
            Some(s) if s.expires_at.is_some_and(|e| e <= now) => Err(OAuthError::invalid_client(
                7000222,
                format!(
                    "The provided client secret keys for app '{}' are expired.",
                    app.config.client_id
                ),
            )),
            Some(_) => Ok(SECRET_AUTH),
            None => Err(OAuthError::invalid_client(
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
            )),
        };
    }
    let Some(assertion) = assertion else {
        return Err(OAuthError::invalid_client(
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    };
    if field(form, "client_assertion_type") != Some(JWT_BEARER) {
        return Err(OAuthError::invalid_request(
            900144,
            format!("client_assertion_type must be '{JWT_BEARER}'."),
        ));
    }
    assertion::verify(shared, app, assertion, endpoint)?;
    Ok(CERTIFICATE_AUTH)
}

fn issue_app_token(
    shared: &Shared,
    app: &App,
    tid: &str,
    resource_name: &str,
    resource: &Resource,
    acr: &str,
) -> Result<Value, OAuthError> {
    let lifetime = shared
        .registry
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .token_lifetime_secs;
    let now = shared.now_unix();
    let (audience, version) = audience(resource_name, resource);
    let roles: Vec<String> = match resource {
        Resource::App(api) => {
            let names = [
                api.config.client_id.clone(),
                format!("api://{}", api.config.client_id),
            ];
            app.config
                .granted_roles
                .iter()
                .filter(|(r, _)| {
                    names
                        .iter()
                        .chain(api.config.identifier_uris.iter())
                        .any(|n| n.eq_ignore_ascii_case(r))
                })
                .flat_map(|(_, roles)| roles.iter().cloned())
                .filter(|r| api.config.app_roles.contains(r))
                .collect()
        }
        Resource::FirstParty(uri) => app
            .config
            .granted_roles
            .get(uri.as_str())
            .cloned()
            .unwrap_or_default(),
    };
    let oid = derived_guid(&["service-principal", &app.config.client_id, tid]);
    let mut claims = app_token_claims(
        shared,
        AppToken {
            audience: &audience,
            version,
            tid,
            client_id: &app.config.client_id,
            object_id: &oid,
            acr,
            now,
            lifetime,
        },
    );
    if !roles.is_empty() {
        claims["roles"] = json!(roles);
    }
    let access_token = sign(shared, &claims)?;
    let mut body = json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
    });
    if lifetime >= 7200 {
        body["refresh_in"] = json!(lifetime / 2);
    }
    Ok(body)
}

/// Who an app-only token is for and about.
pub(crate) struct AppToken<'a> {
    pub(crate) audience: &'a str,
    pub(crate) version: u8,
    pub(crate) tid: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) object_id: &'a str,
    /// `appidacr`/`azpacr`: "1" secret, "2" certificate or federated.
    pub(crate) acr: &'a str,
    pub(crate) now: u64,
    pub(crate) lifetime: u64,
}

/// The claims of an app-only token: audience, times, the service principal, and the issuer and
/// client claims of its version (`appid`/`appidacr` in v1, `azp`/`azpacr` in v2).
pub(crate) fn app_token_claims(shared: &Shared, t: AppToken<'_>) -> Value {
    let (base, tid) = (&shared.base_url, t.tid);
    let mut claims = json!({
        "aud": t.audience,
        "iat": t.now,
        "nbf": t.now,
        "exp": t.now + t.lifetime,
        "idtyp": "app",
        "oid": t.object_id,
        "sub": t.object_id,
        "tid": tid,
        "uti": uuid::Uuid::new_v4().simple().to_string(),
    });
    if t.version == 2 {
        claims["iss"] = json!(format!("{base}/{tid}/v2.0"));
        claims["azp"] = json!(t.client_id);
        claims["azpacr"] = json!(t.acr);
        claims["ver"] = json!("2.0");
    } else {
        claims["iss"] = json!(format!("{base}/{tid}/"));
        claims["appid"] = json!(t.client_id);
        claims["appidacr"] = json!(t.acr);
        claims["ver"] = json!("1.0");
    }
    claims
}

/// The `aud` and token version a resource gets: its client id in v2 tokens, the name it was
/// asked by in v1 tokens; Microsoft's own resources get v1.
pub(crate) fn audience(resource_name: &str, resource: &Resource) -> (String, u8) {
    match resource {
        Resource::App(api) => {
            let version = api.config.access_token_version.unwrap_or(2);
            if version == 2 {
                (api.config.client_id.clone(), 2)
            } else {
                (resource_name.to_owned(), version)
            }
        }
        Resource::FirstParty(uri) => (uri.clone(), 1),
    }
}

/// Signs claims with the current key, with Entra's header (`kid` = `x5t`).
pub(crate) fn sign(shared: &Shared, claims: &Value) -> Result<String, OAuthError> {
    let keys = shared.keys.read().unwrap_or_else(|p| p.into_inner());
    let key = keys.published.first().ok_or_else(|| {
        OAuthError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            90033,
            "No signing key.",
        )
    })?;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.typ = Some("JWT".to_owned());
    header.kid = Some(key.kid.clone());
    header.x5t = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).map_err(|e| {
        OAuthError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            90033,
            format!("Signing failed: {e}"),
        )
    })
}

/// AADSTS50194: a single-tenant app used at `organizations` or `common`.
fn single_tenant_at_common(client_id: &str) -> OAuthError {
    OAuthError::invalid_request(50194, single_tenant_message(client_id))
}

/// AADSTS50194's description, for the token endpoint and the sign-in page.
pub(crate) fn single_tenant_message(client_id: &str) -> String {
    format!(
        "Application '{client_id}' is not configured as a multi-tenant application. Usage of the /common endpoint is not supported for such applications. Use a tenant-specific endpoint or configure the application to be multi-tenant."
    )
}

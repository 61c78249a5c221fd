//! User flows: `/authorize` (no UI: `login_hint` picks the user), the authorization code grant
//! with PKCE, refresh tokens with rotation and reuse detection, delegated access tokens and
//! ID tokens (WIRE.md section 3).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::Shared;
use crate::entra::sign;
use crate::errors::OAuthError;
use crate::registry::{App, Resource, User, derived_guid};

/// Authorization codes live this long (Entra: about 10 minutes).
const CODE_LIFETIME_SECS: u64 = 600;
/// ID tokens live an hour.
const ID_TOKEN_LIFETIME_SECS: u64 = 3600;
/// Scopes every user grant may carry that name no resource.
const OIDC_SCOPES: &[&str] = &["openid", "profile", "offline_access", "email"];
/// Microsoft Graph: the resource of a request that names none.
const GRAPH: &str = "00000003-0000-0000-c000-000000000000";

/// A code waiting to be redeemed.
struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: Option<String>,
    nonce: Option<String>,
    user: User,
    /// The `acrs` values the sign-in satisfied (a second factor was used).
    acrs: Vec<String>,
    /// A second factor was used (an `acrs` step-up, or a B2C MFA user flow).
    mfa: bool,
    /// The B2C user flow, lower-cased.
    policy: Option<String>,
    expires_at: u64,
    redeemed: bool,
}

/// A refresh token: its family (one sign-in), its user and client, whether it was used.
struct Grant {
    family: String,
    client_id: String,
    user: User,
    acrs: Vec<String>,
    mfa: bool,
    policy: Option<String>,
    used: bool,
}

/// Codes, refresh tokens and the tests' switches.
#[derive(Default)]
pub(crate) struct Sessions {
    codes: HashMap<String, Code>,
    grants: HashMap<String, Grant>,
    revoked_families: HashSet<String>,
    /// Usernames (lower-cased) whose consent prompt is declined.
    declines_consent: HashSet<String>,
    /// Usernames (lower-cased) whose sign-in is blocked (account disabled).
    blocked: HashSet<String>,
}

impl Sessions {
    /// Revokes every refresh token of `oid` (password reset, admin revocation, sign-out).
    pub(crate) fn revoke_user(&mut self, oid: &str) -> usize {
        let families: HashSet<String> = self
            .grants
            .values()
            .filter(|g| g.user.oid == oid)
            .map(|g| g.family.clone())
            .collect();
        let count = families.len();
        self.revoked_families.extend(families);
        count
    }

    pub(crate) fn block_sign_in(&mut self, username: &str, block: bool) {
        let name = username.to_ascii_lowercase();
        if block {
            self.blocked.insert(name);
        } else {
            self.blocked.remove(&name);
        }
    }

    pub(crate) fn decline_consent(&mut self, username: &str, decline: bool) {
        let name = username.to_ascii_lowercase();
        if decline {
            self.declines_consent.insert(name);
        } else {
            self.declines_consent.remove(&name);
        }
    }
}

fn random_token(prefix: &str) -> String {
    format!(
        "{prefix}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An error page: what Entra shows when it cannot redirect (unknown app, unregistered URI).
fn error_page(status: StatusCode, code: u32, message: &str) -> Response {
    let body = format!(
        "<html><body><h1>Sign in</h1><p>AADSTS{code}: {}</p></body></html>",
        html_escape(message)
    );
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// The answer to the redirect URI: a 302 with the query (`response_mode=query`) or a page that
/// posts a form (`form_post`).
fn reply(redirect_uri: &str, form_post: bool, params: &[(&str, &str)]) -> Response {
    if form_post {
        let inputs: String = params
            .iter()
            .map(|(k, v)| {
                format!(
                    r#"<input type="hidden" name="{}" value="{}"/>"#,
                    html_escape(k),
                    html_escape(v)
                )
            })
            .collect();
        let body = format!(
            r#"<html><body onload="document.forms[0].submit()"><form method="post" action="{}">{inputs}<noscript><button type="submit">Continue</button></noscript></form></body></html>"#,
            html_escape(redirect_uri)
        );
        let mut response = (StatusCode::OK, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        return response;
    }
    let mut location = redirect_uri.to_owned();
    location.push(if location.contains('?') { '&' } else { '?' });
    location.push_str(
        &form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish(),
    );
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The `acrs` values a `claims` request asks for in the access token.
fn requested_acrs(claims: Option<&str>) -> Result<Vec<String>, ()> {
    let Some(claims) = claims else {
        return Ok(Vec::new());
    };
    let parsed: Value = serde_json::from_str(claims).map_err(|_| ())?;
    let acrs = &parsed["access_token"]["acrs"];
    let mut values: Vec<String> = Vec::new();
    if let Some(value) = acrs["value"].as_str() {
        values.push(value.to_owned());
    }
    if let Some(list) = acrs["values"].as_array() {
        values.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
    }
    Ok(values)
}

/// `GET /{tenant}/oauth2/v2.0/authorize`.
pub(crate) async fn authorize(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    authorize_at(&shared, &tenant, None, query.as_deref())
}

/// `GET /{tenant}/{policy}/oauth2/v2.0/authorize`: an Azure AD B2C user flow.
pub(crate) async fn authorize_b2c(
    State(shared): State<Arc<Shared>>,
    Path((tenant, policy)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let mfa = shared
        .registry
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .b2c_policy(&policy);
    let Some(mfa) = mfa else {
        return error_page(
            StatusCode::NOT_FOUND,
            90057,
            &format!("The policy '{policy}' does not exist in the tenant."),
        );
    };
    authorize_at(
        &shared,
        &tenant,
        Some((policy.to_ascii_lowercase(), mfa)),
        query.as_deref(),
    )
}

fn authorize_at(
    shared: &Shared,
    tenant: &str,
    policy: Option<(String, bool)>,
    query: Option<&str>,
) -> Response {
    let pairs: Vec<(String, String)> = query
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let Some(client_id) = param("client_id") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            900144,
            "The request must contain 'client_id'.",
        );
    };
    // A multi-tenant app signs users in at `organizations` or `common`: the user's tenant
    // comes from the sign-in.
    let any_tenant = policy.is_none() && crate::entra::is_any_organization(tenant);
    let (tid, app) = {
        let registry = shared.registry.read().unwrap_or_else(|p| p.into_inner());
        (registry.tenant_id(tenant), registry.app(client_id))
    };
    if any_tenant && app.as_ref().is_some_and(|a| !a.config.multi_tenant) {
        return error_page(
            StatusCode::BAD_REQUEST,
            50194,
            &crate::entra::single_tenant_message(client_id),
        );
    }
    let Some(app) = app.filter(|a| any_tenant || a.is_in_tenant(&tid)) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'."
            ),
        );
    };
    let Some(redirect_uri) =
        param("redirect_uri").filter(|uri| app.config.redirect_uris.iter().any(|r| r == uri))
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            50011,
            "The redirect URI specified in the request does not match the redirect URIs configured for the application.",
        );
    };
    let form_post = match param("response_mode") {
        None | Some("query") => false,
        Some("form_post") => true,
        Some(_) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                900144,
                "response_mode must be query or form_post.",
            );
        }
    };
    let state = param("state").unwrap_or_default();
    let fail = |error: &str, description: &str| {
        let mut params = vec![("error", error), ("error_description", description)];
        if !state.is_empty() {
            params.push(("state", state));
        }
        reply(redirect_uri, form_post, &params)
    };
    if param("response_type") != Some("code") {
        return fail(
            "unsupported_response_type",
            "AADSTS700054: response_type must be 'code'.",
        );
    }
    if param("scope").is_none() {
        return fail(
            "invalid_request",
            "AADSTS900144: The request must contain 'scope'.",
        );
    }
    let challenge = param("code_challenge").map(str::to_owned);
    if challenge.is_some() && param("code_challenge_method") != Some("S256") {
        return fail(
            "invalid_request",
            "AADSTS501491: code_challenge_method must be S256.",
        );
    }
    let user = {
        let registry = shared.registry.read().unwrap_or_else(|p| p.into_inner());
        if any_tenant {
            param("login_hint").and_then(|hint| registry.user_in_any_tenant(hint))
        } else {
            registry.user(&tid, param("login_hint"))
        }
    };
    let Some(user) = user else {
        let error = if param("prompt") == Some("none") {
            "login_required"
        } else {
            "interaction_required"
        };
        return fail(
            error,
            "AADSTS50058: No user could be signed in (set login_hint to a configured user).",
        );
    };
    if !app.is_in_tenant(&user.tid) {
        return fail(
            "consent_required",
            "AADSTS65001: The user or administrator has not consented to use the application.",
        );
    }
    let (blocked, declined) = {
        let sessions = shared.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let name = user.username.to_ascii_lowercase();
        (
            sessions.blocked.contains(&name),
            sessions.declines_consent.contains(&name),
        )
    };
    if blocked {
        return fail(
            "access_denied",
            "AADSTS50057: The user account is disabled.",
        );
    }
    if declined {
        return fail(
            "access_denied",
            "AADSTS65004: User declined to consent to access the app.",
        );
    }
    let Ok(acrs) = requested_acrs(param("claims")) else {
        return fail(
            "invalid_request",
            "AADSTS90014: The claims parameter is not valid JSON.",
        );
    };
    if !acrs.is_empty() && !user.mfa {
        return fail(
            "interaction_required",
            "AADSTS50079: The user must register a second factor for this step-up.",
        );
    }
    // A B2C MFA user flow enrols and uses the second factor itself.
    let b2c_mfa = policy.as_ref().is_some_and(|(_, mfa)| *mfa);
    let code = random_token("0.A");
    shared
        .sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .codes
        .insert(
            code.clone(),
            Code {
                client_id: app.config.client_id.clone(),
                redirect_uri: redirect_uri.to_owned(),
                challenge,
                nonce: param("nonce").map(str::to_owned),
                user,
                mfa: b2c_mfa || !acrs.is_empty(),
                acrs,
                policy: policy.map(|(name, _)| name),
                expires_at: shared.now_unix() + CODE_LIFETIME_SECS,
                redeemed: false,
            },
        );
    let mut params = vec![("code", code.as_str())];
    if !state.is_empty() {
        params.push(("state", state));
    }
    reply(redirect_uri, form_post, &params)
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn required<'a>(form: &'a [(String, String)], name: &str) -> Result<&'a str, OAuthError> {
    field(form, name).ok_or_else(|| {
        OAuthError::invalid_request(
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    })
}

/// `grant_type=authorization_code`, after the client authenticated as `app` with `acr`.
pub(crate) fn redeem_code(
    shared: &Shared,
    app: &App,
    acr: &str,
    policy: Option<&str>,
    form: &[(String, String)],
) -> Result<Value, OAuthError> {
    let code_value = required(form, "code")?;
    let redirect_uri = required(form, "redirect_uri")?;
    let scope = required(form, "scope")?;
    let now = shared.now_unix();
    let (user, nonce, acrs, mfa) = {
        let mut sessions = shared.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let code = sessions.codes.get_mut(code_value).ok_or_else(|| {
            OAuthError::invalid_grant(
                70008,
                "The provided authorization code or refresh token has expired or is invalid.",
            )
        })?;
        if code.redeemed {
            return Err(OAuthError::invalid_grant(
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            ));
        }
        if code.expires_at <= now {
            return Err(OAuthError::invalid_grant(
                70008,
                "The provided authorization code has expired.",
            ));
        }
        if !code.client_id.eq_ignore_ascii_case(&app.config.client_id) {
            return Err(OAuthError::invalid_grant(
                70000,
                "The authorization code was issued to another client.",
            )
            .suberror("client_mismatch"));
        }
        if code.policy.as_deref() != policy {
            return Err(OAuthError::invalid_grant(
                70000,
                "The authorization code was issued by another user flow (policy).",
            ));
        }
        if code.redirect_uri != redirect_uri {
            return Err(OAuthError::invalid_grant(
                500117,
                "The reply URI does not match the one the authorization code was issued for.",
            ));
        }
        if let Some(challenge) = &code.challenge {
            let verifier = field(form, "code_verifier").ok_or_else(|| {
                OAuthError::invalid_grant(501491, "The code_verifier is missing.")
            })?;
            let ok = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
                && URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == *challenge;
            if !ok {
                return Err(OAuthError::invalid_grant(
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                ));
            }
        }
        code.redeemed = true;
        (
            code.user.clone(),
            code.nonce.clone(),
            code.acrs.clone(),
            code.mfa,
        )
    };
    let family = uuid::Uuid::new_v4().simple().to_string();
    issue_user_tokens(
        shared,
        app,
        acr,
        Issue {
            user: &user,
            scope,
            nonce: nonce.as_deref(),
            acrs: &acrs,
            mfa,
            policy,
            family: &family,
            client_info: field(form, "client_info") == Some("1"),
        },
    )
}

/// `grant_type=refresh_token`: rotation, reuse detection (a reused token revokes its family),
/// and a step-up the sign-in did not satisfy answered with `interaction_required`.
pub(crate) fn redeem_refresh_token(
    shared: &Shared,
    app: &App,
    acr: &str,
    policy: Option<&str>,
    form: &[(String, String)],
) -> Result<Value, OAuthError> {
    let token = required(form, "refresh_token")?;
    let scope = required(form, "scope")?;
    let claims = field(form, "claims");
    let wanted = requested_acrs(claims).map_err(|()| {
        OAuthError::invalid_request(90014, "The claims parameter is not valid JSON.")
    })?;
    let (user, family, acrs, mfa) = {
        let mut sessions = shared.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let Sessions {
            grants,
            revoked_families,
            ..
        } = &mut *sessions;
        let grant = grants.get_mut(token).ok_or_else(|| {
            OAuthError::invalid_grant(
                9002313,
                "Invalid request. The refresh token is malformed or not valid.",
            )
        })?;
        if revoked_families.contains(&grant.family) {
            return Err(OAuthError::invalid_grant(
                50173,
                "The provided grant has expired due to it being revoked; a fresh auth token is needed.",
            ));
        }
        if !grant.client_id.eq_ignore_ascii_case(&app.config.client_id) {
            return Err(OAuthError::invalid_grant(
                70000,
                "The refresh token was issued to another client.",
            )
            .suberror("client_mismatch"));
        }
        if grant.policy.as_deref() != policy {
            return Err(OAuthError::invalid_grant(
                70000,
                "The refresh token was issued by another user flow (policy).",
            ));
        }
        if grant.used {
            revoked_families.insert(grant.family.clone());
            return Err(OAuthError::invalid_grant(
                70008,
                "The refresh token was already used; its sign-in has been revoked (the testkit's strict rotation).",
            ));
        }
        if wanted.iter().any(|v| !grant.acrs.contains(v)) {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "interaction_required",
                50076,
                "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication.",
            )
            .suberror("basic_action")
            .with_claims(claims.unwrap_or_default()));
        }
        grant.used = true;
        (
            grant.user.clone(),
            grant.family.clone(),
            grant.acrs.clone(),
            grant.mfa,
        )
    };
    issue_user_tokens(
        shared,
        app,
        acr,
        Issue {
            user: &user,
            scope,
            nonce: None,
            acrs: &acrs,
            mfa,
            policy,
            family: &family,
            client_info: field(form, "client_info") == Some("1"),
        },
    )
}

/// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` with
/// `requested_token_use=on_behalf_of`: the middle tier trades the user's token (whose audience
/// must be the middle tier) for one to a downstream API, for the same user.
pub(crate) fn on_behalf_of(
    shared: &Shared,
    app: &App,
    acr: &str,
    request_tid: &str,
    form: &[(String, String)],
) -> Result<Value, OAuthError> {
    if field(form, "requested_token_use") != Some("on_behalf_of") {
        return Err(OAuthError::invalid_request(
            900144,
            "The request body must contain the following parameter: 'requested_token_use' (on_behalf_of).",
        ));
    }
    let assertion = required(form, "assertion")?;
    let scope = required(form, "scope")?;
    let bad = |code: u32, message: &str| OAuthError::invalid_grant(code, message);
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| bad(50013, "Assertion is not a JWT."))?;
    let key = {
        let keys = shared.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.published
            .iter()
            .find(|k| Some(&k.kid) == header.kid.as_ref())
            .map(|k| k.decoding.clone())
    }
    .ok_or_else(|| bad(50013, "Assertion failed signature validation: unknown key."))?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Value>(assertion, &key, &validation)
        .map_err(|_| bad(50013, "Assertion failed signature validation."))?
        .claims;
    if claims.get("exp").and_then(Value::as_u64).unwrap_or(0) <= shared.now_unix() {
        return Err(bad(500133, "Assertion is not within its valid time range."));
    }
    let audience = claims
        .get("aud")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let names = [
        app.config.client_id.clone(),
        format!("api://{}", app.config.client_id),
    ];
    let for_this_app = names
        .iter()
        .chain(app.config.identifier_uris.iter())
        .any(|n| n.eq_ignore_ascii_case(audience));
    if !for_this_app {
        return Err(bad(
            50013,
            "Assertion audience does not match the client app presenting the assertion.",
        ));
    }
    if claims.get("scp").is_none() {
        return Err(bad(
            50013,
            "The assertion is an app-only token; on-behalf-of needs a user's delegated token.",
        ));
    }
    let tid = claims
        .get("tid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let username = claims
        .get("preferred_username")
        .or_else(|| claims.get("upn"))
        .and_then(Value::as_str);
    let user = shared
        .registry
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .user(tid, username)
        .filter(|u| claims.get("oid").and_then(Value::as_str) == Some(u.oid.as_str()))
        .ok_or_else(|| bad(50034, "The user account does not exist in the directory."))?;
    // At another tenant, the user must be a guest there: the token is for the guest object.
    let user = user.in_tenant(request_tid).ok_or_else(|| {
        bad(
            50020,
            &format!(
                "User account '{}' from identity provider '{}/{}/' does not exist in tenant '{request_tid}' and cannot access the application '{}' in that tenant.",
                user.username, shared.base_url, user.tid, app.config.client_id
            ),
        )
    })?;
    let acrs: Vec<String> = claims
        .get("acrs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let wanted = requested_acrs(field(form, "claims")).map_err(|()| {
        OAuthError::invalid_request(90014, "The claims parameter is not valid JSON.")
    })?;
    if wanted.iter().any(|v| !acrs.contains(v)) {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "interaction_required",
            50076,
            "The downstream API requires a step-up the user's token does not carry.",
        )
        .with_claims(field(form, "claims").unwrap_or_default()));
    }
    let family = uuid::Uuid::new_v4().simple().to_string();
    issue_user_tokens(
        shared,
        app,
        acr,
        Issue {
            user: &user,
            scope,
            nonce: None,
            mfa: !acrs.is_empty(),
            acrs: &acrs,
            policy: None,
            family: &family,
            client_info: field(form, "client_info") == Some("1"),
        },
    )
}

/// What a user grant issues tokens for.
struct Issue<'a> {
    user: &'a User,
    scope: &'a str,
    nonce: Option<&'a str>,
    acrs: &'a [String],
    mfa: bool,
    /// A B2C user flow: B2C's claims (`tfp`, `acr`, v1.0 with the tenant issuer).
    policy: Option<&'a str>,
    family: &'a str,
    client_info: bool,
}

/// The access token (for the one resource the scopes name), the refresh token when
/// `offline_access` was asked for, the ID token when `openid` was.
fn issue_user_tokens(
    shared: &Shared,
    client: &App,
    acr: &str,
    issue: Issue<'_>,
) -> Result<Value, OAuthError> {
    let requested: Vec<&str> = issue.scope.split(' ').filter(|s| !s.is_empty()).collect();
    let oidc: Vec<&str> = requested
        .iter()
        .copied()
        .filter(|s| OIDC_SCOPES.contains(&s.to_ascii_lowercase().as_str()))
        .collect();
    let resource_scopes: Vec<&str> = requested
        .iter()
        .copied()
        .filter(|s| !oidc.contains(s))
        .collect();
    let invalid_scope = |code: u32, message: String| {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", code, message)
    };
    let mut resource_name: Option<&str> = None;
    let mut permissions: Vec<&str> = Vec::new();
    for scope in &resource_scopes {
        let (resource, permission) = scope
            .rsplit_once('/')
            .filter(|(r, p)| !r.is_empty() && !p.is_empty())
            .ok_or_else(|| invalid_scope(70011, format!("The scope '{scope}' is not valid.")))?;
        match resource_name {
            Some(r) if !r.eq_ignore_ascii_case(resource) => {
                return Err(invalid_scope(
                    28000,
                    "Provided value for the input parameter scope is not valid because it contains more than one resource.".into(),
                ));
            }
            _ => resource_name = Some(resource),
        }
        permissions.push(permission);
    }
    let now = shared.now_unix();
    let lifetime = shared
        .registry
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .token_lifetime_secs;
    let base = &shared.base_url;
    let user = issue.user;
    let tid = &user.tid;
    let (audience, version, granted) = match resource_name {
        None => (
            GRAPH.to_owned(),
            1,
            oidc.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
        ),
        Some(name) => {
            let resource = shared
                .registry
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .resource(name)
                .ok_or_else(|| {
                    invalid_scope(
                        500011,
                        format!("The resource principal named {name} was not found in the tenant named {tid}."),
                    )
                })?;
            let Resource::App(api) = &resource else {
                return Err(invalid_scope(
                    65001,
                    format!(
                        "The testkit grants delegated permissions on registered apps only, not {name}."
                    ),
                ));
            };
            let mut granted: Vec<String> = Vec::new();
            for permission in &permissions {
                if *permission == ".default" {
                    granted.extend(api.config.scopes.iter().cloned());
                } else if let Some(exposed) = api
                    .config
                    .scopes
                    .iter()
                    .find(|s| s.eq_ignore_ascii_case(permission))
                {
                    granted.push(exposed.clone());
                } else {
                    return Err(invalid_scope(
                        65005,
                        format!(
                            "The application asked for scope '{permission}' that does not exist on the resource {name}."
                        ),
                    ));
                }
            }
            granted.sort();
            granted.dedup();
            let (audience, version) = crate::entra::audience(name, &resource);
            (audience, version, granted)
        }
    };
    let mut amr = vec!["pwd"];
    if issue.mfa {
        amr.push("mfa");
    }
    let mut claims = json!({
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "oid": user.oid,
        "sub": derived_guid(&["sub", &user.oid, &audience]),
        "tid": tid,
        "name": user.name,
        "scp": granted.join(" "),
        "amr": amr,
        "uti": uuid::Uuid::new_v4().simple().to_string(),
    });
    if !issue.acrs.is_empty() {
        claims["acrs"] = json!(issue.acrs);
    }
    if let Some((_, home_tid)) = &user.home {
        // A guest: the identity provider that authenticated the user is its home tenant.
        claims["idp"] = json!(format!("{base}/{home_tid}/"));
    }
    if let Some(policy) = issue.policy {
        // B2C: one issuer per tenant, `sub` = the user's object id, the user flow in
        // `tfp` and `acr`, `ver` 1.0.
        claims["iss"] = json!(format!("{base}/{tid}/v2.0/"));
        claims["sub"] = json!(user.oid);
        claims["azp"] = json!(client.config.client_id);
        claims["tfp"] = json!(policy);
        claims["acr"] = json!(policy);
        claims["emails"] = json!([user.username]);
        claims["ver"] = json!("1.0");
    } else if version == 2 {
        claims["iss"] = json!(format!("{base}/{tid}/v2.0"));
        claims["azp"] = json!(client.config.client_id);
        claims["azpacr"] = json!(acr);
        claims["preferred_username"] = json!(user.username);
        claims["ver"] = json!("2.0");
    } else {
        claims["iss"] = json!(format!("{base}/{tid}/"));
        claims["appid"] = json!(client.config.client_id);
        claims["appidacr"] = json!(acr);
        claims["upn"] = json!(user.username);
        claims["unique_name"] = json!(user.username);
        claims["ver"] = json!("1.0");
    }
    let access_token = sign(shared, &claims)?;
    let mut body = json!({
        "token_type": "Bearer",
        "scope": if resource_name.is_some() {
            granted
                .iter()
                .map(|p| format!("{}/{p}", resource_name.unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            granted.join(" ")
        },
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
    });
    let has = |name: &str| oidc.iter().any(|s| s.eq_ignore_ascii_case(name));
    if has("offline_access") {
        let refresh_token = random_token("1.A");
        shared
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .grants
            .insert(
                refresh_token.clone(),
                Grant {
                    family: issue.family.to_owned(),
                    client_id: client.config.client_id.clone(),
                    user: user.clone(),
                    acrs: issue.acrs.to_vec(),
                    mfa: issue.mfa,
                    policy: issue.policy.map(str::to_owned),
                    used: false,
                },
            );
        body["refresh_token"] = json!(refresh_token);
    }
    if has("openid") {
        let mut id_claims = json!({
            "iss": format!("{base}/{tid}/v2.0"),
            "aud": client.config.client_id,
            "iat": now,
            "nbf": now,
            "exp": now + ID_TOKEN_LIFETIME_SECS,
            "sub": derived_guid(&["sub", &user.oid, &client.config.client_id]),
            "oid": user.oid,
            "tid": tid,
            "name": user.name,
            "preferred_username": user.username,
            "ver": "2.0",
        });
        if let Some(nonce) = issue.nonce {
            id_claims["nonce"] = json!(nonce);
        }
        if let Some(policy) = issue.policy {
            id_claims["iss"] = json!(format!("{base}/{tid}/v2.0/"));
            id_claims["sub"] = json!(user.oid);
            id_claims["tfp"] = json!(policy);
            id_claims["acr"] = json!(policy);
            id_claims["emails"] = json!([user.username]);
            id_claims["ver"] = json!("1.0");
            if let Some(map) = id_claims.as_object_mut() {
                map.remove("preferred_username");
            }
        }
        body["id_token"] = json!(sign(shared, &id_claims)?);
    }
    if issue.client_info {
        // B2C's uid names the user flow too: home account id `{oid}-{policy}.{tid}`.
        // A guest's home account is its home object in its home tenant.
        let (home_oid, home_tid) = user
            .home
            .clone()
            .unwrap_or_else(|| (user.oid.clone(), tid.clone()));
        let uid = match issue.policy {
            Some(policy) => format!("{home_oid}-{policy}"),
            None => home_oid,
        };
        body["client_info"] =
            json!(URL_SAFE_NO_PAD.encode(json!({"uid": uid, "utid": home_tid}).to_string()));
    }
    Ok(body)
}

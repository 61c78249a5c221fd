//! Managed identity: the Azure Instance Metadata Service (IMDS) token endpoint and the App
//! Service identity endpoint, for system- and user-assigned identities (WIRE.md section 6).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::Shared;
use crate::config::ManagedIdentityConfig;
use crate::entra::{AppToken, app_token_claims, audience, sign};
use crate::errors::json_response;
use crate::registry::{Registry, derived_guid};

/// The IMDS token path.
pub(crate) const IMDS_PATH: &str = "/metadata/identity/oauth2/token";
/// The App Service identity endpoint's path (`IDENTITY_ENDPOINT`).
pub(crate) const APP_SERVICE_PATH: &str = "/msi/token";
/// The App Service API version (WIRE.md section 6).
const APP_SERVICE_API_VERSION: &str = "2019-08-01";

/// A managed identity as the testkit serves it, with every id resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManagedIdentityInfo {
    /// The user-assigned identity's name; `None` for the system-assigned identity.
    pub name: Option<String>,
    /// The tenant id.
    pub tenant_id: String,
    /// The client (application) id: `client_id` selects by it; tokens carry it as `appid`.
    pub client_id: String,
    /// The object (principal) id: `object_id` / `principal_id` select by it; the tokens' `oid`.
    pub object_id: String,
    /// The ARM resource id: `msi_res_id` / `mi_res_id` select by it.
    pub resource_id: String,
}

impl ManagedIdentityInfo {
    pub(crate) fn resolve(config: &ManagedIdentityConfig, registry: &Registry) -> Self {
        let tenant_id = registry.tenant_id(&config.tenant);
        let label = config.name.as_deref().unwrap_or("system-assigned");
        let derived = |what: &str| derived_guid(&["managed-identity", what, &tenant_id, label]);
        let resource_id = config.resource_id.clone().unwrap_or_else(|| {
            let subscription = derived_guid(&["subscription", &tenant_id]);
            match &config.name {
                Some(name) => format!(
                    "/subscriptions/{subscription}/resourcegroups/testkit/providers/\
                     Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
                ),
                None => format!(
                    "/subscriptions/{subscription}/resourcegroups/testkit/providers/\
                     Microsoft.Compute/virtualMachines/testkit-host"
                ),
            }
        });
        Self {
            name: config.name.clone(),
            client_id: config
                .client_id
                .clone()
                .unwrap_or_else(|| derived("client")),
            object_id: config
                .object_id
                .clone()
                .unwrap_or_else(|| derived("object")),
            resource_id,
            tenant_id,
        }
    }
}

/// A query parameter that selects an identity, and how.
type SelectorParam = (&'static str, fn(String) -> Selector);

/// Which identity the query asks for.
enum Selector {
    System,
    ClientId(String),
    ObjectId(String),
    ResourceId(String),
}

/// The query as pairs.
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// The selector from the query: at most one of the given names (client id, object id, resource
/// id), else `None` (ambiguous).
fn selector(pairs: &[(String, String)], names: &[SelectorParam]) -> Option<Selector> {
    let mut found = names
        .iter()
        .filter_map(|(name, make)| param(pairs, name).map(|v| make(v.to_owned())));
    let first = found.next();
    if found.next().is_some() {
        return None;
    }
    Some(first.unwrap_or(Selector::System))
}

fn find(shared: &Shared, selector: &Selector) -> Option<ManagedIdentityInfo> {
    let registry = shared.registry.read().unwrap_or_else(|p| p.into_inner());
    registry
        .identities
        .iter()
        .find(|identity| match selector {
            Selector::System => identity.name.is_none(),
            Selector::ClientId(id) => identity.client_id.eq_ignore_ascii_case(id),
            Selector::ObjectId(id) => identity.object_id.eq_ignore_ascii_case(id),
            Selector::ResourceId(id) => identity.resource_id.eq_ignore_ascii_case(id),
        })
        .cloned()
}

/// A token for `identity` and `resource`, with its expiry (Unix seconds) and lifetime; `Err`
/// holds an AADSTS message when the resource is unknown.
fn issue(
    shared: &Shared,
    identity: &ManagedIdentityInfo,
    resource: &str,
) -> Result<(String, u64, u64, u64), String> {
    let (lookup, lifetime) = {
        let registry = shared.registry.read().unwrap_or_else(|p| p.into_inner());
        (registry.resource(resource), registry.identity_lifetime_secs)
    };
    let resource_entry = lookup.ok_or_else(|| {
        format!(
            "AADSTS500011: The resource principal named {resource} was not found in the tenant \
             named {}.",
            identity.tenant_id
        )
    })?;
    let (aud, version) = audience(resource, &resource_entry);
    let now = shared.now_unix();
    let mut claims = app_token_claims(
        shared,
        AppToken {
            audience: &aud,
            version,
            tid: &identity.tenant_id,
            client_id: &identity.client_id,
            object_id: &identity.object_id,
            acr: "2",
            now,
            lifetime,
        },
    );
    claims["xms_mirid"] = json!(identity.resource_id);
    let token = sign(shared, &claims).map_err(|e| e.message)?;
    Ok((token, now, now + lifetime, lifetime))
}

fn imds_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        &json!({"error": error, "error_description": description}),
        &uuid::Uuid::new_v4().to_string(),
    )
}

/// `GET /metadata/identity/oauth2/token`: IMDS. Requires `Metadata: true`, `api-version` and
/// `resource`; selects by `client_id`, `object_id` or `msi_res_id`.
pub(crate) async fn imds(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required metadata header not specified",
        );
    }
    let pairs = query_pairs(query.as_deref());
    if param(&pairs, "api-version").is_none() {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'api-version' is missing",
        );
    }
    let Some(resource) = param(&pairs, "resource") else {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'resource' is missing",
        );
    };
    let Some(selector) = selector(
        &pairs,
        &[
            ("client_id", Selector::ClientId),
            ("object_id", Selector::ObjectId),
            ("msi_res_id", Selector::ResourceId),
        ],
    ) else {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Multiple identity selectors were specified",
        );
    };
    let Some(identity) = find(&shared, &selector) else {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Identity not found",
        );
    };
    match issue(&shared, &identity, resource) {
        Ok((token, now, expires_on, lifetime)) => json_response(
            StatusCode::OK,
            &json!({
                "access_token": token,
                "refresh_token": "",
                "expires_in": lifetime.to_string(),
                "expires_on": expires_on.to_string(),
                "ext_expires_in": lifetime.to_string(),
                "not_before": now.to_string(),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": identity.client_id,
            }),
            &uuid::Uuid::new_v4().to_string(),
        ),
        Err(message) => imds_error(StatusCode::BAD_REQUEST, "invalid_resource", &message),
    }
}

fn app_service_error(status: StatusCode, message: &str) -> Response {
    let body: Value = json!({
        "statusCode": status.as_u16(),
        "message": message,
        "correlationId": uuid::Uuid::new_v4().to_string(),
    });
    json_response(status, &body, &uuid::Uuid::new_v4().to_string())
}

/// `GET /msi/token`: the App Service identity endpoint. Requires `X-IDENTITY-HEADER` with the
/// host's secret and `api-version=2019-08-01`; selects by `client_id`, `principal_id` (alias
/// `object_id`) or `mi_res_id`.
pub(crate) async fn app_service(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let presented = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok());
    if presented != Some(shared.identity_header.as_str()) {
        return app_service_error(
            StatusCode::UNAUTHORIZED,
            "The X-IDENTITY-HEADER header is missing or does not match.",
        );
    }
    let pairs = query_pairs(query.as_deref());
    if param(&pairs, "api-version") != Some(APP_SERVICE_API_VERSION) {
        return app_service_error(
            StatusCode::BAD_REQUEST,
            "The api-version query parameter must be 2019-08-01.",
        );
    }
    let Some(resource) = param(&pairs, "resource") else {
        return app_service_error(
            StatusCode::BAD_REQUEST,
            "The resource parameter is missing.",
        );
    };
    let Some(selector) = selector(
        &pairs,
        &[
            ("client_id", Selector::ClientId),
            ("principal_id", Selector::ObjectId),
            ("object_id", Selector::ObjectId),
            ("mi_res_id", Selector::ResourceId),
        ],
    ) else {
        return app_service_error(
            StatusCode::BAD_REQUEST,
            "Only one of client_id, principal_id and mi_res_id may be given.",
        );
    };
    let Some(identity) = find(&shared, &selector) else {
        return app_service_error(
            StatusCode::BAD_REQUEST,
            "Unable to load the proper Managed Identity.",
        );
    };
    match issue(&shared, &identity, resource) {
        Ok((token, _, expires_on, _)) => json_response(
            StatusCode::OK,
            &json!({
                "access_token": token,
                "expires_on": expires_on.to_string(),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": identity.client_id,
            }),
            &uuid::Uuid::new_v4().to_string(),
        ),
        Err(message) => app_service_error(StatusCode::BAD_REQUEST, &message),
    }
}

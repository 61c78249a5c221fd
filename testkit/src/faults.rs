//! Fault injection, request counters and recorded requests, applied in front of every route.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Shared;
use crate::errors::OAuthError;

/// The endpoints the testkit counts and can fail on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `/{tenant}/oauth2/v2.0/token` and the v1 `/{tenant}/oauth2/token`.
    Token,
    /// OpenID discovery documents.
    Discovery,
    /// The JWKS (`/discovery/v2.0/keys`, `/discovery/keys`).
    Jwks,
    /// Key Vault `GET /keys/...`.
    VaultKeys,
    /// Key Vault `POST /keys/.../sign`.
    VaultSign,
    /// Key Vault `GET /certificates/...`.
    VaultCertificates,
    /// Key Vault `GET /secrets/...`.
    VaultSecrets,
    /// `/{tenant}/oauth2/v2.0/authorize`.
    Authorize,
    /// The IMDS managed-identity endpoint.
    Imds,
    /// The App Service managed-identity endpoint.
    AppService,
    /// Anything else.
    Other,
}

impl Endpoint {
    /// A Key Vault route.
    pub(crate) fn is_vault(self) -> bool {
        matches!(
            self,
            Endpoint::VaultKeys
                | Endpoint::VaultSign
                | Endpoint::VaultCertificates
                | Endpoint::VaultSecrets
        )
    }

    pub(crate) fn of_path(path: &str) -> Self {
        if path == crate::managed_identity::IMDS_PATH {
            Endpoint::Imds
        } else if path == crate::managed_identity::APP_SERVICE_PATH {
            Endpoint::AppService
        } else if path.starts_with("/keys/") {
            if path.ends_with("/sign") {
                Endpoint::VaultSign
            } else {
                Endpoint::VaultKeys
            }
        } else if path.starts_with("/certificates/") {
            Endpoint::VaultCertificates
        } else if path.starts_with("/secrets/") {
            Endpoint::VaultSecrets
        } else if path.ends_with("/oauth2/v2.0/authorize") {
            Endpoint::Authorize
        } else if path.ends_with("/oauth2/v2.0/token") || path.ends_with("/oauth2/token") {
            Endpoint::Token
        } else if path.ends_with("/.well-known/openid-configuration") {
            Endpoint::Discovery
        } else if path.ends_with("/discovery/v2.0/keys") || path.ends_with("/discovery/keys") {
            Endpoint::Jwks
        } else {
            Endpoint::Other
        }
    }
}

/// A misbehaviour for the next request to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status and Entra's error JSON (Key Vault's `{"error":{"code",…}}` on
    /// vault routes), with `Retry-After` (seconds) if given.
    Status {
        /// The HTTP status, such as 429, 500 or 503.
        status: u16,
        /// The `Retry-After` header value in seconds.
        retry_after: Option<u64>,
    },
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Answer 200 with a body that is not JSON.
    Garbage,
    /// Answer 200 announcing a longer body than is sent, then close the connection.
    Truncated,
    /// Send the status line and headers, then close the connection.
    CloseConnection,
    /// Answer 200 with this body and `Content-Type: application/json` (a document of the wrong
    /// issuer, an empty key set, an oversized body, ...).
    Body(Vec<u8>),
    /// Answer `302 Found` with this `Location`.
    Redirect(String),
    /// Answer 200, then send one byte of a JSON body per interval, for as long as the client
    /// listens.
    Drip(Duration),
}

impl Fault {
    /// `status` with no `Retry-After`.
    pub fn status(status: u16) -> Self {
        Fault::Status {
            status,
            retry_after: None,
        }
    }

    /// 429 Too Many Requests with `Retry-After: {seconds}`.
    pub fn throttled(seconds: u64) -> Self {
        Fault::Status {
            status: 429,
            retry_after: Some(seconds),
        }
    }
}

/// One request as the testkit received it, for wire assertions.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// Header names (lower-case) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body decoded as `application/x-www-form-urlencoded` pairs.
    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }

    /// The first value of form field `name`.
    pub fn form_value(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

/// How many requests of each endpoint are kept.
const RECORD_LIMIT: usize = 256;
/// Largest request body the testkit reads.
const BODY_LIMIT: usize = 1024 * 1024;

#[derive(Default)]
pub(crate) struct Faults {
    pending: HashMap<Endpoint, VecDeque<Fault>>,
    counts: HashMap<Endpoint, usize>,
    recorded: HashMap<Endpoint, VecDeque<RecordedRequest>>,
}

impl Faults {
    pub(crate) fn inject(&mut self, endpoint: Endpoint, fault: Fault, times: usize) {
        let queue = self.pending.entry(endpoint).or_default();
        queue.extend(std::iter::repeat_n(fault, times));
    }

    pub(crate) fn count(&self, endpoint: Endpoint) -> usize {
        self.counts.get(&endpoint).copied().unwrap_or(0)
    }

    pub(crate) fn recorded(&self, endpoint: Endpoint) -> Vec<RecordedRequest> {
        self.recorded
            .get(&endpoint)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }
}

/// Counts and records the request, then applies the next pending fault for its endpoint.
pub(crate) async fn middleware(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let endpoint = Endpoint::of_path(request.uri().path());
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let fault = {
        let mut faults = shared.faults.lock().unwrap_or_else(|p| p.into_inner());
        *faults.counts.entry(endpoint).or_default() += 1;
        let recorded = faults.recorded.entry(endpoint).or_default();
        if recorded.len() == RECORD_LIMIT {
            recorded.pop_front();
        }
        recorded.push_back(RecordedRequest {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        });
        faults
            .pending
            .get_mut(&endpoint)
            .and_then(VecDeque::pop_front)
    };
    let correlation_id = parts
        .headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let request = Request::from_parts(parts, Body::from(body));
    match fault {
        None => next.run(request).await,
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        Some(Fault::Status {
            status,
            retry_after,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = if endpoint.is_vault() {
                // Key Vault's own error shape.
                let code = match status {
                    StatusCode::TOO_MANY_REQUESTS => "Throttled",
                    StatusCode::UNAUTHORIZED => "Unauthorized",
                    StatusCode::FORBIDDEN => "Forbidden",
                    StatusCode::NOT_FOUND => "NotFound",
                    s if s.is_server_error() => "ServiceUnavailable",
                    _ => "BadParameter",
                };
                crate::errors::json_response(
                    status,
                    &serde_json::json!({"error": {"code": code, "message": "injected fault"}}),
                    &correlation_id,
                )
            } else {
                let (error, code) = if status == StatusCode::TOO_MANY_REQUESTS {
                    ("temporarily_unavailable", 50196)
                } else {
                    ("temporarily_unavailable", 90033)
                };
                OAuthError::new(
                    status,
                    error,
                    code,
                    "injected fault: the service is unavailable",
                )
                .render(&correlation_id, shared.now_unix())
            };
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
        Some(Fault::Garbage) => {
            let mut response = (
                StatusCode::OK,
                "<html><body>Service Unavailable</body></html>",
            )
                .into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Some(Fault::Body(body)) => {
            let mut response = Response::new(Body::from(body));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Some(Fault::Redirect(location)) => {
            let mut response = StatusCode::FOUND.into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
        }
        Some(Fault::Drip(interval)) => {
            let stream = futures_util::stream::unfold(0u64, move |sent| async move {
                tokio::time::sleep(interval).await;
                let byte: &'static [u8] = if sent == 0 { b"{" } else { b" " };
                Some((Ok::<_, std::io::Error>(byte), sent + 1))
            });
            let mut response = Response::new(Body::from_stream(stream));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Some(Fault::Truncated) => broken_body(Some(r#"{"token_type":"Bearer","expires_in":35"#)),
        Some(Fault::CloseConnection) => broken_body(None),
    }
}

/// A 200 whose body stream fails: hyper then closes the connection mid-response.
fn broken_body(prefix: Option<&'static str>) -> Response {
    let mut chunks: Vec<Result<&'static [u8], std::io::Error>> = Vec::new();
    if let Some(prefix) = prefix {
        chunks.push(Ok(prefix.as_bytes()));
    }
    chunks.push(Err(std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "injected fault",
    )));
    let mut response = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("4096"));
    response
}

//! The authority's OAuth error (RFC 6749 §5.2), typed, with Entra's diagnostics.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// The class of a token-endpoint error; branch on this rather than on AADSTS numbers, which
/// Microsoft documents as subject to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerErrorClass {
    /// The client credential was refused: wrong or expired secret, unknown or untrusted
    /// certificate, a bad or replayed assertion (`invalid_client`).
    InvalidClient,
    /// The app is unknown in the tenant or not allowed this grant (`unauthorized_client`).
    UnauthorizedClient,
    /// The scope or resource is invalid (`invalid_scope`, `invalid_resource`).
    InvalidScope,
    /// A code, refresh token or user assertion is invalid, expired or revoked (`invalid_grant`).
    InvalidGrant,
    /// The user must interact: sign in, MFA, consent (`interaction_required`, `login_required`,
    /// `consent_required`, or `invalid_grant` that needs it).
    InteractionRequired,
    /// The request was malformed (`invalid_request`, `unsupported_grant_type`).
    InvalidRequest,
    /// The user (or the authority for them) declined: consent refused, sign-in cancelled
    /// (`access_denied` on the redirect).
    AccessDenied,
    /// HTTP 429, or a 5xx with `Retry-After`: wait [`ServerError::retry_after`].
    Throttled,
    /// HTTP 5xx: the service failed; the same request may succeed later.
    ServiceUnavailable,
    /// Any other error code.
    Other,
}

impl ServerErrorClass {
    /// The stable snake_case name of this class.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidClient => "invalid_client",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidGrant => "invalid_grant",
            Self::InteractionRequired => "interaction_required",
            Self::InvalidRequest => "invalid_request",
            Self::AccessDenied => "access_denied",
            Self::Throttled => "throttled",
            Self::ServiceUnavailable => "service_unavailable",
            Self::Other => "server_rejected",
        }
    }
}

/// An error answer from the token endpoint.
///
/// Keeps what support needs (`error`, AADSTS codes, `trace_id`, `correlation_id`, timestamp)
/// and never the request: no secret, assertion or token can appear here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    status: u16,
    error: String,
    description: Option<String>,
    error_codes: Vec<u32>,
    suberror: Option<String>,
    trace_id: Option<String>,
    correlation_id: Option<String>,
    timestamp: Option<String>,
    claims: Option<String>,
    retry_after: Option<Duration>,
    /// Answered to a user grant (code, refresh, OBO): `invalid_grant` then means the user must
    /// sign in again.
    user_grant: bool,
}

#[derive(Deserialize)]
struct Body {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u32>,
    #[serde(default)]
    suberror: Option<String>,
    #[serde(default)]
    trace_id: Option<String>,
    #[serde(default)]
    correlation_id: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    claims: Option<String>,
}

#[derive(Deserialize)]
struct HostBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "correlationId")]
    correlation_id: Option<String>,
}

/// Longest `Retry-After` honoured (MSAL caps it the same way).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

impl ServerError {
    /// The error parser, for the fuzz targets.
    pub(crate) fn fuzz_from_response(data: &[u8]) -> Self {
        Self::from_response(400, data, Some(Duration::from_secs(u64::MAX / 2)))
    }

    /// Reads an error response: Entra's JSON when the body is one, else a synthetic error named
    /// after the status.
    pub(crate) fn from_response(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        let parsed: Option<Body> = serde_json::from_slice(body).ok();
        let retry_after = retry_after.map(|d| d.min(MAX_RETRY_AFTER));
        match parsed {
            // B2C sends only `error` and `error_description`, the diagnostics as lines of the
            // description (`Correlation ID: …`, `Timestamp: …`); Entra sends both.
            Some(b) => Self {
                status,
                error: b.error,
                trace_id: b
                    .trace_id
                    .or_else(|| description_line(b.error_description.as_deref(), "Trace ID")),
                correlation_id: b
                    .correlation_id
                    .or_else(|| description_line(b.error_description.as_deref(), "Correlation ID")),
                timestamp: b
                    .timestamp
                    .or_else(|| description_line(b.error_description.as_deref(), "Timestamp")),
                description: b.error_description,
                error_codes: b.error_codes,
                suberror: b.suberror,
                claims: b.claims,
                retry_after,
                user_grant: false,
            },
            None => {
                // Managed-identity hosts (App Service) answer `{"statusCode", "message",
                // "correlationId"}`: keep the message and the id.
                let host: Option<HostBody> = serde_json::from_slice(body).ok();
                let error = if status >= 500 {
                    "server_error".to_owned()
                } else {
                    format!("http_{status}")
                };
                let (description, correlation_id) = host
                    .map(|h| (h.message, h.correlation_id))
                    .unwrap_or_default();
                Self {
                    retry_after,
                    description,
                    correlation_id,
                    ..Self::bare(status, error)
                }
            }
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The OAuth `error` code, such as `invalid_client`.
    pub fn error(&self) -> &str {
        &self.error
    }

    /// `error_description`, as the authority wrote it.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// Entra's AADSTS numbers (`error_codes`).
    pub fn error_codes(&self) -> &[u32] {
        &self.error_codes
    }

    /// The first AADSTS number, if any.
    pub fn aadsts(&self) -> Option<u32> {
        self.error_codes.first().copied()
    }

    /// Azure AD B2C's error number, read from the description's `AADB2C{number}:` prefix (B2C
    /// sends no `error_codes`), on token-endpoint and redirect errors alike. For example 90080:
    /// the grant expired; 90118: the user chose "forgot password" on the sign-in page, so send
    /// them through your password-reset user flow
    /// ([`for_b2c_policy`](crate::ConfidentialClient::for_b2c_policy)); 90091: the user
    /// cancelled.
    pub fn aadb2c(&self) -> Option<u32> {
        let description = self.description.as_deref()?.trim_start();
        let digits = leading_number(description, "AADB2C", 9)?;
        if description.as_bytes().get("AADB2C".len() + digits.len()) != Some(&b':') {
            return None;
        }
        digits.parse().ok()
    }

    /// `suberror`, such as `consent_required` or `bad_token`.
    pub fn suberror(&self) -> Option<&str> {
        self.suberror.as_deref()
    }

    /// Entra's `trace_id`, for support requests.
    pub fn trace_id(&self) -> Option<&str> {
        self.trace_id.as_deref()
    }

    /// `correlation_id` (the `client-request-id` sent), for support requests.
    pub fn correlation_id(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }

    /// The `timestamp` Entra reported.
    pub fn timestamp(&self) -> Option<&str> {
        self.timestamp.as_deref()
    }

    /// A claims challenge to relay or replay (step-up, CAE).
    pub fn claims(&self) -> Option<&str> {
        self.claims.as_deref()
    }

    /// How long to wait before trying again (429 or 5xx with `Retry-After`, capped at 1 h).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The class of the error.
    pub fn class(&self) -> ServerErrorClass {
        if self.status == 429 || (self.status >= 500 && self.retry_after.is_some()) {
            return ServerErrorClass::Throttled;
        }
        if self.status >= 500 {
            return ServerErrorClass::ServiceUnavailable;
        }
        match self.error.as_str() {
            "invalid_client" => ServerErrorClass::InvalidClient,
            "unauthorized_client" => ServerErrorClass::UnauthorizedClient,
            "invalid_scope" | "invalid_resource" => ServerErrorClass::InvalidScope,
            "interaction_required" | "login_required" | "consent_required" => {
                ServerErrorClass::InteractionRequired
            }
            "access_denied" => ServerErrorClass::AccessDenied,
            "invalid_grant" => match self.suberror.as_deref() {
                Some("client_mismatch" | "protection_policy_required") => {
                    ServerErrorClass::InvalidGrant
                }
                _ if self.user_grant => ServerErrorClass::InteractionRequired,
                Some(
                    "consent_required" | "basic_action" | "additional_action" | "message_only",
                ) => ServerErrorClass::InteractionRequired,
                _ if self.claims.is_some() => ServerErrorClass::InteractionRequired,
                _ => ServerErrorClass::InvalidGrant,
            },
            "invalid_request" | "unsupported_grant_type" | "unsupported_response_type" => {
                ServerErrorClass::InvalidRequest
            }
            "temporarily_unavailable" | "server_error" => ServerErrorClass::ServiceUnavailable,
            _ => ServerErrorClass::Other,
        }
    }

    /// A throttled error made locally: an earlier `Retry-After` has not passed yet.
    pub(crate) fn still_throttled(remaining: Duration) -> Self {
        Self {
            description: Some(
                "an earlier Retry-After has not passed; the request was not sent".into(),
            ),
            retry_after: Some(remaining),
            ..Self::bare(429, "throttled".to_owned())
        }
    }

    /// An error with a status and an error code and nothing else.
    fn bare(status: u16, error: String) -> Self {
        Self {
            status,
            error,
            description: None,
            error_codes: Vec::new(),
            suberror: None,
            trace_id: None,
            correlation_id: None,
            timestamp: None,
            claims: None,
            retry_after: None,
            user_grant: false,
        }
    }

    /// Marks an answer to a user grant.
    pub(crate) fn on_user_grant(mut self) -> Self {
        self.user_grant = true;
        self
    }

    /// The redirect's `error` and `error_description` (the user or the authority ended the
    /// sign-in).
    pub(crate) fn from_redirect(error: &str, description: Option<&str>) -> Self {
        Self {
            description: description.map(str::to_owned),
            user_grant: true,
            ..Self::bare(400, error.to_owned())
        }
    }

    /// No way to get a token without the user: no refresh token for the account, or one that
    /// no longer works. `claims`, when given, are what the next sign-in must ask for.
    pub(crate) fn interaction_required(description: &str, claims: Option<String>) -> Self {
        Self {
            description: Some(description.to_owned()),
            claims,
            user_grant: true,
            ..Self::bare(400, "interaction_required".to_owned())
        }
    }
}

/// The 1 to `max` digits right after `prefix` at the start of `text` (`AADB2C90080`,
/// `AKV10032`); `None` when there are none or more.
pub(crate) fn leading_number<'a>(text: &'a str, prefix: &str, max: usize) -> Option<&'a str> {
    let rest = text.strip_prefix(prefix)?;
    let len = rest.bytes().take_while(u8::is_ascii_digit).count();
    (1..=max).contains(&len).then(|| &rest[..len])
}

/// The value of a `{name}: value` line of an error description, if one is there.
fn description_line(description: Option<&str>, name: &str) -> Option<String> {
    description?.lines().find_map(|line| {
        let value = line.trim().strip_prefix(name)?.strip_prefix(':')?.trim();
        (!value.is_empty() && value.len() <= 128).then(|| value.to_owned())
    })
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (HTTP {})", self.error, self.status)?;
        if let Some(code) = self.aadsts() {
            write!(f, " AADSTS{code}")?;
        }
        if let Some(d) = &self.description {
            // Entra appends trace/correlation lines after the first line; keep the sentence.
            write!(f, ": {}", d.lines().next().unwrap_or_default())?;
        }
        if let Some(t) = &self.trace_id {
            write!(f, " [trace_id {t}]")?;
        }
        if let Some(c) = &self.correlation_id {
            write!(f, " [correlation_id {c}]")?;
        }
        if let Some(r) = self.retry_after {
            write!(f, " [retry after {} s]", r.as_secs())?;
        }
        Ok(())
    }
}

impl std::error::Error for ServerError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entra_errors() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: t\r\nCorrelation ID: c\r\nTimestamp: 2025-01-01 00:00:00Z","error_codes":[7000215],"timestamp":"2025-01-01 00:00:00Z","trace_id":"t","correlation_id":"c"}"#;
        let e = ServerError::from_response(401, body, None);
        assert_eq!(e.class(), ServerErrorClass::InvalidClient);
        assert_eq!(e.aadsts(), Some(7000215));
        assert_eq!(e.trace_id(), Some("t"));
        let text = e.to_string();
        assert!(
            text.contains("AADSTS7000215") && !text.contains("Trace ID: t\r"),
            "{text}"
        );
    }

    #[test]
    fn parses_b2c_errors() {
        let body = br#"{"error":"invalid_grant","error_description":"AADB2C90080: The provided grant has expired. Please re-authenticate and try again.\r\nCorrelation ID: 5b1c0f3e-7d2a-4c8b-9e6f-0a1b2c3d4e5f\r\nTimestamp: 2026-11-02 10:11:12Z\r\n"}"#;
        let e = ServerError::from_response(400, body, None).on_user_grant();
        assert_eq!(e.aadb2c(), Some(90080));
        assert_eq!(e.aadsts(), None);
        assert_eq!(e.class(), ServerErrorClass::InteractionRequired);
        assert_eq!(
            e.correlation_id(),
            Some("5b1c0f3e-7d2a-4c8b-9e6f-0a1b2c3d4e5f")
        );
        assert_eq!(e.timestamp(), Some("2026-11-02 10:11:12Z"));
        assert_eq!(e.trace_id(), None);
        assert!(
            e.to_string()
                .contains("AADB2C90080: The provided grant has expired")
        );

        let cancelled = ServerError::from_redirect(
            "access_denied",
            Some(
                "AADB2C90091: The user has cancelled entering self-asserted information.\r\nCorrelation ID: c\r\nTimestamp: t\r\n",
            ),
        );
        assert_eq!(cancelled.aadb2c(), Some(90091));
        assert_eq!(cancelled.class(), ServerErrorClass::AccessDenied);
        for description in [
            "AADB2C: no number",
            "AADB2C12x: bad",
            "AADB2C1234567890: long",
            "see AADB2C90080: later",
        ] {
            let e = ServerError::from_redirect("access_denied", Some(description));
            assert_eq!(e.aadb2c(), None, "{description}");
        }
    }

    #[test]
    fn classes_from_status_and_codes() {
        assert_eq!(
            ServerError::from_response(503, b"<html>", None).class(),
            ServerErrorClass::ServiceUnavailable
        );
        let throttled = ServerError::from_response(503, b"", Some(Duration::from_secs(7200)));
        assert_eq!(throttled.class(), ServerErrorClass::Throttled);
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(3600)));
        assert_eq!(
            ServerError::from_response(429, b"{}", None).class(),
            ServerErrorClass::Throttled
        );
        let consent = br#"{"error":"invalid_grant","suberror":"consent_required"}"#;
        assert_eq!(
            ServerError::from_response(400, consent, None).class(),
            ServerErrorClass::InteractionRequired
        );
        let mismatch = br#"{"error":"invalid_grant","suberror":"client_mismatch","claims":"{}"}"#;
        assert_eq!(
            ServerError::from_response(400, mismatch, None).class(),
            ServerErrorClass::InvalidGrant
        );
        let scope = br#"{"error":"invalid_resource"}"#;
        assert_eq!(
            ServerError::from_response(400, scope, None).class(),
            ServerErrorClass::InvalidScope
        );
    }
}

//! Entra ID's OAuth error responses: the JSON shape, AADSTS codes and status codes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An OAuth error as Entra ID sends it (WIRE.md section 3.2).
#[derive(Debug, Clone)]
pub(crate) struct OAuthError {
    pub(crate) status: StatusCode,
    pub(crate) error: &'static str,
    pub(crate) code: u32,
    pub(crate) message: String,
    pub(crate) suberror: Option<&'static str>,
    /// A claims challenge to relay (JSON).
    pub(crate) claims: Option<String>,
}

impl OAuthError {
    pub(crate) fn new(
        status: StatusCode,
        error: &'static str,
        code: u32,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error,
            code,
            message: message.into(),
            suberror: None,
            claims: None,
        }
    }

    /// `invalid_grant`, 400.
    pub(crate) fn invalid_grant(code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", code, message)
    }

    /// Adds a `suberror`.
    pub(crate) fn suberror(mut self, suberror: &'static str) -> Self {
        self.suberror = Some(suberror);
        self
    }

    /// Adds the `claims` the client must ask for.
    pub(crate) fn with_claims(mut self, claims: impl Into<String>) -> Self {
        self.claims = Some(claims.into());
        self
    }

    pub(crate) fn invalid_request(code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", code, message)
    }

    pub(crate) fn invalid_client(code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", code, message)
    }

    /// Renders the error, echoing the caller's `client-request-id` as the correlation id.
    pub(crate) fn render(&self, correlation_id: &str, now_unix: u64) -> Response {
        let trace_id = uuid::Uuid::new_v4().to_string();
        let timestamp = format_timestamp(now_unix);
        let description = format!(
            "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
            self.code, self.message
        );
        let mut body = serde_json::json!({
            "error": self.error,
            "error_description": description,
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        if let Some(suberror) = self.suberror {
            body["suberror"] = serde_json::json!(suberror);
        }
        if let Some(claims) = &self.claims {
            body["claims"] = serde_json::json!(claims);
        }
        json_response(self.status, &body, correlation_id)
    }
}

impl OAuthError {
    /// Renders the error as Azure AD B2C does: only `error` and `error_description`, the
    /// description starting with an `AADB2C` number and carrying the correlation id and
    /// timestamp as lines. An error without a known B2C number keeps its AADSTS one.
    pub(crate) fn render_b2c(&self, correlation_id: &str, now_unix: u64) -> Response {
        let code = match b2c_code(self.code) {
            Some(b2c) => format!("AADB2C{b2c}"),
            None => format!("AADSTS{}", self.code),
        };
        let description = format!(
            "{code}: {}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {}\r\n",
            self.message,
            format_timestamp(now_unix)
        );
        let mut body = serde_json::json!({
            "error": self.error,
            "error_description": description,
        });
        if let Some(claims) = &self.claims {
            body["claims"] = serde_json::json!(claims);
        }
        json_response(self.status, &body, correlation_id)
    }
}

/// B2C's number for an Entra condition, where B2C's error reference names one.
fn b2c_code(aadsts: u32) -> Option<u32> {
    Some(match aadsts {
        // The code or refresh token expired or is unknown.
        70008 => 90080,
        // client_secret does not match.
        7000215 => 90081,
        // The client id is not registered in the tenant.
        700016 => 90018,
        // The scope is not supported.
        70011 => 90012,
        // The code_verifier is invalid.
        501481 => 90183,
        _ => return None,
    })
}

/// A JSON response with Entra's caching headers and the echoed `client-request-id`.
pub(crate) fn json_response(
    status: StatusCode,
    body: &serde_json::Value,
    correlation_id: &str,
) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(correlation_id) {
        headers.insert("client-request-id", value);
    }
    response
}

/// `YYYY-MM-DD HH:MM:SSZ`, the form Entra puts in `timestamp`.
pub(crate) fn format_timestamp(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), valid for the Unix era.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::format_timestamp;

    #[test]
    fn timestamps() {
        assert_eq!(format_timestamp(0), "1970-01-01 00:00:00Z");
        assert_eq!(format_timestamp(1_735_689_600), "2025-01-01 00:00:00Z");
        assert_eq!(format_timestamp(951_782_400 + 3661), "2000-02-29 01:01:01Z");
    }
}

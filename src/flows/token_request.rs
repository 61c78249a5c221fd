//! One POST to the token endpoint, as WIRE.md section 3 describes it: headers, form, the one
//! retry on a 5xx or a failed connection, `Retry-After`, and the typed response.

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::Inner;
use crate::cache::{CacheKey, CachedToken};
use crate::credential::ClientAuth;
use crate::error::Error;
use crate::secret::AccessToken;
use crate::server_error::ServerError;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Sends a token request with `fields` plus the client's authentication, and parses the token.
pub(crate) async fn execute(
    inner: &Inner,
    throttle_key: &CacheKey,
    fields: &[(&str, &str)],
    requested_scopes: &[&str],
) -> Result<CachedToken, Error> {
    execute_with(inner, throttle_key, fields, false, |body, now| {
        parse_success(body, now, requested_scopes)
    })
    .await
}

/// [`execute`] with the success body parsed by `parse`; `user_grant` types `invalid_grant`
/// as interaction required (WIRE.md section 3.2).
pub(crate) async fn execute_with<T>(
    inner: &Inner,
    throttle_key: &CacheKey,
    fields: &[(&str, &str)],
    user_grant: bool,
    parse: impl Fn(&[u8], SystemTime) -> Result<T, Error>,
) -> Result<T, Error> {
    check_throttle(inner, throttle_key)?;
    let endpoint = inner.authority.token_endpoint().as_str();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let auth = inner
            .credential
            .client_auth(endpoint, &inner.client_id)
            .await?;
        let request = build_request(inner, endpoint, fields, &auth)?;
        let result = crate::http::send_traced(inner.http.as_ref(), "token", request).await;
        let now = inner.clock.now();
        let response = match result {
            Ok(response) => response,
            Err(e) if e.is_retryable() && attempt == 1 => {
                tracing::debug!(error = %e, "token request failed to complete; retrying once");
                tokio::time::sleep(inner.retry_delay).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let status = response.status().as_u16();
        if status == 200 {
            return parse(response.body(), now);
        }
        let retry_after = retry_after(response.headers(), now);
        let mut error = ServerError::from_response(status, response.body(), retry_after);
        if user_grant {
            error = error.on_user_grant();
        }
        if let Some(wait) = error.retry_after() {
            inner
                .throttled
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(throttle_key.clone(), now + wait);
            tracing::warn!(
                status,
                retry_after_secs = wait.as_secs(),
                "token request throttled"
            );
            return Err(error.into());
        }
        if status >= 500 && attempt == 1 {
            tracing::debug!(status, "token endpoint failed; retrying once");
            tokio::time::sleep(inner.retry_delay).await;
            continue;
        }
        tracing::debug!(
            status,
            error = error.error(),
            aadsts = ?error.aadsts(),
            trace_id = ?error.trace_id(),
            correlation_id = ?error.correlation_id(),
            "token request rejected"
        );
        return Err(error.into());
    }
}

/// Refuses to send while an earlier `Retry-After` for the same request runs.
fn check_throttle(inner: &Inner, key: &CacheKey) -> Result<(), Error> {
    let now = inner.clock.now();
    let mut throttled = inner.throttled.lock().unwrap_or_else(|p| p.into_inner());
    match throttled.get(key).copied() {
        Some(until) if until > now => {
            let remaining = until.duration_since(now).unwrap_or_default();
            Err(ServerError::still_throttled(remaining).into())
        }
        Some(_) => {
            throttled.remove(key);
            Ok(())
        }
        None => Ok(()),
    }
}

fn build_request(
    inner: &Inner,
    endpoint: &str,
    fields: &[(&str, &str)],
    auth: &ClientAuth,
) -> Result<http::Request<Vec<u8>>, Error> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("client_id", &inner.client_id);
    for (name, value) in fields {
        form.append_pair(name, value);
    }
    match auth {
        ClientAuth::Secret(secret) => {
            form.append_pair("client_secret", secret.expose_secret());
        }
        ClientAuth::Assertion(jwt) => {
            form.append_pair("client_assertion_type", JWT_BEARER);
            form.append_pair("client_assertion", jwt);
        }
    }
    let body = zeroize::Zeroizing::new(form.finish());
    http::Request::post(endpoint)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(http::header::ACCEPT, "application/json")
        .header("client-request-id", uuid::Uuid::new_v4().to_string())
        .header("return-client-request-id", "true")
        .header("x-client-sku", "confidant.rust")
        .header("x-client-ver", env!("CARGO_PKG_VERSION"))
        .header("x-client-os", std::env::consts::OS)
        .header("x-ms-lib-capability", "retry-after, h429")
        .body(body.as_bytes().to_vec())
        .map_err(|e| Error::Configuration(format!("cannot build the token request: {e}")))
}

/// `Retry-After` as seconds or an HTTP date.
pub(crate) fn retry_after(headers: &http::HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or_default())
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(u64),
    Text(String),
}

impl Seconds {
    fn get(&self) -> Option<Duration> {
        match self {
            Seconds::Number(n) => Some(Duration::from_secs(*n)),
            Seconds::Text(t) => t.trim().parse().ok().map(Duration::from_secs),
        }
    }
}

#[derive(Deserialize)]
struct Success {
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<Seconds>,
    #[serde(default)]
    ext_expires_in: Option<Seconds>,
    #[serde(default)]
    refresh_in: Option<Seconds>,
    #[serde(default)]
    scope: Option<String>,
}

/// Ten years: a longer `expires_in` is a broken response, not a token to keep.
const MAX_EXPIRES_IN: Duration = Duration::from_secs(10 * 365 * 86_400);

pub(crate) fn parse_success(
    body: &[u8],
    now: SystemTime,
    requested_scopes: &[&str],
) -> Result<CachedToken, Error> {
    let invalid = |what: &str| Error::InvalidResponse(format!("token response {what}"));
    let success: Success =
        serde_json::from_slice(body).map_err(|_| invalid("is not a JSON token response"))?;
    let access_token = success
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("has no access_token"))?;
    let token_type = success.token_type.unwrap_or_else(|| "Bearer".to_owned());
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(invalid("has a token_type other than Bearer"));
    }
    let expires_in = success
        .expires_in
        .as_ref()
        .and_then(Seconds::get)
        .filter(|d| *d <= MAX_EXPIRES_IN)
        .ok_or_else(|| invalid("has no valid expires_in"))?;
    let scopes = match success.scope {
        Some(scope) if !scope.trim().is_empty() => {
            scope.split_whitespace().map(str::to_owned).collect()
        }
        _ => requested_scopes.iter().map(|s| (*s).to_owned()).collect(),
    };
    Ok(CachedToken::new(
        AccessToken::new(access_token),
        "Bearer".to_owned(),
        now,
        expires_in,
        success
            .ext_expires_in
            .as_ref()
            .and_then(Seconds::get)
            .filter(|d| *d <= MAX_EXPIRES_IN),
        success
            .refresh_in
            .as_ref()
            .and_then(Seconds::get)
            .filter(|d| *d <= expires_in),
        scopes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_and_strings() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let t = parse_success(
            br#"{"token_type":"Bearer","expires_in":"3599","access_token":"x"}"#,
            now,
            &["a"],
        )
        .expect("v1 strings");
        assert_eq!(t.expires_on(), now + Duration::from_secs(3599));
        assert_eq!(t.scopes(), ["a"]);
        let t = parse_success(br#"{"token_type":"bearer","expires_in":86399,"refresh_in":43199,"access_token":"x","scope":"b c"}"#, now, &["a"]).expect("numbers");
        assert_eq!(t.refresh_on(), Some(now + Duration::from_secs(43199)));
        assert_eq!(t.scopes(), ["b", "c"]);
    }

    #[test]
    fn refuses_broken_responses_without_echoing_them() {
        let now = SystemTime::now();
        for body in [
            &b"<html>"[..],
            br#"{"token_type":"Bearer","expires_in":3599}"#,
            br#"{"token_type":"pop","expires_in":3599,"access_token":"secret-token"}"#,
            br#"{"token_type":"Bearer","expires_in":-5,"access_token":"secret-token"}"#,
            br#"{"token_type":"Bearer","access_token":"secret-token"}"#,
            br#"{"token_type":"Bearer","expires_in":99999999999,"access_token":"secret-token"}"#,
        ] {
            let e = parse_success(body, now, &[]).expect_err("refused");
            assert!(e.is_invalid_response());
            assert!(!e.to_string().contains("secret-token"));
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("120"),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(120)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        headers.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_str(&date).expect("date"),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(30)));
    }
}

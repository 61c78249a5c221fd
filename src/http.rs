//! The HTTP seam: one small trait, a secure default over `reqwest`, and the endpoint rules.
//!
//! Every request confidant makes goes through [`HttpClient`]. The default, [`ReqwestClient`],
//! never follows redirects (a followed redirect on a token request is an SSRF path), applies
//! connect and total timeouts, caps the response body, and sends a fresh `client-request-id`
//! with each request. Endpoints must be `https`, or `http` to a loopback address.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use url::Url;

use crate::error::Error;

/// Sends `request` through `http` inside a `confidant.http` span: what it is for, the method,
/// host and path (never the query or the body), the `client-request-id` it carries (one is added
/// when missing), then the status, Entra's or Azure's `x-ms-request-id` and the duration. Every
/// network call the crate makes goes through here.
pub(crate) async fn send_traced(
    http: &dyn HttpClient,
    purpose: &'static str,
    mut request: http::Request<Vec<u8>>,
) -> Result<http::Response<Vec<u8>>, TransportError> {
    use tracing::Instrument as _;
    let correlation_id = match request
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
    {
        Some(id) => id.to_owned(),
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            if let Ok(value) = http::HeaderValue::from_str(&id) {
                request.headers_mut().insert("client-request-id", value);
            }
            id
        }
    };
    let span = tracing::debug_span!(
        "confidant.http",
        purpose,
        method = %request.method(),
        host = request.uri().host().unwrap_or_default(),
        path = request.uri().path(),
        correlation_id = %correlation_id,
        status = tracing::field::Empty,
        request_id = tracing::field::Empty,
        duration_ms = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let result = http.send(request).instrument(span.clone()).await;
    span.record(
        "duration_ms",
        u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    );
    match &result {
        Ok(response) => {
            span.record("status", response.status().as_u16());
            if let Some(id) = response
                .headers()
                .get("x-ms-request-id")
                .and_then(|v| v.to_str().ok())
            {
                span.record("request_id", id);
            }
            tracing::debug!(parent: &span, "http response");
        }
        Err(e) => tracing::debug!(parent: &span, error = %e, "http request failed"),
    }
    result
}

/// Sends one HTTP request and returns the whole response.
///
/// Implement it to route confidant's traffic through your own stack (a proxy, a shared client).
/// Implementations must not follow redirects and should bound the response size.
#[async_trait]
pub trait HttpClient: fmt::Debug + Send + Sync {
    /// Sends one request, returns the whole response; never follows redirects.
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError>;
}

/// What failed below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// DNS, TCP or TLS failed, or the connection was closed before a full response.
    Connect,
    /// The connect or total timeout passed.
    Timeout,
    /// The response body exceeded the configured cap.
    BodyTooLarge,
    /// The request could not be built or sent (bad header, unsupported URL).
    Request,
}

impl TransportErrorKind {
    /// The stable snake_case name of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::BodyTooLarge => "body_too_large",
            Self::Request => "request",
        }
    }
}

/// A request that did not complete. The message holds the host and path, never a query string.
#[derive(Debug, Clone, thiserror::Error)]
#[error("transport error ({}) for {endpoint}: {message}", kind.as_str())]
pub struct TransportError {
    kind: TransportErrorKind,
    endpoint: String,
    message: String,
    #[source]
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl TransportError {
    /// A new error for the request to `url` (its query and credentials are dropped).
    pub fn new(kind: TransportErrorKind, url: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            endpoint: redact_url(url),
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(std::sync::Arc::new(source));
        self
    }

    /// What failed.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// A timeout or connection failure; the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            TransportErrorKind::Connect | TransportErrorKind::Timeout
        )
    }

    /// The timeout passed.
    pub fn is_timeout(&self) -> bool {
        self.kind == TransportErrorKind::Timeout
    }
}

/// `scheme://host[:port]/path` of a URL: no user info, query or fragment, which may hold secrets.
fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(u) => {
            format!(
                "{}://{}{}",
                u.scheme(),
                u.host_str().unwrap_or(""),
                port_suffix(&u)
            ) + u.path()
        }
        Err(_) => "<unparsable url>".to_owned(),
    }
}

fn port_suffix(url: &Url) -> String {
    url.port().map(|p| format!(":{p}")).unwrap_or_default()
}

/// Whether `url`'s host is a loopback address (`127.0.0.0/8`, `::1`) or `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost")
                || d.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        None => false,
    }
}

/// Parses an endpoint URL and enforces the transport rule: `https`, or `http` to loopback.
///
/// User info (`user:pass@`) and fragments are refused: neither belongs in an identity endpoint.
pub fn check_endpoint(url: &str) -> Result<Url, Error> {
    let parsed = Url::parse(url).map_err(|e| {
        Error::InvalidEndpoint(format!("`{}` is not a valid URL: {e}", redact_url(url)))
    })?;
    if parsed.cannot_be_a_base() || parsed.host().is_none() {
        return Err(Error::InvalidEndpoint(format!(
            "`{}` has no host",
            redact_url(url)
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::InvalidEndpoint(
            "endpoint URLs must not carry credentials".into(),
        ));
    }
    if parsed.fragment().is_some() {
        return Err(Error::InvalidEndpoint(format!(
            "`{}` must not have a fragment",
            redact_url(url)
        )));
    }
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if is_loopback(&parsed) => Ok(parsed),
        "http" => Err(Error::InvalidEndpoint(format!(
            "`{}` uses http; only https is allowed, except for loopback addresses",
            redact_url(url)
        ))),
        other => Err(Error::InvalidEndpoint(format!(
            "scheme `{other}` is not allowed; use https"
        ))),
    }
}

/// The default [`HttpClient`]: `reqwest` with rustls, no redirects, timeouts and a body cap.
#[derive(Debug, Clone)]
pub struct ReqwestClient {
    client: reqwest::Client,
    max_response_bytes: usize,
}

impl ReqwestClient {
    /// A client with the default settings (see [`ReqwestClientBuilder`]).
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// Configures timeouts, the body cap and extra trusted roots.
    pub fn builder() -> ReqwestClientBuilder {
        ReqwestClientBuilder::default()
    }

    /// Wraps a client you configured yourself.
    ///
    /// # Security
    /// confidant cannot change a client once built: configure it with
    /// `redirect(reqwest::redirect::Policy::none())` and timeouts, or token requests may follow
    /// redirects. The body cap still applies (1 MiB).
    pub fn from_client(client: reqwest::Client) -> Self {
        Self {
            client,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Settings for [`ReqwestClient`].
#[derive(Debug)]
pub struct ReqwestClientBuilder {
    connect_timeout: Duration,
    timeout: Duration,
    max_response_bytes: usize,
    root_certificates: Vec<Vec<u8>>,
}

impl Default for ReqwestClientBuilder {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            root_certificates: Vec::new(),
        }
    }
}

impl ReqwestClientBuilder {
    /// Time allowed to establish a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for the whole exchange (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Largest response body accepted (default 1 MiB).
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Trusts the CA certificates in `pem` in addition to the platform's roots, for a private
    /// authority or the testkit's TLS mode.
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Self {
        self.root_certificates.push(pem.to_vec());
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<ReqwestClient, Error> {
        let mut roots = Vec::new();
        for pem in &self.root_certificates {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| Error::Configuration(format!("invalid root certificate PEM: {e}")))?;
            if certs.is_empty() {
                return Err(Error::Configuration(
                    "root certificate PEM holds no certificate".into(),
                ));
            }
            roots.extend(certs);
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .user_agent(concat!("confidant/", env!("CARGO_PKG_VERSION")))
            .tls_certs_merge(roots)
            .build()
            .map_err(|e| Error::Configuration(format!("cannot build the HTTP client: {e}")))?;
        Ok(ReqwestClient {
            client,
            max_response_bytes: self.max_response_bytes,
        })
    }
}

fn map_reqwest_error(url: &str, e: reqwest::Error) -> TransportError {
    let kind = if e.is_timeout() {
        TransportErrorKind::Timeout
    } else if e.is_builder() {
        TransportErrorKind::Request
    } else {
        TransportErrorKind::Connect
    };
    // reqwest's message includes the URL with its query; keep only the kind and drop the text.
    TransportError::new(kind, url, describe(&e)).with_source(e.without_url())
}

fn describe(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the response body was cut off"
    } else if e.is_builder() {
        "the request could not be built"
    } else {
        "the request failed"
    }
}

#[async_trait]
impl HttpClient for ReqwestClient {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let url = request.uri().to_string();
        let (mut parts, body) = request.into_parts();
        if !parts.headers.contains_key("client-request-id") {
            let id = uuid::Uuid::new_v4().to_string();
            if let Ok(value) = http::HeaderValue::from_str(&id) {
                parts.headers.insert("client-request-id", value);
            }
        }
        let request = http::Request::from_parts(parts, body);
        let request =
            reqwest::Request::try_from(request).map_err(|e| map_reqwest_error(&url, e))?;
        let mut response = self
            .client
            .execute(request)
            .await
            .map_err(|e| map_reqwest_error(&url, e))?;

        if response
            .content_length()
            .is_some_and(|len| len > self.max_response_bytes as u64)
        {
            return Err(too_large(&url, self.max_response_bytes));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| map_reqwest_error(&url, e))?
        {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(too_large(&url, self.max_response_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        let mut out = http::Response::builder()
            .status(response.status())
            .version(response.version());
        if let Some(headers) = out.headers_mut() {
            *headers = std::mem::take(response.headers_mut());
        }
        out.body(body).map_err(|e| {
            TransportError::new(TransportErrorKind::Request, &url, "invalid response")
                .with_source(e)
        })
    }
}

fn too_large(url: &str, cap: usize) -> TransportError {
    TransportError::new(
        TransportErrorKind::BodyTooLarge,
        url,
        format!("response body exceeds {cap} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_required_except_loopback() {
        assert!(check_endpoint("https://login.microsoftonline.com/x").is_ok());
        assert!(check_endpoint("http://127.0.0.1:8080/x").is_ok());
        assert!(check_endpoint("http://127.5.6.7/x").is_ok());
        assert!(check_endpoint("http://[::1]:99/x").is_ok());
        assert!(check_endpoint("http://localhost/x").is_ok());
        for bad in [
            "http://login.microsoftonline.com/x",
            "http://10.0.0.1/x",
            "http://localhost.evil.com/x",
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https://example.com/#frag",
            "not a url",
            "data:text/plain,hi",
        ] {
            let err = check_endpoint(bad).expect_err(bad);
            assert!(err.is_invalid_endpoint(), "{bad}: {err}");
        }
    }

    #[test]
    fn messages_drop_queries_and_credentials() {
        let e = TransportError::new(
            TransportErrorKind::Timeout,
            "https://u:p@h.example/p?code=secret#f",
            "timed out",
        );
        let text = e.to_string();
        assert!(!text.contains("secret") && !text.contains("u:p"), "{text}");
        assert!(text.contains("https://h.example/p"), "{text}");
        let e = check_endpoint("http://example.com/p?client_secret=abc").expect_err("http");
        assert!(!e.to_string().contains("abc"));
    }
}

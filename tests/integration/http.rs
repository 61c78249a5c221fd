//! The HTTP seam against a real local server: no redirects, body cap, timeouts,
//! `client-request-id`, and OpenID discovery over the wire.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use confidant::Authority;
use confidant::http::{HttpClient, ReqwestClient, TransportErrorKind};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// A one-purpose HTTP/1.1 server: answers each connection with the next canned response (or
/// never answers, for `None`) and records the request heads it read.
struct CannedServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
}

impl CannedServer {
    async fn start(responses: Vec<Option<Vec<u8>>>) -> Self {
        Self::start_with(|_| responses).await
    }

    /// Like `start`, with responses that may name the server's own address.
    async fn start_with(responses: impl FnOnce(SocketAddr) -> Vec<Option<Vec<u8>>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let responses = responses(addr);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        tokio::spawn(async move {
            for response in responses {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                seen.lock()
                    .expect("lock")
                    .push(String::from_utf8_lossy(&head).into_owned());
                match response {
                    Some(bytes) => {
                        let _ = socket.write_all(&bytes).await;
                        let _ = socket.shutdown().await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            }
        });
        Self { addr, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }
}

fn response(status: &str, headers: &[&str], body: &[u8]) -> Option<Vec<u8>> {
    let mut out = format!("HTTP/1.1 {status}\r\nconnection: close\r\n").into_bytes();
    for h in headers {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Some(out)
}

fn get(url: &str) -> http::Request<Vec<u8>> {
    http::Request::get(url).body(Vec::new()).expect("request")
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    let server = CannedServer::start(vec![
        response(
            "302 Found",
            &["location: /elsewhere", "content-length: 0"],
            b"",
        ),
        response("200 OK", &["content-length: 2"], b"{}"),
    ])
    .await;
    let client = ReqwestClient::new().expect("client");
    let reply = client
        .send(get(&server.url("/token")))
        .await
        .expect("response");
    assert_eq!(reply.status(), 302);
    assert_eq!(server.requests().len(), 1, "the redirect was not followed");
}

#[tokio::test]
async fn sends_a_client_request_id() {
    let server = CannedServer::start(vec![response("200 OK", &["content-length: 2"], b"ok")]).await;
    let client = ReqwestClient::new().expect("client");
    let reply = client.send(get(&server.url("/x"))).await.expect("response");
    assert_eq!(reply.body(), b"ok");
    let head = server.requests().remove(0).to_ascii_lowercase();
    let id = head
        .lines()
        .find_map(|l| l.strip_prefix("client-request-id: "))
        .expect("client-request-id header");
    assert!(uuid::Uuid::parse_str(id.trim()).is_ok(), "{id}");
    assert!(head.contains("user-agent: confidant/"));
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let big = vec![b'a'; 4096];
    let server = CannedServer::start(vec![
        response("200 OK", &["content-length: 4096"], &big),
        // No length: read until close, and stop at the cap.
        response("200 OK", &[], &big),
    ])
    .await;
    let client = ReqwestClient::builder()
        .max_response_bytes(1024)
        .build()
        .expect("client");
    for _ in 0..2 {
        let err = client
            .send(get(&server.url("/big")))
            .await
            .expect_err("too large");
        assert_eq!(err.kind(), TransportErrorKind::BodyTooLarge);
        assert!(!err.is_retryable());
    }
}

#[tokio::test]
async fn slow_servers_time_out_and_refused_connections_are_retryable() {
    let server = CannedServer::start(vec![None]).await;
    let client = ReqwestClient::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let err = client
        .send(get(&server.url("/slow?client_secret=s3cr3t")))
        .await
        .expect_err("timeout");
    assert!(err.is_timeout(), "{err}");
    assert!(err.is_retryable());
    assert!(!err.to_string().contains("s3cr3t"), "{err}");

    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let err = client
        .send(get(&format!("http://{addr}/")))
        .await
        .expect_err("refused");
    assert_eq!(err.kind(), TransportErrorKind::Connect);
    assert!(err.is_retryable());
}

#[tokio::test]
async fn truncated_bodies_are_transport_errors() {
    let server = CannedServer::start(vec![response(
        "200 OK",
        &["content-length: 100"],
        b"{\"partial\":",
    )])
    .await;
    let client = ReqwestClient::new().expect("client");
    let err = client
        .send(get(&server.url("/cut")))
        .await
        .expect_err("cut off");
    assert_eq!(err.kind(), TransportErrorKind::Connect, "{err}");
}

#[tokio::test]
async fn discovers_a_generic_openid_provider() {
    let document = |issuer: &str| {
        format!(
            r#"{{"issuer":"{issuer}","token_endpoint":"{issuer}/token","authorization_endpoint":"{issuer}/auth","jwks_uri":"{issuer}/jwks"}}"#
        )
    };
    let server = CannedServer::start_with(|addr| {
        let issuer = format!("http://{addr}");
        vec![
            response(
                "200 OK",
                &["content-type: application/json"],
                document(&issuer).as_bytes(),
            ),
            response(
                "200 OK",
                &["content-type: application/json"],
                document("https://evil.example").as_bytes(),
            ),
            response("404 Not Found", &["content-length: 0"], b""),
        ]
    })
    .await;
    let client = ReqwestClient::new().expect("client");
    let issuer = server.url("");
    let authority = Authority::discover(&client, &issuer)
        .await
        .expect("discovered");
    assert_eq!(
        authority.token_endpoint().as_str(),
        format!("{issuer}/token")
    );
    assert_eq!(authority.jwks_uri().as_str(), format!("{issuer}/jwks"));
    assert_eq!(authority.issuer(), Some(issuer.as_str()));
    assert!(server.requests()[0].starts_with("GET /.well-known/openid-configuration "));

    let err = Authority::discover(&client, &issuer)
        .await
        .expect_err("issuer mismatch");
    assert!(err.is_invalid_response(), "{err}");
    let err = Authority::discover(&client, &issuer)
        .await
        .expect_err("404");
    assert!(err.is_invalid_response(), "{err}");
}

#[test]
fn extra_root_certificates_must_be_certificates() {
    let ca = crate::support::fixture("ca.crt");
    assert!(
        ReqwestClient::builder()
            .add_root_certificates_pem(&ca)
            .build()
            .is_ok()
    );
    for bad in [&b"not a certificate"[..], b""] {
        let err = ReqwestClient::builder()
            .add_root_certificates_pem(bad)
            .build()
            .expect_err("refused");
        assert!(err.is_configuration(), "{err}");
    }
}

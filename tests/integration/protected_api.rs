//! `examples/protected_api.rs` over real HTTP against the testkit: every route, and the exact
//! RFC 6750 response of each row of VALIDATION.md §8.3.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use confidant::{ConfidentialClient, PemSigner};
use confidant_testkit::{AppConfig, TestCertificate};
use serde_json::{Value, json};

use crate::validator::{Env, env};

const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const API: &str = "22222222-2222-2222-2222-222222222222";
const SERVICE: &str = "44444444-4444-4444-4444-444444444444";

/// The example binary, which `cargo test` builds beside the test binaries.
fn example_path() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    dir.join("examples")
        .join(format!("protected_api{}", std::env::consts::EXE_SUFFIX))
}

struct Api {
    child: Child,
    base: String,
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_api(env: &Env) -> Api {
    let mut child = Command::new(example_path())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--authority",
            &format!("{}/{TID}/v2.0", env.testkit.base_url()),
            "--audience",
            API,
            "--jwks-min-refresh",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the protected_api example runs (cargo test builds it)");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Api {
        child,
        base: format!("http://{addr}"),
    }
}

struct Reply {
    status: u16,
    challenge: Option<String>,
    body: Value,
}

async fn call(method: &str, url: &str, authorizations: &[&str]) -> Reply {
    let client = reqwest::Client::new();
    let mut request = client.request(method.parse().expect("method"), url);
    for value in authorizations {
        request = request.header("authorization", *value);
    }
    let response = request.send().await.expect("API answers");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let bytes = response.bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        challenge,
        body,
    }
}

async fn bearer(method: &str, url: &str, token: &str) -> Reply {
    call(method, url, &[&format!("Bearer {token}")]).await
}

// Multi-threaded: the testkit keeps serving while this thread waits for the example's first line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_every_challenge() {
    let env = env().await;
    // A certificate-authenticated service client with the Admin role.
    let certificate = TestCertificate::generate("service").expect("certificate");
    env.testkit
        .register_app(
            AppConfig::new(SERVICE, TID)
                .certificate(certificate.cert_pem.clone())
                .grant_roles(API, &["Admin"]),
        )
        .expect("register");
    let api = start_api(&env);
    let url = |path: &str| format!("{}{path}", api.base);
    let realm = format!(r#"Bearer realm="{TID}""#);

    // No token, another scheme: 401 with no error code.
    for headers in [&[][..], &["Basic dXNlcjpwYXNz"][..]] {
        let reply = call("GET", &url("/me"), headers).await;
        assert_eq!(reply.status, 401);
        assert_eq!(reply.challenge.as_deref(), Some(realm.as_str()));
        assert_eq!(
            reply.body,
            json!({"error": "missing_token", "kind": "missing_token"})
        );
    }
    // Two headers, two tokens, bad bytes: 400 invalid_request.
    for headers in [
        &["Bearer a", "Bearer b"][..],
        &["Bearer a b"][..],
        &["Bearer a,b"][..],
    ] {
        let reply = call("GET", &url("/me"), headers).await;
        assert_eq!(reply.status, 400, "{headers:?}");
        assert_eq!(
            reply.challenge.as_deref(),
            Some(
                format!(
                    r#"{realm}, error="invalid_request", error_description="The request has no single bearer token""#
                )
                .as_str()
            )
        );
    }

    // A valid app token (secret client, role Read).
    let app = env.app_token(&format!("{API}/.default")).await;
    let reply = bearer("GET", &url("/me"), &app).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["tid"], TID);
    assert_eq!(reply.body["app_only"], true);
    assert!(
        !reply.body.to_string().contains(&app),
        "never echo the token"
    );

    // Invalid tokens: 401 invalid_token with the kind's sentence.
    let now = env.now();
    let mut expired = env.delegated_claims("Accounts.Read");
    expired["iat"] = json!(now - 7200);
    expired["nbf"] = json!(now - 7200);
    expired["exp"] = json!(now - 3600);
    let reply = bearer("GET", &url("/me"), &env.sign(&expired)).await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.challenge.as_deref(),
        Some(
            format!(
                r#"{realm}, error="invalid_token", error_description="The access token expired""#
            )
            .as_str()
        )
    );
    assert_eq!(
        reply.body,
        json!({"error": "invalid_token", "kind": "expired"})
    );
    let mut tampered = app.clone().into_bytes();
    let at = app.find('.').expect("dot") + 3;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let reply = bearer(
        "GET",
        &url("/me"),
        std::str::from_utf8(&tampered).expect("ascii"),
    )
    .await;
    assert_eq!(
        reply.body,
        json!({"error": "invalid_token", "kind": "bad_signature"})
    );
    let reply = bearer("GET", &url("/me"), "not-a-jwt").await;
    assert_eq!(
        reply.body,
        json!({"error": "invalid_token", "kind": "malformed"})
    );

    // /accounts: delegated with Accounts.Read.
    let reader = env.sign(&env.delegated_claims("Accounts.Read"));
    assert_eq!(bearer("GET", &url("/accounts"), &reader).await.status, 200);
    let reply = bearer("GET", &url("/accounts"), &app).await;
    assert_eq!(reply.status, 403, "an app token is not delegated");
    assert_eq!(
        reply.challenge.as_deref(),
        Some(
            format!(
                r#"{realm}, error="insufficient_scope", error_description="The access token does not grant this operation""#
            )
            .as_str()
        ),
        "no scope attribute for a caller-kind rule"
    );
    let other = env.sign(&env.delegated_claims("Files.Read"));
    let reply = bearer("GET", &url("/accounts"), &other).await;
    assert_eq!(reply.status, 403);
    assert!(
        reply
            .challenge
            .as_deref()
            .is_some_and(|c| c.ends_with(r#", scope="Accounts.Read""#)),
        "{:?}",
        reply.challenge
    );
    assert_eq!(
        reply.body,
        json!({"error": "insufficient_scope", "kind": "forbidden"})
    );

    // /accounts/beneficiary: Accounts.Write plus step-up.
    let writer = env.sign(&env.delegated_claims("Accounts.Write"));
    let reply = bearer("POST", &url("/accounts/beneficiary"), &writer).await;
    assert_eq!(reply.status, 401);
    let claims = STANDARD.encode(r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#);
    assert_eq!(
        reply.challenge.as_deref(),
        Some(
            format!(
                r#"{realm}, authorization_uri="{}/{TID}/oauth2/v2.0/authorize", error="insufficient_claims", error_description="A stronger authentication is required", claims="{claims}""#,
                env.testkit.base_url()
            )
            .as_str()
        )
    );
    assert_eq!(reply.body["kind"], "step_up_required");
    for (claim, value) in [("acrs", json!(["c1"])), ("amr", json!(["pwd", "mfa"]))] {
        let mut stepped = env.delegated_claims("Accounts.Write");
        stepped[claim] = value;
        let reply = bearer("POST", &url("/accounts/beneficiary"), &env.sign(&stepped)).await;
        assert_eq!(reply.status, 200, "{claim}");
        assert_eq!(reply.body["added"], true);
    }

    // /admin and /service: the certificate client has Admin and azpacr 2; the secret client
    // has neither.
    let signer = PemSigner::from_pem(
        certificate.cert_pem.as_bytes(),
        certificate.key_pem.as_bytes(),
    )
    .expect("signer");
    let service_token = ConfidentialClient::builder(env.authority.clone(), SERVICE)
        .certificate(Arc::new(signer))
        .build()
        .expect("client")
        .acquire_token_for_client(&[format!("{API}/.default")])
        .await
        .expect("certificate token")
        .access_token()
        .expose_secret()
        .to_owned();
    for path in ["/admin", "/service"] {
        let reply = bearer("GET", &url(path), &service_token).await;
        assert_eq!(reply.status, 200, "{path}: {:?}", reply.body);
        let reply = bearer("GET", &url(path), &app).await;
        assert_eq!(reply.status, 403, "{path}");
        assert!(
            reply
                .challenge
                .as_deref()
                .is_some_and(|c| !c.contains("scope=")),
            "{path}: no scope for role and client rules"
        );
    }
}

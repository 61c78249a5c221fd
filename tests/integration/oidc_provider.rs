//! Interop with an independent, certified OpenID provider: panva/oidc-provider
//! (`interop/oidc-provider/server.mjs`, installed by `scripts/test.sh` with `npm ci`), started on
//! a loopback port with TLS from a CA this test generates, configured like Entra ID: path-based
//! tenants, `private_key_jwt` clients pinned to RS256, PS256 and ES256, single-use `jti`, PKCE
//! required, rotating refresh tokens, JWT access tokens for one API.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use confidant::http::{HttpClient, ReqwestClient};
use confidant::validator::{BearerValidator, ValidationErrorKind};
use confidant::{
    Algorithm, Authority, AuthorizationRequest, AuthorizationResponse, ClientAssertionBuilder,
    ConfidentialClient, PemSigner, Signer, TokenRequest,
};
use confidant_testkit::TestCa;
use serde_json::{Value, json};

use crate::support::{fixture, fixture_path, workspace_binary};

const API: &str = "https://api.interop.example";
const API_SCOPE: &str = "api.read";
const REDIRECT: &str = "http://127.0.0.1:9/callback";
const USER: &str = "alice";

/// The running provider, stopped when dropped.
struct Provider {
    child: Child,
    issuers: Value,
    ca_pem: String,
    ca_file: PathBuf,
    http: Arc<dyn HttpClient>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    fn issuer(&self, tenant: &str) -> String {
        self.issuers[tenant].as_str().expect("issuer").to_owned()
    }

    async fn authority(&self, tenant: &str) -> Authority {
        Authority::discover(self.http.as_ref(), &self.issuer(tenant))
            .await
            .expect("discovery over TLS")
    }

    async fn client(&self, tenant: &str, client_id: &str, alg: Algorithm) -> ConfidentialClient {
        ConfidentialClient::builder(self.authority(tenant).await, client_id)
            .certificate(signer(alg))
            .assertion_algorithm(alg)
            .http_client(Arc::clone(&self.http))
            .build()
            .expect("client")
    }

    async fn validator(&self, tenant: &str) -> BearerValidator {
        BearerValidator::builder(self.authority(tenant).await)
            .audience(API)
            .add_root_certificates_pem(self.ca_pem.as_bytes())
            .build()
            .expect("validator")
    }
}

fn signer(alg: Algorithm) -> Arc<dyn Signer> {
    let (cert, key) = if alg == Algorithm::Es256 {
        ("ec-p256.crt", "ec-p256.pkcs8.key")
    } else {
        ("rsa2048.crt", "rsa2048.pkcs8.key")
    };
    Arc::new(PemSigner::from_pem(&fixture(cert), &fixture(key)).expect("signer"))
}

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/oidc-provider")
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path.to_str().expect("UTF-8").to_owned()
}

async fn start() -> Provider {
    assert!(
        interop_dir().join("node_modules/oidc-provider").exists(),
        "oidc-provider is not installed: run scripts/test.sh (it runs `npm ci` in interop/oidc-provider)"
    );
    let dir = std::env::temp_dir().join(format!("confidant-oidc-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ca = TestCa::generate("confidant interop CA").expect("CA");
    let server = ca.issue_tls_server().expect("TLS certificate");
    let ca_file = PathBuf::from(write(&dir, "ca.pem", &ca.cert_pem));
    let client = |tenant: &str, id: &str, alg: &str, cert: &str| {
        json!({
            "tenant": tenant, "client_id": id, "alg": alg,
            "certificate": fixture_path(cert), "redirect_uris": [REDIRECT],
        })
    };
    let config = json!({
        "tls_certificate": write(&dir, "tls.crt", &server.cert_pem),
        "tls_key": write(&dir, "tls.key", &server.key_pem),
        "tenants": ["contoso", "fabrikam"],
        "api": API,
        "api_scope": API_SCOPE,
        "user": {"sub": USER, "name": "Alice", "username": "alice@contoso.example"},
        "clients": [
            client("contoso", "rs256-client", "RS256", "rsa2048.crt"),
            client("contoso", "ps256-client", "PS256", "rsa2048.crt"),
            client("fabrikam", "es256-client", "ES256", "ec-p256.crt"),
        ],
    });
    let config_path = write(&dir, "config.json", &config.to_string());
    let mut child = Command::new("node")
        .arg(interop_dir().join("server.mjs"))
        .arg(&config_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node runs (Node.js 20 or newer is needed)");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("ready line");
    // Keep reading, so that a later write never meets a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let ready: Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("oidc-provider did not start ({e}): {line:?}"));
    let http: Arc<dyn HttpClient> = Arc::new(
        ReqwestClient::builder()
            .add_root_certificates_pem(ca.cert_pem.as_bytes())
            .build()
            .expect("http"),
    );
    Provider {
        child,
        issuers: ready["issuers"].clone(),
        ca_pem: ca.cert_pem.clone(),
        ca_file,
        http,
    }
}

fn tampered(token: &str) -> Vec<String> {
    let parts: Vec<&str> = token.split('.').collect();
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64url")).expect("JSON");
    let mut elevated = claims.clone();
    elevated["scope"] = json!(format!("{API_SCOPE} api.admin"));
    let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("b64url");
    signature[10] ^= 1;
    vec![
        // Claims changed under the same signature.
        format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(elevated.to_string()),
            parts[2]
        ),
        // One bit of the signature flipped.
        format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            URL_SAFE_NO_PAD.encode(signature)
        ),
        // The signature stripped, `alg` set to none.
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#),
            parts[1]
        ),
    ]
}

#[tokio::test]
async fn client_credentials_with_every_algorithm_and_the_tokens_validate() {
    let provider = start().await;
    for (tenant, client_id, alg) in [
        ("contoso", "rs256-client", Algorithm::Rs256),
        ("contoso", "ps256-client", Algorithm::Ps256),
        ("fabrikam", "es256-client", Algorithm::Es256),
    ] {
        let client = provider.client(tenant, client_id, alg).await;
        let token = client
            .acquire_token_for_client(&[API_SCOPE])
            .await
            .unwrap_or_else(|e| panic!("{client_id}: the provider refused: {e}"));
        // Every request signs a fresh assertion: a second token request is accepted too.
        let again = client
            .acquire_token_for_client_with(&TokenRequest::new(&[API_SCOPE]).force_refresh(true))
            .await
            .unwrap_or_else(|e| panic!("{client_id}: a second assertion was refused: {e}"));
        assert!(!again.is_from_cache());

        let validator = provider.validator(tenant).await;
        let jwt = token.access_token().expose_secret();
        let validated = validator
            .validate(jwt)
            .await
            .unwrap_or_else(|e| panic!("{client_id}: the provider's access token: {e}"));
        assert_eq!(validated.client_id(), Some(client_id));
        assert!(validated.scopes().any(|s| s == API_SCOPE));
        for forged in tampered(jwt) {
            let error = validator.validate(&forged).await.expect_err("tampered");
            assert!(
                matches!(
                    error.kind(),
                    ValidationErrorKind::BadSignature
                        | ValidationErrorKind::Malformed
                        | ValidationErrorKind::UnsupportedAlg
                ),
                "{client_id}: {error}"
            );
        }
        // A token of one tenant is not a token of the other.
        let other = if tenant == "contoso" {
            "fabrikam"
        } else {
            "contoso"
        };
        assert!(provider.validator(other).await.validate(jwt).await.is_err());
    }
}

#[tokio::test]
async fn the_provider_holds_assertions_to_the_rules_the_testkit_enforces() {
    let provider = start().await;
    let authority = provider.authority("contoso").await;
    let token_endpoint = authority.token_endpoint().to_string();
    let post = |assertion: String| {
        let http = Arc::clone(&provider.http);
        let endpoint = token_endpoint.clone();
        async move {
            let body = format!(
                "grant_type=client_credentials&scope={API_SCOPE}&client_id=rs256-client\
                 &client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer\
                 &client_assertion={assertion}"
            );
            let request = http::Request::post(endpoint)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.into_bytes())
                .expect("request");
            let response = http.send(request).await.expect("sent");
            let body: Value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
            (response.status().as_u16(), body["error"].clone())
        }
    };
    let builder = ClientAssertionBuilder::for_authority(&authority, "rs256-client")
        .algorithm(Algorithm::Rs256);
    let rsa = signer(Algorithm::Rs256);
    let assertion = builder.sign(rsa.as_ref()).await.expect("assertion");
    let jwt = assertion.expose_secret().to_owned();
    assert_eq!(post(jwt.clone()).await.0, 200);
    // Single use, as in the testkit's strict mode (its compat mode accepts the reuse, as Entra).
    assert_eq!(post(jwt).await, (401, json!("invalid_client")));

    // Another audience, and another algorithm than the one the client is pinned to.
    let elsewhere = ClientAssertionBuilder::new("rs256-client", "https://elsewhere.example/token")
        .algorithm(Algorithm::Rs256)
        .sign(rsa.as_ref())
        .await
        .expect("assertion");
    assert_eq!(
        post(elsewhere.expose_secret().to_owned()).await,
        (401, json!("invalid_client"))
    );
    let pss = ClientAssertionBuilder::for_authority(&authority, "rs256-client")
        .algorithm(Algorithm::Ps256)
        .sign(rsa.as_ref())
        .await
        .expect("assertion");
    assert_eq!(
        post(pss.expose_secret().to_owned()).await,
        (401, json!("invalid_client"))
    );
}

/// Follows the authorize URL through the provider's sign-in (cookies kept) to the redirect back
/// to the app, without following that one: the callback's parameters.
async fn sign_in(provider: &Provider, url: &url::Url) -> AuthorizationResponse {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(
            reqwest::Certificate::from_pem(provider.ca_pem.as_bytes()).expect("CA"),
        )
        .build()
        .expect("browser");
    let mut cookies: Vec<(String, String)> = Vec::new();
    let mut next = url.clone();
    let mut visited = Vec::new();
    for _ in 0..10 {
        visited.push(next.path().to_owned());
        let header: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let response = http
            .get(next.as_str())
            .header("cookie", header.join("; "))
            .send()
            .await
            .expect("browse");
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().expect("cookie");
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                cookies.retain(|(k, _)| k != name);
                cookies.push((name.to_owned(), value.to_owned()));
            }
        }
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("HTTP {status} without a redirect at {next}"));
        next = next.join(&location).expect("location");
        if next.as_str().starts_with(REDIRECT) {
            return AuthorizationResponse::from_form(next.query().unwrap_or_default());
        }
    }
    panic!("the sign-in did not come back to the app: {visited:?}");
}

#[tokio::test]
async fn authorization_code_with_pkce_then_refresh_complete_headlessly() {
    let provider = start().await;
    let client = provider
        .client("contoso", "ps256-client", Algorithm::Ps256)
        .await;
    let scopes = ["openid", "offline_access", "profile", API_SCOPE];
    let (url, flow) = client
        // OpenID Connect grants `offline_access` only with `prompt=consent` (Core §11); Entra
        // does not ask for it.
        .authorization_url(&AuthorizationRequest::new(REDIRECT, &scopes).prompt("consent"))
        .expect("authorization URL");
    let query: String = url.query().unwrap_or_default().to_owned();
    assert!(query.contains("code_challenge_method=S256"), "{query}");
    let response = sign_in(&provider, &url).await;
    let signed_in = client
        .acquire_token_by_auth_code(&flow, &response)
        .await
        .expect("the code redeems (PKCE, private_key_jwt, the ID token validated)");
    let account = signed_in.account().expect("account").clone();
    assert!(account.home_account_id.starts_with(USER), "{account:?}");

    let validator = provider.validator("contoso").await;
    let first = signed_in.access_token().expose_secret().to_owned();
    let validated = validator.validate(&first).await.expect("user access token");
    assert_eq!(validated.subject(), Some(USER));
    assert!(validated.scopes().any(|s| s == API_SCOPE));

    // The refresh grant, with the rotated refresh token kept for the next one.
    for _ in 0..2 {
        let refreshed = client
            .acquire_token_silent_with(
                &account,
                &TokenRequest::new(&[API_SCOPE]).force_refresh(true),
            )
            .await
            .expect("refresh");
        assert!(!refreshed.is_from_cache());
        let token = refreshed.access_token().expose_secret();
        assert_ne!(token, first);
        validator.validate(token).await.expect("refreshed token");
    }

    // A callback replayed is refused by the provider (the code was used).
    let replay = client.acquire_token_by_auth_code(&flow, &response).await;
    assert!(replay.is_err());
}

#[tokio::test]
async fn the_providers_id_tokens_validate_and_tampered_ones_do_not() {
    let provider = start().await;
    let authority = provider.authority("contoso").await;
    let client = provider
        .client("contoso", "rs256-client", Algorithm::Rs256)
        .await;
    let (url, flow) = client
        .authorization_url(&AuthorizationRequest::new(REDIRECT, &["openid", "profile"]))
        .expect("authorization URL");
    let response = sign_in(&provider, &url).await;
    // Redeemed by hand, to hold the raw ID token: the flow (kept by the app between redirect
    // and callback) carries the PKCE verifier and the nonce.
    let kept: Value = serde_json::to_value(&flow).expect("the flow serializes");
    let assertion = ClientAssertionBuilder::for_authority(&authority, "rs256-client")
        .algorithm(Algorithm::Rs256)
        .sign(signer(Algorithm::Rs256).as_ref())
        .await
        .expect("assertion");
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", response.code.as_deref().expect("code"))
        .append_pair("redirect_uri", REDIRECT)
        .append_pair(
            "code_verifier",
            kept["code_verifier"].as_str().expect("verifier"),
        )
        .append_pair("client_id", "rs256-client")
        .append_pair(
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        )
        .append_pair("client_assertion", assertion.expose_secret())
        .finish();
    let request = http::Request::post(authority.token_endpoint().as_str())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.into_bytes())
        .expect("request");
    let answer = provider.http.send(request).await.expect("token response");
    assert_eq!(
        answer.status(),
        200,
        "{:?}",
        String::from_utf8_lossy(answer.body())
    );
    let tokens: Value = serde_json::from_slice(answer.body()).expect("JSON");
    let id_token = tokens["id_token"].as_str().expect("id_token");
    let nonce = kept["nonce"].as_str().expect("nonce");

    let validator = provider.validator("contoso").await;
    let validated = validator
        .validate_id_token(id_token, "rs256-client", nonce)
        .await
        .expect("the provider's ID token");
    assert_eq!(validated.subject(), Some(USER));
    assert!(
        validator
            .validate_id_token(id_token, "rs256-client", "another nonce")
            .await
            .is_err()
    );
    assert!(
        validator
            .validate_id_token(id_token, "ps256-client", nonce)
            .await
            .is_err(),
        "an ID token for another client"
    );
    for forged in tampered(id_token) {
        assert!(
            validator
                .validate_id_token(&forged, "rs256-client", nonce)
                .await
                .is_err()
        );
    }
}

#[test]
fn the_cli_gets_a_token_with_ca_file() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let provider = runtime.block_on(start());
    let issuer = provider.issuer("contoso");
    let certificate = fixture_path("rsa2048.crt");
    let key = fixture_path("rsa2048.pkcs8.key");
    let token_command = |leading: &[&str]| {
        let mut command = Command::new(workspace_binary("confidant"));
        command
            .args(leading)
            .args([
                "token",
                "--authority",
                &issuer,
                "--client-id",
                "rs256-client",
            ])
            .args(["--certificate", certificate.to_str().expect("UTF-8")])
            .args(["--key", key.to_str().expect("UTF-8")])
            .args(["--alg", "RS256", "--scope", API_SCOPE, "--json"])
            .env_remove("AZURE_CLIENT_SECRET")
            .env_remove("AZURE_TENANT_ID");
        command.output().expect("the CLI runs")
    };

    let output = token_command(&["--ca-file", provider.ca_file.to_str().expect("UTF-8")]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let token = result["access_token"].as_str().expect("access_token");
    runtime.block_on(async {
        provider
            .validator("contoso")
            .await
            .validate(token)
            .await
            .expect("the CLI's token validates");
    });

    // Without the CA the provider is not trusted: exit code 3 (network).
    assert_eq!(token_command(&[]).status.code(), Some(3));
}

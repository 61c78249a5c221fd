//! Every client flow at `trace`, with the process's global subscriber capturing all output:
//! no secret it handled appears in a log line, nor in the `Debug` of what it returns.
//! Client secret, assertion, access, refresh and ID tokens, authorization code, PKCE verifier,
//! on-behalf-of assertion, managed-identity token, token-store document.
//!
//! Its own test binary with one test, for the same reason as `tests/logging.rs`.

#[path = "common/capture.rs"]
mod capture;

use std::sync::Arc;

use capture::Capture;
use confidant::cache::FileStore;
use confidant::{
    Authority, AuthorizationRequest, AuthorizationResponse, ConfidentialClient, ManagedIdentity,
    PemSigner,
};
use confidant_testkit::{
    AppConfig, Config, Endpoint, ManagedIdentityConfig, TenantConfig, TestCertificate, Testkit,
    UserConfig,
};

const TID: &str = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b";
const WEB: &str = "6f7a8b9c-0d1e-4f2a-9b3c-4d5e6f7a8b9c";
const API: &str = "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d";
const SERVICE: &str = "8b9c0d1e-2f3a-4b4c-9d5e-6f7a8b9c0d1e";
const SECRET: &str = "client-secret-that-must-not-leak";
const REDIRECT: &str = "http://localhost/callback";

#[tokio::test]
async fn every_flow_at_trace_logs_no_secret() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(capture.clone()).expect("the only subscriber");

    let certificate = TestCertificate::generate("logging-service").expect("certificate");
    let config = Config::default()
        .tenant(TenantConfig::new(TID, &["contoso.onmicrosoft.com"]))
        .app(
            AppConfig::new(API, TID)
                .identifier_uri(format!("api://{API}"))
                .scopes(&["Accounts.Read"]),
        )
        .app(
            AppConfig::new(WEB, TID)
                .secret(SECRET)
                .redirect_uri(REDIRECT),
        )
        .app(AppConfig::new(SERVICE, TID).certificate(certificate.cert_pem.clone()))
        .user(UserConfig::new("alice@contoso.com", TID))
        .managed_identity(ManagedIdentityConfig::system_assigned(TID));
    let testkit = Testkit::builder()
        .config(config)
        .start()
        .await
        .expect("testkit");
    let authority = Authority::entra_at(testkit.base_url(), TID).expect("authority");
    let dir = std::env::temp_dir().join(format!("confidant-logging-{}", uuid::Uuid::new_v4()));
    let mut secrets: Vec<String> = vec![SECRET.to_owned()];
    let mut debugs: Vec<String> = Vec::new();

    // Client credentials with a secret, through a file store.
    let web = ConfidentialClient::builder(authority.clone(), WEB)
        .client_secret(SECRET)
        .token_store(Arc::new(FileStore::new(&dir).expect("store")))
        .build()
        .expect("client");
    let app = web
        .acquire_token_for_client(&[format!("api://{API}/.default")])
        .await
        .expect("app token");
    secrets.push(app.access_token().expose_secret().to_owned());
    debugs.push(format!("{web:?} {app:?}"));
    let again = web
        .acquire_token_for_client(&[format!("api://{API}/.default")])
        .await
        .expect("app token");
    assert!(again.is_from_cache());

    // A certificate: the assertion it signs.
    let signer = PemSigner::from_pem(
        certificate.cert_pem.as_bytes(),
        certificate.key_pem.as_bytes(),
    )
    .expect("signer");
    let service = ConfidentialClient::builder(authority.clone(), SERVICE)
        .certificate(Arc::new(signer))
        .build()
        .expect("client");
    let service_token = service
        .acquire_token_for_client(&[format!("api://{API}/.default")])
        .await
        .expect("service token");
    secrets.push(service_token.access_token().expose_secret().to_owned());
    secrets.extend(
        testkit
            .requests(Endpoint::Token)
            .iter()
            .filter_map(|r| r.form_value("client_assertion")),
    );
    debugs.push(format!("{service:?} {service_token:?}"));

    // The authorization code flow, silent refresh and on-behalf-of.
    let (url, flow) = web
        .authorization_url(
            &AuthorizationRequest::new(REDIRECT, &[format!("api://{API}/Accounts.Read")])
                .login_hint("alice@contoso.com"),
        )
        .expect("URL");
    let flow_json = serde_json::to_value(&flow).expect("flow");
    secrets.push(
        flow_json["code_verifier"]
            .as_str()
            .expect("verifier")
            .to_owned(),
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http");
    let location = http
        .get(url.as_str())
        .send()
        .await
        .expect("authorize")
        .headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let query = url::Url::parse(&location)
        .expect("URL")
        .query()
        .unwrap_or_default()
        .to_owned();
    let callback = AuthorizationResponse::from_form(&query);
    secrets.push(callback.code.clone().expect("code"));
    let user = web
        .acquire_token_by_auth_code(&flow, &callback)
        .await
        .expect("signed in");
    secrets.push(user.access_token().expose_secret().to_owned());
    let account = user.account().cloned().expect("account");
    let refreshed = web
        .acquire_token_silent_with(
            &account,
            &confidant::TokenRequest::new(&[format!("api://{API}/Accounts.Read")])
                .force_refresh(true),
        )
        .await
        .expect("refreshed");
    secrets.push(refreshed.access_token().expose_secret().to_owned());
    debugs.push(format!(
        "{flow:?} {callback:?} {user:?} {refreshed:?} {web:?}"
    ));
    let middle = ConfidentialClient::builder(authority.clone(), WEB)
        .client_secret(SECRET)
        .build()
        .expect("client");
    let obo = middle
        .acquire_token_on_behalf_of(
            user.access_token().expose_secret(),
            &[format!("api://{API}/Accounts.Read")],
        )
        .await;
    debugs.push(format!("{obo:?}"));
    if let Ok(obo) = &obo {
        secrets.push(obo.access_token().expose_secret().to_owned());
    }

    // Managed identity.
    let identity = ManagedIdentity::builder()
        .imds_endpoint(testkit.imds_endpoint())
        .build()
        .expect("identity");
    let mi = identity
        .acquire_token("https://vault.azure.net")
        .await
        .expect("MI token");
    secrets.push(mi.access_token().expose_secret().to_owned());
    debugs.push(format!("{identity:?} {mi:?}"));

    // Everything the token endpoint answered: refresh and ID tokens included.
    let document = web.serialize_cache().expect("cache");
    let cache: serde_json::Value = serde_json::from_str(&document).expect("JSON");
    for section in ["RefreshToken", "IdToken", "AccessToken"] {
        for entry in cache[section]
            .as_object()
            .into_iter()
            .flat_map(|o| o.values())
        {
            if let Some(secret) = entry["secret"].as_str() {
                secrets.push(secret.to_owned());
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    let logged = capture.0.lock().expect("lock").join("\n");
    assert!(
        logged.contains("TRACE") || logged.contains("DEBUG"),
        "flows were traced"
    );
    // What is logged instead: every network call in a span with its purpose, host, path,
    // correlation id, status and duration; the cache's and the store's decisions.
    for purpose in ["token", "discovery", "jwks", "managed_identity"] {
        assert!(
            logged.lines().any(|l| l.starts_with("span confidant.http")
                && l.contains(&format!("purpose=\"{purpose}\""))),
            "no confidant.http span for {purpose}"
        );
    }
    for field in [
        "correlation_id=",
        "host=\"127.0.0.1\"",
        "status=200",
        "duration_ms=",
    ] {
        assert!(logged.contains(field), "no {field} in the HTTP spans");
    }
    for decision in [
        "token cache miss",
        "token from cache",
        "token store load",
        "token store update",
    ] {
        assert!(logged.contains(decision), "no {decision:?} event");
    }
    let debug = debugs.join("\n");
    assert!(secrets.len() >= 10, "{}", secrets.len());
    for secret in &secrets {
        // Long secrets: any 24-character piece would do; check the middle one.
        let probe = if secret.len() > 48 {
            &secret[secret.len() / 2 - 12..secret.len() / 2 + 12]
        } else {
            secret.as_str()
        };
        assert!(!logged.contains(probe), "a secret was logged");
        assert!(!debug.contains(probe), "a secret is in a Debug output");
    }
}

//! The client-credentials flow against the testkit over real HTTP.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use confidant::credential::AssertionCallback;
use confidant::http::ReqwestClient;
use confidant::{
    Authority, ClientAssertionBuilder, ConfidentialClient, ErrorKind, ManualClock, PemSigner,
    Pkcs12Signer, ServerErrorClass, TokenCache, TokenRequest,
};
use confidant_testkit::{AppConfig, Config, Endpoint, Fault, TestCa, TestCertificate, Testkit};

use crate::support::{fixture, password};

const TENANT: &str = "contoso";
const CLIENT: &str = "11111111-1111-1111-1111-111111111111";
const API: &str = "22222222-2222-2222-2222-222222222222";
const SCOPE: &str = "api://22222222-2222-2222-2222-222222222222/.default";
const SECRET: &str = "test-secret-value";

fn api_app() -> AppConfig {
    AppConfig::new(API, TENANT).app_roles(&["Accounts.Read", "Accounts.Write"])
}

async fn testkit_with(client: AppConfig) -> Testkit {
    let config = Config::default().app(api_app()).app(client);
    Testkit::builder()
        .config(config)
        .start()
        .await
        .expect("testkit starts")
}

fn authority(testkit: &Testkit) -> Authority {
    Authority::entra_at(testkit.base_url(), TENANT).expect("authority")
}

fn fast(builder: confidant::ClientBuilder<confidant::WithCredential>) -> ConfidentialClient {
    builder
        .retry_delay(Duration::from_millis(10))
        .build()
        .expect("client builds")
}

fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64url")).expect("JSON")
}

fn secret_client(testkit: &Testkit) -> ConfidentialClient {
    fast(ConfidentialClient::builder(authority(testkit), CLIENT).client_secret(SECRET))
}

#[tokio::test]
async fn secret_gets_a_v2_app_token_then_a_cache_hit() {
    let testkit = testkit_with(
        AppConfig::new(CLIENT, TENANT)
            .secret(SECRET)
            .grant_roles(API, &["Accounts.Read"]),
    )
    .await;
    let client = secret_client(&testkit);
    let first = client
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect("token");
    assert!(!first.is_from_cache());
    let c = claims(first.access_token().expose_secret());
    assert_eq!(c["aud"], API);
    assert_eq!(c["azp"], CLIENT);
    assert_eq!(c["azpacr"], "1");
    assert_eq!(c["idtyp"], "app");
    assert_eq!(c["ver"], "2.0");
    assert_eq!(c["tid"], testkit.tenant_id(TENANT));
    assert_eq!(c["iss"], testkit.issuer(TENANT));
    assert_eq!(c["roles"], serde_json::json!(["Accounts.Read"]));

    let second = client
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect("cached");
    assert!(second.is_from_cache());
    assert_eq!(
        second.access_token().expose_secret(),
        first.access_token().expose_secret()
    );
    assert_eq!(testkit.request_count(Endpoint::Token), 1);
}

#[tokio::test]
async fn wire_form_and_headers_are_exact() {
    let testkit = testkit_with(
        AppConfig::new(CLIENT, TENANT)
            .certificate(String::from_utf8(fixture("rsa2048.crt")).expect("pem")),
    )
    .await;
    let signer = PemSigner::from_pem(&fixture("rsa2048.crt"), &fixture("rsa2048.pkcs8.key"))
        .expect("signer");
    let client = fast(
        ConfidentialClient::builder(authority(&testkit), CLIENT).certificate(Arc::new(signer)),
    );
    client
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect("token");
    let request = testkit.requests(Endpoint::Token).pop().expect("recorded");
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(request.header("accept"), Some("application/json"));
    assert_eq!(request.header("x-client-sku"), Some("confidant.rust"));
    assert_eq!(request.header("return-client-request-id"), Some("true"));
    assert_eq!(
        request.header("x-ms-lib-capability"),
        Some("retry-after, h429")
    );
    assert!(uuid::Uuid::parse_str(request.header("client-request-id").expect("id")).is_ok());
    let names: Vec<String> = request.form().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "client_id",
            "grant_type",
            "client_info",
            "scope",
            "client_assertion_type",
            "client_assertion"
        ]
    );
    assert_eq!(
        request.form_value("grant_type").as_deref(),
        Some("client_credentials")
    );
    assert_eq!(request.form_value("scope").as_deref(), Some(SCOPE));
    assert_eq!(
        request.form_value("client_assertion_type").as_deref(),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    let assertion = request.form_value("client_assertion").expect("assertion");
    let a = claims(&assertion);
    assert_eq!(a["aud"], testkit.token_endpoint(TENANT));
    assert!(request.form_value("client_secret").is_none());
}

#[tokio::test]
async fn certificates_in_every_form_authenticate() {
    let rsa_pem = String::from_utf8(fixture("rsa2048.crt")).expect("pem");
    let ec_pem = String::from_utf8(fixture("ec-p256.crt")).expect("pem");
    let testkit = testkit_with(
        AppConfig::new(CLIENT, TENANT)
            .certificate(rsa_pem)
            .certificate(ec_pem),
    )
    .await;
    let pem =
        PemSigner::from_pem(&fixture("rsa2048.crt"), &fixture("rsa2048.pkcs1.key")).expect("PEM");
    let pfx =
        Pkcs12Signer::from_pkcs12(&fixture("rsa2048.legacy.pfx"), Some(&password())).expect("PFX");
    let ec =
        PemSigner::from_pem(&fixture("ec-p256.crt"), &fixture("ec-p256.sec1.key")).expect("EC");
    let signers: Vec<Arc<dyn confidant::Signer>> = vec![Arc::new(pem), Arc::new(pfx), Arc::new(ec)];
    for signer in signers {
        let client =
            fast(ConfidentialClient::builder(authority(&testkit), CLIENT).certificate(signer));
        let token = client
            .acquire_token_for_client(&[SCOPE])
            .await
            .expect("certificate accepted");
        assert_eq!(claims(token.access_token().expose_secret())["azpacr"], "2");
    }
}

#[tokio::test]
async fn subject_name_and_issuer_with_x5c() {
    let ca = TestCa::generate("confidant-test-issuing-ca").expect("CA");
    let leaf = ca.issue("app.contoso.test").expect("leaf");
    let config = Config::default()
        .certificate_authority(ca.cert_pem.clone())
        .app(api_app())
        .app(
            AppConfig::new(CLIENT, TENANT)
                .trusted_subject(leaf.subject.clone(), ca.subject.clone()),
        );
    let testkit = Testkit::builder()
        .config(config)
        .start()
        .await
        .expect("testkit");
    let signer = PemSigner::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes())
        .expect("leaf signer");
    assert_eq!(signer.certificate().chain().len(), 2);
    let without = fast(
        ConfidentialClient::builder(authority(&testkit), CLIENT).certificate(Arc::new(
            PemSigner::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).expect("signer"),
        )),
    );
    let err = without
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect_err("no x5c, no thumbprint registration");
    assert!(err.is_invalid_client(), "{err}");
    let client = fast(
        ConfidentialClient::builder(authority(&testkit), CLIENT)
            .certificate(Arc::new(signer))
            .send_x5c(true),
    );
    client
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect("x5c accepted");
}

#[tokio::test]
async fn refused_credentials_are_typed() {
    let registered = TestCertificate::generate("registered").expect("cert");
    let other = TestCertificate::generate("other").expect("cert");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let testkit = testkit_with(
        AppConfig::new(CLIENT, TENANT)
            .certificate(registered.cert_pem.clone())
            .secret_expiring("old-secret", now - 60),
    )
    .await;

    // A certificate that is not registered.
    let wrong =
        PemSigner::from_pem(other.cert_pem.as_bytes(), other.key_pem.as_bytes()).expect("signer");
    let client =
        fast(ConfidentialClient::builder(authority(&testkit), CLIENT).certificate(Arc::new(wrong)));
    let err = client
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect_err("unregistered certificate");
    assert_eq!(
        err.kind(),
        ErrorKind::Server(ServerErrorClass::InvalidClient)
    );
    assert_eq!(err.server_error().and_then(|e| e.aadsts()), Some(700027));
    assert!(err.server_error().and_then(|e| e.trace_id()).is_some());

    // An assertion signed an hour ago has expired.
    let signer = Arc::new(
        PemSigner::from_pem(
            registered.cert_pem.as_bytes(),
            registered.key_pem.as_bytes(),
        )
        .expect("signer"),
    );
    let past = Arc::new(ManualClock::new(
        SystemTime::now() - Duration::from_secs(3600),
    ));
    let stale = fast(
        ConfidentialClient::builder(authority(&testkit), CLIENT)
            .certificate(signer.clone())
            .clock(past),
    );
    let err = stale
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect_err("expired assertion");
    assert_eq!(
        err.server_error().and_then(|e| e.aadsts()),
        Some(700024),
        "{err}"
    );

    // The same assertion twice, and one for another audience.
    let endpoint = testkit.token_endpoint(TENANT);
    let fixed = ClientAssertionBuilder::new(CLIENT, endpoint.clone())
        .sign(signer.as_ref())
        .await
        .expect("assertion");
    let fixed = fixed.expose_secret().to_owned();
    let replaying = fast(
        ConfidentialClient::builder(authority(&testkit), CLIENT).client_assertion(
            AssertionCallback::new(move |_| {
                let jwt = fixed.clone();
                async move { Ok::<_, std::convert::Infallible>(jwt) }
            }),
        ),
    );
    replaying
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect("first use");
    let err = replaying
        .acquire_token_for_client_with(&TokenRequest::new(&[SCOPE]).force_refresh(true))
        .await
        .expect_err("replayed jti");
    assert!(err.is_invalid_client(), "{err}");

    let misdirected = ClientAssertionBuilder::new(CLIENT, "https://login.example.com/token")
        .sign(signer.as_ref())
        .await
        .expect("assertion");
    let misdirected = misdirected.expose_secret().to_owned();
    let client = fast(
        ConfidentialClient::builder(authority(&testkit), CLIENT).client_assertion(
            AssertionCallback::new(move |_| {
                let jwt = misdirected.clone();
                async move { Ok::<_, std::convert::Infallible>(jwt) }
            }),
        ),
    );
    let err = client
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect_err("wrong audience");
    assert_eq!(
        err.server_error().and_then(|e| e.aadsts()),
        Some(700023),
        "{err}"
    );

    // Unknown client, wrong and expired secrets.
    let unknown = fast(
        ConfidentialClient::builder(authority(&testkit), "33333333-3333-3333-3333-333333333333")
            .client_secret("x"),
    );
    let err = unknown
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect_err("unknown client");
    assert_eq!(
        err.kind(),
        ErrorKind::Server(ServerErrorClass::UnauthorizedClient)
    );
    let wrong_secret =
        fast(ConfidentialClient::builder(authority(&testkit), CLIENT).client_secret("nope"));
    let err = wrong_secret
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect_err("wrong secret");
    assert_eq!(err.server_error().and_then(|e| e.aadsts()), Some(7000215));
    assert!(!err.to_string().contains("nope"));
    let expired =
        fast(ConfidentialClient::builder(authority(&testkit), CLIENT).client_secret("old-secret"));
    let err = expired
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect_err("expired secret");
    assert_eq!(err.server_error().and_then(|e| e.aadsts()), Some(7000222));
    assert!(err.is_rejected() && !err.is_retryable());

    // Bad scopes.
    let client =
        fast(ConfidentialClient::builder(authority(&testkit), CLIENT).client_secret("old-secret"));
    let err = client
        .acquire_token_for_client(&["api://nowhere/.default"])
        .await
        .expect_err("unknown resource");
    assert!(
        matches!(
            err.kind(),
            ErrorKind::Server(ServerErrorClass::InvalidScope)
                | ErrorKind::Server(ServerErrorClass::InvalidClient)
        ),
        "{err}"
    );
}

#[tokio::test]
async fn unknown_resources_and_bad_scopes_are_invalid_scope() {
    let testkit = testkit_with(AppConfig::new(CLIENT, TENANT).secret(SECRET)).await;
    let client = secret_client(&testkit);
    let err = client
        .acquire_token_for_client(&["api://nowhere/.default"])
        .await
        .expect_err("unknown resource");
    assert_eq!(
        err.kind(),
        ErrorKind::Server(ServerErrorClass::InvalidScope)
    );
    let err = client
        .acquire_token_for_client(&[format!("api://{API}/Accounts.Read")])
        .await
        .expect_err("not .default");
    assert_eq!(err.server_error().and_then(|e| e.aadsts()), Some(1002012));
    let token = client
        .acquire_token_for_client(&["https://vault.azure.net/.default"])
        .await
        .expect("first party");
    let c = claims(token.access_token().expose_secret());
    assert_eq!(c["ver"], "1.0");
    assert_eq!(c["aud"], "https://vault.azure.net");
    assert_eq!(c["appidacr"], "1");
}

#[tokio::test]
async fn retry_after_is_honoured_without_calling_again() {
    let testkit = testkit_with(AppConfig::new(CLIENT, TENANT).secret(SECRET)).await;
    testkit.inject(Endpoint::Token, Fault::throttled(30), 1);
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let client = fast(
        ConfidentialClient::builder(authority(&testkit), CLIENT)
            .client_secret(SECRET)
            .clock(clock.clone()),
    );
    let err = client
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect_err("throttled");
    assert!(err.is_throttled() && err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    let err = client
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect_err("still throttled");
    assert!(err.is_throttled());
    assert!(
        err.retry_after()
            .is_some_and(|d| d <= Duration::from_secs(30))
    );
    assert_eq!(
        testkit.request_count(Endpoint::Token),
        1,
        "no request while Retry-After runs"
    );
    clock.advance(Duration::from_secs(31));
    client
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect("after Retry-After");
    assert_eq!(testkit.request_count(Endpoint::Token), 2);
}

#[tokio::test]
async fn one_503_is_retried_three_are_an_error() {
    let testkit = testkit_with(AppConfig::new(CLIENT, TENANT).secret(SECRET)).await;
    let client = secret_client(&testkit);
    testkit.inject(Endpoint::Token, Fault::status(503), 1);
    client
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect("retried once");
    assert_eq!(testkit.request_count(Endpoint::Token), 2);

    testkit.reset_counters();
    testkit.inject(Endpoint::Token, Fault::status(503), 3);
    let err = client
        .acquire_token_for_client_with(&TokenRequest::new(&[SCOPE]).force_refresh(true))
        .await
        .expect_err("503 twice");
    assert_eq!(
        err.kind(),
        ErrorKind::Server(ServerErrorClass::ServiceUnavailable)
    );
    assert!(err.is_retryable());
    assert_eq!(
        testkit.request_count(Endpoint::Token),
        2,
        "one retry, not more"
    );
}

#[tokio::test]
async fn garbage_truncated_dropped_and_slow_responses_are_typed() {
    let testkit = testkit_with(AppConfig::new(CLIENT, TENANT).secret(SECRET)).await;
    let http = Arc::new(
        ReqwestClient::builder()
            .timeout(Duration::from_millis(300))
            .build()
            .expect("http"),
    );
    let client = fast(
        ConfidentialClient::builder(authority(&testkit), CLIENT)
            .client_secret(SECRET)
            .http_client(http),
    );
    let force = TokenRequest::new(&[SCOPE]).force_refresh(true);

    testkit.inject(Endpoint::Token, Fault::Garbage, 1);
    let err = client
        .acquire_token_for_client_with(&force)
        .await
        .expect_err("garbage");
    assert!(err.is_invalid_response(), "{err}");

    testkit.inject(Endpoint::Token, Fault::Truncated, 2);
    let err = client
        .acquire_token_for_client_with(&force)
        .await
        .expect_err("truncated");
    assert!(err.is_transport(), "{err}");

    testkit.inject(Endpoint::Token, Fault::CloseConnection, 2);
    let err = client
        .acquire_token_for_client_with(&force)
        .await
        .expect_err("dropped");
    assert!(err.is_transport(), "{err}");

    testkit.inject(Endpoint::Token, Fault::Delay(Duration::from_secs(2)), 2);
    let err = client
        .acquire_token_for_client_with(&force)
        .await
        .expect_err("slow");
    assert!(err.is_transport() && err.is_retryable(), "{err}");

    client
        .acquire_token_for_client_with(&force)
        .await
        .expect("healthy again");
}

#[tokio::test]
async fn a_hundred_concurrent_callers_cause_one_request() {
    let testkit = testkit_with(AppConfig::new(CLIENT, TENANT).secret(SECRET)).await;
    testkit.inject(Endpoint::Token, Fault::Delay(Duration::from_millis(200)), 1);
    let client = secret_client(&testkit);
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            client.acquire_token_for_client(&[SCOPE]).await
        }));
    }
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(
            task.await
                .expect("task")
                .expect("token")
                .access_token()
                .expose_secret()
                .to_owned(),
        );
    }
    assert!(
        tokens.windows(2).all(|w| w[0] == w[1]),
        "everyone got the same token"
    );
    assert_eq!(testkit.request_count(Endpoint::Token), 1);
}

#[tokio::test]
async fn concurrent_callers_share_one_error_and_a_cancelled_caller_strands_no_one() {
    let testkit = testkit_with(AppConfig::new(CLIENT, TENANT).secret(SECRET)).await;
    let client = secret_client(&testkit);

    // The assertion takes 200 ms to make, inside the one request every caller joins, and is
    // refused: all twenty callers get that one error.
    let slow_and_wrong = fast(
        ConfidentialClient::builder(authority(&testkit), CLIENT).client_assertion(
            AssertionCallback::new(|_| async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok::<_, std::convert::Infallible>("not-a-jwt".to_owned())
            }),
        ),
    );
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let client = slow_and_wrong.clone();
        tasks.push(tokio::spawn(async move {
            client.acquire_token_for_client(&[SCOPE]).await
        }));
    }
    for task in tasks {
        let err = task.await.expect("task").expect_err("shared error");
        assert_eq!(err.server_error().map(|e| e.status()), Some(400), "{err}");
    }
    assert_eq!(testkit.request_count(Endpoint::Token), 1);

    testkit.reset_counters();
    testkit.inject(Endpoint::Token, Fault::Delay(Duration::from_millis(300)), 1);
    let first = client.clone();
    let cancelled = tokio::time::timeout(Duration::from_millis(50), async move {
        first.acquire_token_for_client(&[SCOPE]).await
    })
    .await;
    assert!(cancelled.is_err(), "the first caller gave up");
    let token = client
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect("the request went on");
    assert!(!token.access_token().expose_secret().is_empty());
    assert_eq!(testkit.request_count(Endpoint::Token), 1);
}

#[tokio::test]
async fn no_cross_tenant_or_cross_scope_hits() {
    let testkit = testkit_with(
        AppConfig::new(CLIENT, TENANT)
            .secret(SECRET)
            .consented_in("fabrikam"),
    )
    .await;
    let cache = Arc::new(TokenCache::default());
    let contoso = fast(
        ConfidentialClient::builder(authority(&testkit), CLIENT)
            .client_secret(SECRET)
            .cache(cache.clone()),
    );
    let fabrikam = fast(
        ConfidentialClient::builder(
            Authority::entra_at(testkit.base_url(), "fabrikam").expect("authority"),
            CLIENT,
        )
        .client_secret(SECRET)
        .cache(cache.clone()),
    );
    let a = contoso
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect("contoso");
    let b = fabrikam
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect("fabrikam");
    assert!(!b.is_from_cache());
    assert_ne!(
        claims(a.access_token().expose_secret())["tid"],
        claims(b.access_token().expose_secret())["tid"]
    );
    let vault = contoso
        .acquire_token_for_client(&["https://vault.azure.net/.default"])
        .await
        .expect("vault");
    assert!(!vault.is_from_cache());
    assert_eq!(testkit.request_count(Endpoint::Token), 3);
    assert_eq!(cache.len(), 3);
    assert!(
        contoso
            .acquire_token_for_client(&[SCOPE.to_uppercase()])
            .await
            .expect("case-insensitive")
            .is_from_cache()
    );
}

/// A testkit issuing two-hour tokens (so `refresh_in` is one hour) and a secret client, both
/// reading one manual clock.
async fn two_hour_tokens_on_a_shared_clock() -> (Testkit, ConfidentialClient, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let testkit_clock = clock.clone();
    let config = Config::default()
        .token_lifetime_secs(7200)
        .app(api_app())
        .app(AppConfig::new(CLIENT, TENANT).secret(SECRET));
    let testkit = Testkit::builder()
        .config(config)
        .clock(Arc::new(move || {
            confidant::Clock::now(testkit_clock.as_ref())
        }))
        .start()
        .await
        .expect("testkit");
    let client = fast(
        ConfidentialClient::builder(authority(&testkit), CLIENT)
            .client_secret(SECRET)
            .clock(clock.clone()),
    );
    (testkit, client, clock)
}

#[tokio::test]
async fn expiry_buffer_and_proactive_refresh() {
    let (testkit, client, clock) = two_hour_tokens_on_a_shared_clock().await;
    let first = client
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect("token");
    assert_eq!(
        first.token().refresh_on(),
        Some(first.token().cached_at() + Duration::from_secs(3600))
    );

    // Past refresh_on: the valid token is returned at once and a refresh runs in the background.
    clock.advance(Duration::from_secs(3601));
    let hit = client
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect("still valid");
    assert!(hit.is_from_cache());
    assert_eq!(
        hit.access_token().expose_secret(),
        first.access_token().expose_secret()
    );
    for _ in 0..100 {
        if testkit.request_count(Endpoint::Token) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        testkit.request_count(Endpoint::Token),
        2,
        "one background refresh"
    );
    let refreshed = client
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect("refreshed");
    assert!(refreshed.is_from_cache());
    assert_ne!(
        refreshed.access_token().expose_secret(),
        first.access_token().expose_secret()
    );

    // Within the 300 s buffer of expiry, the cache no longer serves the token.
    clock.advance(Duration::from_secs(7200 - 299));
    let renewed = client
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect("renewed");
    assert!(!renewed.is_from_cache());
}

#[tokio::test]
async fn a_failing_proactive_refresh_is_not_retried_on_every_hit() {
    let (testkit, client, clock) = two_hour_tokens_on_a_shared_clock().await;
    client
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect("token");
    clock.advance(Duration::from_secs(3601));
    testkit.inject(Endpoint::Token, Fault::status(400), 10);
    for _ in 0..10 {
        let hit = client
            .acquire_token_for_client(&[SCOPE])
            .await
            .expect("the valid token is still served");
        assert!(hit.is_from_cache());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        testkit.request_count(Endpoint::Token),
        2,
        "one failed refresh, not one per hit"
    );
    clock.advance(Duration::from_secs(61));
    client
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect("hit");
    for _ in 0..50 {
        if testkit.request_count(Endpoint::Token) == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        testkit.request_count(Endpoint::Token),
        3,
        "retried after a minute"
    );
}

/// A multi-tenant app whose authority is `organizations` names the tenant per request (MSAL's
/// `WithTenantId`): its certificate assertions are aimed at that tenant's token endpoint, its
/// tokens are cached under that tenant, and a tenant where it is not consented is refused.
#[tokio::test]
async fn a_request_names_the_tenant_of_a_multi_tenant_app() {
    let cert = TestCertificate::generate("multi-tenant").expect("cert");
    let testkit = testkit_with(
        AppConfig::new(CLIENT, TENANT)
            .certificate(cert.cert_pem.clone())
            .consented_in("fabrikam"),
    )
    .await;
    let signer =
        PemSigner::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()).expect("signer");
    let organizations =
        Authority::entra_at(testkit.base_url(), "organizations").expect("authority");
    let client =
        fast(ConfidentialClient::builder(organizations, CLIENT).certificate(Arc::new(signer)));

    // App tokens need a real tenant: Entra refuses `organizations` (AADSTS50059).
    let err = client
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect_err("no tenant");
    assert_eq!(err.server_error().and_then(|e| e.aadsts()), Some(50059));

    let in_fabrikam = TokenRequest::new(&[SCOPE]).tenant("fabrikam");
    let fabrikam = client
        .acquire_token_for_client_with(&in_fabrikam)
        .await
        .expect("a token in the tenant where the app is consented");
    assert!(!fabrikam.is_from_cache());
    assert_eq!(
        claims(fabrikam.access_token().expose_secret())["tid"],
        testkit.tenant_id("fabrikam")
    );
    let contoso = client
        .acquire_token_for_client_with(&TokenRequest::new(&[SCOPE]).tenant("CONTOSO"))
        .await
        .expect("the home tenant");
    assert_eq!(
        claims(contoso.access_token().expose_secret())["tid"],
        testkit.tenant_id(TENANT)
    );
    assert_eq!(testkit.request_count(Endpoint::Token), 3);

    // Cached per tenant, and shared with the client `for_tenant` gives (same cache).
    let again = client
        .acquire_token_for_client_with(&in_fabrikam)
        .await
        .expect("again");
    assert!(again.is_from_cache());
    assert_eq!(
        again.access_token().expose_secret(),
        fabrikam.access_token().expose_secret()
    );
    let derived = client.for_tenant("fabrikam").expect("derived");
    assert_eq!(
        derived.authority().token_endpoint().as_str(),
        format!("{}/fabrikam/oauth2/v2.0/token", testkit.base_url())
    );
    assert!(
        derived
            .acquire_token_for_client(&[SCOPE])
            .await
            .expect("derived")
            .is_from_cache()
    );
    assert_eq!(testkit.request_count(Endpoint::Token), 3);

    // Not consented there: the authority refuses (AADSTS700016), nothing is cached.
    let err = client
        .acquire_token_for_client_with(&TokenRequest::new(&[SCOPE]).tenant("northwind"))
        .await
        .expect_err("not consented");
    assert_eq!(err.server_error().and_then(|e| e.aadsts()), Some(700016));

    // A tenant that is not one path segment is refused before anything is sent.
    for bad in ["", "../contoso", "a/b", "fabrikam?x=1"] {
        let err = client
            .acquire_token_for_client_with(&TokenRequest::new(&[SCOPE]).tenant(bad))
            .await
            .expect_err("bad tenant");
        assert_eq!(err.kind(), ErrorKind::InvalidEndpoint, "{bad:?}");
    }
    assert_eq!(testkit.request_count(Endpoint::Token), 4);
}

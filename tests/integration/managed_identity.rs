//! `ManagedIdentity` against the testkit's IMDS and App Service endpoints: the wire shape,
//! user-assigned identities kept apart, WIRE.md section 6's retry table counted request by
//! request, the cache's half-life refresh and one request per expiry.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use confidant::credential::RetryPolicy;
use confidant::{
    ErrorKind, ManagedIdentity, ManagedIdentityId, ManagedIdentitySource, ManualClock,
    TokenRequest, TokenSource,
};
use confidant_testkit::{Config, Endpoint, Fault, ManagedIdentityConfig, Testkit};

use crate::support::decode_parts;

const TENANT: &str = "contoso";
const VAULT: &str = "https://vault.azure.net";

async fn testkit() -> Testkit {
    let config = Config::default()
        .managed_identity(ManagedIdentityConfig::system_assigned(TENANT))
        .managed_identity(ManagedIdentityConfig::user_assigned(TENANT, "orders"))
        .managed_identity(ManagedIdentityConfig::user_assigned(TENANT, "billing"));
    Testkit::builder()
        .config(config)
        .start()
        .await
        .expect("testkit")
}

/// Seconds become milliseconds: 1→2→4 ms backoff, 10 ms per 410, 70 ms budget.
fn fast() -> RetryPolicy {
    RetryPolicy::default().scaled_down(1000)
}

fn imds(testkit: &Testkit, id: ManagedIdentityId) -> ManagedIdentity {
    ManagedIdentity::builder()
        .imds_endpoint(testkit.imds_endpoint())
        .id(id)
        .retry_policy(fast())
        .build()
        .expect("managed identity")
}

/// A variable lookup over these pairs, as `from_vars` takes it.
fn vars<const N: usize>(
    pairs: [(&'static str, String); N],
) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    }
}

fn claims(token: &confidant::AuthenticationResult) -> serde_json::Value {
    decode_parts(token.access_token().expose_secret()).1
}

#[tokio::test]
async fn imds_system_assigned_token_is_requested_once_and_cached() {
    let testkit = testkit().await;
    let identity = imds(&testkit, ManagedIdentityId::SystemAssigned);
    assert_eq!(identity.source(), ManagedIdentitySource::Imds);

    let first = identity
        .get_token(&["https://vault.azure.net/.default"])
        .await
        .expect("token");
    assert!(!first.is_from_cache());
    let system = testkit.managed_identity(None).expect("system identity");
    let c = claims(&first);
    assert_eq!(c["aud"], VAULT);
    assert_eq!(c["appid"], system.client_id.as_str());
    assert_eq!(c["oid"], system.object_id.as_str());
    assert_eq!(c["appidacr"], "2");
    assert_eq!(c["idtyp"], "app");
    assert_eq!(c["ver"], "1.0");
    let lifetime = first
        .expires_on()
        .duration_since(SystemTime::now())
        .expect("future");
    assert!(lifetime > Duration::from_secs(86_000), "{lifetime:?}");
    assert!(first.token().refresh_on().is_some(), "half-life refresh");

    let recorded = testkit.requests(Endpoint::Imds);
    assert_eq!(recorded.len(), 1);
    let request = &recorded[0];
    assert_eq!(request.method, "GET");
    assert_eq!(request.header("metadata"), Some("true"));
    let query = request.query.as_deref().expect("query");
    assert!(query.contains("api-version=2018-02-01"), "{query}");
    assert!(
        query.contains("resource=https%3A%2F%2Fvault.azure.net"),
        "{query}"
    );
    assert!(!query.contains("client_id"), "{query}");

    let second = identity.acquire_token(VAULT).await.expect("cached");
    assert!(second.is_from_cache());
    assert_eq!(testkit.request_count(Endpoint::Imds), 1);

    // A forced refresh or a claims challenge goes past the cache and replaces the token.
    for request in [
        TokenRequest::new(&[VAULT]).force_refresh(true),
        TokenRequest::new(&[VAULT]).claims(r#"{"access_token":{"nbf":{"essential":true}}}"#),
    ] {
        let fresh = identity.token(&request).await.expect("fresh");
        assert!(!fresh.is_from_cache());
        let cached = identity.acquire_token(VAULT).await.expect("cached");
        assert_eq!(
            cached.access_token().expose_secret(),
            fresh.access_token().expose_secret()
        );
    }
    assert_eq!(testkit.request_count(Endpoint::Imds), 3);
}

#[tokio::test]
async fn user_assigned_identities_are_kept_apart() {
    let testkit = testkit().await;
    let orders = testkit.managed_identity(Some("orders")).expect("orders");
    let billing = testkit.managed_identity(Some("billing")).expect("billing");
    let cache = Arc::new(confidant::TokenCache::default());
    let shared = |id| {
        ManagedIdentity::builder()
            .imds_endpoint(testkit.imds_endpoint())
            .id(id)
            .cache(Arc::clone(&cache))
            .build()
            .expect("identity")
    };
    let by_client = shared(ManagedIdentityId::ClientId(orders.client_id.clone()));
    let by_object = shared(ManagedIdentityId::ObjectId(billing.object_id.clone()));
    let by_resource = shared(ManagedIdentityId::ResourceId(orders.resource_id.clone()));
    let system = shared(ManagedIdentityId::SystemAssigned);

    let a = by_client.acquire_token(VAULT).await.expect("orders");
    let b = by_object.acquire_token(VAULT).await.expect("billing");
    let c = by_resource
        .acquire_token(VAULT)
        .await
        .expect("orders by resource id");
    let d = system.acquire_token(VAULT).await.expect("system");
    assert_eq!(claims(&a)["appid"], orders.client_id.as_str());
    assert_eq!(claims(&b)["appid"], billing.client_id.as_str());
    assert_eq!(claims(&c)["appid"], orders.client_id.as_str());
    assert_eq!(claims(&c)["xms_mirid"], orders.resource_id.as_str());
    assert_ne!(claims(&d)["appid"], orders.client_id.as_str());
    assert!(
        [&b, &c, &d].iter().all(|t| !t.is_from_cache()),
        "one shared cache, yet each identity got its own token"
    );
    assert_eq!(testkit.request_count(Endpoint::Imds), 4);
    let queries: Vec<String> = testkit
        .requests(Endpoint::Imds)
        .into_iter()
        .map(|r| r.query.unwrap_or_default())
        .collect();
    assert!(queries[0].contains(&format!("client_id={}", orders.client_id)));
    assert!(queries[1].contains(&format!("object_id={}", billing.object_id)));
    assert!(queries[2].contains("msi_res_id=%2Fsubscriptions%2F"));

    let unknown = imds(&testkit, ManagedIdentityId::ClientId("nobody".into()))
        .acquire_token(VAULT)
        .await
        .expect_err("unknown identity");
    let server = unknown.server_error().expect("server error");
    assert_eq!(server.status(), 400);
    assert_eq!(server.description(), Some("Identity not found"));
    assert_eq!(
        testkit.request_count(Endpoint::Imds),
        5,
        "400 is not retried"
    );
}

#[tokio::test]
async fn app_service_endpoint_with_its_header() {
    let testkit = testkit().await;
    let orders = testkit.managed_identity(Some("orders")).expect("orders");
    let identity = ManagedIdentity::builder()
        .from_vars(vars([
            ("IDENTITY_ENDPOINT", testkit.app_service_endpoint()),
            (
                "IDENTITY_HEADER",
                testkit.app_service_identity_header().to_owned(),
            ),
        ]))
        .id(ManagedIdentityId::ObjectId(orders.object_id.clone()))
        .retry_policy(fast())
        .build()
        .expect("identity");
    assert_eq!(identity.source(), ManagedIdentitySource::AppService);
    assert!(
        !format!("{identity:?}").contains(testkit.app_service_identity_header()),
        "the identity header is a secret"
    );
    let token = identity
        .acquire_token("https://management.azure.com/.default")
        .await
        .expect("token");
    assert_eq!(claims(&token)["aud"], "https://management.azure.com");
    assert_eq!(claims(&token)["appid"], orders.client_id.as_str());
    let request = &testkit.requests(Endpoint::AppService)[0];
    assert_eq!(
        request.header("x-identity-header"),
        Some(testkit.app_service_identity_header())
    );
    let query = request.query.as_deref().expect("query");
    assert!(query.contains("api-version=2019-08-01"), "{query}");
    assert!(
        query.contains(&format!("principal_id={}", orders.object_id)),
        "{query}"
    );

    let wrong = ManagedIdentity::builder()
        .app_service(testkit.app_service_endpoint(), "wrong-header")
        .retry_policy(fast())
        .build()
        .expect("identity");
    let error = wrong
        .acquire_token(VAULT)
        .await
        .expect_err("header refused");
    assert_eq!(error.server_error().map(|e| e.status()), Some(401));
    assert!(
        error
            .server_error()
            .and_then(|e| e.description())
            .is_some_and(|d| d.contains("X-IDENTITY-HEADER")),
        "{error:?}"
    );
    assert_eq!(
        testkit.request_count(Endpoint::AppService),
        2,
        "401 is not retried"
    );
}

#[tokio::test]
async fn transient_failures_are_retried_per_the_table() {
    let testkit = testkit().await;
    let identity = imds(&testkit, ManagedIdentityId::SystemAssigned);

    // 503, 503, 200: success after exactly three requests.
    testkit.inject(Endpoint::Imds, Fault::status(503), 2);
    identity
        .acquire_token(VAULT)
        .await
        .expect("third time lucky");
    assert_eq!(testkit.request_count(Endpoint::Imds), 3);

    // 404, 408, 429 and 500 are retried too; four failures exhaust the three retries.
    for status in [404, 408, 429, 500] {
        testkit.reset_counters();
        testkit.inject(Endpoint::Imds, Fault::status(status), 4);
        let error = imds(&testkit, ManagedIdentityId::SystemAssigned)
            .acquire_token(VAULT)
            .await
            .expect_err("retries exhausted");
        assert_eq!(error.server_error().map(|e| e.status()), Some(status));
        assert_eq!(testkit.request_count(Endpoint::Imds), 4, "status {status}");
    }

    // 400, 401 and 403 are answered at once.
    for status in [400, 401, 403] {
        testkit.reset_counters();
        testkit.inject(Endpoint::Imds, Fault::status(status), 1);
        let error = imds(&testkit, ManagedIdentityId::SystemAssigned)
            .acquire_token(VAULT)
            .await
            .expect_err("not retried");
        assert_eq!(error.server_error().map(|e| e.status()), Some(status));
        assert_eq!(testkit.request_count(Endpoint::Imds), 1, "status {status}");
    }

    // A 200 whose body is not a token: a typed error, not retried.
    testkit.reset_counters();
    testkit.inject(Endpoint::Imds, Fault::Garbage, 1);
    let error = imds(&testkit, ManagedIdentityId::SystemAssigned)
        .acquire_token(VAULT)
        .await
        .expect_err("garbage");
    assert_eq!(error.kind(), ErrorKind::InvalidResponse);
    assert_eq!(testkit.request_count(Endpoint::Imds), 1);

    // A dropped connection is retried.
    testkit.reset_counters();
    testkit.inject(Endpoint::Imds, Fault::CloseConnection, 1);
    imds(&testkit, ManagedIdentityId::SystemAssigned)
        .acquire_token(VAULT)
        .await
        .expect("retried after the dropped connection");
    assert_eq!(testkit.request_count(Endpoint::Imds), 2);
}

#[tokio::test]
async fn retry_after_replaces_the_backoff_up_to_its_cap() {
    let testkit = testkit().await;
    // Retry-After: 2 s against a 60 ms cap (the fast policy): the wait is capped, not skipped.
    testkit.inject(Endpoint::Imds, Fault::throttled(2), 1);
    let started = std::time::Instant::now();
    imds(&testkit, ManagedIdentityId::SystemAssigned)
        .acquire_token(VAULT)
        .await
        .expect("after the throttle");
    let waited = started.elapsed();
    assert_eq!(testkit.request_count(Endpoint::Imds), 2);
    assert!(waited >= Duration::from_millis(60), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
}

#[tokio::test]
async fn gone_is_retried_every_interval_within_the_budget() {
    let testkit = testkit().await;
    // 410, 410, 410, 200: IMDS is updating, then answers.
    testkit.inject(Endpoint::Imds, Fault::status(410), 3);
    imds(&testkit, ManagedIdentityId::SystemAssigned)
        .acquire_token(VAULT)
        .await
        .expect("after the update");
    assert_eq!(testkit.request_count(Endpoint::Imds), 4);

    // 410 for longer than the budget: 70 / 10 = 7 retries, 8 requests, then the error.
    testkit.reset_counters();
    testkit.inject(Endpoint::Imds, Fault::status(410), 20);
    let error = imds(&testkit, ManagedIdentityId::SystemAssigned)
        .acquire_token(VAULT)
        .await
        .expect_err("budget spent");
    assert_eq!(error.server_error().map(|e| e.status()), Some(410));
    assert_eq!(testkit.request_count(Endpoint::Imds), 8);
}

#[tokio::test]
async fn unreachable_imds_is_a_transport_error_after_the_retries() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let identity = ManagedIdentity::builder()
        .from_vars(vars([(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            format!("http://127.0.0.1:{port}"),
        )]))
        .retry_policy(fast())
        .build()
        .expect("identity");
    let error = identity
        .acquire_token(VAULT)
        .await
        .expect_err("unreachable");
    assert_eq!(error.kind(), ErrorKind::Transport);
}

#[tokio::test]
async fn concurrent_callers_share_one_request_and_refresh_starts_at_half_life() {
    let testkit = testkit().await;
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let identity = ManagedIdentity::builder()
        .imds_endpoint(testkit.imds_endpoint())
        .clock(Arc::clone(&clock) as Arc<dyn confidant::Clock>)
        .retry_policy(fast())
        .build()
        .expect("identity");
    testkit.inject(Endpoint::Imds, Fault::Delay(Duration::from_millis(100)), 1);
    let callers: Vec<_> = (0..20)
        .map(|_| {
            let identity = identity.clone();
            tokio::spawn(async move { identity.acquire_token(VAULT).await })
        })
        .collect();
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.expect("task").expect("token"));
    }
    assert_eq!(testkit.request_count(Endpoint::Imds), 1);
    let first = tokens[0].access_token().expose_secret().to_owned();
    assert!(
        tokens
            .iter()
            .all(|t| t.access_token().expose_secret() == first)
    );

    // Past half the lifetime: the valid token is still served, and one refresh starts.
    clock.advance(Duration::from_secs(12 * 3600 + 60));
    let served = identity.acquire_token(VAULT).await.expect("still valid");
    assert!(served.is_from_cache());
    assert_eq!(served.access_token().expose_secret(), first);
    for _ in 0..100 {
        if testkit.request_count(Endpoint::Imds) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        testkit.request_count(Endpoint::Imds),
        2,
        "one background refresh"
    );
    // The refreshed token replaces the old one in the cache.
    let mut refreshed = identity.acquire_token(VAULT).await.expect("refreshed");
    for _ in 0..100 {
        if refreshed.access_token().expose_secret() != first {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        refreshed = identity.acquire_token(VAULT).await.expect("refreshed");
    }
    assert_ne!(refreshed.access_token().expose_secret(), first);
    assert_eq!(testkit.request_count(Endpoint::Imds), 2);
}

#[tokio::test]
async fn misconfiguration_is_refused_before_any_request() {
    let error = ManagedIdentity::builder()
        .imds_endpoint("http://metadata.example/metadata/identity/oauth2/token")
        .build()
        .expect_err("http to a public host");
    assert_eq!(error.kind(), ErrorKind::InvalidEndpoint);
    let error = ManagedIdentity::builder()
        .from_vars(vars([
            ("IDENTITY_ENDPOINT", "https://10.0.0.4:2377/".to_owned()),
            ("IDENTITY_HEADER", "h".to_owned()),
            ("IDENTITY_SERVER_THUMBPRINT", "AB".to_owned()),
        ]))
        .build()
        .expect_err("service fabric");
    assert_eq!(error.kind(), ErrorKind::Configuration);
    let error = ManagedIdentity::builder()
        .imds_endpoint("http://127.0.0.1:1/metadata/identity/oauth2/token")
        .id(ManagedIdentityId::ClientId(" ".into()))
        .build()
        .expect_err("empty id");
    assert_eq!(error.kind(), ErrorKind::Configuration);
    let identity = ManagedIdentity::builder()
        .imds_endpoint("http://127.0.0.1:1/metadata/identity/oauth2/token")
        .build()
        .expect("identity");
    let error = identity
        .get_token(&[
            "https://vault.azure.net/.default",
            "https://graph.microsoft.com/.default",
        ])
        .await
        .expect_err("two scopes");
    assert_eq!(error.kind(), ErrorKind::Configuration);
    // An identity lives in one tenant: a request for another is refused, not served with a
    // token of the identity's own tenant.
    let error = identity
        .token(&TokenRequest::new(&["https://vault.azure.net/.default"]).tenant("fabrikam"))
        .await
        .expect_err("another tenant");
    assert_eq!(error.kind(), ErrorKind::Configuration);
}

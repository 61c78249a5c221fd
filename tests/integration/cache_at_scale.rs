//! The cache under load: 1,000 callers on a token due for refresh are all served the valid
//! token at once while exactly one refresh runs; 1,000 callers on an expired token cause
//! exactly one request; the bound on background refreshes holds.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use confidant::{Authority, CacheOptions, ConfidentialClient, ManualClock, TokenCache};
use confidant_testkit::{AppConfig, Config, Endpoint, Fault, Testkit};

const CLIENT: &str = "3c5e7a9b-2d4f-4b6c-8e0a-1b3d5f7a9c2e";
const SECRET: &str = "scale-secret";

async fn setup(options: CacheOptions) -> (Testkit, ConfidentialClient, Arc<ManualClock>) {
    // Two-hour tokens: the testkit sends refresh_in = half the lifetime.
    let config = Config::default()
        .token_lifetime_secs(7200)
        .app(AppConfig::new(CLIENT, "contoso").secret(SECRET));
    let testkit = Testkit::builder()
        .config(config)
        .start()
        .await
        .expect("testkit");
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let client = ConfidentialClient::builder(
        Authority::entra_at(testkit.base_url(), "contoso").expect("authority"),
        CLIENT,
    )
    .client_secret(SECRET)
    .clock(Arc::clone(&clock) as Arc<dyn confidant::Clock>)
    .cache(Arc::new(TokenCache::new(options)))
    .build()
    .expect("client");
    (testkit, client, clock)
}

async fn callers(client: &ConfidentialClient, n: usize) -> Vec<confidant::AuthenticationResult> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .acquire_token_for_client(&["https://vault.azure.net/.default"])
                    .await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for task in tasks {
        out.push(task.await.expect("task").expect("token"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_callers_on_a_token_due_for_refresh() {
    let (testkit, client, clock) =
        setup(CacheOptions::default().with_refresh_jitter_percent(0)).await;
    let first = client
        .acquire_token_for_client(&["https://vault.azure.net/.default"])
        .await
        .expect("token");
    let old = first.access_token().expose_secret().to_owned();

    // Past refresh_on, still valid: a slow token endpoint must not hold anyone up.
    clock.advance(Duration::from_secs(3_700));
    testkit.inject(Endpoint::Token, Fault::Delay(Duration::from_millis(300)), 1);
    let served = callers(&client, 1_000).await;
    assert!(
        served
            .iter()
            .all(|t| t.is_from_cache() && t.access_token().expose_secret() == old),
        "every caller got the valid token without waiting for the refresh"
    );
    for _ in 0..200 {
        if client.cache().stats().refreshes == 1 && testkit.request_count(Endpoint::Token) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(client.cache().stats().refreshes, 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        testkit.request_count(Endpoint::Token),
        2,
        "exactly one refresh"
    );
    let after = client
        .acquire_token_for_client(&["https://vault.azure.net/.default"])
        .await
        .expect("refreshed");
    assert_ne!(after.access_token().expose_secret(), old);

    // Expired: a thousand callers, one request, everyone gets the new token.
    clock.advance(Duration::from_secs(7_200));
    testkit.inject(Endpoint::Token, Fault::Delay(Duration::from_millis(100)), 1);
    let served = callers(&client, 1_000).await;
    assert_eq!(testkit.request_count(Endpoint::Token), 3);
    let fresh = served[0].access_token().expose_secret().to_owned();
    assert!(
        served
            .iter()
            .all(|t| t.access_token().expose_secret() == fresh)
    );
    let stats = client.cache().stats();
    assert!(stats.hits >= 1_000, "{stats:?}");
    assert!(stats.misses >= 2, "{stats:?}");
}

#[tokio::test]
async fn background_refreshes_are_bounded() {
    let (testkit, client, clock) = setup(
        CacheOptions::default()
            .with_refresh_jitter_percent(0)
            .with_max_background_refreshes(1),
    )
    .await;
    let scopes = [
        "https://vault.azure.net/.default",
        "https://graph.microsoft.com/.default",
    ];
    for scope in scopes {
        client
            .acquire_token_for_client(&[scope])
            .await
            .expect("token");
    }
    clock.advance(Duration::from_secs(3_700));
    testkit.inject(Endpoint::Token, Fault::Delay(Duration::from_millis(300)), 2);
    for scope in scopes {
        let served = client
            .acquire_token_for_client(&[scope])
            .await
            .expect("valid");
        assert!(served.is_from_cache());
    }
    let stats = client.cache().stats();
    assert_eq!(
        (stats.refreshes, stats.refreshes_deferred),
        (1, 1),
        "{stats:?}"
    );
    // Once the first is done, the next hit starts the deferred one.
    tokio::time::sleep(Duration::from_millis(400)).await;
    client
        .acquire_token_for_client(&[scopes[1]])
        .await
        .expect("valid");
    assert_eq!(client.cache().stats().refreshes, 2);
}

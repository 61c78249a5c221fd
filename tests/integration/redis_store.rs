//! The Redis token store against a real `redis-server` (Debian's package; the test command
//! installs it): shared tokens, TTLs, compare-and-set under concurrent writers, Redis down at
//! start and restarted mid-run, tenants kept apart.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use confidant::cache::{RedisStore, TokenStore};
use confidant::{Authority, ConfidentialClient};
use confidant_testkit::{AppConfig, Config, Endpoint, Testkit};

const CLIENT: &str = "2b4d6f8a-1c3e-4a5b-9d7f-0e2c4a6b8d0f";
const SECRET: &str = "redis-secret";
const VAULT: &str = "https://vault.azure.net/.default";

/// A `redis-server` on a free loopback port, killed on drop.
struct RedisServer {
    port: u16,
    child: Option<Child>,
    dir: std::path::PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl RedisServer {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("confidant-redis-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut server = Self {
            port: free_port(),
            child: None,
            dir,
        };
        server.run();
        server
    }

    fn run(&mut self) {
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned());
        let child = Command::new(&binary)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir.to_str().expect("dir"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{binary}: {e}; run scripts/test.sh, which installs Debian's redis-server")
            });
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn testkit() -> Testkit {
    let config = Config::default().app(
        AppConfig::new(CLIENT, "contoso")
            .secret(SECRET)
            .consented_in("fabrikam"),
    );
    Testkit::builder()
        .config(config)
        .start()
        .await
        .expect("testkit")
}

/// One machine's client: its own L1, the shared Redis.
fn machine(testkit: &Testkit, tenant: &str, store: &RedisStore) -> ConfidentialClient {
    ConfidentialClient::builder(
        Authority::entra_at(testkit.base_url(), tenant).expect("authority"),
        CLIENT,
    )
    .client_secret(SECRET)
    .token_store(Arc::new(store.clone()))
    .build()
    .expect("client")
}

#[tokio::test]
async fn machines_share_tokens_with_a_ttl_and_tenants_stay_apart() {
    let server = RedisServer::start();
    let testkit = testkit().await;
    let store = RedisStore::new(&server.url()).expect("store");
    let first = machine(&testkit, "contoso", &store)
        .acquire_token_for_client(&[VAULT])
        .await
        .expect("first machine");
    let second = machine(&testkit, "contoso", &store)
        .acquire_token_for_client(&[VAULT])
        .await
        .expect("second machine");
    assert_eq!(
        first.access_token().expose_secret(),
        second.access_token().expose_secret()
    );
    assert_eq!(testkit.request_count(Endpoint::Token), 1);

    let key = format!("confidant:{CLIENT}_contoso_AppTokenCache");
    let client = redis::Client::open(server.url()).expect("client");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .expect("PTTL");
    assert!(
        ttl > 3_000_000 && ttl <= 3_600_000,
        "TTL from the token's expiry: {ttl}"
    );

    // A value another version (or program) wrote: reported, the network used, nothing lost.
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("not a token cache")
        .query_async(&mut connection)
        .await
        .expect("SET");
    let reader = machine(&testkit, "contoso", &store);
    reader
        .acquire_token_for_client(&[VAULT])
        .await
        .expect("from the network");
    assert_eq!(testkit.request_count(Endpoint::Token), 2);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{key}:corrupt:*"))
        .query_async(&mut connection)
        .await
        .expect("KEYS");
    assert_eq!(keys.len(), 1, "the odd value is kept aside");
    // ...and the partition is shared again.
    machine(&testkit, "contoso", &store)
        .acquire_token_for_client(&[VAULT])
        .await
        .expect("shared again");
    assert_eq!(testkit.request_count(Endpoint::Token), 2);
    testkit.reset_counters();

    // Another tenant of the same app: its own partition, its own token.
    let other = machine(&testkit, "fabrikam", &store)
        .acquire_token_for_client(&[VAULT])
        .await
        .expect("other tenant");
    assert_ne!(
        other.access_token().expose_secret(),
        first.access_token().expose_secret()
    );
    assert_eq!(testkit.request_count(Endpoint::Token), 1);
}

#[tokio::test]
async fn redis_down_at_start_and_restarted_mid_run() {
    let mut server = RedisServer::start();
    let port = server.port;
    server.stop();
    let testkit = testkit().await;
    let store = RedisStore::new(&format!("redis://127.0.0.1:{port}/"))
        .expect("store")
        .with_timeout(Duration::from_millis(500));

    // Down at start: the network serves, the failure is counted.
    let down = machine(&testkit, "contoso", &store);
    down.acquire_token_for_client(&[VAULT])
        .await
        .expect("without Redis");
    assert!(down.cache().l2_errors() >= 1);
    assert_eq!(testkit.request_count(Endpoint::Token), 1);

    // Up: the same store (same connection handle) works, and shares.
    server.run();
    machine(&testkit, "contoso", &store)
        .acquire_token_for_client(&[VAULT])
        .await
        .expect("with Redis");
    assert_eq!(testkit.request_count(Endpoint::Token), 2);
    machine(&testkit, "contoso", &store)
        .acquire_token_for_client(&[VAULT])
        .await
        .expect("from Redis");
    assert_eq!(testkit.request_count(Endpoint::Token), 2);

    // Killed and restarted (empty): the network again, then shared again.
    server.stop();
    server.run();
    let mut served = false;
    for _ in 0..20 {
        let after = machine(&testkit, "contoso", &store);
        after
            .acquire_token_for_client(&[VAULT])
            .await
            .expect("after the restart");
        if after.cache().l2_errors() == 0 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "the store reconnected after the restart");
    let count = testkit.request_count(Endpoint::Token);
    machine(&testkit, "contoso", &store)
        .acquire_token_for_client(&[VAULT])
        .await
        .expect("shared again");
    assert_eq!(testkit.request_count(Endpoint::Token), count);
}

#[tokio::test]
async fn concurrent_writers_lose_no_update() {
    let server = RedisServer::start();
    let write = |writer: &'static str, url: String| async move {
        let store = RedisStore::new(&url).expect("store");
        for i in 0..50 {
            let merge = crate::support::add_entry(format!("{writer}-{i}"));
            store.update("shared", merge, None).await.expect("update");
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(write("a", server.url())),
        tokio::spawn(write("b", server.url()))
    );
    a.expect("a");
    b.expect("b");
    let stored = RedisStore::new(&server.url())
        .expect("store")
        .load("shared")
        .await
        .expect("load")
        .expect("document");
    let document: serde_json::Value = serde_json::from_slice(&stored).expect("JSON");
    assert_eq!(
        document["AccessToken"].as_object().map(|o| o.len()),
        Some(100)
    );
}

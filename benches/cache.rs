//! The token cache's hit and miss paths and insertion at 1k, 100k and 1M app tokens, the whole
//! `acquire_token_for_client` on a hit.
//!
//! Inputs: one client (secret credential, never used: nothing leaves the process), an Entra
//! authority with a GUID tenant, N distinct single-scope app tokens seeded in its cache. The hit
//! probes a token in the middle of the set. Memory per entry is printed from the process RSS
//! before and after seeding 1M tokens (Linux `/proc/self/statm`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use confidant::__bench_support::{probe_app_token, seed_app_token};
use confidant::{Authority, CacheOptions, ConfidentialClient, TokenCache, TokenRequest};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

const CLIENT_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
/// A realistic access token size.
const TOKEN: &str = concat!(
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.",
    "eyJhdWQiOiJhcGk6Ly8xMjMifQ."
);

fn client(max_entries: usize) -> ConfidentialClient {
    let authority =
        Authority::parse("https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47")
            .expect("authority");
    ConfidentialClient::builder(authority, CLIENT_ID)
        .client_secret("never-sent")
        .cache(Arc::new(TokenCache::new(
            CacheOptions::default().with_max_entries(max_entries),
        )))
        .build()
        .expect("client")
}

fn scope(i: usize) -> String {
    format!("api://{i:08}-0000-0000-0000-000000000000/.default")
}

fn seed(client: &ConfidentialClient, n: usize) {
    let token = TOKEN.repeat(20); // ~1.3 KB, like an Entra access token
    for i in 0..n {
        seed_app_token(client, &[&scope(i)], &token, Duration::from_secs(3599));
    }
}

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn bench_hits(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("cache");
    for n in [1_000usize, 100_000, 1_000_000] {
        let before = rss_bytes();
        let client = client(n * 2);
        seed(&client, n);
        if let (Some(before), Some(after)) = (before, rss_bytes()) {
            eprintln!(
                "cache/{n}: {} bytes per entry (RSS, 1.3 KB token included)",
                after.saturating_sub(before) / n as u64
            );
        }
        let probe = scope(n / 2);
        group.bench_with_input(BenchmarkId::new("hit_probe", n), &n, |b, _| {
            b.iter(|| assert!(probe_app_token(&client, &[black_box(probe.as_str())])))
        });
        let absent = scope(n + 7);
        group.bench_with_input(BenchmarkId::new("miss_probe", n), &n, |b, _| {
            b.iter(|| assert!(!probe_app_token(&client, &[black_box(absent.as_str())])))
        });
        let token = TOKEN.repeat(20);
        let mut i = n;
        group.bench_with_input(BenchmarkId::new("insert", n), &n, |b, _| {
            b.iter(|| {
                i += 1;
                seed_app_token(&client, &[&scope(i)], &token, Duration::from_secs(3599));
            })
        });
        group.bench_with_input(
            BenchmarkId::new("acquire_token_for_client_hit", n),
            &n,
            |b, _| {
                b.to_async(&rt).iter(|| async {
                    let result = client
                        .acquire_token_for_client(&[black_box(probe.as_str())])
                        .await
                        .expect("hit");
                    assert!(result.is_from_cache());
                })
            },
        );
    }
    group.finish();
}

/// The hit path when a request names a tenant (`TokenRequest::tenant`): the kept per-tenant
/// client is found, then the same L1 probe, beside the same hit without a tenant.
fn bench_tenant_hits(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("cache_tenant");
    let client = client(1_000);
    let customer = "0b2c5e8a-1111-4222-8333-944445555666";
    let derived = client.for_tenant(customer).expect("tenant");
    seed(&client, 1);
    seed(&derived, 1);
    let probe = scope(0);
    let own = TokenRequest::new(&[probe.as_str()]);
    let other = TokenRequest::new(&[probe.as_str()]).tenant(customer);
    for (name, request) in [("own_tenant_hit", &own), ("request_tenant_hit", &other)] {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let result = client
                    .acquire_token_for_client_with(black_box(request))
                    .await
                    .expect("hit");
                assert!(result.is_from_cache());
            })
        });
    }
    group.finish();
}

/// MSAL-schema serialization and load of a 100k-token cache (what a file or Redis partition
/// of that size costs per write and per cold start).
fn bench_persistence(c: &mut Criterion) {
    let mut group = c.benchmark_group("persistence");
    group.sample_size(10);
    let client = client(200_000);
    seed(&client, 100_000);
    let document = client.serialize_cache().expect("serialize");
    eprintln!(
        "persistence: a 100k-token cache is {} MB of MSAL JSON",
        document.len() / 1_000_000
    );
    group.bench_function("serialize_100k", |b| {
        b.iter(|| black_box(client.serialize_cache().expect("serialize")).len())
    });
    group.bench_function("load_100k", |b| {
        b.iter(|| {
            let fresh = self::client(200_000);
            assert_eq!(
                fresh.deserialize_cache(black_box(&document)).expect("load"),
                100_000
            );
        })
    });
    group.finish();
}

/// A Redis round trip on loopback (update, then load, of a one-token partition), when
/// `redis-server` is installed; skipped with a message otherwise.
#[cfg(feature = "redis")]
fn bench_redis(c: &mut Criterion) {
    use confidant::cache::{Merge, RedisStore, TokenStore};

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let Ok(mut server) = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
    else {
        eprintln!("redis/round_trip: skipped (no redis-server on PATH)");
        return;
    };
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let store = RedisStore::new(&format!("redis://127.0.0.1:{port}/")).expect("store");
    let document = client(10).serialize_cache().expect("document").into_bytes();
    let mut group = c.benchmark_group("redis");
    group.bench_function("update_then_load", |b| {
        b.to_async(&rt).iter(|| async {
            let document = document.clone();
            let merge: Merge = Arc::new(move |_| Ok(document.clone()));
            store.update("bench", merge, None).await.expect("update");
            black_box(store.load("bench").await.expect("load"));
        })
    });
    group.finish();
    let _ = server.kill();
    let _ = server.wait();
}

#[cfg(not(feature = "redis"))]
fn bench_redis(_: &mut Criterion) {
    eprintln!("redis/round_trip: skipped (build with --features redis)");
}

criterion_group!(
    benches,
    bench_hits,
    bench_tenant_hits,
    bench_persistence,
    bench_redis
);
criterion_main!(benches);

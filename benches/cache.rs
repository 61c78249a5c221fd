//! The token cache's hit path at 1k, 100k and 1M app tokens, insertion, and the whole
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
use confidant::{Authority, CacheOptions, ConfidentialClient, TokenCache};
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
    let client = client(200_000);
    seed(&client, 100_000);
    let mut i = 100_000;
    let token = TOKEN.repeat(20);
    group.bench_function("insert_at_100000", |b| {
        b.iter(|| {
            i += 1;
            seed_app_token(&client, &[&scope(i)], &token, Duration::from_secs(3599));
        })
    });
    group.finish();
}

criterion_group!(benches, bench_hits);
criterion_main!(benches);

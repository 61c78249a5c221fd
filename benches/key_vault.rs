//! Remote-signed client assertions (`KeyVaultSigner`, RS256 on an RSA-HSM key) against the
//! testkit's Key Vault on loopback, beside the same assertion signed with a local key, and the
//! local share of the remote path on its own.
//!
//! Rows:
//! - `key_vault/local_key_rs256`: `PemSigner` (aws-lc) signing the assertion; the baseline.
//! - `key_vault/remote_rs256_loopback`: `KeyVaultSigner`: SHA-256 here, `POST /keys/.../sign` to
//!   the testkit over loopback HTTP, the testkit signing with RustCrypto `rsa` (slow on purpose:
//!   the emulator is not the product), the answer parsed.
//! - `key_vault/local_share_rs256`: the same assertion and `KeyVaultSigner` code with the round
//!   trip replaced by a canned answer: assertion JSON and base64, the digest, the request and
//!   response JSON, the signature's base64. Target: under 5 µs.

use std::hint::black_box;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use confidant::{
    Algorithm, Authority, Certificate, ClientAssertionBuilder, ConfidentialClient, KeyVaultSigner,
    PemSigner, Signature, Signer, SignerError,
};
use confidant_testkit::{AppConfig, Config, Testkit, VaultKeyType, VaultPermission};
use criterion::{Criterion, criterion_group, criterion_main};

const TENANT: &str = "contoso";
const READER: &str = "55555555-5555-5555-5555-555555555555";
const CLIENT_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
const RSA_CERT: &[u8] = include_bytes!("../tests/fixtures/rsa2048.crt");
const RSA_KEY: &[u8] = include_bytes!("../tests/fixtures/rsa2048.pkcs8.key");

/// `KeyVaultSigner` with the network replaced by a canned sign response.
#[derive(Debug)]
struct LocalShare {
    remote: KeyVaultSigner,
    response: Vec<u8>,
}

#[async_trait]
impl Signer for LocalShare {
    fn algorithms(&self) -> &[Algorithm] {
        self.remote.algorithms()
    }

    fn key_id(&self) -> Option<&str> {
        Signer::key_id(&self.remote)
    }

    fn certificate(&self) -> Option<&Certificate> {
        self.remote.certificate()
    }

    async fn sign(&self, alg: Algorithm, message: &[u8]) -> Result<Signature, SignerError> {
        self.remote
            .local_share_of_sign(alg, message, &self.response)
    }
}

fn bench_key_vault(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let config = Config::default().app(AppConfig::new(READER, TENANT).secret("bench-secret"));
    let testkit = rt
        .block_on(Testkit::builder().config(config).key_vault(TENANT).start())
        .expect("testkit");
    testkit.grant_vault_access(
        READER,
        &[
            VaultPermission::GetCertificate,
            VaultPermission::GetKey,
            VaultPermission::Sign,
        ],
    );
    testkit
        .create_vault_certificate("bench", VaultKeyType::Rsa2048, true)
        .expect("certificate");
    let authority = Authority::entra_at(testkit.base_url(), TENANT).expect("authority");
    let reader = Arc::new(
        ConfidentialClient::builder(authority.clone(), READER)
            .client_secret("bench-secret")
            .build()
            .expect("client"),
    );
    let remote = rt
        .block_on(
            KeyVaultSigner::builder(testkit.key_vault_url().expect("vault"), "bench", reader)
                .build(),
        )
        .expect("signer");
    let signature = rt
        .block_on(remote.sign(Algorithm::Rs256, b"canned"))
        .expect("one real signature");
    let response = serde_json::json!({
        "kid": remote.key_id(),
        "value": URL_SAFE_NO_PAD.encode(signature.as_bytes()),
    })
    .to_string()
    .into_bytes();
    let builder =
        ClientAssertionBuilder::for_authority(&authority, CLIENT_ID).algorithm(Algorithm::Rs256);
    let local = PemSigner::from_pem(RSA_CERT, RSA_KEY).expect("fixture");

    // The local rows run on a current-thread runtime (no cross-thread wake-ups in the timing);
    // the remote row on the runtime that serves the testkit and owns the connection pool.
    let local_rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("key_vault");
    group.bench_function("local_key_rs256", |b| {
        b.to_async(&local_rt)
            .iter(|| async { builder.sign(black_box(&local)).await.expect("assertion") })
    });
    group.bench_function("remote_rs256_loopback", |b| {
        b.to_async(&rt)
            .iter(|| async { builder.sign(black_box(&remote)).await.expect("assertion") })
    });
    let share = LocalShare { remote, response };
    group.bench_function("local_share_rs256", |b| {
        b.to_async(&local_rt)
            .iter(|| async { builder.sign(black_box(&share)).await.expect("assertion") })
    });
    group.finish();
    drop(testkit);
}

criterion_group!(benches, bench_key_vault);
criterion_main!(benches);

//! Client-assertion signing against the raw signature it wraps, plus key loading.
//!
//! Inputs: the RSA-2048 and P-256 test fixtures (`tests/fixtures/`), an Entra authority, a
//! 36-byte client id. Keys are parsed outside the timed closures; loading has its own rows. The
//! `raw/*` rows are the baseline: the same key signing a message of an assertion's length with
//! aws-lc-rs (and `rsa`/`p256` when the `rust-crypto` feature is on) directly.

use std::hint::black_box;

use confidant::{
    Authority, Backend, ClientAssertionBuilder, Password, PemSigner, Pkcs12Signer, Signer,
};
use criterion::{Criterion, criterion_group, criterion_main};

const RSA_CERT: &[u8] = include_bytes!("../tests/fixtures/rsa2048.crt");
const RSA_KEY: &[u8] = include_bytes!("../tests/fixtures/rsa2048.pkcs8.key");
const EC_CERT: &[u8] = include_bytes!("../tests/fixtures/ec-p256.crt");
const EC_KEY: &[u8] = include_bytes!("../tests/fixtures/ec-p256.pkcs8.key");
const PFX_AES: &[u8] = include_bytes!("../tests/fixtures/rsa2048.aes.pfx");
const PFX_3DES: &[u8] = include_bytes!("../tests/fixtures/rsa2048.3des.pfx");
const CLIENT_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";

/// A message as long as a typical assertion's signing input.
const MESSAGE: &[u8] = &[b'e'; 400];

fn pkcs8_der(pem: &[u8]) -> Vec<u8> {
    let (_, der) = pem_rfc7468::decode_vec(pem).expect("fixture PEM");
    der
}

fn signer(cert: &[u8], key: &[u8], backend: Backend) -> PemSigner {
    PemSigner::builder()
        .certificate_pem(cert)
        .private_key_pem(key)
        .backend(backend)
        .build()
        .expect("fixture")
}

fn bench_assertions(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let authority =
        Authority::parse("https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47")
            .expect("authority");

    #[cfg(feature = "aws-lc")]
    {
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::{self, EcdsaKeyPair};
        let rng = SystemRandom::new();
        let rsa = aws_lc_rs::rsa::KeyPair::from_pkcs8(&pkcs8_der(RSA_KEY)).expect("RSA key");
        let mut out = vec![0; rsa.public_modulus_len()];
        c.bench_function("raw/aws-lc/rsa2048_pkcs1_sha256", |b| {
            b.iter(|| {
                rsa.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    black_box(MESSAGE),
                    &mut out,
                )
                .expect("sign")
            })
        });
        c.bench_function("raw/aws-lc/rsa2048_pss_sha256", |b| {
            b.iter(|| {
                rsa.sign(
                    &signature::RSA_PSS_SHA256,
                    &rng,
                    black_box(MESSAGE),
                    &mut out,
                )
                .expect("sign")
            })
        });
        let ec = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &pkcs8_der(EC_KEY),
        )
        .expect("EC key");
        c.bench_function("raw/aws-lc/p256_sha256", |b| {
            b.iter(|| ec.sign(&rng, black_box(MESSAGE)).expect("sign"))
        });
        assertion_rows(c, &rt, &authority, "aws-lc", Backend::AwsLc);
    }

    #[cfg(feature = "rust-crypto")]
    {
        use rsa::pkcs8::DecodePrivateKey as _;
        use signature::{RandomizedSigner as _, Signer as _};
        let key = rsa::RsaPrivateKey::from_pkcs8_der(&pkcs8_der(RSA_KEY)).expect("RSA key");
        let pkcs1 = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone());
        let pss = rsa::pss::BlindedSigningKey::<sha2::Sha256>::new(key);
        c.bench_function("raw/rust-crypto/rsa2048_pkcs1_sha256", |b| {
            b.iter(|| pkcs1.sign(black_box(MESSAGE)))
        });
        c.bench_function("raw/rust-crypto/rsa2048_pss_sha256", |b| {
            b.iter(|| pss.sign_with_rng(&mut rsa::rand_core::OsRng, black_box(MESSAGE)))
        });
        let ec = p256::ecdsa::SigningKey::from_pkcs8_der(&pkcs8_der(EC_KEY)).expect("EC key");
        c.bench_function("raw/rust-crypto/p256_sha256", |b| {
            b.iter(|| -> p256::ecdsa::Signature { ec.sign(black_box(MESSAGE)) })
        });
        assertion_rows(c, &rt, &authority, "rust-crypto", Backend::RustCrypto);
    }
}

fn assertion_rows(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    authority: &Authority,
    name: &str,
    backend: Backend,
) {
    let rsa = signer(RSA_CERT, RSA_KEY, backend);
    let ec = signer(EC_CERT, EC_KEY, backend);
    let ps256 = ClientAssertionBuilder::for_authority(authority, CLIENT_ID);
    let rs256 = ClientAssertionBuilder::for_authority(authority, CLIENT_ID)
        .algorithm(confidant::Algorithm::Rs256);
    let es256 = ClientAssertionBuilder::new(CLIENT_ID, authority.token_endpoint().as_str());
    for (id, builder, signer) in [
        ("rs256_rsa2048", &rs256, &rsa as &dyn Signer),
        ("ps256_rsa2048", &ps256, &rsa as &dyn Signer),
        ("es256_p256", &es256, &ec as &dyn Signer),
    ] {
        c.bench_function(&format!("assertion/{name}/{id}"), |b| {
            b.to_async(rt)
                .iter(|| async { black_box(builder.sign(signer).await.expect("signs")) })
        });
    }
}

fn bench_loading(c: &mut Criterion) {
    let password = Password::new("fixture-password");
    c.bench_function("load/pem_rsa2048", |b| {
        b.iter(|| PemSigner::from_pem(black_box(RSA_CERT), RSA_KEY).expect("loads"))
    });
    c.bench_function("load/pem_p256", |b| {
        b.iter(|| PemSigner::from_pem(black_box(EC_CERT), EC_KEY).expect("loads"))
    });
    c.bench_function("load/pfx_aes256_pbkdf2", |b| {
        b.iter(|| Pkcs12Signer::from_pkcs12(black_box(PFX_AES), Some(&password)).expect("loads"))
    });
    c.bench_function("load/pfx_3des_sha1", |b| {
        b.iter(|| Pkcs12Signer::from_pkcs12(black_box(PFX_3DES), Some(&password)).expect("loads"))
    });
}

criterion_group!(benches, bench_assertions, bench_loading);
criterion_main!(benches);

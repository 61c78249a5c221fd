//! Bearer-token validation with a warm key set against the raw signature verification it wraps.
//!
//! Inputs: an Entra-shaped v2 access token (about 1 KB: the claims Entra sends for a delegated
//! call) signed with the RSA-2048 and P-256 test fixtures, a validator for an Entra authority
//! with a GUID tenant and those keys given as a JWKS. `raw/*` rows verify the same signature
//! over the same bytes with aws-lc-rs directly, the key parsed once outside the loop: the
//! baseline each `validate/*` row is held to (at most 1.2x). `reject/*` rows: a malformed token,
//! and an unknown `kid` while the unknown-`kid` refresh is throttled (testkit on loopback).

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use confidant::validator::BearerValidator;
use confidant::{Algorithm, Authority, PemSigner, Signer};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

const RSA_CERT: &[u8] = include_bytes!("../tests/fixtures/rsa2048.crt");
const RSA_KEY: &[u8] = include_bytes!("../tests/fixtures/rsa2048.pkcs8.key");
const EC_CERT: &[u8] = include_bytes!("../tests/fixtures/ec-p256.crt");
const EC_KEY: &[u8] = include_bytes!("../tests/fixtures/ec-p256.pkcs8.key");
const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const API: &str = "22222222-2222-2222-2222-222222222222";

fn claims() -> Value {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    json!({
        "aud": API,
        "iss": format!("https://login.microsoftonline.com/{TID}/v2.0"),
        "iat": now, "nbf": now, "exp": now + 3600,
        "aio": "AWQAm/8aAAAAbqv4N4NcNxTNbnx8Bq5O9v1Vw2q0zVvlYzqWJq3hCk1xnHkVHzbFh6CCwvW4E4l9",
        "azp": "6731de76-14a6-49ae-97bc-6eba6914391e", "azpacr": "1",
        "idtyp": "user", "name": "Adele Vance",
        "oid": "00000000-0000-0000-66f3-3332eca7ea81",
        "preferred_username": "AdeleV@contoso.onmicrosoft.com",
        "rh": "0.AXEAv4j5cvGGr0GRqy180BHbR2xbxTwQ9EJIi3Jm_QjbZTdxAAA.",
        "scp": "Accounts.Read Accounts.Write Files.Read User.Read",
        "sid": "0f3c1a52-6b0f-4e3c-b3a5-2c1f7f1e9d0a",
        "sub": "qk2-ZdnM9S1xX6c3Lw7q5mYh2G8aTb4JxN0rVfE1uKo",
        "tid": TID,
        "uti": "kT8sdXqWz0KjJ4nRt2YbAA",
        "ver": "2.0",
        "wids": ["b79fbf4d-3ef9-4689-8143-76b194e85509"],
        "xms_ftd": "Ht9h7bP4oXfK2mJ3qYtZcXJvL2Vhc3QtZHNtcw",
    })
}

fn jwk(cert_pem: &[u8], kid: &str) -> Value {
    use der::Decode as _;
    let (_, der) = pem_rfc7468::decode_vec(cert_pem).expect("certificate PEM");
    let cert = x509_cert::Certificate::from_der(&der).expect("certificate");
    let bits = cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes()
        .to_vec();
    if bits.len() == 65 {
        return json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&bits[1..33]), "y": URL_SAFE_NO_PAD.encode(&bits[33..])});
    }
    let rsa = pkcs1::RsaPublicKey::from_der(&bits).expect("RSA key");
    json!({"kty": "RSA", "kid": kid, "use": "sig",
        "n": URL_SAFE_NO_PAD.encode(rsa.modulus.as_bytes()),
        "e": URL_SAFE_NO_PAD.encode(rsa.public_exponent.as_bytes())})
}

fn spki_bits(cert_pem: &[u8]) -> Vec<u8> {
    use der::Decode as _;
    let (_, der) = pem_rfc7468::decode_vec(cert_pem).expect("certificate PEM");
    x509_cert::Certificate::from_der(&der)
        .expect("certificate")
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes()
        .to_vec()
}

async fn sign(signer: &PemSigner, alg: Algorithm, kid: &str) -> String {
    let header = json!({"typ": "JWT", "alg": alg.as_str(), "kid": kid});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    let signature = signer.sign(alg, input.as_bytes()).await.expect("signs");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_bytes()))
}

/// A row: name, signer, algorithm, `kid`, the aws-lc-rs verification algorithm, public key.
type Case<'a> = (
    &'static str,
    &'a PemSigner,
    Algorithm,
    &'static str,
    &'static dyn aws_lc_rs::signature::VerificationAlgorithm,
    &'a [u8],
);

fn bench_validation(c: &mut Criterion) {
    use aws_lc_rs::signature::{self, ParsedPublicKey};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let rsa = PemSigner::from_pem(RSA_CERT, RSA_KEY).expect("RSA fixture");
    let ec = PemSigner::from_pem(EC_CERT, EC_KEY).expect("EC fixture");
    let jwks = json!({"keys": [jwk(RSA_CERT, "rsa"), jwk(EC_CERT, "ec")]}).to_string();
    let authority =
        Authority::parse(&format!("https://login.microsoftonline.com/{TID}")).expect("authority");
    let validator = BearerValidator::builder(authority)
        .audience(API)
        .jwks(jwks)
        .build()
        .expect("validator");

    let rsa_bits = spki_bits(RSA_CERT);
    let ec_bits = spki_bits(EC_CERT);
    let cases: [Case<'_>; 3] = [
        (
            "rs256",
            &rsa,
            Algorithm::Rs256,
            "rsa",
            &signature::RSA_PKCS1_2048_8192_SHA256,
            &rsa_bits,
        ),
        (
            "ps256",
            &rsa,
            Algorithm::Ps256,
            "rsa",
            &signature::RSA_PSS_2048_8192_SHA256,
            &rsa_bits,
        ),
        (
            "es256",
            &ec,
            Algorithm::Es256,
            "ec",
            &signature::ECDSA_P256_SHA256_FIXED,
            &ec_bits,
        ),
    ];
    for (name, signer, alg, kid, params, key_bits) in cases {
        let token = rt.block_on(sign(signer, alg, kid));
        eprintln!("{name}: token of {} bytes", token.len());
        rt.block_on(validator.validate(&token))
            .expect("the bench token validates");
        let (signing_input, signature_b64) = token.rsplit_once('.').expect("JWS");
        let signature_bytes = URL_SAFE_NO_PAD.decode(signature_b64).expect("signature");
        let key = ParsedPublicKey::new(params, key_bits).expect("parsed key");
        c.bench_function(&format!("raw/aws-lc/{name}"), |b| {
            b.iter(|| {
                key.verify_sig(
                    black_box(signing_input.as_bytes()),
                    black_box(&signature_bytes),
                )
                .expect("verifies")
            })
        });
        c.bench_function(&format!("validate/aws-lc/{name}"), |b| {
            b.to_async(&rt)
                .iter(|| async { validator.validate(black_box(&token)).await.expect("valid") })
        });
        // The same token with one signature bit flipped: everything up to and including the
        // public-key operation, none of the claim work.
        let mut forged = signature_bytes.clone();
        forged[10] ^= 1;
        let forged = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(&forged));
        c.bench_function(&format!("reject/bad_signature/{name}"), |b| {
            b.to_async(&rt).iter(|| async {
                validator
                    .validate(black_box(&forged))
                    .await
                    .expect_err("forged")
            })
        });
    }

    let malformed = "eyJhbGciOiJSUzI1NiJ9.e30=.AAAA";
    c.bench_function("reject/malformed", |b| {
        b.to_async(&rt).iter(|| async {
            validator
                .validate(black_box(malformed))
                .await
                .expect_err("rejected")
        })
    });

    // Unknown kid while throttled: a testkit-backed validator after its one allowed refresh.
    let (testkit, remote) = rt.block_on(async {
        let testkit = confidant_testkit::Testkit::start().await.expect("testkit");
        let authority = Authority::entra_at(testkit.base_url(), TID).expect("authority");
        let remote = BearerValidator::builder(authority)
            .audience(API)
            .unknown_kid_cooldown(Duration::from_secs(3600))
            .build()
            .expect("validator");
        remote.prefetch().await.expect("keys");
        (testkit, remote)
    });
    let unknown = rt.block_on(sign(&rsa, Algorithm::Rs256, "not-published"));
    let _ = rt.block_on(remote.validate(&unknown));
    c.bench_function("reject/unknown_kid_throttled", |b| {
        b.to_async(&rt).iter(|| async {
            remote
                .validate(black_box(&unknown))
                .await
                .expect_err("unknown")
        })
    });
    drop(testkit);
}

criterion_group!(benches, bench_validation);
criterion_main!(benches);

//! PEM and PKCS#12 signers: every supported form loads, every bad input is a typed error.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use confidant::{
    Algorithm, Backend, Clock, Password, PemSigner, Pkcs12Signer, Signer, SignerErrorKind,
    SignerOptions,
};
use sha2::{Digest as _, Sha256};

use crate::support::{fixture, fixture_path, password};

fn rsa2048() -> PemSigner {
    PemSigner::from_pem(&fixture("rsa2048.crt"), &fixture("rsa2048.pkcs8.key"))
        .expect("fixture loads")
}

#[test]
fn pem_key_forms_load_to_the_same_certificate() {
    let reference = rsa2048();
    let cert = reference.certificate();
    assert_eq!(
        reference.algorithms(),
        &[Algorithm::Ps256, Algorithm::Rs256]
    );
    let pkcs1 = PemSigner::from_pem(&fixture("rsa2048.crt"), &fixture("rsa2048.pkcs1.key"))
        .expect("PKCS#1");
    let encrypted = PemSigner::builder()
        .certificate_pem(&fixture("rsa2048.crt"))
        .private_key_pem(&fixture("rsa2048.encrypted.key"))
        .passphrase(password())
        .build()
        .expect("encrypted PKCS#8");
    let combined =
        PemSigner::from_combined_pem(&fixture("rsa2048.combined.pem"), None).expect("combined");
    let from_file = PemSigner::from_combined_pem_file(fixture_path("rsa2048.combined.pem"), None)
        .expect("combined file");
    for other in [&pkcs1, &encrypted, &combined, &from_file] {
        assert_eq!(other.certificate().x5t_s256(), cert.x5t_s256());
    }
    assert_eq!(cert.subject(), "CN=confidant-test-rsa2048");
}

#[test]
fn thumbprints_match_openssl_fingerprints() {
    let signer = rsa2048();
    let cert = signer.certificate();
    let der = cert.der();
    assert_eq!(
        cert.sha256_thumbprint().as_slice(),
        Sha256::digest(der).as_slice()
    );
    assert_eq!(
        cert.sha1_thumbprint().as_slice(),
        sha1::Sha1::digest(der).as_slice()
    );
    assert_eq!(cert.x5t().len(), 27);
    assert_eq!(cert.x5t_s256().len(), 43);
    assert_eq!(cert.sha1_hex().len(), 40);
    // x5c is standard padded base64 of the DER, no line breaks.
    let x5c = cert.x5c();
    assert_eq!(x5c.len(), 1);
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(&x5c[0])
            .expect("b64"),
        der
    );
}

#[test]
fn ec_keys_in_sec1_and_pkcs8() {
    for key in ["ec-p256.sec1.key", "ec-p256.pkcs8.key"] {
        let signer = PemSigner::from_pem(&fixture("ec-p256.crt"), &fixture(key)).expect(key);
        assert_eq!(signer.algorithms(), &[Algorithm::Es256]);
    }
}

#[tokio::test]
async fn every_backend_signs_and_the_other_verifies() {
    let message = b"eyJhbGciOiJQUzI1NiJ9.eyJzdWIiOiJ4In0";
    for (cert, key, algs) in [
        (
            "rsa2048.crt",
            "rsa2048.pkcs8.key",
            &[Algorithm::Ps256, Algorithm::Rs256][..],
        ),
        ("ec-p256.crt", "ec-p256.pkcs8.key", &[Algorithm::Es256][..]),
    ] {
        for signing in Backend::available().iter().copied() {
            let signer = PemSigner::builder()
                .certificate_pem(&fixture(cert))
                .private_key_pem(&fixture(key))
                .backend(signing)
                .build()
                .expect("loads");
            for alg in algs {
                let sig = signer.sign(*alg, message).await.expect("signs");
                if *alg == Algorithm::Es256 {
                    assert_eq!(sig.as_bytes().len(), 64, "ES256 is raw r||s");
                }
                for verifying in Backend::available().iter().copied() {
                    assert!(
                        signer.certificate().verify_signature(
                            verifying,
                            *alg,
                            message,
                            sig.as_bytes()
                        ),
                        "{alg} by {signing:?} verified by {verifying:?}"
                    );
                    assert!(!signer.certificate().verify_signature(
                        verifying,
                        *alg,
                        b"other",
                        sig.as_bytes()
                    ));
                }
            }
        }
    }
}

#[tokio::test]
async fn refuses_an_algorithm_the_key_cannot_produce() {
    let err = rsa2048()
        .sign(Algorithm::Es256, b"x")
        .await
        .expect_err("RSA cannot ES256");
    assert_eq!(err.kind(), SignerErrorKind::UnsupportedAlgorithm);
}

#[test]
fn pkcs12_variants_load() {
    let reference = rsa2048();
    let pw = password();
    for (file, password) in [
        ("rsa2048.aes.pfx", Some(&pw)),
        ("rsa2048.legacy.pfx", Some(&pw)),
        ("rsa2048.3des.pfx", Some(&pw)),
        ("rsa2048.aes128-sha1mac.pfx", Some(&pw)),
        ("rsa2048.nomac.pfx", Some(&pw)),
        ("rsa2048.empty-password.pfx", None),
        ("rsa2048.empty-password.pfx", Some(&Password::new(""))),
        ("rsa2048.plain.pfx", None),
    ] {
        let signer = Pkcs12Signer::from_pkcs12(&fixture(file), password)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            signer.certificate().x5t_s256(),
            reference.certificate().x5t_s256(),
            "{file}"
        );
        assert_eq!(signer.algorithms(), &[Algorithm::Ps256, Algorithm::Rs256]);
    }
    let ec = Pkcs12Signer::from_file(fixture_path("ec-p256.pfx"), Some(&pw)).expect("EC PFX");
    assert_eq!(ec.algorithms(), &[Algorithm::Es256]);
}

#[test]
fn chain_is_put_leaf_first() {
    let pem = PemSigner::from_pem(
        &fixture("leaf3072.chain-ca-first.crt"),
        &fixture("leaf3072.key"),
    )
    .expect("chain");
    let pfx = Pkcs12Signer::from_pkcs12(&fixture("leaf3072.chain.pfx"), Some(&password()))
        .expect("chain PFX");
    for cert in [pem.certificate(), pfx.certificate()] {
        assert_eq!(cert.subject(), "CN=confidant-test-leaf3072");
        assert_eq!(cert.issuer(), "CN=confidant-test-ca");
        let chain: Vec<&[u8]> = cert.chain().collect();
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[0], cert.der());
        let ca = confidant::Certificate::from_pem(&fixture("ca.crt")).expect("CA");
        assert_eq!(chain[1], ca.der());
    }
}

#[test]
fn wrong_passwords_are_typed() {
    let wrong = Password::new("not-the-password");
    for file in [
        "rsa2048.aes.pfx",
        "rsa2048.legacy.pfx",
        "rsa2048.3des.pfx",
        "rsa2048.nomac.pfx",
    ] {
        let err = Pkcs12Signer::from_pkcs12(&fixture(file), Some(&wrong)).expect_err(file);
        assert_eq!(err.kind(), SignerErrorKind::WrongPassword, "{file}: {err}");
        assert!(!err.to_string().contains("not-the-password"));
    }
    let err =
        Pkcs12Signer::from_pkcs12(&fixture("rsa2048.aes.pfx"), None).expect_err("no password");
    assert!(err.is_wrong_password(), "{err}");
    let err = PemSigner::builder()
        .certificate_pem(&fixture("rsa2048.crt"))
        .private_key_pem(&fixture("rsa2048.encrypted.key"))
        .passphrase(wrong)
        .build()
        .expect_err("wrong passphrase");
    assert!(err.is_wrong_password(), "{err}");
    let err = PemSigner::from_pem(&fixture("rsa2048.crt"), &fixture("rsa2048.encrypted.key"))
        .expect_err("none");
    assert!(err.is_wrong_password(), "{err}");
}

#[test]
fn key_must_match_certificate() {
    let err = PemSigner::from_pem(&fixture("ec-p256.crt"), &fixture("rsa2048.pkcs8.key"))
        .expect_err("mismatch");
    assert!(err.is_key_mismatch());
    let err = PemSigner::from_pem(&fixture("leaf3072.crt"), &fixture("rsa2048.pkcs1.key"))
        .expect_err("mismatch");
    assert!(err.is_key_mismatch());
}

#[test]
fn weak_and_unsupported_keys_are_refused() {
    let err =
        PemSigner::from_pem(&fixture("rsa1024.crt"), &fixture("rsa1024.key")).expect_err("1024");
    assert_eq!(err.kind(), SignerErrorKind::WeakKey, "{err}");
    let err =
        PemSigner::from_pem(&fixture("ec-p384.crt"), &fixture("ec-p384.key")).expect_err("P-384");
    assert_eq!(err.kind(), SignerErrorKind::Unsupported, "{err}");
    let err =
        PemSigner::from_pem(&fixture("rsa2048.crt"), &fixture("ed25519.key")).expect_err("Ed25519");
    assert_eq!(err.kind(), SignerErrorKind::Unsupported, "{err}");
    let err = PemSigner::builder()
        .certificate_pem(&fixture("rsa2048.crt"))
        .private_key_pem(&fixture("rsa2048.legacy-encrypted.key"))
        .passphrase(password())
        .build()
        .expect_err("legacy encryption");
    assert_eq!(err.kind(), SignerErrorKind::Unsupported, "{err}");
}

#[test]
fn missing_parts_are_typed() {
    let err = PemSigner::from_pem(b"", &fixture("rsa2048.pkcs8.key")).expect_err("no cert");
    assert_eq!(err.kind(), SignerErrorKind::MissingCertificate);
    let err = PemSigner::from_pem(&fixture("rsa2048.crt"), b"").expect_err("no key");
    assert_eq!(err.kind(), SignerErrorKind::MissingKey);
    let two = [fixture("rsa2048.pkcs8.key"), fixture("rsa2048.pkcs1.key")].concat();
    let err = PemSigner::from_pem(&fixture("rsa2048.crt"), &two).expect_err("two keys");
    assert!(err.is_malformed());
    let err = Pkcs12Signer::from_file("/nonexistent/cert.pfx", None).expect_err("no file");
    assert_eq!(err.kind(), SignerErrorKind::Io);
}

#[derive(Debug)]
struct FixedClock(SystemTime);

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

#[test]
fn expired_certificate_warns_or_is_refused() {
    let cert = rsa2048().certificate().clone();
    let after = cert.not_after() + Duration::from_secs(1);
    let options = SignerOptions::default().with_clock(Arc::new(FixedClock(after)));
    let load = |options: SignerOptions| {
        PemSigner::builder()
            .certificate_pem(&fixture("rsa2048.crt"))
            .private_key_pem(&fixture("rsa2048.pkcs8.key"))
            .options(options)
            .build()
    };
    assert!(load(options.clone()).is_ok(), "default: a warning only");
    let err = load(options.with_refuse_expired_certificate(true)).expect_err("refused");
    assert_eq!(err.kind(), SignerErrorKind::CertificateExpired);
    let before = SignerOptions::default()
        .with_clock(Arc::new(FixedClock(
            cert.not_before() - Duration::from_secs(1),
        )))
        .with_refuse_expired_certificate(true);
    assert!(load(before).is_err(), "not yet valid is refused too");
    let pfx_err = Pkcs12Signer::from_pkcs12_with(
        &fixture("rsa2048.aes.pfx"),
        Some(&password()),
        &SignerOptions::default()
            .with_clock(Arc::new(FixedClock(after)))
            .with_refuse_expired_certificate(true),
    )
    .expect_err("PFX refused too");
    assert_eq!(pfx_err.kind(), SignerErrorKind::CertificateExpired);
}

#[test]
fn debug_output_holds_no_key_material() {
    let signer = rsa2048();
    let debug = format!("{signer:?}");
    assert!(debug.contains("[redacted]"), "{debug}");
    let key_pem = String::from_utf8(fixture("rsa2048.pkcs8.key")).expect("text");
    let key_line = key_pem.lines().nth(1).expect("base64 line");
    assert!(!debug.contains(key_line));
    assert_eq!(format!("{:?}", password()), "Password([redacted])");
    let builder = PemSigner::builder()
        .private_key_pem(&fixture("rsa2048.pkcs8.key"))
        .passphrase(password());
    let debug = format!("{builder:?}");
    assert!(
        !debug.contains(key_line) && !debug.contains("fixture-password"),
        "{debug}"
    );
}

#[test]
fn truncated_and_garbage_inputs_are_malformed() {
    let pw = password();
    let pfx = fixture("rsa2048.aes.pfx");
    for len in [0, 1, 16, pfx.len() / 2, pfx.len() - 1] {
        let err = Pkcs12Signer::from_pkcs12(&pfx[..len], Some(&pw)).expect_err("truncated PFX");
        assert!(err.is_malformed(), "{len}: {err}");
    }
    let err = Pkcs12Signer::from_pkcs12(b"definitely not DER", Some(&pw)).expect_err("garbage");
    assert!(err.is_malformed());

    let key = String::from_utf8(fixture("rsa2048.pkcs8.key")).expect("text");
    let cut = &key[..key.len() / 2];
    let err =
        PemSigner::from_pem(&fixture("rsa2048.crt"), cut.as_bytes()).expect_err("no END line");
    assert!(err.is_malformed(), "{err}");
    let garbled = key.replacen('M', "*", 3);
    let err =
        PemSigner::from_pem(&fixture("rsa2048.crt"), garbled.as_bytes()).expect_err("bad base64");
    assert!(err.is_malformed(), "{err}");
    let err = confidant::Certificate::from_der(&fixture("rsa2048.pkcs8.key"), &[])
        .expect_err("PEM is not DER");
    assert!(err.is_malformed());
}

//! `KeyVaultSigner` against the testkit's Key Vault: the challenge, remote PS256/RS256/ES256
//! signatures accepted by the token endpoint, access policy, rotation, and no secret read.

use std::sync::Arc;

use confidant::{
    Algorithm, Authority, ConfidentialClient, ErrorKind, KeyVaultSecretSigner, KeyVaultSigner,
    Signer, SignerErrorKind,
};
use confidant_testkit::{
    AppConfig, Config, Endpoint, Testkit, VaultKeyType, VaultPermission, VaultSecretFormat,
};

use crate::support::verify_with_jsonwebtoken;

const TENANT: &str = "contoso";
const VAULT_READER: &str = "55555555-5555-5555-5555-555555555555";
const SERVICE: &str = "66666666-6666-6666-6666-666666666666";
const API: &str = "22222222-2222-2222-2222-222222222222";
const SECRET: &str = "vault-reader-secret";

async fn testkit() -> Testkit {
    let config = Config::default()
        .app(AppConfig::new(API, TENANT).app_roles(&["Read"]))
        .app(AppConfig::new(VAULT_READER, TENANT).secret(SECRET));
    Testkit::builder()
        .config(config)
        .key_vault(TENANT)
        .start()
        .await
        .expect("testkit")
}

/// The identity that reaches the vault: a client with a secret (a managed identity in
/// production).
fn vault_identity(testkit: &Testkit) -> Arc<ConfidentialClient> {
    Arc::new(
        ConfidentialClient::builder(
            Authority::entra_at(testkit.base_url(), TENANT).expect("authority"),
            VAULT_READER,
        )
        .client_secret(SECRET)
        .build()
        .expect("client"),
    )
}

async fn signer(testkit: &Testkit, name: &str) -> Result<KeyVaultSigner, confidant::Error> {
    KeyVaultSigner::builder(
        testkit.key_vault_url().expect("vault"),
        name,
        vault_identity(testkit),
    )
    .build()
    .await
}

#[tokio::test]
async fn remote_signed_assertions_get_tokens_and_no_secret_is_read() {
    let testkit = testkit().await;
    testkit.grant_vault_access(
        VAULT_READER,
        &[
            VaultPermission::GetCertificate,
            VaultPermission::GetKey,
            VaultPermission::Sign,
        ],
    );
    for (name, kind) in [
        ("rsa-hsm", VaultKeyType::Rsa2048),
        ("ec-hsm", VaultKeyType::EcP256),
    ] {
        let cert_pem = testkit
            .create_vault_certificate(name, kind, true)
            .expect("vault certificate");
        let client_id = format!("{SERVICE}-{name}");
        testkit
            .register_app(
                AppConfig::new(&client_id, TENANT)
                    .certificate(cert_pem.clone())
                    .grant_roles(API, &["Read"]),
            )
            .expect("register");
        let signer = signer(&testkit, name).await.expect("signer");
        assert!(signer.key_id().contains(&format!("/keys/{name}/")));
        let expected: &[Algorithm] = if kind == VaultKeyType::EcP256 {
            &[Algorithm::Es256]
        } else {
            &[Algorithm::Ps256, Algorithm::Rs256]
        };
        assert_eq!(signer.algorithms(), expected);
        // Every algorithm the key has verifies with the certificate's public key.
        for &alg in expected {
            let assertion = confidant::ClientAssertionBuilder::for_authority(
                &Authority::entra_at(testkit.base_url(), TENANT).expect("authority"),
                &client_id,
            )
            .algorithm(alg)
            .sign(&signer)
            .await
            .expect("assertion");
            verify_with_jsonwebtoken(
                assertion.expose_secret(),
                cert_pem.as_bytes(),
                &testkit.token_endpoint(TENANT),
            );
        }
        let service = ConfidentialClient::builder(
            Authority::entra_at(testkit.base_url(), TENANT).expect("authority"),
            &client_id,
        )
        .certificate(Arc::new(signer))
        .build()
        .expect("client");
        let token = service
            .acquire_token_for_client(&[format!("{API}/.default")])
            .await
            .expect("a token with a remote-signed assertion");
        assert!(!token.access_token().expose_secret().is_empty());
    }
    assert!(testkit.request_count(Endpoint::VaultSign) >= 5);
    assert_eq!(
        testkit.request_count(Endpoint::VaultSecrets),
        0,
        "the private key is never requested"
    );
}

#[tokio::test]
async fn access_policy_missing_names_and_rotation() {
    let testkit = testkit().await;
    testkit
        .create_vault_certificate("svc", VaultKeyType::Rsa2048, false)
        .expect("certificate");
    // No access: the vault's 403 is a typed remote error.
    let error = signer(&testkit, "svc").await.expect_err("no access");
    assert_eq!(error.kind(), ErrorKind::Signer);
    assert!(error.to_string().contains("ForbiddenByPolicy"), "{error}");
    testkit.grant_vault_access(
        VAULT_READER,
        &[VaultPermission::GetCertificate, VaultPermission::GetKey],
    );
    let missing = signer(&testkit, "absent").await.expect_err("404");
    assert!(
        missing.to_string().contains("CertificateNotFound"),
        "{missing}"
    );
    // Certificate and key read, but no sign permission: the signature fails remotely.
    let signer_v1 = signer(&testkit, "svc").await.expect("signer");
    let refused = signer_v1
        .sign(Algorithm::Ps256, b"header.payload")
        .await
        .expect_err("no sign permission");
    assert_eq!(refused.kind(), SignerErrorKind::Remote);
    assert_eq!(
        signer_v1
            .sign(Algorithm::Es256, b"x")
            .await
            .expect_err("RSA key")
            .kind(),
        SignerErrorKind::UnsupportedAlgorithm
    );
    // Rotation: a new version is what a new signer picks up.
    testkit
        .create_vault_certificate("svc", VaultKeyType::Rsa2048, false)
        .expect("rotate");
    let signer_v2 = signer(&testkit, "svc").await.expect("signer");
    assert_ne!(signer_v1.key_id(), signer_v2.key_id());
    assert_ne!(
        signer_v1.certificate().map(|c| c.x5t_s256().to_owned()),
        signer_v2.certificate().map(|c| c.x5t_s256().to_owned())
    );
}

#[tokio::test]
async fn certificate_secrets_load_as_local_signers() {
    use base64::Engine as _;
    use confidant::KeyVaultCertificate;

    let testkit = testkit().await;
    testkit.grant_vault_access(VAULT_READER, &[VaultPermission::GetSecret]);
    let vault = testkit.key_vault_url().expect("vault");
    // PEM: an exportable certificate's secret (key, then certificate).
    let cert_pem = testkit
        .create_vault_certificate_as(
            "exportable",
            VaultKeyType::EcP256,
            false,
            VaultSecretFormat::Pem,
        )
        .expect("certificate");
    let loaded = KeyVaultCertificate::load(&vault, "exportable", vault_identity(&testkit), None)
        .await
        .expect("PEM secret");
    assert_eq!(loaded.signer.algorithms(), &[Algorithm::Es256]);
    let pem_x5t = loaded.signer.certificate().map(|c| c.x5t_s256().to_owned());
    let expected = confidant::Certificate::from_pem(cert_pem.as_bytes()).expect("certificate");
    assert_eq!(pem_x5t.as_deref(), Some(expected.x5t_s256()));

    // PKCS#12, Key Vault's default: the testkit's own export, RSA and EC.
    for kind in [VaultKeyType::Rsa2048, VaultKeyType::EcP256] {
        let cert_pem = testkit
            .create_vault_certificate("exported", kind, false)
            .expect("certificate");
        let loaded = KeyVaultCertificate::load(&vault, "exported", vault_identity(&testkit), None)
            .await
            .expect("PFX secret");
        let expected = confidant::Certificate::from_pem(cert_pem.as_bytes()).expect("certificate");
        assert_eq!(
            loaded
                .signer
                .certificate()
                .map(|c| c.x5t_s256().to_owned())
                .as_deref(),
            Some(expected.x5t_s256())
        );
    }

    // PKCS#12 with an empty password made by OpenSSL (tests/fixtures).
    let pfx = crate::support::fixture("rsa2048.empty-password.pfx");
    let first = testkit.put_vault_secret(
        "imported",
        "application/x-pkcs12",
        &base64::engine::general_purpose::STANDARD.encode(&pfx),
    );
    let loaded = KeyVaultCertificate::load(&vault, "imported", vault_identity(&testkit), None)
        .await
        .expect("PFX secret");
    assert_eq!(loaded.version, first);
    assert_eq!(
        loaded.signer.algorithms(),
        &[Algorithm::Ps256, Algorithm::Rs256]
    );
    // A rotation is a new version.
    let second = testkit.put_vault_secret(
        "imported",
        "application/x-pkcs12",
        &base64::engine::general_purpose::STANDARD.encode(&pfx),
    );
    let reloaded = KeyVaultCertificate::load(&vault, "imported", vault_identity(&testkit), None)
        .await
        .expect("PFX secret");
    assert_eq!(reloaded.version, second);

    // Bad secrets are typed errors.
    testkit.put_vault_secret("garbage", "application/x-pkcs12", "not base64!");
    let error = KeyVaultCertificate::load(&vault, "garbage", vault_identity(&testkit), None)
        .await
        .expect_err("garbage");
    assert_eq!(error.kind(), ErrorKind::Signer);
    testkit.put_vault_secret("text", "text/plain", "hello");
    assert!(
        KeyVaultCertificate::load(&vault, "text", vault_identity(&testkit), None)
            .await
            .is_err()
    );
    // A non-exportable key's secret holds no private key.
    testkit
        .create_vault_certificate("hsm-only", VaultKeyType::Rsa2048, true)
        .expect("certificate");
    let error = KeyVaultCertificate::load(&vault, "hsm-only", vault_identity(&testkit), None)
        .await
        .expect_err("no key");
    assert_eq!(error.kind(), ErrorKind::Signer, "{error}");
}

/// The `x5t#S256` of the last client assertion the token endpoint received.
fn last_assertion_thumbprint(testkit: &Testkit) -> String {
    let sent = testkit.requests(Endpoint::Token);
    let assertion = sent
        .last()
        .and_then(|r| r.form_value("client_assertion"))
        .expect("an assertion was sent");
    crate::support::decode_parts(&assertion).0["x5t#S256"]
        .as_str()
        .expect("x5t#S256")
        .to_owned()
}

fn thumbprint(pem: &str) -> String {
    confidant::Certificate::from_pem(pem.as_bytes())
        .expect("certificate")
        .x5t_s256()
        .to_owned()
}

#[tokio::test]
async fn rotation_is_followed_on_schedule_and_on_demand() {
    use std::time::Duration;

    use confidant::TokenRequest;

    let testkit = testkit().await;
    testkit.grant_vault_access(
        VAULT_READER,
        &[
            VaultPermission::GetCertificate,
            VaultPermission::GetKey,
            VaultPermission::Sign,
        ],
    );
    let register = |pems: &[&String]| {
        let mut app = AppConfig::new(SERVICE, TENANT).grant_roles(API, &["Read"]);
        for pem in pems {
            app = app.certificate((*pem).clone());
        }
        testkit.register_app(app).expect("register");
    };
    let v1 = testkit
        .create_vault_certificate("rotating", VaultKeyType::Rsa2048, true)
        .expect("v1");
    register(&[&v1]);
    let vault = testkit.key_vault_url().expect("vault");
    let signer = Arc::new(
        KeyVaultSigner::builder(&vault, "rotating", vault_identity(&testkit))
            .rotation_check_interval(Some(Duration::from_millis(50)))
            .build()
            .await
            .expect("signer"),
    );
    let client = ConfidentialClient::builder(
        Authority::entra_at(testkit.base_url(), TENANT).expect("authority"),
        SERVICE,
    )
    .certificate(Arc::clone(&signer) as Arc<dyn Signer>)
    .build()
    .expect("client");
    let scope = format!("{API}/.default");
    let forced = TokenRequest::new(&[&scope]).force_refresh(true);
    client
        .acquire_token_for_client_with(&forced)
        .await
        .expect("v1 token");
    assert_eq!(last_assertion_thumbprint(&testkit), thumbprint(&v1));

    // The vault rotates; Entra knows both certificates for the overlap, as in production.
    let v2 = testkit
        .create_vault_certificate("rotating", VaultKeyType::Rsa2048, true)
        .expect("v2");
    register(&[&v1, &v2]);
    tokio::time::sleep(Duration::from_millis(80)).await;
    // The first assertion after the interval starts the check and is signed with what it has.
    client
        .acquire_token_for_client_with(&forced)
        .await
        .expect("token");
    for _ in 0..200 {
        if signer.current().key_id() != signer.key_id() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let current = signer.current();
    assert_ne!(
        current.key_id(),
        signer.key_id(),
        "the background check found v2"
    );
    assert_eq!(
        current.certificate().map(|c| c.x5t_s256().to_owned()),
        Some(thumbprint(&v2))
    );
    client
        .acquire_token_for_client_with(&forced)
        .await
        .expect("v2 token");
    assert_eq!(
        last_assertion_thumbprint(&testkit),
        thumbprint(&v2),
        "header and signature both from v2 (the token endpoint verified the signature)"
    );
    // Once v1 is gone from the app, only v2 assertions work, and that is what is sent.
    register(&[&v2]);
    client
        .acquire_token_for_client_with(&forced)
        .await
        .expect("v2 only");

    // On demand, with the schedule off.
    let manual = KeyVaultSigner::builder(&vault, "rotating", vault_identity(&testkit))
        .rotation_check_interval(None)
        .build()
        .await
        .expect("signer");
    assert!(!manual.refresh().await.expect("no change"));
    let v3 = testkit
        .create_vault_certificate("rotating", VaultKeyType::Rsa2048, true)
        .expect("v3");
    assert_eq!(
        manual.current().key_id(),
        manual.key_id(),
        "no background check"
    );
    assert!(manual.refresh().await.expect("v3 found"));
    assert_eq!(
        manual
            .current()
            .certificate()
            .map(|c| c.x5t_s256().to_owned()),
        Some(thumbprint(&v3))
    );

    // A pinned version stays.
    let v1_version = signer
        .key_id()
        .rsplit('/')
        .next()
        .expect("version")
        .to_owned();
    let pinned = KeyVaultSigner::builder(&vault, "rotating", vault_identity(&testkit))
        .version(v1_version)
        .build()
        .await
        .expect("pinned");
    assert!(!pinned.refresh().await.expect("pinned"));
    assert!(pinned.snapshot().is_none());
    assert_eq!(
        pinned.certificate().map(|c| c.x5t_s256().to_owned()),
        Some(thumbprint(&v1))
    );
}

#[tokio::test]
async fn secret_signer_follows_new_versions() {
    use std::time::Duration;

    use confidant::{KeyVaultSecretSigner, TokenRequest};

    let testkit = testkit().await;
    testkit.grant_vault_access(VAULT_READER, &[VaultPermission::GetSecret]);
    let v1 = testkit
        .create_vault_certificate("exportable", VaultKeyType::Rsa2048, false)
        .expect("v1");
    let register = |pems: &[&String]| {
        let mut app = AppConfig::new(SERVICE, TENANT).grant_roles(API, &["Read"]);
        for pem in pems {
            app = app.certificate((*pem).clone());
        }
        testkit.register_app(app).expect("register");
    };
    register(&[&v1]);
    let vault = testkit.key_vault_url().expect("vault");
    let signer = Arc::new(
        KeyVaultSecretSigner::builder(&vault, "exportable", vault_identity(&testkit))
            .rotation_check_interval(Some(Duration::from_millis(50)))
            .build()
            .await
            .expect("signer"),
    );
    let (_, first_version) = signer.current();
    let client = ConfidentialClient::builder(
        Authority::entra_at(testkit.base_url(), TENANT).expect("authority"),
        SERVICE,
    )
    .certificate(Arc::clone(&signer) as Arc<dyn Signer>)
    .build()
    .expect("client");
    let forced = TokenRequest::new(&[format!("{API}/.default")]).force_refresh(true);
    client
        .acquire_token_for_client_with(&forced)
        .await
        .expect("v1");
    assert_eq!(last_assertion_thumbprint(&testkit), thumbprint(&v1));

    let v2 = testkit
        .create_vault_certificate("exportable", VaultKeyType::Rsa2048, false)
        .expect("v2");
    register(&[&v1, &v2]);
    tokio::time::sleep(Duration::from_millis(80)).await;
    client
        .acquire_token_for_client_with(&forced)
        .await
        .expect("token");
    for _ in 0..200 {
        if signer.current().1 != first_version {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_ne!(
        signer.current().1,
        first_version,
        "the new secret version was loaded"
    );
    client
        .acquire_token_for_client_with(&forced)
        .await
        .expect("v2");
    assert_eq!(last_assertion_thumbprint(&testkit), thumbprint(&v2));

    // On demand.
    assert!(!signer.refresh().await.expect("unchanged"));
    let v3 = testkit
        .create_vault_certificate("exportable", VaultKeyType::Rsa2048, false)
        .expect("v3");
    assert!(signer.refresh().await.expect("v3"));
    assert_eq!(
        signer
            .current()
            .0
            .certificate()
            .map(|c| c.x5t_s256().to_owned()),
        Some(thumbprint(&v3))
    );
    // A secret that turns bad keeps the last good version.
    testkit.put_vault_secret("exportable", "application/x-pkcs12", "not base64!");
    assert!(signer.refresh().await.is_err());
    assert_eq!(
        signer
            .current()
            .0
            .certificate()
            .map(|c| c.x5t_s256().to_owned()),
        Some(thumbprint(&v3))
    );
}

#[tokio::test]
async fn vault_faults_are_retried_or_typed() {
    use confidant_testkit::{Fault, TestCertificate};

    let testkit = testkit().await;
    testkit.grant_vault_access(
        VAULT_READER,
        &[
            VaultPermission::GetCertificate,
            VaultPermission::GetKey,
            VaultPermission::Sign,
        ],
    );
    testkit
        .create_vault_certificate("svc", VaultKeyType::Rsa2048, true)
        .expect("certificate");
    let signer = signer(&testkit, "svc").await.expect("signer");
    let retry_now = |status| Fault::Status {
        status,
        retry_after: Some(0),
    };

    // 429, then the signature: exactly two sign requests.
    testkit.reset_counters();
    testkit.inject(Endpoint::VaultSign, retry_now(429), 1);
    let signature = signer
        .sign(Algorithm::Ps256, b"message")
        .await
        .expect("after the throttle");
    assert_eq!(signature.as_bytes().len(), 256);
    assert_eq!(testkit.request_count(Endpoint::VaultSign), 2);

    // 503 three times: two retries, then Key Vault's error, typed and retryable.
    testkit.reset_counters();
    testkit.inject(Endpoint::VaultSign, retry_now(503), 3);
    let error = signer
        .sign(Algorithm::Ps256, b"message")
        .await
        .expect_err("retries spent");
    assert_eq!(error.kind(), SignerErrorKind::Remote);
    assert!(error.is_retryable());
    assert!(error.to_string().contains("ServiceUnavailable"), "{error}");
    assert_eq!(testkit.request_count(Endpoint::VaultSign), 3);

    // 403: not retried.
    testkit.reset_counters();
    testkit.inject(Endpoint::VaultSign, Fault::status(403), 1);
    let error = signer
        .sign(Algorithm::Ps256, b"message")
        .await
        .expect_err("forbidden");
    assert!(!error.is_retryable());
    assert_eq!(testkit.request_count(Endpoint::VaultSign), 1);

    // 401 although a token was sent (revoked): one new token past the cache, then the
    // signature. Twice in a row: the error, after that one new token.
    testkit.reset_counters();
    testkit.inject(Endpoint::VaultSign, Fault::status(401), 1);
    signer
        .sign(Algorithm::Ps256, b"message")
        .await
        .expect("after a new token");
    assert_eq!(testkit.request_count(Endpoint::VaultSign), 2);
    assert_eq!(
        testkit.request_count(Endpoint::Token),
        1,
        "a new token, not the cached one"
    );
    testkit.reset_counters();
    testkit.inject(Endpoint::VaultSign, Fault::status(401), 2);
    assert!(signer.sign(Algorithm::Ps256, b"message").await.is_err());
    assert_eq!(testkit.request_count(Endpoint::VaultSign), 2);
    assert_eq!(testkit.request_count(Endpoint::Token), 1);

    // A signature of the wrong length, and a body that is not JSON.
    testkit.inject(
        Endpoint::VaultSign,
        Fault::Body(br#"{"kid":"x","value":"c2hvcnQ"}"#.to_vec()),
        1,
    );
    let error = signer
        .sign(Algorithm::Ps256, b"message")
        .await
        .expect_err("short signature");
    assert!(error.to_string().contains("expected 256"), "{error}");
    testkit.inject(Endpoint::VaultSign, Fault::Garbage, 1);
    assert!(signer.sign(Algorithm::Ps256, b"message").await.is_err());

    // An algorithm the key cannot do: refused here, nothing sent.
    testkit.reset_counters();
    let error = signer
        .sign(Algorithm::Es256, b"message")
        .await
        .expect_err("RSA key");
    assert_eq!(error.kind(), SignerErrorKind::UnsupportedAlgorithm);
    assert_eq!(testkit.request_count(Endpoint::VaultSign), 0);

    // A certificate that does not belong to its key.
    let stranger = TestCertificate::generate("stranger").expect("certificate");
    testkit
        .replace_vault_certificate("svc", &stranger.cert_pem)
        .expect("replace");
    let error = self::signer(&testkit, "svc").await.expect_err("mismatch");
    assert!(
        error.signer_error().is_some_and(|e| e.is_key_mismatch()),
        "{error}"
    );
}

#[tokio::test]
async fn a_vault_filled_by_configuration() {
    use confidant::KeyVaultCertificate;
    use confidant_testkit::KeyVaultConfig;
    let vault_config = KeyVaultConfig::new(TENANT)
        .key("signing", VaultKeyType::EcP256, true)
        .certificate("exported", VaultKeyType::Rsa2048, VaultSecretFormat::Pem)
        .secret("note", "not a certificate", "text/plain")
        .allow(
            VAULT_READER,
            &[
                VaultPermission::GetKey,
                VaultPermission::Sign,
                VaultPermission::GetSecret,
            ],
        );
    let config = Config::default()
        .app(AppConfig::new(VAULT_READER, TENANT).secret(SECRET))
        .key_vault(vault_config);
    // No `key_vault(tenant)` on the builder: the configuration's vault is served.
    let testkit = Testkit::builder()
        .config(config)
        .start()
        .await
        .expect("testkit");
    let vault = testkit
        .key_vault_url()
        .expect("the configured vault is served");

    // The policy grants exactly what was allowed: no GetCertificate, so no remote signer on the
    // certificate; GetSecret, so its exported PEM loads.
    let key = KeyVaultSigner::builder(&vault, "exported", vault_identity(&testkit))
        .build()
        .await;
    assert!(key.is_err(), "GetCertificate was not granted");
    let loaded = KeyVaultCertificate::load(&vault, "exported", vault_identity(&testkit), None)
        .await
        .expect("the certificate's PEM secret loads");
    assert!(!loaded.version.is_empty());
    assert!(loaded.signer.certificate().is_some());
    let note = KeyVaultCertificate::load(&vault, "note", vault_identity(&testkit), None)
        .await
        .expect_err("a text secret is not a certificate");
    assert_ne!(note.kind(), ErrorKind::Transport, "{note}");
    // Two loads, each an unauthenticated request for the challenge and then the real one.
    assert_eq!(testkit.request_count(Endpoint::VaultSecrets), 4);
}

/// A vault in another tenant than the client's home: its challenge names its tenant, and the
/// signer asks for that tenant's token only when told to follow it.
#[tokio::test]
async fn a_vault_in_another_tenant_is_reached_when_its_challenge_tenant_is_followed() {
    let config = Config::default().app(
        AppConfig::new(VAULT_READER, TENANT)
            .secret(SECRET)
            .multi_tenant()
            .consented_in("fabrikam"),
    );
    let testkit = Testkit::builder()
        .config(config)
        .key_vault("fabrikam")
        .start()
        .await
        .expect("testkit");
    testkit.grant_vault_access(
        VAULT_READER,
        &[
            VaultPermission::GetCertificate,
            VaultPermission::GetKey,
            VaultPermission::Sign,
            VaultPermission::GetSecret,
        ],
    );
    testkit
        .create_vault_certificate("partner", VaultKeyType::Rsa2048, true)
        .expect("vault certificate");
    testkit
        .create_vault_certificate("exported", VaultKeyType::Rsa2048, false)
        .expect("exportable certificate");
    let vault_url = testkit.key_vault_url().expect("vault");

    // The home tenant's token: the vault refuses its issuer.
    let error = KeyVaultSigner::builder(&vault_url, "partner", vault_identity(&testkit))
        .build()
        .await
        .expect_err("a token of the client's own tenant");
    assert_eq!(error.kind(), ErrorKind::Signer);
    assert!(error.to_string().contains("AKV10032"), "{error}");

    let signer = KeyVaultSigner::builder(&vault_url, "partner", vault_identity(&testkit))
        .follow_challenge_tenant(true)
        .build()
        .await
        .expect("the vault's tenant's token");
    let signature = signer
        .sign(Algorithm::Rs256, b"header.payload")
        .await
        .expect("remote signature");
    assert_eq!(signature.as_bytes().len(), 256);
    let paths: Vec<String> = testkit
        .requests(Endpoint::Token)
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert!(
        paths.iter().any(|p| p.starts_with("/contoso/")),
        "{paths:?}"
    );
    // The same for a certificate's secret loaded as a local signer.
    let local = KeyVaultSecretSigner::builder(&vault_url, "exported", vault_identity(&testkit))
        .follow_challenge_tenant(true)
        .build()
        .await
        .expect("the secret, with the vault's tenant's token");
    assert!(local.current().0.certificate().is_some());
    // The challenge names the vault's tenant by id.
    let fabrikam = format!("/{}/", testkit.tenant_id("fabrikam"));
    assert!(paths.iter().any(|p| p.starts_with(&fabrikam)), "{paths:?}");
}

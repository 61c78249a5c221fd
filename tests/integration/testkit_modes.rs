//! The testkit's TLS mode (a generated CA, HTTPS for Entra and the vault) and its two modes of
//! reading client assertions: strict for confidant, compat for what other clients send. The
//! compat assertions are built by hand with jsonwebtoken, as msal-python and the Azure SDKs
//! shape them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use confidant::http::ReqwestClient;
use confidant::validator::BearerValidator;
use confidant::{Algorithm, Authority, ConfidentialClient, ErrorKind, PemSigner, Signer};
use confidant_testkit::{AppConfig, Config, Mode, TestCa, TestCertificate, Testkit};
use serde_json::{Value, json};

const TENANT: &str = "contoso";
const CLIENT: &str = "31313131-3131-4131-8131-313131313131";
const SECRET: &str = "modes-secret";
const SCOPE: &str = "https://vault.azure.net/.default";
const API: &str = "32323232-3232-4232-8232-323232323232";

#[tokio::test]
async fn tls_mode_serves_https_that_trusts_only_its_ca() {
    let testkit = Testkit::builder()
        .config(
            Config::default()
                .app(AppConfig::new(API, TENANT).app_roles(&["Data.Read"]))
                .app(
                    AppConfig::new(CLIENT, TENANT)
                        .secret(SECRET)
                        .grant_roles(API, &["Data.Read"]),
                ),
        )
        .key_vault(TENANT)
        .tls()
        .start()
        .await
        .expect("testkit");
    let base = testkit.base_url();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let vault = testkit.key_vault_url().expect("vault");
    assert!(vault.starts_with("https://127.0.0.1:"), "{vault}");
    assert!(testkit.imds_endpoint().starts_with("https://127.0.0.1:"));
    let ca = testkit.ca_pem().expect("CA in TLS mode").to_owned();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));

    // Trusting the CA: a token over HTTPS, then the validator fetches the JWKS over HTTPS too.
    let http = Arc::new(
        ReqwestClient::builder()
            .add_root_certificates_pem(ca.as_bytes())
            .build()
            .expect("http"),
    );
    let client = ConfidentialClient::builder(
        Authority::entra_at(base, TENANT).expect("authority"),
        CLIENT,
    )
    .client_secret(SECRET)
    .http_client(http)
    .build()
    .expect("client");
    let token = client
        .acquire_token_for_client(&[format!("api://{API}/.default")])
        .await
        .expect("token");
    let validator = BearerValidator::builder(Authority::entra_at(base, TENANT).expect("authority"))
        .audience(API)
        .add_root_certificates_pem(ca.as_bytes())
        .build()
        .expect("validator");
    validator
        .validate(token.access_token().expose_secret())
        .await
        .expect("the testkit's token validates over HTTPS");

    // The same names the certificate carries: `localhost` works as well as the IP address.
    let localhost = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).expect("CA"))
        .build()
        .expect("reqwest");
    let port = base.rsplit(':').next().expect("port");
    let discovery = localhost
        .get(format!(
            "https://localhost:{port}/{TENANT}/v2.0/.well-known/openid-configuration"
        ))
        .send()
        .await
        .expect("discovery over https://localhost");
    assert_eq!(discovery.status(), 200);
    // And on IPv6 loopback, where the host has one: the same port serves there too.
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        let v6 = localhost
            .get(format!(
                "https://[::1]:{port}/{TENANT}/v2.0/.well-known/openid-configuration"
            ))
            .send()
            .await
            .expect("discovery over https://[::1]");
        assert_eq!(v6.status(), 200);
    }

    // Without the CA, the platform roots do not trust the testkit: a typed transport error.
    let untrusting = ConfidentialClient::builder(
        Authority::entra_at(base, TENANT).expect("authority"),
        CLIENT,
    )
    .client_secret(SECRET)
    .build()
    .expect("client");
    let err = untrusting
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect_err("an unknown CA is refused");
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");

    // Each start generates its own CA.
    let other = Testkit::builder().tls().start().await.expect("testkit");
    assert_ne!(other.ca_pem(), Some(ca.as_str()));
    assert!(Testkit::start().await.expect("plain").ca_pem().is_none());
}

/// A client assertion assembled by hand: any header and claims, signed by `cert`'s key.
async fn assertion(cert: &TestCertificate, alg: &str, header: Value, claims: &Value) -> String {
    let mut header = header;
    header["alg"] = json!(alg);
    header["typ"] = json!("JWT");
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    // Only the raw RSA signature comes from confidant; the JWS is assembled here.
    let signer =
        PemSigner::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()).expect("key");
    let signature = signer
        .sign(
            Algorithm::from_name(alg).expect("alg"),
            signing_input.as_bytes(),
        )
        .await
        .expect("signs");
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_bytes())
    )
}

/// Posts `jwt` as the client assertion; the status and the AADSTS code of the answer.
async fn post_assertion(testkit: &Testkit, jwt: &str) -> (u16, Option<u64>) {
    // A compact JWS needs no form encoding; the scope and the assertion type do.
    let body = format!(
        "grant_type=client_credentials&client_id={CLIENT}\
         &scope=https%3A%2F%2Fvault.azure.net%2F.default\
         &client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer\
         &client_assertion={jwt}"
    );
    let response = reqwest::Client::new()
        .post(testkit.token_endpoint(TENANT))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    let body: Value = serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
    (status, body["error_codes"][0].as_u64())
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

#[tokio::test]
async fn compat_tolerates_what_entra_tolerates_and_strict_does_not() {
    let cert = TestCertificate::generate("modes-client").expect("cert");
    let ca = TestCa::generate("Modes Test CA").expect("CA");
    let leaf = ca.issue("modes-sni-client").expect("leaf");
    let config = Config::default()
        .certificate_authority(ca.cert_pem.clone())
        .app(
            AppConfig::new(CLIENT, TENANT)
                .certificate(cert.cert_pem.clone())
                .trusted_subject(&leaf.subject, &ca.subject),
        );
    let strict = Testkit::builder()
        .config(config.clone())
        .start()
        .await
        .expect("strict");
    let compat = Testkit::builder()
        .config(config)
        .mode(Mode::Compat)
        .start()
        .await
        .expect("compat");
    assert_eq!(strict.mode(), Mode::Strict);
    assert_eq!(compat.mode(), Mode::Compat);

    let leaf_der = STANDARD.encode(&leaf.cert_der);
    let unpadded = json!({ "x5t": cert.x5t });
    let claims_for = |testkit: &Testkit, f: &dyn Fn(&mut Value)| {
        let t = now().floor();
        let mut claims = json!({
            "aud": testkit.token_endpoint(TENANT), "iss": CLIENT, "sub": CLIENT,
            "jti": jti(), "iat": t as u64, "nbf": t as u64, "exp": t as u64 + 600,
        });
        f(&mut claims);
        claims
    };

    type Case<'a> = (&'a str, Value, &'a dyn Fn(&mut Value));
    let cases: Vec<Case<'_>> = vec![
        // msal-python: `base64.urlsafe_b64encode` keeps the padding.
        (
            "padded x5t",
            json!({ "x5t": format!("{}=", cert.x5t) }),
            &|_| {},
        ),
        // msal-python and PyJWT: `time.time()` floats, and no `nbf`.
        ("float times, no nbf", unpadded.clone(), &|c| {
            let t = now();
            c["iat"] = json!(t);
            c["exp"] = json!(t + 600.0);
            c.as_object_mut().expect("object").remove("nbf");
        }),
        ("string times", unpadded.clone(), &|c| {
            let t = now() as u64;
            c["iat"] = json!(t.to_string());
            c["nbf"] = json!(t.to_string());
            c["exp"] = json!((t + 600).to_string());
        }),
        (
            "x5c as one string",
            json!({ "x5c": leaf_der.clone() }),
            &|_| {},
        ),
    ];
    for (name, header, change) in &cases {
        let signer = if header.get("x5c").is_some() {
            &leaf
        } else {
            &cert
        };
        let jwt = assertion(
            signer,
            "RS256",
            header.clone(),
            &claims_for(&strict, change),
        )
        .await;
        let (status, code) = post_assertion(&strict, &jwt).await;
        assert!(status >= 400, "strict refuses {name}");
        assert!(code.is_some(), "strict answers {name} with an AADSTS code");
        let jwt = assertion(
            signer,
            "RS256",
            header.clone(),
            &claims_for(&compat, change),
        )
        .await;
        assert_eq!(
            post_assertion(&compat, &jwt).await,
            (200, None),
            "compat accepts {name}"
        );
    }

    // The same assertion twice: strict enforces single use, compat accepts it until it expires.
    for (testkit, second) in [(&strict, 401), (&compat, 200)] {
        let jwt = assertion(
            &cert,
            "PS256",
            unpadded.clone(),
            &claims_for(testkit, &|_| {}),
        )
        .await;
        assert_eq!(post_assertion(testkit, &jwt).await.0, 200);
        assert_eq!(post_assertion(testkit, &jwt).await.0, second);
    }

    // What no mode tolerates: an expired assertion, a bad signature, another audience.
    for testkit in [&strict, &compat] {
        let expired = claims_for(testkit, &|c| {
            let t = now() as u64 - 3600;
            c["iat"] = json!(t);
            c["nbf"] = json!(t);
            c["exp"] = json!(t + 600);
        });
        let jwt = assertion(&cert, "RS256", unpadded.clone(), &expired).await;
        assert_eq!(post_assertion(testkit, &jwt).await, (401, Some(700024)));
        let other = TestCertificate::generate("impostor").expect("cert");
        let jwt = assertion(
            &other,
            "RS256",
            unpadded.clone(),
            &claims_for(testkit, &|_| {}),
        )
        .await;
        assert_eq!(post_assertion(testkit, &jwt).await, (401, Some(700027)));
        let elsewhere = claims_for(testkit, &|c| c["aud"] = json!("https://example.com/token"));
        let jwt = assertion(&cert, "RS256", unpadded.clone(), &elsewhere).await;
        assert_eq!(post_assertion(testkit, &jwt).await, (401, Some(700023)));
        let garbage = claims_for(testkit, &|c| c["exp"] = json!("soon"));
        let jwt = assertion(&cert, "RS256", unpadded.clone(), &garbage).await;
        assert_eq!(post_assertion(testkit, &jwt).await.1, Some(50027));
    }

    // confidant's own client passes strict mode.
    let signer =
        PemSigner::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()).expect("signer");
    let client = ConfidentialClient::builder(
        Authority::entra_at(strict.base_url(), TENANT).expect("authority"),
        CLIENT,
    )
    .certificate(Arc::new(signer))
    .build()
    .expect("client");
    client
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect("strict accepts confidant's assertion");
}

/// A fresh `jti`.
fn jti() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("jti-{}-{}", now(), NEXT.fetch_add(1, Ordering::Relaxed))
}

//! Fixture loading and an independent JWS verifier.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use confidant::Password;

pub(crate) const PASSWORD: &str = "fixture-password";

pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

pub(crate) fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A binary of the workspace (`confidant`, `confidant-testkit`), built by cargo beside this
/// test's profile directory (`scripts/test.sh` builds them before the tests).
pub(crate) fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let profile = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/{profile}/deps");
    let binary = profile.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: run scripts/test.sh, or `cargo build --workspace --bins` first",
        binary.display()
    );
    binary
}

pub(crate) fn password() -> Password {
    Password::new(PASSWORD)
}

/// Splits a compact JWS and decodes its header and claims as JSON.
pub(crate) fn decode_parts(jwt: &str) -> (serde_json::Value, serde_json::Value, Vec<u8>) {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "compact JWS has three parts");
    for part in &parts {
        assert!(!part.contains('='), "base64url must be unpadded");
    }
    let header = URL_SAFE_NO_PAD
        .decode(parts[0])
        .expect("header is base64url");
    let claims = URL_SAFE_NO_PAD
        .decode(parts[1])
        .expect("claims are base64url");
    let sig = URL_SAFE_NO_PAD
        .decode(parts[2])
        .expect("signature is base64url");
    (
        serde_json::from_slice(&header).expect("header is JSON"),
        serde_json::from_slice(&claims).expect("claims are JSON"),
        sig,
    )
}

/// Verifies `jwt` with jsonwebtoken (an implementation independent of ours) against the public
/// key of the PEM certificate, checking `aud` too.
pub(crate) fn verify_with_jsonwebtoken(
    jwt: &str,
    cert_pem: &[u8],
    audience: &str,
) -> serde_json::Value {
    let header = jsonwebtoken::decode_header(jwt).expect("header decodes");
    let cert = x509_cert_der(cert_pem);
    let spki_bits = public_key_bits(&cert);
    let key = match header.alg {
        jsonwebtoken::Algorithm::ES256 => {
            // The uncompressed point: 0x04 || x || y.
            let x = URL_SAFE_NO_PAD.encode(&spki_bits[1..33]);
            let y = URL_SAFE_NO_PAD.encode(&spki_bits[33..65]);
            jsonwebtoken::DecodingKey::from_ec_components(&x, &y).expect("EC key")
        }
        _ => jsonwebtoken::DecodingKey::from_rsa_der(&spki_bits),
    };
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub", "nbf"]);
    validation.validate_nbf = true;
    jsonwebtoken::decode::<serde_json::Value>(jwt, &key, &validation)
        .unwrap_or_else(|e| panic!("jsonwebtoken rejects the assertion: {e}"))
        .claims
}

fn x509_cert_der(pem: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(pem).expect("PEM is text");
    let start = text
        .find("-----BEGIN CERTIFICATE-----")
        .expect("certificate block");
    let end_marker = "-----END CERTIFICATE-----";
    let end = start + text[start..].find(end_marker).expect("END line") + end_marker.len();
    let (_, der) = pem_rfc7468::decode_vec(&text.as_bytes()[start..end]).expect("PEM decodes");
    der
}

/// The subjectPublicKey bits of a certificate, found with the `x509-cert` crate.
fn public_key_bits(cert_der: &[u8]) -> Vec<u8> {
    use der::Decode as _;
    let cert = x509_cert::Certificate::from_der(cert_der).expect("certificate parses");
    cert.tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes()
        .to_vec()
}

/// The public JWK of a PEM certificate's key (RSA `n`/`e` or P-256 `x`/`y`), with `kid`.
pub(crate) fn jwk_of_certificate(cert_pem: &[u8], kid: &str) -> serde_json::Value {
    use der::Decode as _;
    let bits = public_key_bits(&x509_cert_der(cert_pem));
    if bits.first() == Some(&4) && bits.len() == 65 {
        return serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&bits[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&bits[33..65]),
        });
    }
    let rsa = pkcs1::RsaPublicKey::from_der(&bits).expect("RSA public key");
    serde_json::json!({
        "kty": "RSA", "kid": kid, "use": "sig",
        "n": URL_SAFE_NO_PAD.encode(rsa.modulus.as_bytes()),
        "e": URL_SAFE_NO_PAD.encode(rsa.public_exponent.as_bytes()),
    })
}

/// Signs `user` in through the authorize endpoint as a browser would (302 back to
/// `redirect_uri`, `response_mode=query`) and redeems the code with `client`.
pub(crate) async fn sign_in_by_redirect(
    client: &confidant::ConfidentialClient,
    redirect_uri: &str,
    scope: &str,
    user: &str,
) -> confidant::AuthenticationResult {
    let (url, flow) = client
        .authorization_url(
            &confidant::AuthorizationRequest::new(redirect_uri, &[scope]).login_hint(user),
        )
        .expect("authorization URL");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http");
    let response = http.get(url.as_str()).send().await.expect("authorize");
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let query = url::Url::parse(&location)
        .expect("location URL")
        .query()
        .unwrap_or_default()
        .to_owned();
    client
        .acquire_token_by_auth_code(&flow, &confidant::AuthorizationResponse::from_form(&query))
        .await
        .expect("signed in")
}

/// A merge that adds one entry named `name` to a document's `AccessToken` section: for
/// concurrent-writer tests of the token stores.
pub(crate) fn add_entry(name: String) -> confidant::cache::Merge {
    std::sync::Arc::new(move |current: Option<&[u8]>| {
        let mut document: serde_json::Value = match current {
            Some(bytes) => serde_json::from_slice(bytes).expect("JSON"),
            None => serde_json::json!({"AccessToken": {}}),
        };
        document["AccessToken"][&name] = serde_json::json!({"secret": "s"});
        Ok(serde_json::to_vec(&document).expect("JSON"))
    })
}

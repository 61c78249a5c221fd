//! Entry points for the fuzz targets (`fuzz/`) and their regression tests: each feeds untrusted
//! bytes to one parser exactly as the network, a file or a user would. A panic, a hang or
//! unbounded memory is the only failure; the result says whether the main parser accepted the
//! input, so the seed corpora can be checked to reach past the first error. Not part of the API.

#![allow(
    clippy::panic,
    reason = "the harness's fixed setup (a runtime, a validator, a client) panics only on a bug in the harness, never on input"
)]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use crate::validator::BearerValidator;
use crate::{Authority, Certificate, Challenge, ConfidentialClient, PemSigner, Pkcs12Signer};

/// The fixed time the parsers are run at, so the corpus's tokens stay current.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(SEED_TIME)
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("a current-thread runtime: {e}"))
    })
}

/// The testkit's JWKS from the run that issued the `bearer_token` seeds
/// (`fuzz/corpus/jwks/entra.json`), so that a seed passes the signature check and the claims
/// rules run on its mutations.
const JWKS: &str = r#"{"keys":[{"cloud_instance_name":"microsoftonline.com","e":"AQAB","issuer":"http://127.0.0.1:34107/4a1e2b3c-5d6e-4f70-8192-a3b4c5d6e7f8/v2.0","kid":"T4J-eYE_5OUej8Om3uEhdz5JjkI","kty":"RSA","n":"n395tvgzXnWalR0_P0NQYOTNJAe1QycM6v9Zv8Jwa1IEmsd_o0ZSLJd0yKOLHpzjn8e50IEwATHdsZJDx5o_KmsQAHMiJ5bie-OcwO9HboSsQH6kvn-gWLSRB26iAuWMtzx7pRqeN46A0ZEs2gdK31uwxFSYqONLLg3oo5Q3WBU0L-ukomv0cBPHX1kTvKTLLQbEfrYKK_0zGvEf2znmecmtOPH-QBaSFNbd4jR6U3vNzPYQH4HGI4vPoidb8FN1GQqoatjmkBkWHWbub0jbWv3_haqHv1jrhZcHKSwNddM5nIvDV0oxuI07VS45K2aCjO3b5FWk1XMcdxRm4Xrj7w","use":"sig","x5c":["MIIC4jCCAcqgAwIBAgIUJCpgjXo30ZZQwgnCP6Wj7t6eLr0wDQYJKoZIhvcNAQELBQAwKjEoMCYGA1UEAwwfY29uZmlkYW50LXRlc3RraXQgdG9rZW4gc2lnbmluZzAgFw03NTAxMDEwMDAwMDBaGA80MDk2MDEwMTAwMDAwMFowKjEoMCYGA1UEAwwfY29uZmlkYW50LXRlc3RraXQgdG9rZW4gc2lnbmluZzCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAJ9/ebb4M151mpUdPz9DUGDkzSQHtUMnDOr/Wb/CcGtSBJrHf6NGUiyXdMijix6c45/HudCBMAEx3bGSQ8eaPyprEABzIieW4nvjnMDvR26ErEB+pL5/oFi0kQduogLljLc8e6UanjeOgNGRLNoHSt9bsMRUmKjjSy4N6KOUN1gVNC/rpKJr9HATx19ZE7ykyy0GxH62Civ9MxrxH9s55nnJrTjx/kAWkhTW3eI0elN7zcz2EB+BxiOLz6InW/BTdRkKqGrY5pAZFh1m7m9I21r9/4Wqh79Y64WXByksDXXTOZyLw1dKMbiNO1UuOStmgozt2+RVpNVzHHcUZuF64+8CAwEAATANBgkqhkiG9w0BAQsFAAOCAQEAczfj18yxnVQ5Ym0HMCgyvaTfsFVa+BpYZ5Y/EdLQF8aWuLtbWWzQtvOSzVZQ1SnHq8o3uLLEVVL6KYLvFVWKfx/WC5c/I8pZdBtMD5J+6nlEEBx+KUUxqPsbKygOm3ai3vm0zztNlK/+2WHc/PPbZViG6PalKfsbEEzOFdPOEPZH9auQ6Foutl1GeoONW9BARh6fykNhxxEugMdBjW69DMk0Zx72OaFHKGbGhDiJ0IOkyE1spjwxT8GngIACd0eLW6uT6iSuB9/SBvo6eZEehEs3bJOVrxS7OypiSDh2c42vXnT+GM2uRfwSeyRsLf/Yx+5PGyu1ngc+jeiAlC1PIg=="],"x5t":"T4J-eYE_5OUej8Om3uEhdz5JjkI"}]}"#;

/// The seeds' issuer host and tenant, audience, and a time inside their lifetime.
const SEED_AUTHORITY: &str = "http://127.0.0.1:34107";
const SEED_TENANT: &str = "4a1e2b3c-5d6e-4f70-8192-a3b4c5d6e7f8";
const SEED_AUDIENCE: &str = "0f1e2d3c-4b5a-4697-8a8b-9c0d1e2f3a4b";
const SEED_TIME: u64 = 1_795_474_711;

fn validator() -> &'static BearerValidator {
    static VALIDATOR: OnceLock<BearerValidator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let authority = Authority::entra_at(SEED_AUTHORITY, SEED_TENANT)
            .unwrap_or_else(|e| panic!("authority: {e}"));
        BearerValidator::builder(authority)
            .audience(SEED_AUDIENCE)
            .jwks(JWKS)
            .clock(Arc::new(crate::ManualClock::new(now())))
            .build()
            .unwrap_or_else(|e| panic!("validator: {e}"))
    })
}

/// A compact JWS through the whole bearer validator (structure, base64url, header and claims
/// JSON, key selection, signature, claims rules), as an access token and as an ID token.
pub fn bearer_token(data: &[u8]) -> bool {
    let token = String::from_utf8_lossy(data);
    runtime().block_on(async {
        let _ = validator()
            .validate_id_token(&token, SEED_AUDIENCE, "nonce")
            .await;
        validator().validate(&token).await.is_ok()
    })
}

/// A JWKS document, as the validator loads it.
pub fn jwks(data: &[u8]) -> bool {
    crate::validator::fuzz_jwks(data)
}

/// An OpenID Connect discovery document.
pub fn discovery(data: &[u8]) -> bool {
    let _ = Authority::from_discovery("https://login.example.com/tenant/v2.0", data);
    // Again with the issuer the document claims, so the endpoint rules run too.
    let claimed = serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .and_then(|doc| doc.get("issuer")?.as_str().map(str::to_owned));
    claimed.is_some_and(|issuer| Authority::from_discovery(&issuer, data).is_ok())
}

/// A `WWW-Authenticate` header value.
pub fn www_authenticate(data: &[u8]) -> bool {
    let Ok(header) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(challenges) = Challenge::parse_header(header) else {
        return false;
    };
    for challenge in &challenges {
        let _ = challenge.claims();
        let _ = challenge.b2c_policy();
    }
    !challenges.is_empty()
}

/// PEM: a certificate chain, a key with its certificate, a combined file with a password.
pub fn pem(data: &[u8]) -> bool {
    let certificate = Certificate::from_pem(data).is_ok();
    // The first half as the certificate, the rest as the key, so both parsers see structure.
    let (certificate_part, key_part) = data.split_at(data.len() / 2);
    let _ = PemSigner::from_pem(certificate_part, key_part);
    let password = crate::Password::new("fixture-password");
    PemSigner::from_combined_pem(data, Some(&password)).is_ok() || certificate
}

/// A PKCS#12 (PFX) file, without and with a password.
pub fn pkcs12(data: &[u8]) -> bool {
    let _ = Pkcs12Signer::from_pkcs12(data, None);
    Pkcs12Signer::from_pkcs12(data, Some(&crate::Password::new("fixture-password"))).is_ok()
}

fn client() -> &'static ConfidentialClient {
    static CLIENT: OnceLock<ConfidentialClient> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let authority = Authority::parse(
            "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47",
        )
        .unwrap_or_else(|e| panic!("authority: {e}"));
        ConfidentialClient::builder(authority, "9f0e8d7c-6b5a-4948-8372-615049382716")
            .client_secret("fuzz")
            .clock(Arc::new(crate::ManualClock::new(now())))
            .build()
            .unwrap_or_else(|e| panic!("client: {e}"))
    })
}

/// An MSAL unified-schema cache document, read into a client and written back.
pub fn msal_cache(data: &[u8]) -> bool {
    let Ok(document) = std::str::from_utf8(data) else {
        return false;
    };
    let client = client();
    match client.deserialize_cache(document) {
        Ok(loaded) => client.serialize_cache().is_ok() && loaded > 0,
        Err(_) => false,
    }
}

/// A token endpoint's answer: Entra's success shape, its error shape, `Retry-After`, and a
/// managed-identity host's success shape.
pub fn token_response(data: &[u8]) -> bool {
    let entra = crate::flows::fuzz_parse_success(data, now());
    let error = crate::ServerError::fuzz_from_response(data);
    let managed = crate::credential::fuzz_managed_identity(data, now());
    if let Ok(value) = http::HeaderValue::from_bytes(data) {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, value);
        let _ = crate::flows::fuzz_retry_after(&headers, now());
    }
    let _ = (error.to_string(), error.class());
    entra || managed || !error.error_codes().is_empty() || error.aadb2c().is_some()
}

/// The certificate the `key_vault` target checks keys against: `tests/fixtures/rsa2048.crt`, the
/// certificate of the seed key bundle's public key.
const VAULT_CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----\nMIIDJTCCAg2gAwIBAgIUMqpn3ij1ad0CfGkGRGMGDaafuJkwDQYJKoZIhvcNAQEL\nBQAwITEfMB0GA1UEAwwWY29uZmlkYW50LXRlc3QtcnNhMjA0ODAgFw0yNjExMjMx\nNTUwMzhaGA8yMTI2MTAzMDE1NTAzOFowITEfMB0GA1UEAwwWY29uZmlkYW50LXRl\nc3QtcnNhMjA0ODCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAKT5Iqpy\n1tFHpsNtc0FW89d2Gr1v4EztyAXQy6QXfQp0t4VjpmDnboT54YPusT9RQJbdH+a7\nexnUCGQ3TTBcexiuSQVRP7vOJW+psj3giYne16A575bw5QAIFmKNqKbIS7vX6oTu\n+PwZcR9zElA0Xxs7jOwGQd2oG7RenNwI/flM3GgmGLIKq/Gulc3oci2PFMxCKmgi\nM7DmNcJuNaVbxjbg0VzCdatOlDhFI9swPHk0dtSY5Sj8AR52vHxkqTXlCDr7PaQ0\nbK6YLePO1i2VuOagwNl78rfEFn+A7+hZoSASNHYklC1m+a9vqEdt2006rDrynAJX\n4926Cd4XB28zbhUCAwEAAaNTMFEwHQYDVR0OBBYEFFCQr6L9RFIYLjZXERFpNZQs\nKV9kMB8GA1UdIwQYMBaAFFCQr6L9RFIYLjZXERFpNZQsKV9kMA8GA1UdEwEB/wQF\nMAMBAf8wDQYJKoZIhvcNAQELBQADggEBAIxAtkbYI0S/VViju2UpP9HdtwrWHPKq\nFEmjJebRfdhd+wzjQs8CWBygiCwKfsG6wCxS3BNPdQ+6ryGyju+Er6mUNoHlcXxk\nAtvTofypN/7dsQx1dzO5qt9Y656CHVZytKqFMWdegoF8YqVXY7teO1ql2hyWT2Us\nZzvt32sl7YyupH3zK++4OjMSMBgPVvwpyaOZM3Qod0mbEzipfQG6vi7SEeNwYzEa\nRwUxBZ9z2jEVlu3ykOW7O02//rfXUTU0bPXa5uoqioC3F6tR1k4kWRv27NjtaFH+\nb4Te6EaPBnqw+9h7j8lHbkw9/hUFQLxQKzS3GNhimr6hy6Y979BU/o8=\n-----END CERTIFICATE-----";

/// Key Vault's answers: certificate, key and secret bundles, error bodies, and the 401 challenge.
pub fn key_vault(data: &[u8]) -> bool {
    static CERTIFICATE: OnceLock<Certificate> = OnceLock::new();
    let certificate = CERTIFICATE.get_or_init(|| {
        Certificate::from_pem(VAULT_CERTIFICATE.as_bytes())
            .unwrap_or_else(|e| panic!("the fixture certificate: {e}"))
    });
    crate::signer::fuzz_key_vault(data, certificate)
}

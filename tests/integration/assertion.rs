//! The client-assertion builder, checked member by member and by an independent verifier.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use confidant::{
    Algorithm, Authority, Backend, ClientAssertionBuilder, Clock, PemSigner, Pkcs12Signer, Signer,
    ThumbprintHeader,
};

use crate::support::{decode_parts, fixture, password, verify_with_jsonwebtoken};

const CLIENT_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

fn authority() -> Authority {
    Authority::parse(&format!("https://login.microsoftonline.com/{TENANT}")).expect("authority")
}

fn token_endpoint() -> String {
    format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token")
}

fn rsa_signer(backend: Backend) -> PemSigner {
    PemSigner::builder()
        .certificate_pem(&fixture("rsa2048.crt"))
        .private_key_pem(&fixture("rsa2048.pkcs8.key"))
        .backend(backend)
        .build()
        .expect("fixture")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

#[tokio::test]
async fn entra_default_is_ps256_with_x5t_s256() {
    for backend in Backend::available().iter().copied() {
        let signer = rsa_signer(backend);
        let builder = ClientAssertionBuilder::for_authority(&authority(), CLIENT_ID);
        let before = now();
        let assertion = builder.sign(&signer).await.expect("signs");
        let jwt = assertion.expose_secret();
        let (header, claims, signature) = decode_parts(jwt);

        assert_eq!(header["alg"], "PS256");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["x5t#S256"], signer.certificate().x5t_s256());
        assert!(
            header.get("x5t").is_none()
                && header.get("x5c").is_none()
                && header.get("kid").is_none()
        );
        assert_eq!(header.as_object().expect("object").len(), 3);

        assert_eq!(claims["aud"], token_endpoint());
        assert_eq!(claims["iss"], CLIENT_ID);
        assert_eq!(claims["sub"], CLIENT_ID);
        let jti = claims["jti"].as_str().expect("jti is a string");
        let uuid = uuid::Uuid::parse_str(jti).expect("jti is a UUID");
        assert_eq!(uuid.get_version_num(), 4);
        let iat = claims["iat"].as_u64().expect("iat is an integer");
        assert!(iat >= before && iat <= now());
        assert_eq!(claims["nbf"].as_u64(), Some(iat));
        assert_eq!(claims["exp"].as_u64(), Some(iat + 600));
        assert_eq!(claims.as_object().expect("object").len(), 7);
        assert_eq!(signature.len(), 256);

        let verified = verify_with_jsonwebtoken(jwt, &fixture("rsa2048.crt"), &token_endpoint());
        assert_eq!(verified["jti"], jti);
        let signing_input = &jwt[..jwt.rfind('.').expect("dot")];
        for verifier in Backend::available().iter().copied() {
            assert!(signer.certificate().verify_signature(
                verifier,
                Algorithm::Ps256,
                signing_input.as_bytes(),
                &signature
            ));
        }
        assert_eq!(
            assertion.expires_at(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(iat + 600)
        );
    }
}

#[tokio::test]
async fn rs256_carries_x5t_and_ec_keys_sign_es256() {
    let signer = rsa_signer(Backend::default());
    let builder =
        ClientAssertionBuilder::for_authority(&authority(), CLIENT_ID).algorithm(Algorithm::Rs256);
    let jwt = builder.sign(&signer).await.expect("RS256");
    let (header, _, _) = decode_parts(jwt.expose_secret());
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["x5t"], signer.certificate().x5t());
    assert!(header.get("x5t#S256").is_none());
    verify_with_jsonwebtoken(
        jwt.expose_secret(),
        &fixture("rsa2048.crt"),
        &token_endpoint(),
    );

    for backend in Backend::available().iter().copied() {
        let ec = PemSigner::builder()
            .certificate_pem(&fixture("ec-p256.crt"))
            .private_key_pem(&fixture("ec-p256.sec1.key"))
            .backend(backend)
            .build()
            .expect("EC");
        let builder = ClientAssertionBuilder::new(CLIENT_ID, "https://id.example.com/token");
        let jwt = builder.sign(&ec).await.expect("ES256");
        let (header, _, signature) = decode_parts(jwt.expose_secret());
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["x5t#S256"], ec.certificate().x5t_s256());
        assert_eq!(signature.len(), 64);
        verify_with_jsonwebtoken(
            jwt.expose_secret(),
            &fixture("ec-p256.crt"),
            "https://id.example.com/token",
        );
    }
}

/// A signer that cannot do PSS (some HSMs) gets RS256 + x5t without being asked.
#[derive(Debug)]
struct Pkcs1Only(PemSigner);

#[confidant::async_trait]
impl Signer for Pkcs1Only {
    fn algorithms(&self) -> &[Algorithm] {
        &[Algorithm::Rs256]
    }
    fn key_id(&self) -> Option<&str> {
        Some("hsm-key-1")
    }
    fn certificate(&self) -> Option<&confidant::Certificate> {
        Some(self.0.certificate())
    }
    async fn sign(
        &self,
        alg: Algorithm,
        message: &[u8],
    ) -> Result<confidant::Signature, confidant::SignerError> {
        self.0.sign(alg, message).await
    }
}

#[tokio::test]
async fn falls_back_to_rs256_when_the_signer_cannot_do_pss() {
    let signer = Pkcs1Only(rsa_signer(Backend::default()));
    let builder = ClientAssertionBuilder::for_authority(&authority(), CLIENT_ID);
    let jwt = builder.sign(&signer).await.expect("RS256 fallback");
    let (header, _, _) = decode_parts(jwt.expose_secret());
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["x5t"], signer.0.certificate().x5t());
    assert_eq!(header["kid"], "hsm-key-1");
    let err = ClientAssertionBuilder::for_authority(&authority(), CLIENT_ID)
        .algorithm(Algorithm::Ps256)
        .sign(&signer)
        .await
        .expect_err("PS256 was demanded");
    assert!(err.is_configuration());
}

#[tokio::test]
async fn x5c_is_the_chain_leaf_first_in_standard_base64() {
    let signer = Pkcs12Signer::from_pkcs12(&fixture("leaf3072.chain.pfx"), Some(&password()))
        .expect("chain");
    let builder = ClientAssertionBuilder::for_authority(&authority(), CLIENT_ID)
        .x5c(true)
        .thumbprint(ThumbprintHeader::Both);
    let jwt = builder.sign(&signer).await.expect("x5c");
    let (header, _, _) = decode_parts(jwt.expose_secret());
    let x5c = header["x5c"].as_array().expect("x5c is an array");
    assert_eq!(x5c.len(), 2);
    assert_eq!(x5c[0], signer.certificate().x5c()[0]);
    let leaf = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(x5c[0].as_str().expect("string"))
            .expect("padded base64")
    };
    assert_eq!(leaf, signer.certificate().der());
    assert_eq!(header["x5t"], signer.certificate().x5t());
    assert_eq!(header["x5t#S256"], signer.certificate().x5t_s256());
}

#[tokio::test]
async fn every_assertion_has_a_fresh_jti_unless_reuse_is_asked() {
    let signer = rsa_signer(Backend::default());
    let builder = ClientAssertionBuilder::for_authority(&authority(), CLIENT_ID);
    let a = builder.sign(&signer).await.expect("a");
    let b = builder.sign(&signer).await.expect("b");
    assert_ne!(
        decode_parts(a.expose_secret()).1["jti"],
        decode_parts(b.expose_secret()).1["jti"]
    );

    let reusing = ClientAssertionBuilder::for_authority(&authority(), CLIENT_ID).reuse(true);
    let a = reusing.sign(&signer).await.expect("a");
    let b = reusing.sign(&signer).await.expect("b");
    assert_eq!(a.expose_secret(), b.expose_secret());
    // A different signer never gets the kept assertion.
    let ec =
        PemSigner::from_pem(&fixture("ec-p256.crt"), &fixture("ec-p256.pkcs8.key")).expect("EC");
    let c = reusing.sign(&ec).await.expect("c");
    assert_ne!(c.expose_secret(), a.expose_secret());
}

#[derive(Debug)]
struct SettableClock(std::sync::Mutex<SystemTime>);

impl Clock for SettableClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().expect("clock lock")
    }
}

#[tokio::test]
async fn reuse_stops_before_exp() {
    let signer = rsa_signer(Backend::default());
    let clock = Arc::new(SettableClock(std::sync::Mutex::new(SystemTime::now())));
    let builder = ClientAssertionBuilder::for_authority(&authority(), CLIENT_ID)
        .reuse(true)
        .clock(clock.clone())
        .lifetime(Duration::from_secs(300))
        .expect("lifetime");
    let first = builder.sign(&signer).await.expect("first");
    *clock.0.lock().expect("lock") += Duration::from_secs(200);
    let second = builder.sign(&signer).await.expect("second");
    assert_eq!(
        first.expose_secret(),
        second.expose_secret(),
        "100 s left: reused"
    );
    *clock.0.lock().expect("lock") += Duration::from_secs(50);
    let third = builder.sign(&signer).await.expect("third");
    assert_ne!(
        first.expose_secret(),
        third.expose_secret(),
        "50 s left: a new one"
    );
    assert!(third.expires_at() > first.expires_at());
}

#[tokio::test]
async fn lifetime_and_extra_claims_are_checked() {
    let builder = ClientAssertionBuilder::new(CLIENT_ID, token_endpoint());
    assert!(builder.lifetime(Duration::from_secs(601)).is_err());
    let builder = ClientAssertionBuilder::new(CLIENT_ID, token_endpoint());
    assert!(builder.lifetime(Duration::ZERO).is_err());
    for registered in ["aud", "iss", "sub", "jti", "iat", "nbf", "exp"] {
        let err = ClientAssertionBuilder::new(CLIENT_ID, token_endpoint())
            .extra_claim(registered, serde_json::json!("x"))
            .expect_err(registered);
        assert!(err.is_configuration());
    }
    let builder = ClientAssertionBuilder::new(CLIENT_ID, token_endpoint())
        .lifetime(Duration::from_secs(120))
        .expect("120 s")
        .extra_claim("xms_ac", serde_json::json!({"n": [1, 2]}))
        .expect("extra");
    let signer = rsa_signer(Backend::default());
    let jwt = builder.sign(&signer).await.expect("signs");
    let (_, claims, _) = decode_parts(jwt.expose_secret());
    assert_eq!(claims["xms_ac"], serde_json::json!({"n": [1, 2]}));
    assert_eq!(
        claims["exp"].as_u64(),
        claims["iat"].as_u64().map(|i| i + 120)
    );
}

#[tokio::test]
async fn x5c_without_a_certificate_is_a_configuration_error() {
    #[derive(Debug)]
    struct Bare(PemSigner);
    #[confidant::async_trait]
    impl Signer for Bare {
        fn algorithms(&self) -> &[Algorithm] {
            self.0.algorithms()
        }
        fn key_id(&self) -> Option<&str> {
            None
        }
        fn certificate(&self) -> Option<&confidant::Certificate> {
            None
        }
        async fn sign(
            &self,
            alg: Algorithm,
            m: &[u8],
        ) -> Result<confidant::Signature, confidant::SignerError> {
            self.0.sign(alg, m).await
        }
    }
    let bare = Bare(rsa_signer(Backend::default()));
    let err = ClientAssertionBuilder::new(CLIENT_ID, token_endpoint())
        .x5c(true)
        .sign(&bare)
        .await
        .expect_err("x5c");
    assert!(err.is_configuration());
    let jwt = ClientAssertionBuilder::new(CLIENT_ID, token_endpoint())
        .sign(&bare)
        .await
        .expect("no headers");
    let (header, _, _) = decode_parts(jwt.expose_secret());
    assert_eq!(
        header.as_object().expect("object").len(),
        2,
        "alg and typ only: {header}"
    );
    assert_eq!(format!("{jwt:?}"), "ClientAssertion([redacted])");
}

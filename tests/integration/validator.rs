//! The bearer validator against the testkit over HTTP: authority types, algorithms, the key
//! lifecycle of VALIDATION.md §5 with request counting and an injected clock, and ID tokens.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use confidant::http::ReqwestClient;
use confidant::validator::{
    BearerValidator, BearerValidatorBuilder, Requirements, ValidationErrorKind,
};
use confidant::{Algorithm, Authority, Clock, ConfidentialClient, ManualClock, PemSigner, Signer};
use confidant_testkit::{AppConfig, Config, Endpoint, Fault, TenantConfig, Testkit};
use serde_json::{Value, json};

use crate::support::{fixture, jwk_of_certificate};

const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const OTHER_TID: &str = "0b2c5e8a-1111-4222-8333-944445555666";
const API: &str = "22222222-2222-2222-2222-222222222222";
const V1_API: &str = "33333333-3333-3333-3333-333333333333";
const CLIENT: &str = "11111111-1111-1111-1111-111111111111";
const SECRET: &str = "test-secret-value";

pub(crate) struct Env {
    pub(crate) testkit: Testkit,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) authority: Authority,
}

/// A testkit sharing a manual clock with the validators, with an API (v2 tokens), a v1 API and
/// a client granted roles on both.
pub(crate) async fn env() -> Env {
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let testkit_clock = Arc::clone(&clock);
    let config = Config::default()
        .tenant(TenantConfig::new(TID, &["contoso.example"]))
        .app(AppConfig::new(API, TID).app_roles(&["Read", "Admin"]))
        .app(
            AppConfig::new(V1_API, TID)
                .app_roles(&["Read"])
                .access_token_version(1),
        )
        .app(
            AppConfig::new(CLIENT, TID)
                .secret(SECRET)
                .grant_roles(API, &["Read"])
                .grant_roles(V1_API, &["Read"]),
        );
    let testkit = Testkit::builder()
        .config(config)
        .clock(Arc::new(move || testkit_clock.now()))
        .start()
        .await
        .expect("testkit starts");
    let authority = Authority::entra_at(testkit.base_url(), TID).expect("authority");
    Env {
        testkit,
        clock,
        authority,
    }
}

impl Env {
    pub(crate) fn validator(&self) -> BearerValidatorBuilder {
        BearerValidator::builder(self.authority.clone())
            .audience(API)
            .clock(self.clock.clone())
            .unknown_kid_cooldown(Duration::from_secs(1))
    }

    /// A fresh app-only token for `scope` (a new client each time: no cache hit).
    pub(crate) async fn app_token(&self, scope: &str) -> String {
        ConfidentialClient::builder(self.authority.clone(), CLIENT)
            .client_secret(SECRET)
            .clock(self.clock.clone())
            .build()
            .expect("client")
            .acquire_token_for_client(&[scope.to_owned()])
            .await
            .expect("token")
            .access_token()
            .expose_secret()
            .to_owned()
    }

    pub(crate) fn now(&self) -> u64 {
        self.clock
            .now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
    }

    /// Entra v2 delegated claims for `API`, as the authorization-code flow would issue them.
    pub(crate) fn delegated_claims(&self, scp: &str) -> Value {
        let now = self.now();
        json!({
            "aud": API, "iss": format!("{}/{TID}/v2.0", self.testkit.base_url()),
            "iat": now, "nbf": now, "exp": now + 3600, "tid": TID, "ver": "2.0",
            "azp": CLIENT, "azpacr": "1", "scp": scp, "idtyp": "user",
            "oid": "aaaaaaaa-0000-4000-8000-000000000001", "sub": "pairwise-subject",
            "amr": ["pwd"], "name": "Test User",
        })
    }

    pub(crate) fn sign(&self, claims: &Value) -> String {
        self.testkit.sign_token(claims).expect("signed")
    }
}

async fn kind(validator: &BearerValidator, token: &str) -> Result<(), ValidationErrorKind> {
    validator
        .validate(token)
        .await
        .map(|_| ())
        .map_err(|e| e.kind())
}

/// A token with the same header and payload and another `kid`.
fn with_kid(token: &str, kid: &str) -> String {
    let (header, rest) = token.split_once('.').expect("dot");
    let mut header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("b64")).expect("json");
    header["kid"] = json!(kid);
    format!(
        "{}.{rest}",
        URL_SAFE_NO_PAD.encode(header.to_string().as_bytes())
    )
}

#[tokio::test]
async fn entra_authorities_v1_v2_domain_and_multi_tenant() {
    let env = env().await;
    let v2 = env.app_token(&format!("{API}/.default")).await;
    let validator = env.validator().build().expect("validator");
    let token = validator.validate(&v2).await.expect("v2 app token");
    assert!(token.is_app_only());
    assert_eq!(token.client_id(), Some(CLIENT));
    assert_eq!(token.identity().0, TID);

    // v1: issuer `{base}/{tid}/`, aud the App ID URI, appid/appidacr.
    let v1 = env.app_token(&format!("api://{V1_API}/.default")).await;
    let v1_validator = env.validator().audience(V1_API).build().expect("validator");
    let token = v1_validator.validate(&v1).await.expect("v1 app token");
    assert_eq!(token.claim_str("ver"), Some("1.0"));
    let v2_only = env
        .validator()
        .audience(V1_API)
        .accept_v1_tokens(false)
        .build()
        .expect("validator");
    assert_eq!(
        kind(&v2_only, &v1).await,
        Err(ValidationErrorKind::BadIssuer)
    );

    // A tenant named by its domain pins its GUID from discovery.
    let by_domain = BearerValidator::builder(
        Authority::entra_at(env.testkit.base_url(), "contoso.example").expect("authority"),
    )
    .audience(API)
    .clock(env.clock.clone())
    .build()
    .expect("validator");
    assert_eq!(kind(&by_domain, &v2).await, Ok(()));

    // Multi-tenant: a tenant list is required, and only its tenants pass.
    let organizations =
        Authority::entra_at(env.testkit.base_url(), "organizations").expect("authority");
    let error = BearerValidator::builder(organizations.clone())
        .audience(API)
        .build()
        .expect_err("needs tenants");
    assert!(error.to_string().contains("allowed_tenants"), "{error}");
    let multi = |tenants: &[&str]| {
        BearerValidator::builder(organizations.clone())
            .audience(API)
            .allowed_tenants(tenants.iter().copied())
            .clock(env.clock.clone())
            .build()
            .expect("validator")
    };
    assert_eq!(kind(&multi(&[TID]), &v2).await, Ok(()));
    assert_eq!(
        kind(&multi(&[OTHER_TID]), &v2).await,
        Err(ValidationErrorKind::BadIssuer)
    );
    let mut foreign = env.delegated_claims("Accounts.Read");
    foreign["tid"] = json!(OTHER_TID);
    foreign["iss"] = json!(format!("{}/{OTHER_TID}/v2.0", env.testkit.base_url()));
    let foreign = env.sign(&foreign);
    assert_eq!(kind(&multi(&[TID, OTHER_TID]), &foreign).await, Ok(()));
    assert_eq!(
        kind(&validator, &foreign).await,
        Err(ValidationErrorKind::BadIssuer),
        "a single-tenant API refuses other tenants"
    );
}

#[tokio::test]
async fn delegated_tokens_scopes_and_step_up() {
    let env = env().await;
    let validator = env.validator().build().expect("validator");
    let token = env.sign(&env.delegated_claims("Accounts.Read Files.Read"));
    let valid = validator
        .validate_with(
            &token,
            &Requirements::new()
                .delegated()
                .all_scopes(["Accounts.Read"]),
        )
        .await
        .expect("delegated");
    assert!(valid.is_delegated());
    assert_eq!(
        valid.scopes().collect::<Vec<_>>(),
        ["Accounts.Read", "Files.Read"]
    );
    let write = Requirements::new()
        .all_scopes(["Accounts.Write"])
        .auth_context("c1")
        .or_amr("mfa");
    let error = validator
        .validate_with(&token, &write)
        .await
        .expect_err("no write scope");
    assert_eq!(error.kind(), ValidationErrorKind::Forbidden);
    assert_eq!(error.required_scope(), Some("Accounts.Write"));
    let writer = env.sign(&env.delegated_claims("Accounts.Write"));
    let error = validator
        .validate_with(&writer, &write)
        .await
        .expect_err("needs step-up");
    assert_eq!(error.kind(), ValidationErrorKind::StepUpRequired);
    let mut stepped = env.delegated_claims("Accounts.Write");
    stepped["acrs"] = json!(["c1"]);
    assert!(
        validator
            .validate_with(&env.sign(&stepped), &write)
            .await
            .is_ok()
    );

    // Z0: neither scopes nor roles.
    let mut bare = env.delegated_claims("x");
    bare.as_object_mut().expect("object").remove("scp");
    let bare = env.sign(&bare);
    assert_eq!(
        kind(&validator, &bare).await,
        Err(ValidationErrorKind::Forbidden)
    );
    let lenient = env
        .validator()
        .danger_accept_tokens_without_permissions()
        .build()
        .expect("validator");
    assert!(format!("{lenient:?}").contains("danger_accept_tokens_without_permissions"));
    assert_eq!(kind(&lenient, &bare).await, Ok(()));
}

#[tokio::test]
async fn id_tokens_have_their_own_entry_point() {
    let env = env().await;
    let validator = env.validator().build().expect("validator");
    let now = env.now();
    let id_claims = json!({
        "aud": CLIENT, "iss": format!("{}/{TID}/v2.0", env.testkit.base_url()),
        "iat": now, "nbf": now, "exp": now + 3600, "tid": TID, "ver": "2.0",
        "oid": "aaaaaaaa-0000-4000-8000-000000000001", "sub": "s", "nonce": "n-123",
    });
    let id_token = env.sign(&id_claims);
    let valid = validator
        .validate_id_token(&id_token, CLIENT, "n-123")
        .await
        .expect("ID token");
    assert_eq!(valid.subject(), Some("s"));
    let id_kind = |token: String, client: &'static str, nonce: &'static str| {
        let validator = validator.clone();
        async move {
            validator
                .validate_id_token(&token, client, nonce)
                .await
                .map(|_| ())
                .map_err(|e| e.kind())
        }
    };
    assert_eq!(
        id_kind(id_token.clone(), CLIENT, "other").await,
        Err(ValidationErrorKind::WrongTokenType)
    );
    assert_eq!(
        id_kind(id_token.clone(), API, "n-123").await,
        Err(ValidationErrorKind::BadAudience)
    );
    // An access token is not an ID token, and an ID token is not an access token.
    let access = env.sign(&env.delegated_claims("Accounts.Read"));
    assert_eq!(
        id_kind(access, API, "n-123").await,
        Err(ValidationErrorKind::WrongTokenType)
    );
    let mut for_api = id_claims.clone();
    for_api["aud"] = json!(API);
    assert_eq!(
        kind(&validator, &env.sign(&for_api)).await,
        Err(ValidationErrorKind::WrongTokenType)
    );
}

/// PS256 and ES256 (and RS256) from a generic OpenID provider, keys given in code, RFC 9068
/// profile.
#[tokio::test]
async fn every_algorithm_with_a_generic_provider() {
    let issuer = "https://id.example.com";
    let document = json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
    });
    let authority =
        Authority::from_discovery(issuer, document.to_string().as_bytes()).expect("authority");
    let rsa = PemSigner::from_pem(&fixture("rsa2048.crt"), &fixture("rsa2048.pkcs8.key"))
        .expect("RSA signer");
    let ec = PemSigner::from_pem(&fixture("ec-p256.crt"), &fixture("ec-p256.pkcs8.key"))
        .expect("EC signer");
    let jwks = json!({"keys": [
        jwk_of_certificate(&fixture("rsa2048.crt"), "rsa"),
        jwk_of_certificate(&fixture("ec-p256.crt"), "ec"),
    ]});
    let validator = BearerValidator::builder(authority)
        .audience("https://api.example.com")
        .jwks(jwks.to_string())
        .build()
        .expect("validator");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("now")
        .as_secs();
    let claims = json!({
        "iss": issuer, "aud": "https://api.example.com", "sub": "user-1", "client_id": "web",
        "iat": now, "exp": now + 600, "jti": "j-1", "scope": "read write",
    });
    for (signer, kid, alg) in [
        (&rsa, "rsa", Algorithm::Rs256),
        (&rsa, "rsa", Algorithm::Ps256),
        (&ec, "ec", Algorithm::Es256),
    ] {
        let header = json!({"typ": "at+jwt", "alg": alg.as_str(), "kid": kid});
        let token = sign_jws(signer, alg, &header, &claims).await;
        let valid = validator
            .validate(&token)
            .await
            .unwrap_or_else(|e| panic!("{alg:?}: {e:?}"));
        assert_eq!(valid.client_id(), Some("web"));
        assert_eq!(valid.identity(), (issuer, "user-1"));
        // RFC 9068 requires typ at+jwt.
        let plain = sign_jws(
            signer,
            alg,
            &json!({"alg": alg.as_str(), "kid": kid}),
            &claims,
        )
        .await;
        assert_eq!(
            kind(&validator, &plain).await,
            Err(ValidationErrorKind::WrongTokenType),
            "{alg:?}"
        );
    }
    // A key used with another key's algorithm.
    let header = json!({"typ": "at+jwt", "alg": "ES256", "kid": "rsa"});
    let token = sign_jws(&ec, Algorithm::Es256, &header, &claims).await;
    assert_eq!(
        kind(&validator, &token).await,
        Err(ValidationErrorKind::UnsupportedAlg)
    );
    // Narrowed to RS256: PS256 is refused before any key is looked at.
    let narrow = BearerValidator::builder(
        Authority::from_discovery(issuer, document.to_string().as_bytes()).expect("authority"),
    )
    .audience("https://api.example.com")
    .jwks(jwks.to_string())
    .algorithms(&[Algorithm::Rs256])
    .build()
    .expect("validator");
    let header = json!({"typ": "at+jwt", "alg": "PS256", "kid": "rsa"});
    let token = sign_jws(&rsa, Algorithm::Ps256, &header, &claims).await;
    assert_eq!(
        kind(&narrow, &token).await,
        Err(ValidationErrorKind::UnsupportedAlg)
    );
}

pub(crate) async fn sign_jws(
    signer: &PemSigner,
    alg: Algorithm,
    header: &Value,
    claims: &Value,
) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = signer.sign(alg, input.as_bytes()).await.expect("signs");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_bytes()))
}

#[tokio::test]
async fn configurations_that_can_only_be_insecure_fail_to_build() {
    let env = env().await;
    let build = |b: BearerValidatorBuilder| b.build().map(|_| ()).map_err(|e| e.to_string());
    assert!(
        build(BearerValidator::builder(env.authority.clone())).is_err(),
        "no audience"
    );
    assert!(build(env.validator().clock_skew(Duration::from_secs(601))).is_err());
    assert!(build(env.validator().clock_skew(Duration::from_secs(600))).is_ok());
    assert!(
        build(
            env.validator()
                .unknown_kid_cooldown(Duration::from_millis(500))
        )
        .is_err()
    );
    assert!(
        build(
            env.validator()
                .jwks_refresh_interval(Duration::from_secs(60))
        )
        .is_err()
    );
    assert!(build(env.validator().max_token_bytes(512 * 1024)).is_err());
    assert!(build(env.validator().realm("a\"b")).is_err());
    assert!(build(env.validator().algorithms(&[])).is_err());
    assert!(
        Authority::entra_at("http://login.example.com", TID).is_err(),
        "http off loopback is refused before a validator exists"
    );
}

// ---- Lifecycle (§5) ----

#[tokio::test]
async fn unknown_kid_storm_is_one_fetch_then_cooldown() {
    let env = env().await;
    let validator = env.validator().build().expect("validator");
    let token = env.app_token(&format!("{API}/.default")).await;
    validator.prefetch().await.expect("warm");
    env.testkit.reset_counters();

    let unknown = with_kid(&token, "not-a-published-kid");
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let validator = validator.clone();
            let unknown = unknown.clone();
            tokio::spawn(async move { validator.validate(&unknown).await.map_err(|e| e.kind()) })
        })
        .collect();
    for task in tasks {
        assert_eq!(
            task.await.expect("task").map(|_| ()),
            Err(ValidationErrorKind::KeyNotFound)
        );
    }
    assert_eq!(
        env.testkit.request_count(Endpoint::Jwks),
        1,
        "1,000 unknown kids, one fetch"
    );

    // Within the cooldown: answered at once, no fetch.
    assert_eq!(
        kind(&validator, &unknown).await,
        Err(ValidationErrorKind::KeyNotFound)
    );
    assert_eq!(env.testkit.request_count(Endpoint::Jwks), 1);
    // After it: one more.
    env.clock.advance(Duration::from_secs(2));
    assert_eq!(
        kind(&validator, &unknown).await,
        Err(ValidationErrorKind::KeyNotFound)
    );
    assert_eq!(env.testkit.request_count(Endpoint::Jwks), 2);
    // Known kids never fetch.
    assert_eq!(kind(&validator, &token).await, Ok(()));
    assert_eq!(env.testkit.request_count(Endpoint::Jwks), 2);
}

#[tokio::test]
async fn rotation_is_picked_up_and_removed_keys_stop_at_once() {
    let env = env().await;
    let validator = env.validator().build().expect("validator");
    let old = env.app_token(&format!("{API}/.default")).await;
    assert_eq!(kind(&validator, &old).await, Ok(()));
    env.testkit.rotate_signing_key().expect("rotate");
    let new = env.app_token(&format!("{API}/.default")).await;
    // The new kid is unknown: one refresh, then it validates; the old key is still published.
    assert_eq!(kind(&validator, &new).await, Ok(()));
    assert_eq!(kind(&validator, &old).await, Ok(()));
    // Retired: after the next refresh the old key fails at once.
    env.testkit.retire_old_signing_keys();
    env.clock.advance(Duration::from_secs(14 * 3600));
    assert_eq!(
        kind(&validator, &new).await,
        Err(ValidationErrorKind::Expired)
    );
    // The due refresh ran in the background; wait for it to land.
    wait_for_jwks_fetches(&env, 3).await;
    let fresh_old_claims = {
        let (_, payload, _) = crate::support::decode_parts(&old);
        let mut claims = payload;
        let now = env.now();
        claims["iat"] = json!(now);
        claims["nbf"] = json!(now);
        claims["exp"] = json!(now + 3600);
        claims
    };
    let renewed = env.app_token(&format!("{API}/.default")).await;
    assert_eq!(kind(&validator, &renewed).await, Ok(()));
    // A token naming the retired kid: unknown after the refresh, so it fails before any
    // signature check.
    let retired_kid = crate::support::decode_parts(&old).0["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    let stale = with_kid(&env.sign(&fresh_old_claims), &retired_kid);
    assert_eq!(
        kind(&validator, &stale).await,
        Err(ValidationErrorKind::KeyNotFound)
    );
}

async fn wait_for_jwks_fetches(env: &Env, at_least: usize) {
    for _ in 0..200 {
        if env.testkit.request_count(Endpoint::Jwks) >= at_least {
            // The install happens right after the response; give it a moment.
            tokio::time::sleep(Duration::from_millis(20)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("expected {at_least} JWKS fetches");
}

/// Every failed refresh keeps the last good keys (L7), with its own fault.
#[tokio::test]
async fn last_known_good_across_every_kind_of_failed_refresh() {
    let env = env().await;
    let fast = Arc::new(
        ReqwestClient::builder()
            .timeout(Duration::from_millis(800))
            .build()
            .expect("client"),
    );
    let validator = env
        .validator()
        .http_client(fast)
        .build()
        .expect("validator");
    let token = env.app_token(&format!("{API}/.default")).await;
    assert_eq!(kind(&validator, &token).await, Ok(()));
    let base = env.testkit.base_url().to_owned();
    let big = format!(r#"{{"keys":[],"pad":"{}"}}"#, "x".repeat(300 * 1024));
    let faults: Vec<(Endpoint, Fault)> = vec![
        (Endpoint::Jwks, Fault::status(500)),
        (Endpoint::Discovery, Fault::status(503)),
        (Endpoint::Jwks, Fault::Garbage),
        (Endpoint::Jwks, Fault::Body(big.into_bytes())),
        (Endpoint::Jwks, Fault::Drip(Duration::from_millis(200))),
        (Endpoint::Jwks, Fault::Body(br#"{"keys":[]}"#.to_vec())),
        (
            Endpoint::Jwks,
            Fault::Body(br#"{"keys":[{"kty":"RSA","kid":"weak","n":"AQAB","e":"AQAB"}]}"#.to_vec()),
        ),
        (
            Endpoint::Discovery,
            Fault::Body(
                json!({"issuer": format!("{base}/{OTHER_TID}/v2.0"), "jwks_uri": format!("{base}/{TID}/discovery/v2.0/keys")})
                    .to_string()
                    .into_bytes(),
            ),
        ),
        (
            Endpoint::Discovery,
            Fault::Body(
                json!({"issuer": format!("{base}/{TID}/v2.0"), "jwks_uri": "https://evil.example.net/keys"})
                    .to_string()
                    .into_bytes(),
            ),
        ),
        (Endpoint::Jwks, Fault::Redirect(format!("{base}/{TID}/discovery/v2.0/keys"))),
        (Endpoint::Jwks, Fault::Truncated),
    ];
    for (endpoint, fault) in faults {
        let label = format!("{endpoint:?} {fault:?}")
            .chars()
            .take(80)
            .collect::<String>();
        env.testkit.inject(endpoint, fault, 1);
        let before = env.testkit.request_count(endpoint);
        // A forced refresh (unknown kid) meets the fault; the known token still validates.
        env.clock.advance(Duration::from_secs(2));
        let unknown = with_kid(&token, "unknown");
        assert_eq!(
            kind(&validator, &unknown).await,
            Err(ValidationErrorKind::KeyNotFound),
            "{label}"
        );
        assert!(
            env.testkit.request_count(endpoint) > before,
            "{label}: the fault was met"
        );
        assert_eq!(
            kind(&validator, &token).await,
            Ok(()),
            "{label}: last known good"
        );
    }
}

#[tokio::test]
async fn stale_keys_are_dropped_after_the_grace_and_cold_start_fails_closed() {
    let env = env().await;
    // Cold start fails closed: every waiter gets `metadata`, and the retry backs off.
    env.testkit
        .inject(Endpoint::Discovery, Fault::status(500), 1);
    let validator = env.validator().build().expect("validator");
    let token = env.app_token(&format!("{API}/.default")).await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (validator, token) = (validator.clone(), token.clone());
            tokio::spawn(async move { validator.validate(&token).await.map_err(|e| e.kind()) })
        })
        .collect();
    for task in tasks {
        assert_eq!(
            task.await.expect("task").map(|_| ()),
            Err(ValidationErrorKind::Metadata)
        );
    }
    assert_eq!(
        env.testkit.request_count(Endpoint::Discovery),
        1,
        "single flight"
    );
    assert_eq!(
        kind(&validator, &token).await,
        Err(ValidationErrorKind::Metadata)
    );
    assert_eq!(
        env.testkit.request_count(Endpoint::Discovery),
        1,
        "backing off"
    );
    env.clock.advance(Duration::from_secs(2));
    assert_eq!(kind(&validator, &token).await, Ok(()));

    // Refreshes fail from now on; the keys serve until refresh interval + stale grace.
    env.testkit.inject(Endpoint::Jwks, Fault::status(500), 1000);
    let mut elapsed = Duration::ZERO;
    let step = Duration::from_secs(3 * 3600);
    while elapsed < Duration::from_secs(35 * 3600) {
        env.clock.advance(step);
        elapsed += step;
        // Fresh tokens on the shared clock, so expiry does not interfere.
        let (_, mut claims, _) = crate::support::decode_parts(&token);
        let now = env.now();
        claims["iat"] = json!(now);
        claims["nbf"] = json!(now);
        claims["exp"] = json!(now + 3600);
        let current = env.sign(&claims);
        assert_eq!(
            kind(&validator, &current).await,
            Ok(()),
            "{elapsed:?} in grace"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    env.clock.advance(Duration::from_secs(3 * 3600));
    let (_, mut claims, _) = crate::support::decode_parts(&token);
    let now = env.now();
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 3600);
    claims["nbf"] = json!(now);
    assert_eq!(
        kind(&validator, &env.sign(&claims)).await,
        Err(ValidationErrorKind::Metadata),
        "past 12 h + 24 h grace"
    );
}

/// Azure AD B2C: the per-policy discovery document and key set of the testkit, `tfp` policies.
#[tokio::test]
async fn b2c_policies() {
    let env = env().await;
    let base = env.testkit.base_url();
    let now = env.now();
    let b2c_claims = |policy: &str| {
        json!({
            "iss": format!("{base}/{TID}/v2.0/"), "aud": API, "ver": "1.0", "azp": CLIENT,
            "scp": "Accounts.Read", "tfp": policy, "sub": "user-1", "oid": "user-1",
            "iat": now, "nbf": now, "exp": now + 3600,
        })
    };
    let signin = env.sign(&b2c_claims("B2C_1_signin"));
    let mfa = env.sign(&b2c_claims("b2c_1_mfa"));
    for tenant in [TID, "contoso.example"] {
        let authority = Authority::b2c_at(base, tenant, "B2C_1_signin").expect("B2C authority");
        let validator = BearerValidator::builder(authority)
            .audience(API)
            .clock(env.clock.clone())
            .build()
            .expect("validator");
        let valid = validator.validate(&signin).await.expect("B2C token");
        assert_eq!(
            valid.identity(),
            (format!("{base}/{TID}/v2.0/").as_str(), "user-1")
        );
        assert_eq!(
            kind(&validator, &mfa).await,
            Err(ValidationErrorKind::BadIssuer),
            "another policy"
        );
        // Step-up to the MFA policy: the claims request names it.
        let error = validator
            .validate_with(&signin, &Requirements::new().acr("B2C_1_MFA"))
            .await
            .expect_err("step-up");
        assert_eq!(
            error.claims_challenge(),
            Some(r#"{"access_token":{"acr":{"essential":true,"value":"b2c_1_mfa"}}}"#)
        );
    }
    let both = BearerValidator::builder(
        Authority::b2c_at(base, TID, "B2C_1_signin").expect("B2C authority"),
    )
    .audience(API)
    .b2c_policy("B2C_1_MFA")
    .clock(env.clock.clone())
    .build()
    .expect("validator");
    assert_eq!(kind(&both, &mfa).await, Ok(()));
    assert_eq!(kind(&both, &signin).await, Ok(()));
    // An Entra token is not a B2C token (issuer), and B2C keys carry no issuer to check.
    let entra = env.app_token(&format!("{API}/.default")).await;
    assert_eq!(
        kind(&both, &entra).await,
        Err(ValidationErrorKind::BadIssuer)
    );
}

/// Entra External ID (CIAM): its `{tid}.ciamlogin.com` issuer, keys given in code (the testkit
/// serves loopback issuers only).
#[tokio::test]
async fn ciam_issuer_with_keys_in_code() {
    let authority = Authority::ciam("contoso", Some(TID)).expect("CIAM authority");
    let rsa = PemSigner::from_pem(&fixture("rsa2048.crt"), &fixture("rsa2048.pkcs8.key"))
        .expect("RSA signer");
    let jwks = json!({"keys": [jwk_of_certificate(&fixture("rsa2048.crt"), "ciam-key")]});
    let validator = BearerValidator::builder(authority)
        .audience(API)
        .jwks(jwks.to_string())
        .build()
        .expect("validator");
    assert_eq!(validator.realm(), Some(TID));
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("now")
        .as_secs();
    let claims = json!({
        "iss": format!("https://{TID}.ciamlogin.com/{TID}/v2.0"), "aud": API, "tid": TID,
        "ver": "2.0", "azp": CLIENT, "azpacr": "0", "scp": "Accounts.Read", "sub": "s",
        "oid": "o", "iat": now, "nbf": now, "exp": now + 3600,
    });
    let header = json!({"typ": "JWT", "alg": "RS256", "kid": "ciam-key"});
    let token = sign_jws(&rsa, Algorithm::Rs256, &header, &claims).await;
    assert_eq!(kind(&validator, &token).await, Ok(()));
    let mut entra = claims.clone();
    entra["iss"] = json!(format!("https://login.microsoftonline.com/{TID}/v2.0"));
    let token = sign_jws(&rsa, Algorithm::Rs256, &header, &entra).await;
    assert_eq!(
        kind(&validator, &token).await,
        Err(ValidationErrorKind::BadIssuer)
    );
}

/// Entra app-specific signing keys: the JWKS is fetched with `?appid=`.
#[tokio::test]
async fn app_specific_keys_are_fetched_with_the_app_id() {
    let env = env().await;
    let validator = env
        .validator()
        .app_specific_keys(API)
        .build()
        .expect("validator");
    validator.prefetch().await.expect("keys");
    let requests = env.testkit.requests(Endpoint::Jwks);
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].query.as_deref(),
        Some(format!("appid={API}").as_str())
    );
}

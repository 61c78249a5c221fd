//! The negative suite at `trace`: every rejection and key-set event is logged, and no token part
//! (header, payload or signature segment) appears in any of them (VALIDATION.md §8.1, §8.4, §10).
//!
//! Its own test binary with one test: the capturing subscriber is the process's global one, so
//! no test running beside it can change what tracing's callsites report.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use confidant::validator::BearerValidator;
use confidant::{Authority, Clock, ConfidentialClient, ManualClock};
use confidant_testkit::{AppConfig, Config, Endpoint, Fault, Testkit};
use serde_json::{Value, json};

const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const API: &str = "22222222-2222-2222-2222-222222222222";
const CLIENT: &str = "11111111-1111-1111-1111-111111111111";

#[path = "common/capture.rs"]
mod capture;

use capture::Capture;

fn with_kid(token: &str, kid: &str) -> String {
    let (header, rest) = token.split_once('.').expect("dot");
    let mut header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("b64")).expect("json");
    header["kid"] = json!(kid);
    format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()))
}

#[tokio::test]
async fn rejections_at_trace_log_no_token_part() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(capture.clone()).expect("the only subscriber");

    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let testkit_clock = Arc::clone(&clock);
    let testkit = Testkit::builder()
        .config(
            Config::default()
                .app(AppConfig::new(API, TID).app_roles(&["Read"]))
                .app(
                    AppConfig::new(CLIENT, TID)
                        .secret("s")
                        .grant_roles(API, &["Read"]),
                ),
        )
        .clock(Arc::new(move || testkit_clock.now()))
        .start()
        .await
        .expect("testkit");
    let authority = Authority::entra_at(testkit.base_url(), TID).expect("authority");
    let validator = BearerValidator::builder(authority.clone())
        .audience(API)
        .clock(clock.clone())
        .unknown_kid_cooldown(Duration::from_secs(1))
        .build()
        .expect("validator");
    let good = ConfidentialClient::builder(authority, CLIENT)
        .client_secret("s")
        .clock(clock.clone())
        .build()
        .expect("client")
        .acquire_token_for_client(&[format!("{API}/.default")])
        .await
        .expect("token")
        .access_token()
        .expose_secret()
        .to_owned();
    let now = clock
        .now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("now")
        .as_secs();
    let claims = |aud: &str, exp: u64| {
        json!({
            "aud": aud, "iss": format!("{}/{TID}/v2.0", testkit.base_url()), "iat": now - 7200,
            "nbf": now - 7200, "exp": exp, "tid": TID, "ver": "2.0", "azp": CLIENT,
            "azpacr": "1", "scp": "Accounts.Read", "sub": "s", "oid": "o",
        })
    };
    let (signed, _) = good.rsplit_once('.').expect("JWS");
    let unknown_kid = with_kid(&good, "secret-looking-kid\n\u{1b}[31m");
    let tokens = vec![
        good.clone(),
        testkit
            .sign_token(&claims(API, now - 1000))
            .expect("expired"),
        testkit
            .sign_token(&claims("api://someone-else", now + 3600))
            .expect("other audience"),
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode([9u8; 256])),
        unknown_kid.clone(),
        format!("{good}x"),
        good.replacen("eyJ", "eyK", 1),
    ];
    validator.prefetch().await.expect("keys");
    for token in &tokens[1..] {
        let _ = validator.validate(token).await;
    }
    // A failed refresh is logged too (at warn).
    testkit.inject(Endpoint::Jwks, Fault::status(500), 1);
    clock.advance(Duration::from_secs(2));
    let _ = validator.validate(&unknown_kid).await;

    let logged = capture.0.lock().expect("lock").join("\n");
    for kind in [
        "expired",
        "bad_audience",
        "bad_signature",
        "key_not_found",
        "malformed",
    ] {
        assert!(
            logged.contains(&format!("kind=\"{kind}\"")),
            "{kind} is logged:\n{logged}"
        );
    }
    assert!(!logged.contains('\u{1b}'), "kids are escaped");
    assert!(logged.contains("WARN") && logged.contains("keeping the last good set"));
    for token in &tokens {
        for segment in token.split('.').filter(|s| s.len() > 16) {
            assert!(!logged.contains(segment), "a token segment was logged");
        }
    }
}

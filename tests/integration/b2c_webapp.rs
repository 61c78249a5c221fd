//! The web app of `examples/b2c_webapp` end to end: a scripted browser (cookies, redirects,
//! form posts) signs in, views the accounts, adds a beneficiary through the step-up, for B2C
//! (the MFA user flow) and for Entra (an `acrs` claims challenge).

use confidant_testkit::Endpoint;

use crate::journey::walk;
use crate::offline::{self, USER};
use crate::webapp::StepUp;

async fn journey(step_up: StepUp) {
    let world = offline::start(step_up).await.expect("offline world");
    let journey = walk(&world.app_url, USER).await.expect("the journey");

    // Two sign-ins at the authority: the first, then exactly one step-up.
    let authorizations: Vec<&String> = journey
        .browser
        .visited
        .iter()
        .filter(|u| u.contains("/oauth2/v2.0/authorize"))
        .collect();
    assert_eq!(authorizations.len(), 2, "{authorizations:?}");
    match step_up {
        StepUp::B2cUserFlow => {
            assert!(authorizations[0].contains("/b2c_1_signupsignin/"));
            assert!(authorizations[1].contains("/b2c_1_mfa/"));
        }
        StepUp::EntraAuthContext => {
            assert!(!authorizations[0].contains("claims="));
            assert!(
                authorizations[1].contains("claims="),
                "the step-up asks for acrs"
            );
        }
    }
    // The code came back by form post, never in a URL the app saw.
    assert!(
        journey
            .browser
            .visited
            .iter()
            .filter(|u| u.contains("/callback"))
            .all(|u| !u.contains("code=")),
        "{:?}",
        journey.browser.visited
    );
    assert_eq!(world.testkit.request_count(Endpoint::Authorize), 2);

    // One cookie: signed, http-only, SameSite; no token in it or in any page.
    assert_eq!(
        journey.browser.set_cookies.len(),
        1,
        "{:?}",
        journey.browser.set_cookies
    );
    let cookie = &journey.browser.set_cookies[0];
    assert!(cookie.starts_with("bank_session="));
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    for page in [&journey.signed_in, &journey.accounts, &journey.added] {
        assert!(
            !page.body.contains("eyJ"),
            "a token leaked into a page: {}",
            page.body
        );
    }
    assert_eq!(journey.signed_in.url, format!("{}/", world.app_url));
    assert_eq!(journey.added.status, 200);
    assert!(world.api_url.starts_with("http://127.0.0.1:"));
    assert!(journey.signed_in.body.contains("Erin"));
    assert!(journey.accounts.body.contains("acc-001"));
    assert!(journey.added.body.contains("Dora Diaz"));
}

#[tokio::test]
async fn b2c_journey_with_the_mfa_user_flow() {
    journey(StepUp::B2cUserFlow).await;
}

#[tokio::test]
async fn entra_journey_with_an_acrs_challenge() {
    journey(StepUp::EntraAuthContext).await;
}

#[tokio::test]
async fn forged_cookies_and_replayed_callbacks_are_refused() {
    let world = offline::start(StepUp::B2cUserFlow)
        .await
        .expect("offline world");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http");
    // A cookie the app did not sign: no session, back to sign-in.
    let response = http
        .get(format!("{}/accounts", world.app_url))
        .header("cookie", "bank_session=abc.forged")
        .send()
        .await
        .expect("accounts");
    assert_eq!(response.status(), 303);
    assert_eq!(
        response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/signin")
    );
    // A callback with no session, or for a state the session never started.
    let response = http
        .post(format!("{}/callback", world.app_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("code=x&state=y")
        .send()
        .await
        .expect("callback");
    assert_eq!(response.status(), 400);
    let journey = walk(&world.app_url, USER).await.expect("journey");
    let cookie = journey.browser.set_cookies[0]
        .split(';')
        .next()
        .expect("cookie")
        .to_owned();
    let response = http
        .post(format!("{}/callback", world.app_url))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("code=replayed&state=unknown-state")
        .send()
        .await
        .expect("callback");
    assert_eq!(response.status(), 400);
    let body = response.text().await.expect("body");
    assert!(body.contains("Unknown or used sign-in"), "{body}");
}

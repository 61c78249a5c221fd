//! The authorization code flow with PKCE, silent acquisition with refresh-token rotation, and
//! each bad callback, against the testkit over HTTP.

use confidant::{
    AuthCodeFlow, Authority, AuthorizationRequest, AuthorizationResponse, ConfidentialClient,
    ErrorKind, ResponseMode, ServerErrorClass, TokenRequest,
};
use confidant_testkit::{AppConfig, Config, Endpoint, TenantConfig, Testkit, UserConfig};

use crate::support::decode_parts;

const TID: &str = "8a3c1f42-5d6e-4b7a-9c01-2e3f4a5b6c7d";
const TENANT: &str = "contoso.onmicrosoft.com";
const API: &str = "3b5a7c9e-1d2f-4a6b-8c0d-e1f2a3b4c5d6";
const WEB: &str = "7e9f1a3b-5c7d-4e8f-a0b1-c2d3e4f5a6b7";
const SECRET: &str = "web-app-secret";
const REDIRECT: &str = "http://localhost:8080/callback";
const ALICE: &str = "alice@contoso.com";
const BOB: &str = "bob@contoso.com";

fn read() -> String {
    format!("api://{API}/Accounts.Read")
}

fn write() -> String {
    format!("api://{API}/Accounts.Write")
}

async fn testkit() -> Testkit {
    let config = Config::default()
        .tenant(TenantConfig::new(TID, &[TENANT]))
        .app(
            AppConfig::new(API, TENANT)
                .identifier_uri(format!("api://{API}"))
                .scopes(&["Accounts.Read", "Accounts.Write"]),
        )
        .app(
            AppConfig::new(WEB, TENANT)
                .secret(SECRET)
                .redirect_uri(REDIRECT),
        )
        .user(
            UserConfig::new(ALICE, TENANT)
                .name("Alice")
                .with_mfa()
                .guest_in("fabrikam"),
        )
        .user(UserConfig::new(BOB, TENANT).name("Bob"));
    Testkit::builder()
        .config(config)
        .start()
        .await
        .expect("testkit")
}

fn client(testkit: &Testkit) -> ConfidentialClient {
    ConfidentialClient::builder(
        Authority::entra_at(testkit.base_url(), TENANT).expect("authority"),
        WEB,
    )
    .client_secret(SECRET)
    .build()
    .expect("client")
}

/// Follows the authorize URL as a browser would (without following the redirect to the app):
/// the callback's parameters, from the `Location` query or the auto-posted form.
async fn browse(url: &url::Url) -> AuthorizationResponse {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http");
    let response = http.get(url.as_str()).send().await.expect("authorize");
    if response.status() == 302 {
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("Location")
            .to_owned();
        assert!(location.starts_with(REDIRECT), "{location}");
        let query = url::Url::parse(&location)
            .expect("location URL")
            .query()
            .unwrap_or_default()
            .to_owned();
        return AuthorizationResponse::from_form(&query);
    }
    assert_eq!(response.status(), 200);
    let page = response.text().await.expect("page");
    assert!(page.contains(&format!(r#"action="{REDIRECT}""#)), "{page}");
    // The hidden inputs, as the browser would post them.
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for input in page.split("<input ").skip(1) {
        let attr = |name: &str| {
            input
                .split(&format!(r#"{name}=""#))
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default()
                .to_owned()
        };
        form.append_pair(&attr("name"), &attr("value"));
    }
    AuthorizationResponse::from_form(&form.finish())
}

async fn sign_in(
    client: &ConfidentialClient,
    request: AuthorizationRequest,
) -> (AuthCodeFlow, AuthorizationResponse) {
    let (url, flow) = client
        .authorization_url(&request)
        .expect("authorization URL");
    let response = browse(&url).await;
    (flow, response)
}

/// Signs `request`'s user in and redeems the code: the account.
async fn signed_in_account(
    client: &ConfidentialClient,
    request: AuthorizationRequest,
) -> confidant::Account {
    let (flow, response) = sign_in(client, request).await;
    client
        .acquire_token_by_auth_code(&flow, &response)
        .await
        .expect("signed in")
        .account()
        .cloned()
        .expect("account")
}

fn claims(token: &confidant::AuthenticationResult) -> serde_json::Value {
    decode_parts(token.access_token().expose_secret()).1
}

#[tokio::test]
async fn sign_in_then_silent_tokens_with_rotation() {
    let testkit = testkit().await;
    let client = client(&testkit);
    let (url, flow) = client
        .authorization_url(&AuthorizationRequest::new(REDIRECT, &[read()]).login_hint(ALICE))
        .expect("URL");
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(param("code_challenge").map(|c| c.len()), Some(43));
    assert_eq!(param("state").as_deref(), Some(flow.state()));
    assert_eq!(
        param("scope"),
        Some(format!("{} openid profile offline_access", read()))
    );
    let verifier = serde_json::to_value(&flow).expect("serializable")["code_verifier"]
        .as_str()
        .expect("verifier")
        .to_owned();
    assert!(
        !format!("{flow:?}").contains(&verifier),
        "the verifier is redacted"
    );

    let response = browse(&url).await;
    let token = client
        .acquire_token_by_auth_code(&flow, &response)
        .await
        .expect("signed in");
    let account = token.account().expect("account").clone();
    let alice_oid = testkit.user_object_id(TENANT, ALICE).expect("alice");
    assert_eq!(account.username, ALICE);
    assert_eq!(account.name.as_deref(), Some("Alice"));
    assert_eq!(account.home_account_id, format!("{alice_oid}.{TID}"));
    assert_eq!(client.accounts(), vec![account.clone()]);
    let c = claims(&token);
    assert_eq!(c["aud"], API);
    assert_eq!(c["scp"], "Accounts.Read");
    assert_eq!(c["oid"], alice_oid.as_str());
    assert_eq!(c["azpacr"], "1");
    let sent = &testkit.requests(Endpoint::Token)[0];
    assert_eq!(
        sent.form_value("grant_type").as_deref(),
        Some("authorization_code")
    );
    assert_eq!(sent.form_value("redirect_uri").as_deref(), Some(REDIRECT));
    assert_eq!(sent.form_value("code_verifier").map(|v| v.len()), Some(43));

    // Cached while fresh.
    let again = client
        .acquire_token_silent(&account, &[read()])
        .await
        .expect("silent");
    assert!(again.is_from_cache());
    assert_eq!(testkit.request_count(Endpoint::Token), 1);

    // Another scope: one refresh; the rotated refresh token is the one used next.
    let write_token = client
        .acquire_token_silent(&account, &[write()])
        .await
        .expect("refreshed");
    assert!(!write_token.is_from_cache());
    assert_eq!(claims(&write_token)["scp"], "Accounts.Write");
    let both = client
        .acquire_token_silent(&account, &[read(), write()])
        .await
        .expect("refreshed with the rotated token");
    assert_eq!(claims(&both)["scp"], "Accounts.Read Accounts.Write");
    let refreshes: Vec<String> = testkit
        .requests(Endpoint::Token)
        .iter()
        .filter_map(|r| r.form_value("refresh_token"))
        .collect();
    assert_eq!(refreshes.len(), 2);
    assert_ne!(
        refreshes[0], refreshes[1],
        "each refresh used the newest token"
    );

    // Concurrent silent calls for a new scope share one refresh.
    testkit.reset_counters();
    let default_scope = format!("api://{API}/.default");
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            let account = account.clone();
            let scope = default_scope.clone();
            tokio::spawn(async move { client.acquire_token_silent(&account, &[scope]).await })
        })
        .collect();
    for call in calls {
        call.await.expect("task").expect("token");
    }
    assert_eq!(testkit.request_count(Endpoint::Token), 1);

    // Revoked (sign-out everywhere): interaction required, and the dead token is forgotten.
    assert_eq!(testkit.revoke_refresh_tokens(TENANT, ALICE), 1);
    let cached = client.acquire_token_silent(&account, &[read()]).await;
    assert!(
        cached.is_ok_and(|t| t.is_from_cache()),
        "a cached access token still serves until it expires"
    );
    let error = client
        .acquire_token_silent(&account, &[read(), write(), "email".to_owned()])
        .await
        .expect_err("revoked");
    assert_eq!(
        error.kind(),
        ErrorKind::Server(ServerErrorClass::InteractionRequired),
        "{error}"
    );
    let before = testkit.request_count(Endpoint::Token);
    let error = client
        .acquire_token_silent(&account, &["api://other/Read"])
        .await
        .expect_err("no refresh token left");
    assert_eq!(
        error.kind(),
        ErrorKind::Server(ServerErrorClass::InteractionRequired)
    );
    assert_eq!(
        testkit.request_count(Endpoint::Token),
        before,
        "nothing sent"
    );
}

/// A silent request for fewer scopes than a cached token holds is served by that token, as
/// MSAL does; one for scopes no cached token holds goes to the authority.
#[tokio::test]
async fn silent_requests_for_fewer_scopes_use_the_broader_token() {
    let testkit = testkit().await;
    let client = client(&testkit);
    let (flow, response) = sign_in(
        &client,
        AuthorizationRequest::new(REDIRECT, &[read(), write()]).login_hint(ALICE),
    )
    .await;
    let signed_in = client
        .acquire_token_by_auth_code(&flow, &response)
        .await
        .expect("signed in");
    let account = signed_in.account().cloned().expect("account");
    testkit.reset_counters();

    for scopes in [vec![read()], vec![write()], vec![write(), read()]] {
        let token = client
            .acquire_token_silent(&account, &scopes)
            .await
            .expect("silent");
        assert!(token.is_from_cache(), "{scopes:?}");
        assert_eq!(
            token.access_token().expose_secret(),
            signed_in.access_token().expose_secret()
        );
    }
    assert_eq!(testkit.request_count(Endpoint::Token), 0);
    assert!(client.cache().stats().hits >= 3);

    // Bob signed in for reading only: reading and writing needs the authority.
    let bob = signed_in_account(
        &client,
        AuthorizationRequest::new(REDIRECT, &[read()]).login_hint(BOB),
    )
    .await;
    let wider = client
        .acquire_token_silent(&bob, &[read(), write()])
        .await
        .expect("refreshed");
    assert!(!wider.is_from_cache());
    assert_eq!(claims(&wider)["preferred_username"], BOB);
    assert_eq!(testkit.request_count(Endpoint::Token), 2);
    // And Alice's broader token never answers for Bob.
    let bob_read = client
        .acquire_token_silent(&bob, &[read()])
        .await
        .expect("bob reads");
    assert_eq!(claims(&bob_read)["preferred_username"], BOB);
}

#[tokio::test]
async fn users_are_kept_apart_and_form_post_works() {
    let testkit = testkit().await;
    let client = client(&testkit);
    let alice = signed_in_account(
        &client,
        AuthorizationRequest::new(REDIRECT, &[read()])
            .login_hint(ALICE)
            .response_mode(ResponseMode::FormPost),
    )
    .await;
    let bob = signed_in_account(
        &client,
        AuthorizationRequest::new(REDIRECT, &[read()]).login_hint(BOB),
    )
    .await;
    assert_ne!(alice.home_account_id, bob.home_account_id);
    assert_eq!(client.accounts().len(), 2);
    let for_alice = client
        .acquire_token_silent(&alice, &[read()])
        .await
        .expect("alice");
    let for_bob = client
        .acquire_token_silent(&bob, &[read()])
        .await
        .expect("bob");
    assert!(for_alice.is_from_cache() && for_bob.is_from_cache());
    assert_eq!(claims(&for_alice)["preferred_username"], ALICE);
    assert_eq!(claims(&for_bob)["preferred_username"], BOB);

    // Another client of the same app (another process) holds nobody.
    let other = self::client(&testkit);
    let error = other
        .acquire_token_silent(&alice, &[read()])
        .await
        .expect_err("not signed in here");
    assert_eq!(
        error.kind(),
        ErrorKind::Server(ServerErrorClass::InteractionRequired)
    );
    client.remove_account(&bob);
    assert_eq!(client.accounts(), vec![alice]);
}

#[tokio::test]
async fn bad_callbacks_are_typed_and_keep_nothing() {
    let testkit = testkit().await;
    let client = client(&testkit);
    let request = || AuthorizationRequest::new(REDIRECT, &[read()]).login_hint(ALICE);

    // A forged state.
    let (flow, mut response) = sign_in(&client, request()).await;
    response.state = Some("forged".into());
    let error = client
        .acquire_token_by_auth_code(&flow, &response)
        .await
        .expect_err("state");
    assert_eq!(error.kind(), ErrorKind::AuthorizationResponse);
    // No code.
    let (flow, mut response) = sign_in(&client, request()).await;
    response.code = None;
    assert_eq!(
        client
            .acquire_token_by_auth_code(&flow, &response)
            .await
            .expect_err("no code")
            .kind(),
        ErrorKind::AuthorizationResponse
    );
    assert_eq!(testkit.request_count(Endpoint::Token), 0, "nothing sent");

    // A verifier that is not the one the challenge was made from.
    let (flow, response) = sign_in(&client, request()).await;
    let mut tampered: serde_json::Value = serde_json::to_value(&flow).expect("serializable");
    tampered["code_verifier"] = serde_json::json!("x".repeat(43));
    let tampered: AuthCodeFlow = serde_json::from_value(tampered).expect("flow");
    let error = client
        .acquire_token_by_auth_code(&tampered, &response)
        .await
        .expect_err("PKCE");
    assert_eq!(error.server_error().and_then(|e| e.aadsts()), Some(501481));

    // The same code twice.
    let (flow, response) = sign_in(&client, request()).await;
    client
        .acquire_token_by_auth_code(&flow, &response)
        .await
        .expect("first");
    let error = client
        .acquire_token_by_auth_code(&flow, &response)
        .await
        .expect_err("reused code");
    assert_eq!(error.server_error().and_then(|e| e.aadsts()), Some(54005));
    client.remove_account(&client.accounts()[0]);

    // An ID token whose nonce is not the flow's.
    let (flow, response) = sign_in(&client, request()).await;
    let mut tampered: serde_json::Value = serde_json::to_value(&flow).expect("serializable");
    tampered["nonce"] = serde_json::json!("another-nonce");
    let tampered: AuthCodeFlow = serde_json::from_value(tampered).expect("flow");
    let error = client
        .acquire_token_by_auth_code(&tampered, &response)
        .await
        .expect_err("nonce");
    assert_eq!(error.kind(), ErrorKind::IdToken, "{error}");
    assert!(
        client.accounts().is_empty(),
        "a failed sign-in keeps nothing"
    );

    // The user declines consent: the redirect carries the error.
    testkit.decline_consent(BOB, true);
    let (flow, response) = sign_in(
        &client,
        AuthorizationRequest::new(REDIRECT, &[read()]).login_hint(BOB),
    )
    .await;
    assert_eq!(response.error.as_deref(), Some("access_denied"));
    assert_eq!(response.state.as_deref(), Some(flow.state()));
    let error = client
        .acquire_token_by_auth_code(&flow, &response)
        .await
        .expect_err("declined");
    assert_eq!(
        error.kind(),
        ErrorKind::Server(ServerErrorClass::AccessDenied)
    );
    assert!(client.accounts().is_empty());

    // A disabled account.
    testkit.block_sign_in(ALICE, true);
    let (flow, response) = sign_in(&client, request()).await;
    assert_eq!(response.error.as_deref(), Some("access_denied"));
    assert!(
        client
            .acquire_token_by_auth_code(&flow, &response)
            .await
            .is_err()
    );
    testkit.block_sign_in(ALICE, false);

    // A code redeemed after its ten minutes.
    let (flow, response) = sign_in(&client, request()).await;
    testkit.set_clock(std::sync::Arc::new(|| {
        std::time::SystemTime::now() + std::time::Duration::from_secs(11 * 60)
    }));
    let error = client
        .acquire_token_by_auth_code(&flow, &response)
        .await
        .expect_err("expired code");
    assert_eq!(error.server_error().and_then(|e| e.aadsts()), Some(70008));
    testkit.set_clock(std::sync::Arc::new(std::time::SystemTime::now));
    assert!(client.accounts().is_empty());

    // An unknown user: the testkit cannot sign anyone in.
    let (flow, response) = sign_in(
        &client,
        AuthorizationRequest::new(REDIRECT, &[read()]).login_hint("mallory@contoso.com"),
    )
    .await;
    let error = client
        .acquire_token_by_auth_code(&flow, &response)
        .await
        .expect_err("unknown user");
    assert_eq!(
        error.kind(),
        ErrorKind::Server(ServerErrorClass::InteractionRequired)
    );
}

const MIDDLE: &str = "5c7e9a1b-3d5f-4b7c-9d1e-f2a3b4c5d6e7";
const MIDDLE_SECRET: &str = "middle-tier-secret";

/// The web app (`WEB`) calls the middle tier (`MIDDLE`, exposing `Orders.Read`), which calls
/// the downstream API (`API`) on the user's behalf.
async fn three_tier() -> Testkit {
    let testkit = testkit().await;
    testkit
        .register_app(
            AppConfig::new(MIDDLE, TENANT)
                .secret(MIDDLE_SECRET)
                .consented_in("fabrikam")
                .identifier_uri(format!("api://{MIDDLE}"))
                .scopes(&["Orders.Read"]),
        )
        .expect("middle tier");
    testkit
}

async fn user_token_for_middle_tier(testkit: &Testkit, user: &str) -> String {
    let web = client(testkit);
    let (flow, response) = sign_in(
        &web,
        AuthorizationRequest::new(REDIRECT, &[format!("api://{MIDDLE}/Orders.Read")])
            .login_hint(user),
    )
    .await;
    web.acquire_token_by_auth_code(&flow, &response)
        .await
        .expect("signed in")
        .access_token()
        .expose_secret()
        .to_owned()
}

#[tokio::test]
async fn on_behalf_of_is_cached_per_assertion() {
    let testkit = three_tier().await;
    let alice_token = user_token_for_middle_tier(&testkit, ALICE).await;
    let bob_token = user_token_for_middle_tier(&testkit, BOB).await;
    let middle = ConfidentialClient::builder(
        Authority::entra_at(testkit.base_url(), TENANT).expect("authority"),
        MIDDLE,
    )
    .client_secret(MIDDLE_SECRET)
    .build()
    .expect("middle tier client");
    testkit.reset_counters();

    let for_alice = middle
        .acquire_token_on_behalf_of(&alice_token, &[read()])
        .await
        .expect("OBO");
    let c = claims(&for_alice);
    assert_eq!(c["aud"], API);
    assert_eq!(c["scp"], "Accounts.Read");
    assert_eq!(c["azp"], MIDDLE);
    assert_eq!(c["preferred_username"], ALICE);
    let sent = &testkit.requests(Endpoint::Token)[0];
    assert_eq!(
        sent.form_value("grant_type").as_deref(),
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    );
    assert_eq!(
        sent.form_value("requested_token_use").as_deref(),
        Some("on_behalf_of")
    );
    assert_eq!(
        sent.form_value("assertion").as_deref(),
        Some(alice_token.as_str())
    );

    // The same assertion again: from the cache, before any request.
    let again = middle
        .acquire_token_on_behalf_of(&alice_token, &[read()])
        .await
        .expect("cached");
    assert!(again.is_from_cache());
    assert_eq!(testkit.request_count(Endpoint::Token), 1);

    // Another user's assertion: another partition, another token.
    let for_bob = middle
        .acquire_token_on_behalf_of(&bob_token, &[read()])
        .await
        .expect("bob");
    assert!(!for_bob.is_from_cache());
    assert_eq!(claims(&for_bob)["preferred_username"], BOB);
    assert_eq!(testkit.request_count(Endpoint::Token), 2);

    // The same assertion in another tenant, where Alice is a guest and the middle tier is
    // consented: sent to that tenant's endpoint, a token for her guest object there, cached
    // apart from the home tenant's token.
    let in_fabrikam = TokenRequest::new(&[read()]).tenant("fabrikam");
    let other = middle
        .acquire_token_on_behalf_of_with(&alice_token, &in_fabrikam)
        .await
        .expect("OBO in another tenant");
    assert!(!other.is_from_cache());
    let sent = testkit.requests(Endpoint::Token);
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[2].path, "/fabrikam/oauth2/v2.0/token");
    let guest = claims(&other);
    assert_eq!(guest["tid"], testkit.tenant_id("fabrikam"));
    assert_ne!(guest["oid"], c["oid"]);
    assert_eq!(guest["idp"], format!("{}/{TID}/", testkit.base_url()));
    assert!(
        middle
            .acquire_token_on_behalf_of_with(&alice_token, &in_fabrikam)
            .await
            .expect("cached")
            .is_from_cache()
    );
    assert_eq!(testkit.request_count(Endpoint::Token), 3);
    // Bob is not a guest there: Entra refuses (AADSTS50020).
    let error = middle
        .acquire_token_on_behalf_of_with(&bob_token, &in_fabrikam)
        .await
        .expect_err("not a guest");
    assert_eq!(error.server_error().and_then(|e| e.aadsts()), Some(50020));

    // An assertion for another audience (the downstream API's own token) is refused.
    let error = middle
        .acquire_token_on_behalf_of(for_alice.access_token().expose_secret(), &[read()])
        .await
        .expect_err("wrong audience");
    assert_eq!(error.server_error().and_then(|e| e.aadsts()), Some(50013));
    let error = middle
        .acquire_token_on_behalf_of("not-a-jwt", &[read()])
        .await
        .expect_err("not a JWT");
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert!(!format!("{error}").contains(&alice_token));
}

#[tokio::test]
async fn entra_step_up_with_an_acrs_claims_challenge() {
    use base64::Engine as _;
    use confidant::Challenge;

    let testkit = testkit().await;
    let client = ConfidentialClient::builder(
        Authority::entra_at(testkit.base_url(), TENANT).expect("authority"),
        WEB,
    )
    .client_secret(SECRET)
    .client_capabilities(&["CP1"])
    .build()
    .expect("client");
    let (flow, response) = sign_in(
        &client,
        AuthorizationRequest::new(REDIRECT, &[write()]).login_hint(ALICE),
    )
    .await;
    let account = client
        .acquire_token_by_auth_code(&flow, &response)
        .await
        .expect("signed in")
        .account()
        .cloned()
        .expect("account");
    let sent = testkit.requests(Endpoint::Token);
    let capabilities: serde_json::Value =
        serde_json::from_str(&sent[0].form_value("claims").expect("capabilities are sent"))
            .expect("claims JSON");
    assert_eq!(capabilities["access_token"]["xms_cc"]["values"][0], "CP1");

    // The API answers a sensitive call with Entra's claims challenge.
    let wanted = r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#;
    let header = format!(
        r#"Bearer realm="", error="insufficient_claims", claims="{}""#,
        base64::engine::general_purpose::STANDARD.encode(wanted)
    );
    let challenges = Challenge::parse_header(&header).expect("challenge");
    let claims_json = challenges[0]
        .claims()
        .expect("claims")
        .expect("valid claims");
    assert_eq!(claims_json, wanted);

    // Silently: the sign-in had no second factor, so the user must come back.
    let error = client
        .acquire_token_silent_with(
            &account,
            &TokenRequest::new(&[write()]).claims(&claims_json),
        )
        .await
        .expect_err("step-up needs the user");
    assert_eq!(
        error.kind(),
        ErrorKind::Server(ServerErrorClass::InteractionRequired)
    );
    let relayed = error
        .server_error()
        .and_then(|e| e.claims())
        .expect("claims");
    let relayed: serde_json::Value = serde_json::from_str(relayed).expect("JSON");
    assert_eq!(relayed["access_token"]["acrs"]["value"], "c1");

    // A user signs in per tenant: a silent request cannot switch it.
    let error = client
        .acquire_token_silent_with(&account, &TokenRequest::new(&[write()]).tenant("fabrikam"))
        .await
        .expect_err("silent in another tenant");
    assert_eq!(error.kind(), ErrorKind::Configuration);

    // The step-up sign-in with the claims: the token now carries acrs and MFA.
    let (flow, response) = sign_in(
        &client,
        AuthorizationRequest::new(REDIRECT, &[write()])
            .login_hint(ALICE)
            .claims(&claims_json),
    )
    .await;
    let stepped_up = client
        .acquire_token_by_auth_code(&flow, &response)
        .await
        .expect("stepped up");
    let c = claims(&stepped_up);
    assert_eq!(c["acrs"], serde_json::json!(["c1"]));
    assert_eq!(c["amr"], serde_json::json!(["pwd", "mfa"]));
    // From now on the challenge is satisfied silently (the refresh token remembers it).
    let silent = client
        .acquire_token_silent_with(
            &account,
            &TokenRequest::new(&[write()]).claims(&claims_json),
        )
        .await
        .expect("silent step-up");
    assert!(!silent.is_from_cache(), "a challenge bypasses the cache");
    assert_eq!(claims(&silent)["acrs"], serde_json::json!(["c1"]));

    // A user without a second factor cannot step up.
    let (_, response) = sign_in(
        &client,
        AuthorizationRequest::new(REDIRECT, &[write()])
            .login_hint(BOB)
            .claims(&claims_json),
    )
    .await;
    assert_eq!(response.error.as_deref(), Some("interaction_required"));
}

#[tokio::test]
async fn b2c_sign_in_then_mfa_user_flow_step_up() {
    use confidant_testkit::B2cPolicyConfig;

    const B2C_TID: &str = "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6";
    const B2C: &str = "contosob2c.onmicrosoft.com";
    const CAROL: &str = "carol@example.com";
    let config = Config::default()
        .tenant(TenantConfig::new(B2C_TID, &[B2C]))
        .b2c_policy(B2cPolicyConfig::sign_up_sign_in("B2C_1_signupsignin"))
        .b2c_policy(B2cPolicyConfig::mfa("B2C_1_mfa"))
        .app(
            AppConfig::new(API, B2C)
                .identifier_uri(format!("api://{API}"))
                .scopes(&["Accounts.Read", "Accounts.Write"]),
        )
        .app(
            AppConfig::new(WEB, B2C)
                .secret(SECRET)
                .redirect_uri(REDIRECT),
        )
        .user(UserConfig::new(CAROL, B2C).name("Carol"));
    let testkit = Testkit::builder()
        .config(config)
        .start()
        .await
        .expect("testkit");
    let sign_in_flow = ConfidentialClient::builder(
        Authority::b2c_at(testkit.base_url(), B2C, "B2C_1_signupsignin").expect("authority"),
        WEB,
    )
    .client_secret(SECRET)
    .build()
    .expect("client");

    let (url, flow) = sign_in_flow
        .authorization_url(
            &AuthorizationRequest::new(REDIRECT, &[read(), write()]).login_hint(CAROL),
        )
        .expect("URL");
    assert!(
        url.path()
            .ends_with("/b2c_1_signupsignin/oauth2/v2.0/authorize"),
        "{url}"
    );
    let response = browse(&url).await;
    let token = sign_in_flow
        .acquire_token_by_auth_code(&flow, &response)
        .await
        .expect("signed in");
    let carol_oid = testkit.user_object_id(B2C, CAROL).expect("carol");
    let account = token.account().cloned().expect("account");
    assert_eq!(
        account.home_account_id,
        format!("{carol_oid}-b2c_1_signupsignin.{B2C_TID}")
    );
    let c = claims(&token);
    assert_eq!(c["tfp"], "b2c_1_signupsignin");
    assert_eq!(c["amr"], serde_json::json!(["pwd"]));
    assert_eq!(c["iss"], format!("{}/{B2C_TID}/v2.0/", testkit.base_url()));

    // The API wants MFA: the app switches to the MFA user flow for the step-up.
    let mfa_flow = sign_in_flow.for_b2c_policy("B2C_1_mfa").expect("MFA flow");
    let (flow, response) = sign_in(
        &mfa_flow,
        AuthorizationRequest::new(REDIRECT, &[read(), write()]).login_hint(CAROL),
    )
    .await;
    let stepped_up = mfa_flow
        .acquire_token_by_auth_code(&flow, &response)
        .await
        .expect("MFA user flow");
    let c = claims(&stepped_up);
    assert_eq!(c["tfp"], "b2c_1_mfa");
    assert_eq!(c["amr"], serde_json::json!(["pwd", "mfa"]));
    let mfa_account = stepped_up.account().cloned().expect("account");
    assert_ne!(mfa_account.home_account_id, account.home_account_id);
    let silent = mfa_flow
        .acquire_token_silent_with(
            &mfa_account,
            &confidant::TokenRequest::new(&[write()]).force_refresh(true),
        )
        .await
        .expect("refresh at the MFA flow");
    assert_eq!(claims(&silent)["tfp"], "b2c_1_mfa");

    // A policy the tenant does not have, and a switch on an Entra authority.
    let error = sign_in_flow
        .for_b2c_policy("B2C_1_unknown")
        .expect("client")
        .acquire_token_silent(&account, &[read()])
        .await
        .expect_err("no sign-in there");
    assert_eq!(
        error.kind(),
        ErrorKind::Server(ServerErrorClass::InteractionRequired)
    );
    assert!(self::client(&testkit).for_b2c_policy("B2C_1_mfa").is_err());

    // B2C's error shape: an AADB2C number and the diagnostics inside the description.
    let (flow, response) = sign_in(
        &sign_in_flow,
        AuthorizationRequest::new(REDIRECT, &[read()]).login_hint(CAROL),
    )
    .await;
    let wrong_secret = ConfidentialClient::builder(
        Authority::b2c_at(testkit.base_url(), B2C, "B2C_1_signupsignin").expect("authority"),
        WEB,
    )
    .client_secret("not-the-secret")
    .build()
    .expect("client");
    let error = wrong_secret
        .acquire_token_by_auth_code(&flow, &response)
        .await
        .expect_err("wrong secret");
    let server = error.server_error().expect("server error");
    assert_eq!(server.aadb2c(), Some(90081));
    assert_eq!(server.aadsts(), None);
    let sent = testkit.requests(Endpoint::Token);
    let sent_id = sent.last().and_then(|r| r.header("client-request-id"));
    assert!(sent_id.is_some());
    assert_eq!(server.correlation_id(), sent_id);
    assert!(server.timestamp().is_some());
    // The refused request did not spend the code; an unknown code is B2C's expired grant.
    sign_in_flow
        .acquire_token_by_auth_code(&flow, &response)
        .await
        .expect("the code still works");
    let mut unknown = response.clone();
    unknown.code = Some("0.A-unknown-code".into());
    let expired = sign_in_flow
        .acquire_token_by_auth_code(&flow, &unknown)
        .await
        .expect_err("unknown code");
    assert_eq!(expired.server_error().and_then(|e| e.aadb2c()), Some(90080));
    assert_eq!(
        expired.kind(),
        ErrorKind::Server(ServerErrorClass::InteractionRequired)
    );
}

const FABRIKAM_TID: &str = "4c6e8a0b-2d4f-4a6c-8e0a-1b3d5f7a9c2e";
const NORTHWIND_TID: &str = "9d1f3b5c-7e9a-4b1d-8f3a-5c7e9b1d3f5a";
const DAVE: &str = "dave@fabrikam.example";
const ERIN: &str = "erin@northwind.example";
const SINGLE: &str = "5a7b9c1d-3e5f-4a7b-9c1d-3e5f7a9b1c3d";

/// A multi-tenant web app (consented in fabrikam, not in northwind) and a single-tenant one.
async fn multi_tenant_testkit() -> Testkit {
    let config = Config::default()
        .tenant(TenantConfig::new(TID, &[TENANT]))
        .tenant(TenantConfig::new(FABRIKAM_TID, &["fabrikam.example"]))
        .tenant(TenantConfig::new(NORTHWIND_TID, &["northwind.example"]))
        .app(
            AppConfig::new(API, TENANT)
                .identifier_uri(format!("api://{API}"))
                .scopes(&["Accounts.Read"]),
        )
        .app(
            AppConfig::new(WEB, TENANT)
                .secret(SECRET)
                .redirect_uri(REDIRECT)
                .multi_tenant()
                .consented_in("fabrikam.example"),
        )
        .app(
            AppConfig::new(SINGLE, TENANT)
                .secret(SECRET)
                .redirect_uri(REDIRECT),
        )
        .user(UserConfig::new(ALICE, TENANT))
        .user(UserConfig::new(DAVE, "fabrikam.example"))
        .user(UserConfig::new(ERIN, "northwind.example"));
    Testkit::builder()
        .config(config)
        .start()
        .await
        .expect("testkit")
}

fn organizations_client(
    testkit: &Testkit,
    client_id: &str,
    tenants: impl FnOnce(
        confidant::ClientBuilder<confidant::WithCredential>,
    ) -> confidant::ClientBuilder<confidant::WithCredential>,
) -> ConfidentialClient {
    let authority = Authority::entra_at(testkit.base_url(), "organizations").expect("authority");
    tenants(ConfidentialClient::builder(authority, client_id).client_secret(SECRET))
        .build()
        .expect("client")
}

/// A multi-tenant app signs users in at `organizations`: the ID token's tenant must be one the
/// app allows (or any, when it says so dangerously), the user's tenant must have consented,
/// and a single-tenant app is refused there as Entra ID refuses it.
#[tokio::test]
async fn multi_tenant_sign_in_at_organizations() {
    let testkit = multi_tenant_testkit().await;
    let request = |user: &str| AuthorizationRequest::new(REDIRECT, &[read()]).login_hint(user);

    // Whose users may sign in is a choice the app must make before sending anyone away.
    let undecided = organizations_client(&testkit, WEB, |b| b);
    let error = undecided
        .authorization_url(&request(ALICE))
        .expect_err("tenants not chosen");
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert!(
        error.to_string().contains("allowed_sign_in_tenants"),
        "{error}"
    );

    // Only contoso: Alice signs in, and her refresh works at `organizations` too.
    let contoso_only = organizations_client(&testkit, WEB, |b| b.allowed_sign_in_tenants([TID]));
    let (flow, response) = sign_in(&contoso_only, request(ALICE)).await;
    let token = contoso_only
        .acquire_token_by_auth_code(&flow, &response)
        .await
        .expect("Alice signs in");
    assert_eq!(claims(&token)["tid"], TID);
    let account = token.account().cloned().expect("account");
    assert_eq!(
        account.home_account_id,
        format!("{}.{TID}", claims(&token)["oid"].as_str().expect("oid"))
    );
    let refreshed = contoso_only
        .acquire_token_silent_with(&account, &TokenRequest::new(&[read()]).force_refresh(true))
        .await
        .expect("refresh at organizations");
    assert!(!refreshed.is_from_cache());
    let sent = testkit.requests(Endpoint::Token);
    assert!(
        sent.iter()
            .all(|r| r.path == "/organizations/oauth2/v2.0/token")
    );

    // Dave (fabrikam) completes the sign-in at Entra, but his ID token is refused.
    let (flow, response) = sign_in(&contoso_only, request(DAVE)).await;
    let error = contoso_only
        .acquire_token_by_auth_code(&flow, &response)
        .await
        .expect_err("fabrikam is not allowed");
    assert_eq!(error.kind(), ErrorKind::IdToken);
    let accounts = contoso_only.accounts();
    assert_eq!(accounts.len(), 1, "nothing kept from a refused sign-in");
    assert!(accounts[0].home_account_id.ends_with(TID));

    // Any tenant: Dave signs in, with his tenant's token.
    let anyone = organizations_client(&testkit, WEB, |b| b.danger_accept_sign_in_from_any_tenant());
    let (flow, response) = sign_in(&anyone, request(DAVE)).await;
    let token = anyone
        .acquire_token_by_auth_code(&flow, &response)
        .await
        .expect("Dave signs in");
    assert_eq!(claims(&token)["tid"], FABRIKAM_TID);

    // Erin's tenant never consented to the app.
    let (_, response) = sign_in(&anyone, request(ERIN)).await;
    assert_eq!(response.error.as_deref(), Some("consent_required"));
    assert!(response.code.is_none());

    // A single-tenant app at `organizations`: Entra's sign-in page refuses it (AADSTS50194).
    let single = organizations_client(&testkit, SINGLE, |b| {
        b.danger_accept_sign_in_from_any_tenant()
    });
    let (url, _) = single.authorization_url(&request(ALICE)).expect("URL");
    let page = reqwest::get(url.as_str()).await.expect("authorize");
    assert_eq!(page.status(), 400);
    assert!(page.text().await.expect("page").contains("AADSTS50194"));
}

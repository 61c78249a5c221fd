//! The testkit itself: discovery, JWKS rotation, HTTP Basic client authentication, federated
//! credentials, claims on the wire. Checked with plain HTTP and jsonwebtoken, not with the crate.

use confidant::credential::AssertionCallback;
use confidant::{Authority, ConfidentialClient, TokenRequest};
use confidant_testkit::{AppConfig, Config, Endpoint, FederatedCredential, TenantConfig, Testkit};

const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "11111111-1111-1111-1111-111111111111";
const SECRET: &str = "testkit-secret";

/// The claims of a JWT, decoded without verification.
fn jwt_claims(jwt: &str) -> serde_json::Value {
    use base64::Engine as _;
    let part = jwt.split('.').nth(1).expect("JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("b64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// A client of `CLIENT` with `SECRET` at the testkit's `TID`.
fn secret_client(testkit: &Testkit) -> ConfidentialClient {
    ConfidentialClient::builder(
        Authority::entra_at(testkit.base_url(), TID).expect("authority"),
        CLIENT,
    )
    .client_secret(SECRET)
    .build()
    .expect("client")
}

async fn get_json(url: &str) -> serde_json::Value {
    let response = reqwest::get(url).await.expect("GET");
    assert_eq!(response.status(), 200, "{url}");
    serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON")
}

#[tokio::test]
async fn discovery_documents_for_guid_domain_and_multi_tenant_paths() {
    let config = Config::default().tenant(TenantConfig::new(TID, &["contoso.onmicrosoft.com"]));
    let testkit = Testkit::builder()
        .config(config)
        .start()
        .await
        .expect("testkit");
    let base = testkit.base_url();

    let doc = get_json(&format!(
        "{base}/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration"
    ))
    .await;
    assert_eq!(doc["issuer"], format!("{base}/{TID}/v2.0"));
    assert_eq!(
        doc["token_endpoint"],
        format!("{base}/{TID}/oauth2/v2.0/token")
    );
    assert_eq!(doc["jwks_uri"], format!("{base}/{TID}/discovery/v2.0/keys"));
    let methods = doc["token_endpoint_auth_methods_supported"]
        .as_array()
        .expect("methods");
    assert!(methods.iter().any(|m| m == "private_key_jwt"));

    let common = get_json(&format!(
        "{base}/common/v2.0/.well-known/openid-configuration"
    ))
    .await;
    assert_eq!(common["issuer"], format!("{base}/{{tenantid}}/v2.0"));
    assert_eq!(
        common["token_endpoint"],
        format!("{base}/common/oauth2/v2.0/token")
    );

    let v1 = get_json(&format!("{base}/{TID}/.well-known/openid-configuration")).await;
    assert_eq!(v1["issuer"], format!("{base}/{TID}/"));

    // The crate's own notion of the authority agrees with the testkit's documents.
    let authority = Authority::entra_at(base, TID).expect("authority");
    assert_eq!(authority.issuer(), doc["issuer"].as_str());
    assert_eq!(
        authority.token_endpoint().as_str(),
        doc["token_endpoint"].as_str().expect("string")
    );
}

#[tokio::test]
async fn jwks_rotation_and_tokens_verify_against_the_published_keys() {
    let api = "22222222-2222-2222-2222-222222222222";
    let config = Config::default()
        .app(AppConfig::new(api, TID))
        .app(AppConfig::new(CLIENT, TID).secret(SECRET));
    let testkit = Testkit::builder()
        .config(config)
        .start()
        .await
        .expect("testkit");
    let client = secret_client(&testkit);
    let scope = format!("{api}/.default");
    let first_kid = testkit.signing_key_id();
    let new_kid = testkit.rotate_signing_key().expect("rotated");
    assert_ne!(first_kid, new_kid);
    let jwks = get_json(&format!("{}/{TID}/discovery/v2.0/keys", testkit.base_url())).await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert_eq!(kids, [new_kid.as_str(), first_kid.as_str()]);

    let token = client
        .acquire_token_for_client(&[&scope])
        .await
        .expect("token");
    let jwt = token.access_token().expose_secret();
    let header = jsonwebtoken::decode_header(jwt).expect("header");
    assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()));
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).expect("JWKS");
    let key =
        jsonwebtoken::DecodingKey::from_jwk(set.find(&new_kid).expect("published")).expect("key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[api]);
    validation.set_issuer(&[testkit.issuer(TID)]);
    jsonwebtoken::decode::<serde_json::Value>(jwt, &key, &validation).expect("verifies");

    testkit.retire_old_signing_keys();
    let jwks = get_json(&format!("{}/{TID}/discovery/v2.0/keys", testkit.base_url())).await;
    assert_eq!(jwks["keys"].as_array().expect("keys").len(), 1);
}

#[tokio::test]
async fn http_basic_client_authentication() {
    let testkit = Testkit::builder()
        .config(Config::default().app(AppConfig::new(CLIENT, TID).secret(SECRET)))
        .start()
        .await
        .expect("testkit");
    let url = testkit.token_endpoint(TID);
    let post = |secret: &'static str| {
        reqwest::Client::new()
            .post(&url)
            .basic_auth(CLIENT, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&scope=https%3A%2F%2Fvault.azure.net%2F.default")
            .send()
    };
    let ok = post(SECRET).await.expect("sent");
    assert_eq!(ok.status(), 200);
    let bad = post("wrong").await.expect("sent");
    assert_eq!(bad.status(), 401);
    let body: serde_json::Value =
        serde_json::from_slice(&bad.bytes().await.expect("body")).expect("JSON");
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"], serde_json::json!([7000215]));
    assert!(
        body["error_description"]
            .as_str()
            .expect("text")
            .starts_with("AADSTS7000215: ")
    );
}

#[tokio::test]
async fn federated_credential_from_a_workload_token() {
    // A workload identity gets an "api://AzureADTokenExchange" token, then exchanges it for the
    // target app's token through a federated credential.
    let exchange = "33333333-3333-3333-3333-333333333333";
    let workload = "44444444-4444-4444-4444-444444444444";
    let api = "22222222-2222-2222-2222-222222222222";
    let testkit = Testkit::builder()
        .config(
            Config::default()
                .app(AppConfig::new(api, TID).app_roles(&["Read"]))
                .app(
                    AppConfig::new(exchange, TID)
                        .identifier_uri("api://AzureADTokenExchange")
                        .access_token_version(1),
                )
                .app(AppConfig::new(workload, TID).secret(SECRET)),
        )
        .start()
        .await
        .expect("testkit");
    let authority = Authority::entra_at(testkit.base_url(), TID).expect("authority");
    let workload_client = ConfidentialClient::builder(authority.clone(), workload)
        .client_secret(SECRET)
        .build()
        .expect("client");
    let external = workload_client
        .acquire_token_for_client(&["api://AzureADTokenExchange/.default"])
        .await
        .expect("exchange token");
    let external = external.access_token().expose_secret().to_owned();
    let payload = jwt_claims(&external);
    assert_eq!(payload["aud"], "api://AzureADTokenExchange");
    let issuer = payload["iss"].as_str().expect("iss").to_owned();
    let subject = payload["sub"].as_str().expect("sub").to_owned();

    testkit
        .register_app(
            AppConfig::new(CLIENT, TID)
                .federated_credential(FederatedCredential::new(issuer, subject))
                .grant_roles(api, &["Read"]),
        )
        .expect("registered");
    let token = external.clone();
    let client = ConfidentialClient::builder(authority.clone(), CLIENT)
        .client_assertion(AssertionCallback::new(move |_| {
            let token = token.clone();
            async move { Ok::<_, std::convert::Infallible>(token) }
        }))
        .build()
        .expect("client");
    let result = client
        .acquire_token_for_client(&[format!("{api}/.default")])
        .await
        .expect("federated");
    let jwt = result.access_token().expose_secret();
    let claims = jwt_claims(jwt);
    assert_eq!(claims["azp"], CLIENT);
    assert_eq!(claims["azpacr"], "2");
    assert_eq!(claims["roles"], serde_json::json!(["Read"]));

    // A credential for another subject does not match.
    testkit
        .register_app(
            AppConfig::new(CLIENT, TID).federated_credential(FederatedCredential::new(
                format!("{}/{TID}/", testkit.base_url()),
                "someone-else",
            )),
        )
        .expect("re-registered");
    let err = client
        .acquire_token_for_client_with(
            &TokenRequest::new(&[format!("{api}/.default")]).force_refresh(true),
        )
        .await
        .expect_err("no matching federated credential");
    assert_eq!(
        err.server_error().and_then(|e| e.aadsts()),
        Some(70021),
        "{err}"
    );
}

#[tokio::test]
async fn claims_are_sent_and_bypass_the_cache() {
    let testkit = Testkit::builder()
        .config(Config::default().app(AppConfig::new(CLIENT, TID).secret(SECRET)))
        .start()
        .await
        .expect("testkit");
    let client = secret_client(&testkit);
    let scope = "https://vault.azure.net/.default";
    client
        .acquire_token_for_client(&[scope])
        .await
        .expect("token");
    let challenge = r#"{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}"#;
    let fresh = client
        .acquire_token_for_client_with(&TokenRequest::new(&[scope]).claims(challenge))
        .await
        .expect("with claims");
    assert!(!fresh.is_from_cache());
    let sent = testkit.requests(Endpoint::Token).pop().expect("recorded");
    assert_eq!(sent.form_value("claims").as_deref(), Some(challenge));
    assert_eq!(sent.form_value("client_secret").as_deref(), Some(SECRET));
    assert_eq!(testkit.request_count(Endpoint::Token), 2);
}

#[tokio::test]
async fn managed_identity_endpoints_are_as_strict_as_azure() {
    let config = Config::from_json(
        r#"{"managed_identities": [
            {"tenant": "contoso"},
            {"tenant": "contoso", "name": "orders", "client_id": "77777777-7777-7777-7777-777777777777"}
        ]}"#,
    )
    .expect("config");
    let testkit = Testkit::builder()
        .config(config)
        .start()
        .await
        .expect("testkit");
    let imds = testkit.imds_endpoint();
    let http = reqwest::Client::new();
    let get = |url: String, headers: &[(&str, &str)]| {
        let mut request = http.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        async move {
            let response = request.send().await.expect("GET");
            let status = response.status().as_u16();
            let body: serde_json::Value =
                serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
            (status, body)
        }
    };
    let query = "api-version=2018-02-01&resource=https://vault.azure.net";

    let (status, body) = get(format!("{imds}?{query}"), &[]).await;
    assert_eq!(status, 400, "no Metadata header");
    assert_eq!(body["error"], "invalid_request");
    let (status, _) = get(
        format!("{imds}?resource=https://vault.azure.net"),
        &[("Metadata", "true")],
    )
    .await;
    assert_eq!(status, 400, "no api-version");
    let (status, body) = get(
        format!("{imds}?{query}&client_id=77777777-7777-7777-7777-777777777777&object_id=x"),
        &[("Metadata", "true")],
    )
    .await;
    assert_eq!(status, 400, "two selectors: {body}");
    let (status, body) = get(
        format!("{imds}?api-version=2018-02-01&resource=https://unknown.example"),
        &[("Metadata", "true")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_resource"))
    );

    let (status, body) = get(
        format!("{imds}?{query}&client_id=77777777-7777-7777-7777-777777777777"),
        &[("Metadata", "true")],
    )
    .await;
    assert_eq!(status, 200);
    for field in ["expires_in", "expires_on", "not_before"] {
        assert!(body[field].is_string(), "IMDS sends {field} as a string");
    }
    assert_eq!(body["client_id"], "77777777-7777-7777-7777-777777777777");
    let claims = jwt_claims(body["access_token"].as_str().expect("token"));
    assert_eq!(claims["appid"], "77777777-7777-7777-7777-777777777777");
    assert_eq!(claims["aud"], "https://vault.azure.net");

    let app_service = testkit.app_service_endpoint();
    let app_query = "api-version=2019-08-01&resource=https://vault.azure.net";
    let (status, _) = get(format!("{app_service}?{app_query}"), &[]).await;
    assert_eq!(status, 401, "no X-IDENTITY-HEADER");
    let header = testkit.app_service_identity_header().to_owned();
    let (status, _) = get(
        format!("{app_service}?api-version=2018-02-01&resource=https://vault.azure.net"),
        &[("X-IDENTITY-HEADER", &header)],
    )
    .await;
    assert_eq!(status, 400, "App Service wants 2019-08-01");
    let (status, body) = get(
        format!("{app_service}?{app_query}"),
        &[("X-IDENTITY-HEADER", &header)],
    )
    .await;
    assert_eq!(status, 200);
    assert!(body["expires_on"].is_string());
    assert!(
        body.get("expires_in").is_none(),
        "App Service sends expires_on only"
    );
    assert_eq!(
        body["client_id"],
        testkit.managed_identity(None).expect("system").client_id
    );
    assert_eq!(testkit.request_count(Endpoint::Imds), 5);
    assert_eq!(testkit.request_count(Endpoint::AppService), 3);

    let two_system =
        Config::from_json(r#"{"managed_identities": [{"tenant": "a"}, {"tenant": "b"}]}"#)
            .expect("config");
    assert!(Testkit::builder().config(two_system).start().await.is_err());
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_sign_in() {
    use confidant_testkit::UserConfig;

    const WEB: &str = "44444444-4444-4444-4444-444444444444";
    const REDIRECT: &str = "http://localhost/cb";
    let config = Config::default()
        .tenant(TenantConfig::new(TID, &["contoso.onmicrosoft.com"]))
        .app(
            AppConfig::new(WEB, TID)
                .secret(SECRET)
                .redirect_uri(REDIRECT),
        )
        .user(UserConfig::new("alice@contoso.com", TID));
    let testkit = Testkit::builder()
        .config(config)
        .start()
        .await
        .expect("testkit");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http");
    let authorize = format!(
        "{}?client_id={WEB}&response_type=code&redirect_uri={REDIRECT}&scope=openid%20offline_access&state=s",
        testkit.authorize_endpoint(TID)
    );
    let response = http.get(&authorize).send().await.expect("authorize");
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let code = url::Url::parse(&location)
        .expect("URL")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    let token = |form: Vec<(&'static str, String)>| {
        let http = http.clone();
        let endpoint = testkit.token_endpoint(TID);
        async move {
            let mut form = form;
            form.push(("client_id", WEB.to_owned()));
            form.push(("client_secret", SECRET.to_owned()));
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
                .finish();
            let response = http
                .post(endpoint)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .expect("token");
            let status = response.status().as_u16();
            let body: serde_json::Value =
                serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
            (status, body)
        }
    };
    let (status, body) = token(vec![
        ("grant_type", "authorization_code".into()),
        ("code", code),
        ("redirect_uri", REDIRECT.into()),
        ("scope", "openid offline_access".into()),
    ])
    .await;
    assert_eq!(status, 200, "{body}");
    let first = body["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let refresh = |rt: String| {
        token(vec![
            ("grant_type", "refresh_token".into()),
            ("refresh_token", rt),
            ("scope", "openid offline_access".into()),
        ])
    };
    let (status, body) = refresh(first.clone()).await;
    assert_eq!(status, 200, "{body}");
    let second = body["refresh_token"].as_str().expect("rotated").to_owned();
    assert_ne!(first, second);
    // The first one again: reuse, which revokes the whole sign-in.
    let (status, body) = refresh(first).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(body["error_codes"][0], 70008);
    let (status, body) = refresh(second).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error_codes"][0], 50173,
        "the rotated token died with its family"
    );
}

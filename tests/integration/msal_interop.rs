//! MSAL's unified cache schema, both ways with msal-python's own `SerializableTokenCache`:
//! msal reads what confidant wrote (and computes the same keys), confidant reads what msal
//! wrote and serves from it without a request. `scripts/test.sh` installs msal into a virtual
//! environment and sets `MSAL_PYTHON`.

use std::path::PathBuf;
use std::process::Command;

use confidant::{Authority, ConfidentialClient};
use confidant_testkit::{AppConfig, Config, Endpoint, TenantConfig, Testkit, UserConfig};

const TID: &str = "b4c5d6e7-f8a9-4b0c-9d1e-2f3a4b5c6d7e";
const WEB: &str = "c6d7e8f9-0a1b-4c2d-8e3f-4a5b6c7d8e9f";
const API: &str = "e8f9a0b1-c2d3-4e4f-a5b6-c7d8e9f0a1b2";
const SECRET: &str = "interop-secret";
const REDIRECT: &str = "http://localhost/callback";

fn python() -> String {
    let python = std::env::var("MSAL_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let ok = Command::new(&python)
        .args(["-c", "import msal"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "msal-python is needed: run scripts/test.sh (it installs msal into target/python-venv and sets MSAL_PYTHON)"
    );
    python
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/msal")
        .join(name)
}

fn run(args: &[&str]) -> String {
    let output = Command::new(python())
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

#[tokio::test]
async fn msal_python_reads_the_cache_confidant_writes() {
    let config = Config::default()
        .tenant(TenantConfig::new(TID, &["contoso.onmicrosoft.com"]))
        .app(
            AppConfig::new(API, TID)
                .identifier_uri(format!("api://{API}"))
                .scopes(&["Accounts.Read"]),
        )
        .app(
            AppConfig::new(WEB, TID)
                .secret(SECRET)
                .redirect_uri(REDIRECT),
        )
        .user(UserConfig::new("alice@contoso.com", TID).name("Alice"));
    let testkit = Testkit::builder()
        .config(config)
        .start()
        .await
        .expect("testkit");
    let client = ConfidentialClient::builder(
        Authority::entra_at(testkit.base_url(), TID).expect("authority"),
        WEB,
    )
    .client_secret(SECRET)
    .build()
    .expect("client");
    let app_scope = format!("api://{API}/.default");
    let user_scope = format!("api://{API}/Accounts.Read");
    let app_token = client
        .acquire_token_for_client(&[&app_scope])
        .await
        .expect("app token");
    let user_token =
        crate::support::sign_in_by_redirect(&client, REDIRECT, &user_scope, "alice@contoso.com")
            .await;
    let refresh_token = testkit.requests(Endpoint::Token).len();
    assert_eq!(refresh_token, 2);

    let document = client.serialize_cache().expect("serialized");
    let dir = std::env::temp_dir().join(format!("confidant-msal-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("cache.json");
    std::fs::write(&path, &document).expect("write");
    let environment = testkit.base_url().trim_start_matches("http://").to_owned();
    let found: serde_json::Value = serde_json::from_str(&run(&[
        script("read_cache.py").to_str().expect("path"),
        path.to_str().expect("path"),
        WEB,
        &environment,
        TID,
        &app_scope,
        &user_scope,
    ]))
    .expect("JSON");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        found["app_token"][0],
        app_token.access_token().expose_secret()
    );
    assert_eq!(
        found["user_token"][0],
        user_token.access_token().expose_secret()
    );
    assert_eq!(found["refresh_token"].as_array().map(Vec::len), Some(1));
    assert_eq!(found["usernames"], serde_json::json!(["alice@contoso.com"]));
    assert_eq!(
        found["keys_match"], true,
        "msal-python computes the keys confidant wrote"
    );
}

#[tokio::test]
async fn confidant_serves_from_a_cache_msal_python_wrote() {
    let app_scope = format!("api://{API}/.default");
    let user_scope = format!("api://{API}/Accounts.Read");
    let document = run(&[
        script("write_cache.py").to_str().expect("path"),
        TID,
        WEB,
        &app_scope,
        &user_scope,
    ]);
    // The real Entra authority: a cache miss would try the network and fail the test.
    let client = ConfidentialClient::builder(
        Authority::parse(&format!("https://login.microsoftonline.com/{TID}")).expect("authority"),
        WEB,
    )
    .client_secret(SECRET)
    .build()
    .expect("client");
    assert_eq!(client.deserialize_cache(&document).expect("loaded"), 2);
    let app = client
        .acquire_token_for_client(&[&app_scope])
        .await
        .expect("from msal's cache");
    assert!(app.is_from_cache());
    assert_eq!(app.access_token().expose_secret(), "msal-app-token");
    let accounts = client.accounts();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].username, "alice@contoso.com");
    assert_eq!(
        accounts[0].home_account_id,
        format!("00000000-0000-0000-0000-00000000a11c.{TID}")
    );
    let user = client
        .acquire_token_silent(&accounts[0], &[&user_scope])
        .await
        .expect("user token from msal's cache");
    assert!(user.is_from_cache());
    assert_eq!(user.access_token().expose_secret(), "msal-user-token");

    // Written back: msal's entries stay, with the same keys; nothing is duplicated.
    let again: serde_json::Value =
        serde_json::from_str(&client.serialize_cache().expect("serialized")).expect("JSON");
    let original: serde_json::Value = serde_json::from_str(&document).expect("JSON");
    for section in [
        "AccessToken",
        "RefreshToken",
        "IdToken",
        "Account",
        "AppMetadata",
    ] {
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v[section]
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            k.sort();
            k
        };
        assert_eq!(keys(&again), keys(&original), "section {section}");
    }
}

#[test]
fn unknown_sections_entries_and_fields_survive_a_round_trip() {
    let client = ConfidentialClient::builder(
        Authority::parse(&format!("https://login.microsoftonline.com/{TID}")).expect("authority"),
        WEB,
    )
    .client_secret(SECRET)
    .build()
    .expect("client");
    let far = (std::time::SystemTime::now() + std::time::Duration::from_secs(3600))
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs()
        .to_string();
    let key = format!(
        "-login.microsoftonline.com-accesstoken-{WEB}-{TID}-https://vault.azure.net/.default"
    );
    let document = serde_json::json!({
        "AccessToken": {
            key.clone(): {
                "credential_type": "AccessToken", "secret": "kept", "home_account_id": null,
                "environment": "login.windows.net", "client_id": WEB, "target": "https://vault.azure.net/.default",
                "realm": TID, "token_type": "Bearer", "cached_at": "1", "expires_on": far,
                "extended_expires_on": far, "x_future_field": {"a": 1},
            },
            "-login.microsoftonline.com-accesstoken-other-app-t-s": {"secret": "not ours", "client_id": "other"},
            "-login.microsoftonline.com-accesstoken-pop": {
                "credential_type": "AccessToken", "secret": "pop", "client_id": WEB,
                "environment": "login.microsoftonline.com", "realm": TID, "target": "x", "token_type": "pop",
                "expires_on": far,
            },
        },
        "FutureSection": {"k": "v"},
    })
    .to_string();
    assert_eq!(
        client.deserialize_cache(&document).expect("loaded"),
        1,
        "pop is skipped"
    );
    let written: serde_json::Value =
        serde_json::from_str(&client.serialize_cache().expect("serialized")).expect("JSON");
    assert_eq!(written["FutureSection"]["k"], "v");
    assert_eq!(written["AccessToken"][&key]["x_future_field"]["a"], 1);
    assert_eq!(
        written["AccessToken"]["-login.microsoftonline.com-accesstoken-other-app-t-s"]["secret"],
        "not ours"
    );
    for bad in ["{", "[]", r#"{"AccessToken": 5}"#] {
        assert!(client.deserialize_cache(bad).is_err(), "{bad}");
    }
}

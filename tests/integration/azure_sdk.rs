//! Feature `azure-core`: confidant's token sources used through the Azure SDK's own
//! `TokenCredential` trait object, as an SDK client would hold them.

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::time::OffsetDateTime;
use confidant::{Authority, ConfidentialClient, ManagedIdentity, StaticToken};
use confidant_testkit::{AppConfig, Config, Endpoint, ManagedIdentityConfig, Testkit};

use crate::support::decode_parts;

const CLIENT: &str = "99999999-9999-9999-9999-999999999999";

#[tokio::test]
async fn token_sources_are_azure_sdk_credentials() {
    let config = Config::default()
        .app(AppConfig::new(CLIENT, "contoso").secret("sdk-secret"))
        .managed_identity(ManagedIdentityConfig::system_assigned("contoso"));
    let testkit = Testkit::builder()
        .config(config)
        .start()
        .await
        .expect("testkit");
    let client = ConfidentialClient::builder(
        Authority::entra_at(testkit.base_url(), "contoso").expect("authority"),
        CLIENT,
    )
    .client_secret("sdk-secret")
    .build()
    .expect("client");
    let identity = ManagedIdentity::builder()
        .imds_endpoint(testkit.imds_endpoint())
        .build()
        .expect("identity");
    let identity_id = testkit.managed_identity(None).expect("identity").client_id;
    let credentials: Vec<(Arc<dyn TokenCredential>, String)> = vec![
        (Arc::new(client), CLIENT.to_owned()),
        (Arc::new(identity), identity_id),
    ];
    for (credential, appid) in credentials {
        let token = credential
            .get_token(&["https://vault.azure.net/.default"], None)
            .await
            .expect("token");
        let claims = decode_parts(token.token.secret()).1;
        assert_eq!(claims["aud"], "https://vault.azure.net");
        assert_eq!(claims["appid"], appid.as_str());
        assert_eq!(
            token.expires_on.unix_timestamp(),
            claims["exp"].as_i64().expect("exp"),
            "the SDK sees the token's own expiry"
        );
        assert!(token.expires_on > OffsetDateTime::now_utc());
        let again = credential
            .get_token(&["https://vault.azure.net/.default"], None)
            .await
            .expect("cached");
        assert_eq!(again.token.secret(), token.token.secret());
    }
    assert_eq!(testkit.request_count(Endpoint::Token), 1);
    assert_eq!(testkit.request_count(Endpoint::Imds), 1);

    let expired: Arc<dyn TokenCredential> = Arc::new(StaticToken::new(
        "expired",
        std::time::SystemTime::now() - std::time::Duration::from_secs(1),
    ));
    let error = expired
        .get_token(&["https://vault.azure.net/.default"], None)
        .await
        .expect_err("expired");
    assert_eq!(*error.kind(), azure_core::error::ErrorKind::Credential);
}

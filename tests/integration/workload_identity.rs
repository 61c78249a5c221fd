//! Workload identity: the federated token file (as Kubernetes projects it) sent as the client
//! assertion, re-read when it rotates; missing, empty and stale files.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use confidant::{ErrorKind, TokenRequest, WorkloadIdentity};
use confidant_testkit::{AppConfig, Endpoint, FederatedCredential, Testkit};

const TENANT: &str = "contoso";
const CLIENT: &str = "88888888-8888-8888-8888-888888888888";
const SCOPE: &str = "https://vault.azure.net/.default";

/// A token file in a directory of its own, removed on drop.
struct TokenFile {
    dir: PathBuf,
}

impl TokenFile {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("confidant-wi-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.join("token")
    }

    /// Replaces the file as the kubelet does: write a new file, rename over the old one.
    fn write(&self, content: &str) {
        let staging = self.dir.join("token.new");
        std::fs::write(&staging, content).expect("write");
        std::fs::rename(&staging, self.path()).expect("rename");
    }
}

impl Drop for TokenFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The cluster's issuer is one of the testkit's tenants, so the testkit can verify its tokens.
const CLUSTER: &str = "aks-cluster";

fn subject(n: u32) -> String {
    format!("system:serviceaccount:payments:worker-{n}")
}

async fn testkit() -> Testkit {
    let testkit = Testkit::start().await.expect("testkit");
    let issuer = testkit.issuer(CLUSTER);
    testkit
        .register_app(
            AppConfig::new(CLIENT, TENANT)
                .federated_credential(FederatedCredential::new(issuer.clone(), subject(1)))
                .federated_credential(FederatedCredential::new(issuer, subject(2))),
        )
        .expect("register");
    testkit
}

fn external_token(testkit: &Testkit, sub: &str, lifetime: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    testkit
        .sign_token(&serde_json::json!({
            "iss": testkit.issuer(CLUSTER),
            "sub": sub,
            "aud": ["api://AzureADTokenExchange"],
            "iat": now - 10,
            "nbf": now - 10,
            "exp": now + lifetime,
        }))
        .expect("sign")
}

fn identity(testkit: &Testkit, file: &TokenFile) -> WorkloadIdentity {
    let vars = [
        ("AZURE_CLIENT_ID", CLIENT.to_owned()),
        ("AZURE_TENANT_ID", TENANT.to_owned()),
        (
            "AZURE_FEDERATED_TOKEN_FILE",
            file.path().display().to_string(),
        ),
        ("AZURE_AUTHORITY_HOST", format!("{}/", testkit.base_url())),
    ];
    WorkloadIdentity::from_vars(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .expect("environment")
}

#[tokio::test]
async fn the_token_file_is_the_assertion_and_is_reread_after_rotation() {
    let testkit = testkit().await;
    let file = TokenFile::new();
    let first = external_token(&testkit, &subject(1), 3600);
    file.write(&format!("{first}\n"));
    let client = identity(&testkit, &file)
        .client_builder()
        .expect("builder")
        .build()
        .expect("client");
    let token = client
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect("token");
    assert!(!token.is_from_cache());
    let sent = testkit.requests(Endpoint::Token);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].form_value("client_assertion").as_deref(),
        Some(first.as_str()),
        "sent trimmed"
    );
    assert_eq!(
        sent[0].form_value("client_assertion_type").as_deref(),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    assert_eq!(sent[0].path, format!("/{TENANT}/oauth2/v2.0/token"));

    // The platform rotates the file; the next token request sends the new token.
    let second = external_token(&testkit, &subject(2), 3600);
    file.write(&second);
    client
        .acquire_token_for_client_with(&TokenRequest::new(&[SCOPE]).force_refresh(true))
        .await
        .expect("after rotation");
    let sent = testkit.requests(Endpoint::Token);
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[1].form_value("client_assertion").as_deref(),
        Some(second.as_str())
    );
}

#[tokio::test]
async fn missing_empty_stale_and_untrusted_tokens_are_typed_errors() {
    let testkit = testkit().await;
    let file = TokenFile::new();

    // Missing at start-up: refused before anything is sent.
    let error = identity(&testkit, &file)
        .client_builder()
        .expect_err("missing file");
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert!(error.to_string().contains("token"), "{error}");

    // Present at start-up, then emptied or removed: the request fails typed and unsent.
    file.write(&external_token(&testkit, &subject(1), 3600));
    let client = identity(&testkit, &file)
        .client_builder()
        .expect("builder")
        .build()
        .expect("client");
    for broken in ["", "  \n", "not a jwt"] {
        file.write(broken);
        let error = client
            .acquire_token_for_client(&[SCOPE])
            .await
            .expect_err("broken file");
        assert_eq!(error.kind(), ErrorKind::Configuration, "{broken:?}");
    }
    std::fs::remove_file(file.path()).expect("remove");
    let error = client
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect_err("removed");
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert_eq!(testkit.request_count(Endpoint::Token), 0);

    // Expired: AADSTS700024. A subject with no federated credential: AADSTS70021.
    file.write(&external_token(&testkit, &subject(1), -600));
    let error = client
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect_err("stale");
    assert_eq!(error.server_error().and_then(|e| e.aadsts()), Some(700024));
    file.write(&external_token(&testkit, &subject(3), 3600));
    let error = client
        .acquire_token_for_client(&[SCOPE])
        .await
        .expect_err("no match");
    assert_eq!(error.server_error().and_then(|e| e.aadsts()), Some(70021));
    let debug = format!("{client:?}");
    assert!(!debug.contains("eyJ"), "no token in Debug: {debug}");
}

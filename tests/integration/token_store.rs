//! The file token store: two clients (two processes' L1s) share tokens through one directory;
//! concurrent writers from two real processes lose no update; corrupt, world-readable and
//! symlinked files are refused or set aside, and the network takes over.

use std::path::PathBuf;
use std::sync::Arc;

use confidant::cache::{FileStore, TokenStore};
use confidant::{Authority, ConfidentialClient};
use confidant_testkit::{AppConfig, Config, Endpoint, TenantConfig, Testkit, UserConfig};

const TID: &str = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
const WEB: &str = "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9";
const API: &str = "0a9b8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d";
const SECRET: &str = "store-secret";
const REDIRECT: &str = "http://localhost/callback";

/// A private temporary directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("confidant-store-{}", uuid::Uuid::new_v4()));
        Self(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn testkit() -> Testkit {
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
        .user(UserConfig::new("alice@contoso.com", TID));
    Testkit::builder()
        .config(config)
        .start()
        .await
        .expect("testkit")
}

/// A client with its own L1, like one process of a service.
fn process(testkit: &Testkit, dir: &Dir) -> ConfidentialClient {
    ConfidentialClient::builder(
        Authority::entra_at(testkit.base_url(), TID).expect("authority"),
        WEB,
    )
    .client_secret(SECRET)
    .token_store(Arc::new(FileStore::new(&dir.0).expect("store")))
    .build()
    .expect("client")
}

fn app_scope() -> String {
    format!("api://{API}/.default")
}

#[tokio::test]
async fn two_processes_share_app_and_user_tokens() {
    let testkit = testkit().await;
    let dir = Dir::new();
    let first = process(&testkit, &dir);
    let second = process(&testkit, &dir);

    let a = first
        .acquire_token_for_client(&[app_scope()])
        .await
        .expect("first process");
    let b = second
        .acquire_token_for_client(&[app_scope()])
        .await
        .expect("second process");
    assert_eq!(
        a.access_token().expose_secret(),
        b.access_token().expose_secret()
    );
    assert_eq!(
        testkit.request_count(Endpoint::Token),
        1,
        "one request per expiry"
    );
    let file = dir.0.join(format!("{WEB}_{TID}_AppTokenCache.json"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("file")).expect("MSAL JSON");
    assert_eq!(
        document["AccessToken"].as_object().map(|o| o.len()),
        Some(1)
    );

    // A user signed in by the first process is served silently by the second.
    let user_scope = format!("api://{API}/Accounts.Read");
    let signed_in =
        crate::support::sign_in_by_redirect(&first, REDIRECT, &user_scope, "alice@contoso.com")
            .await;
    let account = signed_in.account().cloned().expect("account");
    let before = testkit.request_count(Endpoint::Token);
    let silent = second
        .acquire_token_silent(&account, &[&user_scope])
        .await
        .expect("from the store");
    assert_eq!(
        silent.access_token().expose_secret(),
        signed_in.access_token().expose_secret()
    );
    assert_eq!(testkit.request_count(Endpoint::Token), before);
    assert!(
        dir.0
            .join(format!("{}.json", account.home_account_id))
            .exists()
    );
    assert_eq!(second.cache().l2_errors(), 0);
}

#[tokio::test]
async fn corrupt_unsafe_and_symlinked_files_fall_back_to_the_network() {
    let testkit = testkit().await;
    let dir = Dir::new();
    let store = FileStore::new(&dir.0).expect("store");
    let file = dir.0.join(format!("{WEB}_{TID}_AppTokenCache.json"));

    // Corrupt: set aside, the network used, a fresh file written.
    std::fs::write(&file, b"{\"AccessToken\": [truncated").expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let client = process(&testkit, &dir);
    client
        .acquire_token_for_client(&[app_scope()])
        .await
        .expect("from the network");
    assert_eq!(testkit.request_count(Endpoint::Token), 1);
    let aside: Vec<_> = std::fs::read_dir(&dir.0)
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "the corrupt file is kept aside");
    assert!(
        store
            .load(&format!("{WEB}_{TID}_AppTokenCache"))
            .await
            .expect("load")
            .is_some()
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        // Readable by others: refused, reported, the network used.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let error = store
            .load(&format!("{WEB}_{TID}_AppTokenCache"))
            .await
            .expect_err("world-readable");
        assert_eq!(error.kind(), confidant::ErrorKind::Store);
        let other = process(&testkit, &dir);
        other
            .acquire_token_for_client(&[app_scope()])
            .await
            .expect("from the network");
        assert!(other.cache().l2_errors() >= 1);
        assert_eq!(testkit.request_count(Endpoint::Token), 2);

        // Another user's file (checked when the tests may change owners, as root can).
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        if std::os::unix::fs::chown(&file, Some(65_534), None).is_ok() {
            let error = store
                .load(&format!("{WEB}_{TID}_AppTokenCache"))
                .await
                .expect_err("another owner");
            assert!(error.to_string().contains("another user"), "{error}");
        }

        // A symlink in place of the file: refused; what it points to is untouched.
        std::fs::remove_file(&file).expect("remove");
        let target = dir.0.join("elsewhere");
        std::fs::write(&target, b"precious").expect("target");
        std::os::unix::fs::symlink(&target, &file).expect("symlink");
        let error = store
            .load(&format!("{WEB}_{TID}_AppTokenCache"))
            .await
            .expect_err("symlink");
        assert!(error.to_string().contains("symlink"), "{error}");
        let third = process(&testkit, &dir);
        third
            .acquire_token_for_client(&[app_scope()])
            .await
            .expect("from the network");
        assert_eq!(std::fs::read(&target).expect("target"), b"precious");
    }
}

/// Adds `count` entries named after `writer` to one partition, one update each.
async fn write_entries(dir: &std::path::Path, writer: &str, count: usize) {
    let store = FileStore::new(dir).expect("store");
    for i in 0..count {
        let merge = crate::support::add_entry(format!("{writer}-{i}"));
        store.update("shared", merge, None).await.expect("update");
    }
}

/// The other process of `concurrent_processes_lose_no_update`: does nothing unless asked to.
#[tokio::test]
async fn child_writer() {
    if let Ok(dir) = std::env::var("CONFIDANT_STORE_CHILD_DIR") {
        write_entries(std::path::Path::new(&dir), "child", 100).await;
    }
}

#[tokio::test]
async fn concurrent_processes_lose_no_update() {
    let dir = Dir::new();
    FileStore::new(&dir.0).expect("store");
    // The same test binary, as a second process, writing at the same time.
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", "token_store::child_writer", "--quiet"])
        .env("CONFIDANT_STORE_CHILD_DIR", &dir.0)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("child process");
    write_entries(&dir.0, "parent", 100).await;
    assert!(child.wait().await.expect("child").success());
    let document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("shared.json")).expect("file"))
            .expect("JSON");
    assert_eq!(
        document["AccessToken"].as_object().map(|o| o.len()),
        Some(200),
        "every update of both processes is there"
    );
}

#[cfg(feature = "aws-lc")]
#[tokio::test]
async fn encrypted_documents_share_with_the_key_and_refuse_without_it() {
    use confidant::cache::EncryptedStore;

    let testkit = testkit().await;
    let dir = Dir::new();
    let sealed = |key: [u8; 32]| -> Arc<dyn TokenStore> {
        Arc::new(EncryptedStore::new(FileStore::new(&dir.0).expect("store"), &key).expect("key"))
    };
    let client = |store: Arc<dyn TokenStore>| {
        ConfidentialClient::builder(
            Authority::entra_at(testkit.base_url(), TID).expect("authority"),
            WEB,
        )
        .client_secret(SECRET)
        .token_store(store)
        .build()
        .expect("client")
    };
    let first = client(sealed([1; 32]))
        .acquire_token_for_client(&[app_scope()])
        .await
        .expect("first");
    let second = client(sealed([1; 32]))
        .acquire_token_for_client(&[app_scope()])
        .await
        .expect("second");
    assert_eq!(
        first.access_token().expose_secret(),
        second.access_token().expose_secret()
    );
    assert_eq!(testkit.request_count(Endpoint::Token), 1);
    let file = dir.0.join(format!("{WEB}_{TID}_AppTokenCache.json"));
    let on_disk = std::fs::read(&file).expect("file");
    let text = String::from_utf8_lossy(&on_disk);
    assert!(!text.contains(first.access_token().expose_secret()));
    assert!(!text.contains("AccessToken"));

    // Another key: refused, the network used, the sealed file left as it was.
    let stranger = client(sealed([2; 32]));
    stranger
        .acquire_token_for_client(&[app_scope()])
        .await
        .expect("from the network");
    assert!(stranger.cache().stats().l2_errors >= 1);
    assert_eq!(testkit.request_count(Endpoint::Token), 2);
    assert_eq!(
        std::fs::read(&file).expect("file"),
        on_disk,
        "not overwritten"
    );
    assert!(EncryptedStore::new(FileStore::new(&dir.0).expect("store"), &[0; 16]).is_err());
}

//! The testkit as a drop-in for Microsoft's own clients: `confidant-testkit serve --tls --compat`
//! with the documented example configuration, driven by msal-python and the Azure SDK for Python
//! (`testkit/interop/python/scenarios.py`). One testkit serves every scenario; each token a
//! scenario gets is then checked here with confidant's bearer validator. Also the binary's
//! refusals of bad input: a clear error, a non-zero exit, and no ready line.
//!
//! `scripts/test.sh` installs the Python packages into `target/azure-venv` (pinned in
//! `testkit/interop/python/requirements.txt`), sets `AZURE_SDK_PYTHON`, and builds the testkit
//! binary before the tests.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use confidant::Authority;
use confidant::validator::BearerValidator;
use serde_json::Value;

use crate::support::workspace_binary;

fn manifest_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The `confidant-testkit` binary: `CONFIDANT_TESTKIT_BIN`, or the one cargo built.
fn testkit_binary() -> PathBuf {
    match std::env::var_os("CONFIDANT_TESTKIT_BIN") {
        Some(path) => PathBuf::from(path),
        None => workspace_binary("confidant-testkit"),
    }
}

fn python() -> String {
    let python = std::env::var("AZURE_SDK_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let ok = Command::new(&python)
        .args(["-c", "import msal, azure.identity, azure.keyvault.keys"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "msal and the Azure SDK for Python are needed: run scripts/test.sh (it installs them into \
         target/azure-venv and sets AZURE_SDK_PYTHON)"
    );
    python
}

/// A running `confidant-testkit serve`, killed when dropped.
struct Served {
    child: Child,
    ready: Value,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary with `args` and reads its ready line.
fn serve(args: &[&str]) -> Served {
    let mut child = Command::new(testkit_binary())
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("testkit starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("ready line");
    let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
        let _ = child.kill();
        let mut stderr = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
        }
        panic!("no ready line ({e}): {line:?} {stderr}")
    });
    assert_eq!(ready["ready"], true);
    Served { child, ready }
}

/// Runs the binary with `args` to its exit (within 30 s): status, stdout, stderr.
fn run_to_exit(args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Command::new(testkit_binary())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("testkit runs");
    for _ in 0..300 {
        if child.try_wait().expect("wait").is_some() {
            let output = child.wait_with_output().expect("output");
            return (
                output.status.code(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("confidant-testkit {args:?} kept running: it should have refused to start");
}

#[tokio::test]
async fn msal_python_and_the_azure_sdk_for_python_against_one_testkit() {
    let python = python();
    let dir = tempdir();
    let ca_file = dir.join("testkit-ca.pem");
    let config_path = manifest_path("testkit/example-config.json");
    let served = serve(&[
        "--tls",
        "--compat",
        "--config",
        config_path.to_str().expect("UTF-8 path"),
        "--ca-file",
        ca_file.to_str().expect("UTF-8 path"),
    ]);
    let ready = &served.ready;
    assert_eq!(ready["mode"], "compat");
    assert_eq!(ready["ca_file"], ca_file.to_str().expect("UTF-8"));
    let base = ready["base_url"].as_str().expect("base_url").to_owned();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let ca = std::fs::read(&ca_file).expect("the CA file is written before the ready line");

    let output = tokio::process::Command::new(&python)
        .arg(manifest_path("testkit/interop/python/scenarios.py"))
        .env("TESTKIT_READY", ready.to_string())
        .env("TESTKIT_CONFIG", &config_path)
        .env("FIXTURES", manifest_path("tests/fixtures"))
        .env("REQUESTS_CA_BUNDLE", &ca_file)
        .env_remove("AZURE_POD_IDENTITY_AUTHORITY_HOST")
        .env_remove("IDENTITY_ENDPOINT")
        .env_remove("IDENTITY_HEADER")
        .env_remove("MSI_ENDPOINT")
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Python scenarios failed:\n{}\n{}",
        stdout
            .lines()
            .map(|l| l.chars().take(160).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&output.stderr)
    );
    let reports: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(
        reports.last().map(|r| r["scenario"].clone()),
        Some("done".into())
    );

    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).expect("config"))
            .expect("JSON");
    let tenant = config["tenants"][0]["id"].as_str().expect("tenant");
    let api = config["apps"][0]["client_id"].as_str().expect("API");
    let authority = Authority::entra_at(&base, tenant).expect("authority");
    let api_validator = BearerValidator::builder(authority.clone())
        .audience(api)
        .add_root_certificates_pem(&ca)
        .build()
        .expect("validator");
    // Key Vault checks audience, issuer and signature; managed identities carry no roles.
    let vault_validator = BearerValidator::builder(authority)
        .audience("https://vault.azure.net")
        .danger_accept_tokens_without_permissions()
        .add_root_certificates_pem(&ca)
        .build()
        .expect("validator");

    let mut tokens = 0;
    for report in &reports {
        let name = report["scenario"].as_str().expect("name");
        let Some(token) = report["token"].as_str() else {
            continue;
        };
        tokens += 1;
        let validated = match report["kind"].as_str() {
            Some("managed identity") => vault_validator.validate(token).await,
            _ => api_validator.validate(token).await,
        }
        .unwrap_or_else(|e| panic!("{name}: confidant's validator refused the token: {e}"));
        assert_eq!(validated.tenant_id(), Some(tenant), "{name}");
        match report["kind"].as_str() {
            Some("app") => assert!(
                validated.roles().any(|r| r == "Accounts.Read"),
                "{name}: app token with its granted role"
            ),
            Some("user") => assert!(
                validated.scopes().any(|s| s == "Accounts.Read"),
                "{name}: delegated token with its scope"
            ),
            Some("managed identity") => {
                if let Some(client_id) = report["client_id"].as_str() {
                    assert_eq!(validated.client_id(), Some(client_id), "{name}");
                }
            }
            other => panic!("{name}: unknown kind {other:?}"),
        }
    }
    // Every scenario the issue lists ran: the tokens checked above, and the outcomes the
    // scenarios asserted themselves (signatures, certificates, secrets, error types).
    let names: Vec<&str> = reports
        .iter()
        .filter_map(|r| r["scenario"].as_str())
        .collect();
    for expected in [
        "msal secret",
        "msal certificate sha1 thumbprint",
        "msal certificate sha256 thumbprint",
        "msal pfx",
        "msal certificate with x5c (subject name + issuer)",
        "msal authorization code with PKCE",
        "msal silent refresh",
        "msal sign-in at organizations",
        "msal refresh at organizations",
        "msal app token at organizations refused",
        "azure-identity ClientSecretCredential",
        "azure-identity CertificateCredential (PEM)",
        "azure-identity ManagedIdentityCredential IMDS system-assigned",
        "azure-identity ManagedIdentityCredential App Service user-assigned",
        "azure-keyvault-keys sign RS256 with rsa-signing",
        "azure-keyvault-keys sign PS256 with rsa-signing",
        "azure-keyvault-keys sign ES256 with ec-signing",
        "azure-keyvault-certificates get daemon-pfx",
        "azure-keyvault-secrets get certificate secret (PFX)",
        "azure-keyvault-secrets get certificate secret (PEM)",
        "azure-keyvault-secrets 404",
    ] {
        assert!(
            names.contains(&expected),
            "scenario {expected:?} did not run"
        );
    }
    assert!(tokens >= 18, "{tokens} tokens checked");
}

#[test]
fn the_binary_refuses_bad_input_before_serving() {
    let dir = tempdir();
    let write = |name: &str, json: &str| {
        let path = dir.join(name);
        std::fs::write(&path, json).expect("write");
        path.to_str().expect("UTF-8").to_owned()
    };
    let refused = |args: &[&str], needle: &str| {
        let (status, stdout, stderr) = run_to_exit(args);
        assert_eq!(status, Some(2), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?} printed a ready line: {stdout}");
        assert!(
            stderr.contains(needle),
            "{args:?}: the error should name {needle:?}: {stderr}"
        );
    };

    let typo = write(
        "typo.json",
        r#"{"apps": [{"client_id": "a", "home_tenant": "t", "secretz": []}]}"#,
    );
    refused(
        &["serve", "--config", &typo],
        "`apps[0].secretz`: unknown field `secretz`",
    );
    let wrong_type = write(
        "type.json",
        r#"{"apps": [{"client_id": "a", "home_tenant": "t", "secrets": [{"value": 42}]}]}"#,
    );
    refused(
        &["serve", "--config", &wrong_type],
        "`apps[0].secrets[0].value`: invalid type",
    );
    let bad_key = write(
        "key.json",
        r#"{"key_vault": {"tenant": "t", "keys": [{"name": "k", "type": "RSA-1024"}]}}"#,
    );
    refused(
        &["serve", "--config", &bad_key],
        "`key_vault.keys[0].type`: unknown variant `RSA-1024`",
    );
    let bad_permission = write(
        "policy.json",
        r#"{"key_vault": {"tenant": "t", "access_policies": [{"client_id": "c", "keys": ["purge"]}]}}"#,
    );
    refused(
        &["serve", "--config", &bad_permission],
        "`key_vault.access_policies[0].keys[0]`: `purge` is not supported",
    );
    let bad_name = write(
        "name.json",
        r#"{"key_vault": {"tenant": "t", "secrets": [{"name": "no spaces", "value": "v"}]}}"#,
    );
    refused(
        &["serve", "--config", &bad_name],
        "`key_vault.secrets[0].name`",
    );
    refused(
        &[
            "serve",
            "--config",
            &dir.join("missing.json").to_string_lossy(),
        ],
        "cannot read",
    );
    refused(
        &[
            "serve",
            "--tls",
            "--ca-file",
            &dir.join("no/such/dir/ca.pem").to_string_lossy(),
        ],
        "cannot write the CA file",
    );

    // A port in use: the second server refuses, naming the address.
    let first = serve(&[]);
    let port = first.ready["base_url"]
        .as_str()
        .and_then(|u| u.rsplit(':').next())
        .expect("port")
        .to_owned();
    refused(
        &["serve", "--port", &port],
        &format!("cannot listen on 127.0.0.1:{port}"),
    );

    // The documented example parses and starts, in either mode.
    let example = manifest_path("testkit/example-config.json");
    let served = serve(&["--config", example.to_str().expect("UTF-8")]);
    assert_eq!(served.ready["mode"], "strict");
    assert!(served.ready["ca_file"].is_null());
    assert!(served.ready["key_vault_url"].is_string());
}

/// A fresh directory under the system's temporary directory.
fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("confidant-ms-clients-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

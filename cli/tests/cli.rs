//! The `confidant` binary against the testkit, in-process and as its own binary.

use std::path::PathBuf;
use std::process::Stdio;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use confidant_testkit::{AppConfig, Config, Endpoint, TestCertificate, Testkit};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;

const TENANT: &str = "contoso";
const CLIENT: &str = "11111111-1111-1111-1111-111111111111";
const API: &str = "22222222-2222-2222-2222-222222222222";
const SCOPE: &str = "api://22222222-2222-2222-2222-222222222222/.default";
const SECRET: &str = "cli-test-secret";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("confidant-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn confidant(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_confidant"));
    command.args(args).stdin(Stdio::null());
    for key in [
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN",
        "AZURE_AUTHORITY_HOST",
        "AZURE_FEDERATED_TOKEN_FILE",
    ] {
        command.env_remove(key);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().await.expect("confidant runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.trim().split('.').nth(1).expect("JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64url")).expect("JSON")
}

async fn testkit(client: AppConfig) -> Testkit {
    let config = Config::default()
        .app(AppConfig::new(API, TENANT).app_roles(&["Read"]))
        .app(client);
    Testkit::builder()
        .config(config)
        .start()
        .await
        .expect("testkit")
}

#[tokio::test]
async fn token_with_a_secret_from_flags_and_from_the_environment() {
    let testkit = testkit(AppConfig::new(CLIENT, TENANT).secret(SECRET)).await;
    let out = confidant(
        &[
            "token",
            "--authority-host",
            testkit.base_url(),
            "--tenant",
            TENANT,
            "--client-id",
            CLIENT,
            "--scope",
            SCOPE,
        ],
        &[("AZURE_CLIENT_SECRET", SECRET)],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(claims(&out.stdout)["azp"], CLIENT);

    let out = confidant(
        &["token", "--scope", SCOPE, "--json"],
        &[
            ("AZURE_AUTHORITY_HOST", testkit.base_url()),
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_CLIENT_SECRET", SECRET),
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON output");
    assert_eq!(json["token_type"], "Bearer");
    assert!(json["expires_on"].as_u64().is_some());
    assert_eq!(
        claims(json["access_token"].as_str().expect("token"))["aud"],
        API
    );
}

#[tokio::test]
async fn token_with_pem_and_pfx_certificates() {
    let generated = TestCertificate::generate("cli-app").expect("cert");
    let fixture_cert = std::fs::read_to_string(fixtures().join("rsa2048.crt")).expect("fixture");
    let testkit = testkit(
        AppConfig::new(CLIENT, TENANT)
            .certificate(generated.cert_pem.clone())
            .certificate(fixture_cert),
    )
    .await;
    let dir = scratch("pem");
    let combined = dir.join("app.pem");
    std::fs::write(
        &combined,
        format!("{}{}", generated.key_pem, generated.cert_pem),
    )
    .expect("write");
    let base = [
        "token",
        "--authority-host",
        testkit.base_url(),
        "--tenant",
        TENANT,
        "--client-id",
        CLIENT,
        "--scope",
        SCOPE,
    ];

    let mut args = base.to_vec();
    args.extend(["--certificate", combined.to_str().expect("utf-8")]);
    let out = confidant(&args, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(claims(&out.stdout)["azpacr"], "2");

    let pfx = fixtures().join("rsa2048.aes.pfx");
    let mut args = base.to_vec();
    args.extend(["--certificate", pfx.to_str().expect("utf-8")]);
    let out = confidant(
        &args,
        &[("AZURE_CLIENT_CERTIFICATE_PASSWORD", "fixture-password")],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(testkit.request_count(Endpoint::Token), 2);
}

#[tokio::test]
async fn exit_codes_and_secret_free_errors() {
    let testkit = testkit(AppConfig::new(CLIENT, TENANT).secret(SECRET)).await;
    let base = [
        "token",
        "--authority-host",
        testkit.base_url(),
        "--tenant",
        TENANT,
        "--client-id",
        CLIENT,
        "--scope",
        SCOPE,
    ];

    let out = confidant(&base, &[("AZURE_CLIENT_SECRET", "wrong-secret-value")]).await;
    assert_eq!(out.code, 1, "rejected: {}", out.stderr);
    assert!(out.stderr.contains("invalid_client"), "{}", out.stderr);
    assert!(!out.stderr.contains("wrong-secret-value"));
    assert_eq!(
        out.stderr.trim().lines().count(),
        1,
        "one line: {}",
        out.stderr
    );

    let out = confidant(&base, &[]).await;
    assert_eq!(out.code, 2, "no credential: {}", out.stderr);

    let out = confidant(
        &["token", "--client-id", CLIENT, "--scope", SCOPE],
        &[("AZURE_CLIENT_SECRET", SECRET)],
    )
    .await;
    assert_eq!(out.code, 2, "no authority: {}", out.stderr);

    let out = confidant(
        &[
            "token",
            "--authority",
            "http://login.example.com/x",
            "--client-id",
            CLIENT,
            "--scope",
            SCOPE,
        ],
        &[("AZURE_CLIENT_SECRET", SECRET)],
    )
    .await;
    assert_eq!(out.code, 2, "http refused: {}", out.stderr);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let host = format!("http://127.0.0.1:{port}");
    let out = confidant(
        &[
            "token",
            "--authority-host",
            &host,
            "--tenant",
            TENANT,
            "--client-id",
            CLIENT,
            "--scope",
            SCOPE,
        ],
        &[("AZURE_CLIENT_SECRET", SECRET)],
    )
    .await;
    assert_eq!(out.code, 3, "network: {}", out.stderr);
}

#[tokio::test]
async fn assertion_thumbprint_and_decode() {
    let generated = TestCertificate::generate("cli-thumbprint").expect("cert");
    let dir = scratch("thumb");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, &generated.cert_pem).expect("write");
    std::fs::write(&key, &generated.key_pem).expect("write");

    let out = confidant(
        &["thumbprint", cert.to_str().expect("utf-8"), "--json"],
        &[],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(json["x5t"], generated.x5t);
    assert_eq!(json["x5t#S256"], generated.x5t_s256);

    let out = confidant(
        &[
            "assertion",
            "--authority",
            "https://login.microsoftonline.com/contoso.onmicrosoft.com",
            "--client-id",
            CLIENT,
            "--certificate",
            cert.to_str().expect("utf-8"),
            "--key",
            key.to_str().expect("utf-8"),
            "--alg",
            "RS256",
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let assertion = out.stdout.trim().to_owned();
    let c = claims(&assertion);
    assert_eq!(
        c["aud"],
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );
    assert_eq!(c["iss"], CLIENT);

    let out = confidant(&["decode", &assertion], &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("UNVERIFIED"));
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(json["verified"], false);
    assert_eq!(json["header"]["alg"], "RS256");
    assert_eq!(json["header"]["x5t"], generated.x5t);

    let out = confidant(&["decode", "not.a-token"], &[]).await;
    assert_eq!(out.code, 2);
}

/// The Done-when of the CLI: both binaries, talking over loopback.
#[tokio::test]
async fn token_from_the_testkit_binary() {
    let testkit_bin =
        PathBuf::from(env!("CARGO_BIN_EXE_confidant")).with_file_name("confidant-testkit");
    assert!(
        testkit_bin.exists(),
        "build the testkit binary first (`cargo build --workspace --bins`): {}",
        testkit_bin.display()
    );
    let dir = scratch("bin");
    let config = dir.join("apps.json");
    let json = serde_json::json!({
        "tenants": [{"id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "domains": ["contoso.onmicrosoft.com"]}],
        "apps": [
            {"client_id": API, "home_tenant": "contoso.onmicrosoft.com", "app_roles": ["Read"]},
            {"client_id": CLIENT, "home_tenant": "contoso.onmicrosoft.com", "secrets": [{"value": SECRET}],
             "granted_roles": {API: ["Read"]}}
        ]
    });
    std::fs::write(&config, json.to_string()).expect("config");
    let mut server = Command::new(&testkit_bin)
        .args([
            "serve",
            "--port",
            "0",
            "--config",
            config.to_str().expect("utf-8"),
            "--key-vault",
            "contoso.onmicrosoft.com",
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("testkit binary starts");
    let stdout = server.stdout.take().expect("stdout");
    let mut line = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .expect("ready in time")
    .expect("ready line");
    let ready: serde_json::Value = serde_json::from_str(&line).expect("ready JSON");
    assert_eq!(ready["ready"], true);
    let base = ready["base_url"].as_str().expect("base_url").to_owned();
    assert_eq!(
        ready["imds_endpoint"],
        format!("{base}/metadata/identity/oauth2/token")
    );
    assert!(
        ready["key_vault_url"]
            .as_str()
            .is_some_and(|url| url.starts_with("http://127.0.0.1:") && url != base),
        "{ready}"
    );

    let out = confidant(
        &[
            "token",
            "--authority-host",
            &base,
            "--tenant",
            "contoso.onmicrosoft.com",
            "--client-id",
            CLIENT,
            "--scope",
            SCOPE,
        ],
        &[("AZURE_CLIENT_SECRET", SECRET)],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let c = claims(&out.stdout);
    assert_eq!(c["tid"], "72f988bf-86f1-41af-91ab-2d7cd011db47");
    assert_eq!(c["roles"], serde_json::json!(["Read"]));

    #[cfg(unix)]
    {
        let pid = server.id().expect("pid").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = tokio::time::timeout(std::time::Duration::from_secs(10), server.wait())
            .await
            .expect("stops")
            .expect("status");
        assert!(exit.success(), "clean stop on SIGTERM: {exit}");
    }
}

/// Runs `confidant` with `stdin` piped in.
async fn confidant_with_stdin(args: &[&str], stdin: &str) -> Output {
    use tokio::io::AsyncWriteExt as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_confidant"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("confidant runs");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).await.expect("write");
    drop(input);
    let out = child.wait_with_output().await.expect("exits");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn validate_one_token_and_a_batch() {
    let testkit = testkit(
        AppConfig::new(CLIENT, TENANT)
            .secret(SECRET)
            .grant_roles(API, &["Read"]),
    )
    .await;
    let token_out = confidant(
        &[
            "token",
            "--authority-host",
            testkit.base_url(),
            "--tenant",
            TENANT,
            "--client-id",
            CLIENT,
            "--scope",
            SCOPE,
        ],
        &[("AZURE_CLIENT_SECRET", SECRET)],
    )
    .await;
    assert_eq!(token_out.code, 0, "{}", token_out.stderr);
    let token = token_out.stdout.trim().to_owned();
    let tid = testkit.tenant_id(TENANT);
    let authority = format!("{}/{tid}/v2.0", testkit.base_url());
    let base_args = ["validate", "--authority", &authority, "--audience", API];

    // One token, as an argument and on stdin.
    let mut args = base_args.to_vec();
    args.extend(["--require-role", "Read", &token]);
    let out = confidant(&args, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed: serde_json::Value = serde_json::from_str(&out.stdout).expect("claims JSON");
    assert_eq!(printed["azp"], CLIENT);
    let out = confidant_with_stdin(&base_args, &format!("{token}\n")).await;
    assert_eq!(out.code, 0, "{}", out.stderr);

    // Requirements and rejections: non-zero, the kind, never the token.
    let mut args = base_args.to_vec();
    args.extend(["--require-azpacr", "2", &token]);
    let out = confidant(&args, &[]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("forbidden"), "{}", out.stderr);
    assert!(!out.stderr.contains(&token));
    let mut args = base_args.to_vec();
    args.extend(["--require-scope", "Files.Read", &token]);
    assert_eq!(confidant(&args, &[]).await.code, 1);
    let other_audience = [
        "validate",
        "--authority",
        &authority,
        "--audience",
        "api://other",
        &token,
    ];
    let out = confidant(&other_audience, &[]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("bad_audience"), "{}", out.stderr);

    // Batch: one line out per line in, in order; bad lines too; one JWKS fetch for the run.
    testkit.reset_counters();
    let (signed_part, _) = token.rsplit_once('.').expect("JWS");
    let forged = format!("{signed_part}.{}", URL_SAFE_NO_PAD.encode([7u8; 256]));
    let input = [
        json_line(&token),
        "not json".to_owned(),
        json_line(&forged),
        r#"{"token": 5}"#.to_owned(),
        json_line(&token),
        String::new(),
        json_line("a.b.c"),
    ]
    .join("\n");
    let mut args = base_args.to_vec();
    args.insert(1, "--batch");
    let out = confidant_with_stdin(&args, &format!("{input}\n")).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let kinds: Vec<String> = lines
        .iter()
        .map(|l| {
            if l["ok"] == true {
                "ok".to_owned()
            } else {
                l["kind"].as_str().expect("kind").to_owned()
            }
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "ok",
            "malformed",
            "bad_signature",
            "malformed",
            "ok",
            "malformed",
            "malformed"
        ]
    );
    assert_eq!(lines[0]["claims"]["azp"], CLIENT);
    assert!(!out.stdout.contains(&forged), "never the token");
    assert_eq!(
        testkit.request_count(Endpoint::Jwks),
        1,
        "one key set for the run"
    );
}

fn json_line(token: &str) -> String {
    serde_json::json!({ "token": token }).to_string()
}

#[tokio::test]
async fn validate_b2c_tokens_with_extra_policies() {
    let testkit = testkit(AppConfig::new(CLIENT, TENANT).secret(SECRET)).await;
    let tid = testkit.tenant_id(TENANT);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("now")
        .as_secs();
    let sign = |policy: &str| {
        testkit
            .sign_token(&serde_json::json!({
                "iss": format!("{}/{tid}/v2.0/", testkit.base_url()), "aud": API, "ver": "1.0",
                "azp": CLIENT, "scp": "read", "tfp": policy, "sub": "u", "oid": "u",
                "iat": now, "nbf": now, "exp": now + 600,
            }))
            .expect("signed")
    };
    let authority = format!("{}/{TENANT}/B2C_1_signin/v2.0", testkit.base_url());
    let mfa = sign("B2C_1_mfa");
    let args = ["validate", "--authority", &authority, "--audience", API];
    let out = confidant(&[&args[..], &[sign("B2C_1_signin").as_str()]].concat(), &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = confidant(&[&args[..], &[mfa.as_str()]].concat(), &[]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("bad_issuer"), "{}", out.stderr);
    let out = confidant(
        &[&args[..], &["--b2c-policy", "B2C_1_MFA", mfa.as_str()]].concat(),
        &[],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
}

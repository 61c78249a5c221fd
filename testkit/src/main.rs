//! `confidant-testkit serve`: the emulator as a process, for other languages and manual use.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use confidant_testkit::{Config, Mode, Testkit};

#[derive(Parser)]
#[command(
    name = "confidant-testkit",
    version,
    about = "A local Entra ID emulator for offline tests"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serves on 127.0.0.1 until SIGTERM or Ctrl-C; prints one JSON line when ready.
    Serve {
        /// The port; 0 picks a free one.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// A JSON configuration file (tenants, apps, managed identities).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also serve a Key Vault, accepting tokens of this tenant.
        #[arg(long, value_name = "TENANT")]
        key_vault: Option<String>,
        /// Serve HTTPS with a test CA generated at start (its PEM is written to --ca-file).
        #[arg(long)]
        tls: bool,
        /// Where to write the test CA's PEM in TLS mode (default: a new file in the temporary
        /// directory). The ready line names it as `ca_file`.
        #[arg(long, value_name = "PATH", requires = "tls")]
        ca_file: Option<PathBuf>,
        /// Tolerate what Entra ID tolerates from other clients (msal, the Azure SDKs): padded
        /// thumbprints, float or string times, no `nbf`, `x5c` as one string, `jti` reuse,
        /// client secrets in HTTP Basic. The default is strict.
        #[arg(long)]
        compat: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let Cli {
        command:
            Command::Serve {
                port,
                config,
                key_vault,
                tls,
                ca_file,
                compat,
            },
    } = Cli::parse();
    let config = match config {
        None => Config::default(),
        Some(path) => match std::fs::read_to_string(&path) {
            Err(e) => {
                eprintln!("confidant-testkit: cannot read {}: {e}", path.display());
                return ExitCode::from(2);
            }
            Ok(json) => match Config::from_json(&json) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("confidant-testkit: {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            },
        },
    };
    // The CA file is created before the server starts, so a bad path never leaves a server
    // running that clients cannot trust.
    let ca_file = tls.then(|| {
        ca_file.unwrap_or_else(|| {
            std::env::temp_dir().join(format!("confidant-testkit-ca-{}.pem", std::process::id()))
        })
    });
    if let Some(path) = &ca_file
        && let Err(e) = std::fs::write(path, b"")
    {
        eprintln!(
            "confidant-testkit: cannot write the CA file {}: {e}",
            path.display()
        );
        return ExitCode::from(2);
    }
    let mode = if compat { Mode::Compat } else { Mode::Strict };
    let mut builder = Testkit::builder().config(config).port(port).mode(mode);
    if let Some(tenant) = key_vault {
        builder = builder.key_vault(tenant);
    }
    if tls {
        builder = builder.tls();
    }
    let testkit = match builder.start().await {
        Ok(testkit) => testkit,
        Err(e) => {
            eprintln!("confidant-testkit: {e}");
            return ExitCode::from(2);
        }
    };
    if let (Some(path), Some(pem)) = (&ca_file, testkit.ca_pem())
        && let Err(e) = std::fs::write(path, pem)
    {
        eprintln!(
            "confidant-testkit: cannot write the CA file {}: {e}",
            path.display()
        );
        testkit.shutdown().await;
        return ExitCode::from(2);
    }
    let ready = serde_json::json!({
        "ready": true,
        "base_url": testkit.base_url(),
        "imds_endpoint": testkit.imds_endpoint(),
        "app_service_endpoint": testkit.app_service_endpoint(),
        "app_service_identity_header": testkit.app_service_identity_header(),
        "key_vault_url": testkit.key_vault_url(),
        "ca_file": ca_file,
        "mode": if compat { "compat" } else { "strict" },
    });
    println!("{ready}");
    wait_for_shutdown().await;
    testkit.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

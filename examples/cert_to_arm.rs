//! Pattern 1: a service proves itself with a certificate on disk (PEM or PFX) and gets a token
//! for Azure Resource Manager.
//!
//! ```sh
//! cargo run --example cert_to_arm                 # offline, against the in-process testkit
//! AZURE_TENANT_ID=<tenant> AZURE_CLIENT_ID=<app id> \
//! AZURE_CLIENT_CERTIFICATE_PATH=app.pem [AZURE_CLIENT_CERTIFICATE_PASSWORD=...] \
//!   cargo run --example cert_to_arm               # real Entra ID
//! ```
//!
//! The certificate file may be a PEM (private key and certificate, in any order) or a PKCS#12
//! file; the variables are the ones Azure's SDKs read. Offline, the example registers a freshly
//! generated certificate with the testkit and writes it to a temporary file, so the same
//! loading code runs in both modes.

use std::error::Error;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use confidant::{Authority, ConfidentialClient, Password, PemSigner, Pkcs12Signer, Signer};
use confidant_testkit::{AppConfig, Config, Endpoint, TestCertificate, Testkit};

const ARM: &str = "https://management.azure.com/.default";

/// PEM when the file looks like text with a PEM header, else PKCS#12.
fn load_signer(
    path: &Path,
    password: Option<&Password>,
) -> Result<Arc<dyn Signer>, Box<dyn Error>> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        Ok(Arc::new(PemSigner::from_combined_pem(&bytes, password)?))
    } else {
        Ok(Arc::new(Pkcs12Signer::from_pkcs12(&bytes, password)?))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let password = var("AZURE_CLIENT_CERTIFICATE_PASSWORD").map(Password::new);

    // Offline: a testkit with the app registered; its handle stays alive until the end.
    let (authority, client_id, path, testkit, _dir) = match var("AZURE_CLIENT_CERTIFICATE_PATH") {
        Some(path) => {
            let tenant = var("AZURE_TENANT_ID").ok_or("set AZURE_TENANT_ID")?;
            let client_id = var("AZURE_CLIENT_ID").ok_or("set AZURE_CLIENT_ID")?;
            let host = var("AZURE_AUTHORITY_HOST")
                .unwrap_or_else(|| "https://login.microsoftonline.com/".to_owned());
            let authority = Authority::parse(&format!("{}/{tenant}", host.trim_end_matches('/')))?;
            (authority, client_id, path.into(), None, None)
        }
        None => {
            let client_id = "2f7a9c4e-0b61-4d38-a5e2-7c9d1f3b8a60".to_owned();
            let certificate = TestCertificate::generate("cert-to-arm")?;
            let config = Config::default().app(
                AppConfig::new(&client_id, "contoso").certificate(certificate.cert_pem.clone()),
            );
            let testkit = Testkit::builder().config(config).start().await?;
            println!(
                "offline: testkit (local Entra ID) at {}",
                testkit.base_url()
            );
            let dir = TempDir::new()?;
            let path = dir.0.join("app.pem");
            std::fs::write(
                &path,
                format!("{}{}", certificate.key_pem, certificate.cert_pem),
            )?;
            let authority = Authority::entra_at(testkit.base_url(), "contoso")?;
            (authority, client_id, path, Some(testkit), Some(dir))
        }
    };

    let signer = load_signer(&path, password.as_ref())?;
    if let Some(certificate) = signer.certificate() {
        println!(
            "certificate from {}: {} (x5t#S256 {})",
            path.display(),
            certificate.subject(),
            certificate.x5t_s256()
        );
    }
    let client = ConfidentialClient::builder(authority, client_id)
        .certificate(signer)
        .build()?;
    let token = client.acquire_token_for_client(&[ARM]).await?;
    let remaining = token
        .expires_on()
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    println!(
        "token for Azure Resource Manager ({:?}), valid for {} s more",
        token.source(),
        remaining.as_secs()
    );

    // Decoded for display only: ARM is what checks it.
    let payload = token
        .access_token()
        .expose_secret()
        .split('.')
        .nth(1)
        .ok_or("the token is not a JWT")?;
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload)?)?;
    println!(
        "aud {}  appid {}  appidacr {} (2 = certificate)",
        claims["aud"], claims["appid"], claims["appidacr"]
    );
    if let Some(testkit) = testkit {
        if claims["aud"] != "https://management.azure.com" || claims["appidacr"] != "2" {
            return Err("expected an ARM token for a certificate client".into());
        }
        println!(
            "token requests the testkit received: {}",
            testkit.request_count(Endpoint::Token)
        );
        testkit.shutdown().await;
    }
    Ok(())
}

/// A private temporary directory, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("confidant-example-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

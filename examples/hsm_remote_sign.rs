//! Pattern 3: the private key lives in a Key Vault HSM and never leaves it. A managed identity
//! reaches the vault; Key Vault signs the client assertion; the app gets its token.
//!
//! ```sh
//! cargo run --example hsm_remote_sign             # offline, against the in-process testkit
//! KEY_VAULT_URL=https://<vault>.vault.azure.net CERTIFICATE_NAME=<name> \
//! AZURE_TENANT_ID=<tenant> APP_CLIENT_ID=<app id> [SCOPE=<resource>/.default] \
//! [MANAGED_IDENTITY_CLIENT_ID=<id>] cargo run --example hsm_remote_sign
//! ```
//!
//! `KeyVaultSigner` reads the certificate (for `x5t#S256`) and the key's public half once,
//! hashes each assertion locally and sends only the 32-byte digest to `POST /keys/.../sign`.
//! Offline, the testkit's counters show the sign calls and that no secret (which would hold an
//! exportable private key) was ever read.

use std::error::Error;
use std::sync::Arc;

use confidant::{
    Authority, ConfidentialClient, KeyVaultSigner, ManagedIdentity, ManagedIdentityId, Signer,
};
use confidant_testkit::{
    AppConfig, Config, Endpoint, ManagedIdentityConfig, Testkit, VaultKeyType, VaultPermission,
};

struct Setup {
    identity: ManagedIdentity,
    vault_url: String,
    certificate_name: String,
    authority: Authority,
    client_id: String,
    scope: String,
    testkit: Option<Testkit>,
}

async fn offline() -> Result<Setup, Box<dyn Error>> {
    const TENANT: &str = "contoso";
    const APP: &str = "9b3e6f10-2c84-4a7d-b1e5-58f0a2d7c936";
    let config = Config::default().managed_identity(ManagedIdentityConfig::system_assigned(TENANT));
    let testkit = Testkit::builder()
        .config(config)
        .key_vault(TENANT)
        .start()
        .await?;
    println!(
        "offline: testkit at {} (IMDS, Entra ID), Key Vault at {}",
        testkit.base_url(),
        testkit.key_vault_url().unwrap_or_default()
    );
    let identity = testkit.managed_identity(None).ok_or("no identity")?;
    // Sign, read the key and the certificate; no secret permission at all.
    testkit.grant_vault_access(
        &identity.client_id,
        &[
            VaultPermission::Sign,
            VaultPermission::GetKey,
            VaultPermission::GetCertificate,
        ],
    );
    // An RSA-HSM key with its certificate: not exportable.
    let cert_pem = testkit.create_vault_certificate("app-signing", VaultKeyType::Rsa2048, true)?;
    testkit.register_app(AppConfig::new(APP, TENANT).certificate(cert_pem))?;
    Ok(Setup {
        identity: ManagedIdentity::builder()
            .imds_endpoint(testkit.imds_endpoint())
            .build()?,
        vault_url: testkit.key_vault_url().ok_or("no vault")?,
        certificate_name: "app-signing".into(),
        authority: Authority::entra_at(testkit.base_url(), TENANT)?,
        client_id: APP.into(),
        scope: "https://graph.microsoft.com/.default".into(),
        testkit: Some(testkit),
    })
}

fn online(vault_url: String) -> Result<Setup, Box<dyn Error>> {
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("set {name}"))
    };
    let mut identity = ManagedIdentity::builder();
    if let Ok(id) = var("MANAGED_IDENTITY_CLIENT_ID") {
        identity = identity.id(ManagedIdentityId::ClientId(id));
    }
    Ok(Setup {
        identity: identity.build()?,
        vault_url,
        certificate_name: var("CERTIFICATE_NAME")?,
        authority: Authority::parse(&format!(
            "https://login.microsoftonline.com/{}",
            var("AZURE_TENANT_ID")?
        ))?,
        client_id: var("APP_CLIENT_ID")?,
        scope: var("SCOPE").unwrap_or_else(|_| "https://graph.microsoft.com/.default".into()),
        testkit: None,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let setup = match std::env::var("KEY_VAULT_URL")
        .ok()
        .filter(|v| !v.is_empty())
    {
        Some(url) => online(url)?,
        None => offline().await?,
    };
    println!(
        "managed identity: {} via {}",
        setup.identity.id(),
        setup.identity.source().as_str()
    );
    let signer = KeyVaultSigner::builder(
        &setup.vault_url,
        &setup.certificate_name,
        Arc::new(setup.identity.clone()),
    )
    .build()
    .await?;
    println!(
        "remote signer: key {} ({:?}), certificate x5t#S256 {}",
        signer.key_id(),
        signer.algorithms(),
        signer
            .certificate()
            .map(|c| c.x5t_s256().to_owned())
            .unwrap_or_default()
    );
    let client = ConfidentialClient::builder(setup.authority.clone(), setup.client_id.clone())
        .certificate(Arc::new(signer))
        .build()?;
    let token = client.acquire_token_for_client(&[&setup.scope]).await?;
    println!(
        "token for {} ({:?}), {} characters",
        setup.scope,
        token.source(),
        token.access_token().expose_secret().len()
    );

    if let Some(testkit) = setup.testkit {
        let signs = testkit.request_count(Endpoint::VaultSign);
        let secrets = testkit.request_count(Endpoint::VaultSecrets);
        println!(
            "Key Vault requests: sign {signs}, keys {}, certificates {}, secrets {secrets}",
            testkit.request_count(Endpoint::VaultKeys),
            testkit.request_count(Endpoint::VaultCertificates),
        );
        if signs == 0 || secrets != 0 {
            return Err("expected remote signing and no secret read".into());
        }
        println!("the private key never left the vault: no secret was read");
        testkit.shutdown().await;
    }
    Ok(())
}

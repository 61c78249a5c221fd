//! Pattern 2: a workload with a managed identity reads a certificate (PFX) stored in Key Vault,
//! then gets a token for an app registered in another tenant: here, for Event Hubs.
//!
//! ```sh
//! cargo run --example mi_keyvault_cross_tenant    # offline, against the in-process testkit
//! KEY_VAULT_URL=https://<vault>.vault.azure.net CERTIFICATE_NAME=<name> \
//! PARTNER_TENANT_ID=<tenant> PARTNER_CLIENT_ID=<app id> [MANAGED_IDENTITY_CLIENT_ID=<id>] \
//!   cargo run --example mi_keyvault_cross_tenant  # on an Azure host with a managed identity
//! ```
//!
//! Step 1: the managed identity (IMDS or App Service, detected from the environment) gets a
//! Key Vault token. Step 2: the certificate's secret, Key Vault's PKCS#12 export, becomes a local
//! signer. Step 3: that signer authenticates the partner tenant's app, which gets an Event Hubs
//! token. No secret is configured anywhere. Offline, the testkit plays IMDS, Key Vault and both
//! tenants.

use std::error::Error;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use confidant::{
    Authority, ConfidentialClient, KeyVaultCertificate, ManagedIdentity, ManagedIdentityId,
};
use confidant_testkit::{
    AppConfig, Config, Endpoint, ManagedIdentityConfig, Testkit, VaultKeyType, VaultPermission,
};

const EVENT_HUBS: &str = "https://eventhubs.azure.net/.default";

struct Setup {
    identity: ManagedIdentity,
    vault_url: String,
    certificate_name: String,
    partner: Authority,
    partner_client_id: String,
    testkit: Option<Testkit>,
}

/// The hosting tenant (the workload, its identity and the vault) and the partner tenant (the
/// app the certificate belongs to), emulated.
async fn offline() -> Result<Setup, Box<dyn Error>> {
    const HOSTING: &str = "hosting.example";
    const PARTNER: &str = "partner.example";
    const PARTNER_APP: &str = "4e1b7d2a-93c5-4f60-8a17-b2d5c9e03f41";
    let config =
        Config::default().managed_identity(ManagedIdentityConfig::system_assigned(HOSTING));
    let testkit = Testkit::builder()
        .config(config)
        .key_vault(HOSTING)
        .start()
        .await?;
    println!(
        "offline: testkit at {} (IMDS, Entra ID), Key Vault at {}",
        testkit.base_url(),
        testkit.key_vault_url().unwrap_or_default()
    );
    let identity = testkit.managed_identity(None).ok_or("no identity")?;
    testkit.grant_vault_access(&identity.client_id, &[VaultPermission::GetSecret]);
    let cert_pem = testkit.create_vault_certificate("partner-app", VaultKeyType::Rsa2048, false)?;
    testkit.register_app(AppConfig::new(PARTNER_APP, PARTNER).certificate(cert_pem))?;
    Ok(Setup {
        identity: ManagedIdentity::builder()
            .imds_endpoint(testkit.imds_endpoint())
            .build()?,
        vault_url: testkit.key_vault_url().ok_or("no vault")?,
        certificate_name: "partner-app".into(),
        partner: Authority::entra_at(testkit.base_url(), PARTNER)?,
        partner_client_id: PARTNER_APP.into(),
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
        partner: Authority::parse(&format!(
            "https://login.microsoftonline.com/{}",
            var("PARTNER_TENANT_ID")?
        ))?,
        partner_client_id: var("PARTNER_CLIENT_ID")?,
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
        "1. managed identity: {} via {}",
        setup.identity.id(),
        setup.identity.source().as_str()
    );

    let loaded = KeyVaultCertificate::load(
        &setup.vault_url,
        &setup.certificate_name,
        Arc::new(setup.identity.clone()),
        None,
    )
    .await?;
    let subject = loaded
        .signer
        .certificate()
        .map(|c| c.subject().to_owned())
        .unwrap_or_default();
    println!(
        "2. certificate `{}` version {} from Key Vault: {subject}",
        setup.certificate_name, loaded.version
    );

    let partner =
        ConfidentialClient::builder(setup.partner.clone(), setup.partner_client_id.clone())
            .certificate(loaded.signer)
            .build()?;
    let token = partner.acquire_token_for_client(&[EVENT_HUBS]).await?;
    let payload = token
        .access_token()
        .expose_secret()
        .split('.')
        .nth(1)
        .ok_or("the token is not a JWT")?;
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload)?)?;
    println!(
        "3. Event Hubs token for {} in tenant {} (aud {}, appidacr {})",
        claims["appid"], claims["tid"], claims["aud"], claims["appidacr"]
    );

    if let Some(testkit) = setup.testkit {
        let hosting = testkit
            .managed_identity(None)
            .map(|i| i.tenant_id)
            .unwrap_or_default();
        if claims["aud"] != "https://eventhubs.azure.net" || claims["tid"] == hosting.as_str() {
            return Err("expected an Event Hubs token from the partner tenant".into());
        }
        println!(
            "requests: IMDS {}, Key Vault secrets {}, token endpoint {}",
            testkit.request_count(Endpoint::Imds),
            testkit.request_count(Endpoint::VaultSecrets),
            testkit.request_count(Endpoint::Token),
        );
        testkit.shutdown().await;
    }
    Ok(())
}

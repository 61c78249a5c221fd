//! The quickstart: a token with a certificate from a local Entra ID emulator, a cache hit, and
//! the token validated as the API would.
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! It starts `confidant-testkit` in-process on a loopback port, registers an app with a freshly
//! generated certificate, acquires an app token with a `PemSigner` (a signed RFC 7523 client
//! assertion), acquires it again from the cache, then validates it with a `BearerValidator` (the
//! API side: discovery, JWKS, signature, issuer, audience, lifetime) and prints what it proved.
//! Against the real Entra ID, only the authority, the ids and the certificate change.

use std::error::Error;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use confidant::validator::{BearerValidator, ClientAuthStrength, Requirements};
use confidant::{Authority, ConfidentialClient, PemSigner};
use confidant_testkit::{AppConfig, Config, Endpoint, TestCertificate, Testkit};

const TENANT: &str = "contoso.onmicrosoft.com";
const CLIENT_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
const API_ID: &str = "c0a8e4f2-5b1d-4e36-9f43-0d1c2b7a9e58";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    // The app's certificate: generated here; in production, a PEM or PFX file or Key Vault.
    let certificate = TestCertificate::generate("quickstart-app")?;
    let config = Config::default()
        .app(AppConfig::new(API_ID, TENANT).app_roles(&["Accounts.Read"]))
        .app(
            AppConfig::new(CLIENT_ID, TENANT)
                .certificate(certificate.cert_pem.clone())
                .grant_roles(API_ID, &["Accounts.Read"]),
        );
    let testkit = Testkit::builder().config(config).start().await?;
    println!("testkit (local Entra ID) at {}", testkit.base_url());

    let signer = PemSigner::from_pem(
        certificate.cert_pem.as_bytes(),
        certificate.key_pem.as_bytes(),
    )?;
    println!(
        "certificate {} x5t#S256={}",
        signer.certificate().subject(),
        signer.certificate().x5t_s256()
    );
    let authority = Authority::entra_at(testkit.base_url(), TENANT)?;
    let client = ConfidentialClient::builder(authority.clone(), CLIENT_ID)
        .certificate(Arc::new(signer))
        .build()?;

    let scope = format!("api://{API_ID}/.default");
    let first = client.acquire_token_for_client(&[&scope]).await?;
    println!("\n1st acquire_token_for_client: {:?}", first.source());
    let second = client.acquire_token_for_client(&[&scope]).await?;
    println!("2nd acquire_token_for_client: {:?}", second.source());
    println!(
        "token requests the testkit received: {}",
        testkit.request_count(Endpoint::Token)
    );

    // Decoded for display only: the bearer validator is what checks a token.
    let payload = first
        .access_token()
        .expose_secret()
        .split('.')
        .nth(1)
        .ok_or("not a JWT")?;
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload)?)?;
    println!(
        "\naccess token claims (decoded, not verified):\n{}",
        serde_json::to_string_pretty(&claims)?
    );

    if !second.is_from_cache() || testkit.request_count(Endpoint::Token) != 1 {
        return Err("expected one token request and a cache hit".into());
    }

    // The API side: validate the token as the API with id API_ID would.
    let validator = BearerValidator::builder(authority)
        .audience(API_ID)
        .build()?;
    let validated = validator
        .validate_with(
            first.access_token().expose_secret(),
            &Requirements::new()
                .app_only()
                .any_role(["Accounts.Read"])
                .min_client_auth(ClientAuthStrength::Certificate),
        )
        .await?;
    println!(
        "
validated by BearerValidator: client {} (certificate-authenticated), tenant {}, roles {:?}, key {}",
        validated.client_id().unwrap_or_default(),
        validated.tenant_id().unwrap_or_default(),
        validated.roles().collect::<Vec<_>>(),
        validated.key_id()
    );
    testkit.shutdown().await;
    Ok(())
}

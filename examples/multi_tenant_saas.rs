//! A multi-tenant SaaS app: one app registration, customers in their own Entra tenants.
//!
//! ```sh
//! cargo run --example multi_tenant_saas
//! ```
//!
//! Tailspin's app is registered in Tailspin's tenant as multi-tenant, and two customers,
//! Fabrikam and Northwind, have consented to it. The example, offline against the in-process
//! testkit:
//!
//! 1. signs users in at `organizations`, accepting only onboarded customers' tenants
//!    (`allowed_sign_in_tenants`): a Fabrikam user signs in, a user of a tenant that is not a
//!    customer is refused even though Entra signed them in;
//! 2. runs a background job that reads each customer's directory with an app token from that
//!    customer's tenant (`TokenRequest::tenant`, one client for every tenant, tokens cached per
//!    tenant), with the app's certificate;
//! 3. checks each token's tenant, and that the second round came from the cache.
//!
//! Against the real Entra ID, only the ids, the certificate and the authority host change.

use std::error::Error;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use confidant::{
    Authority, AuthorizationRequest, AuthorizationResponse, ConfidentialClient, ErrorKind,
    PemSigner, TokenRequest,
};
use confidant_testkit::{
    AppConfig, Config, Endpoint, TenantConfig, TestCertificate, Testkit, UserConfig,
};

const TAILSPIN: &str = "0f3a5c7e-9b1d-4f3a-8c5e-7a9b1d3f5c7e";
const FABRIKAM: &str = "2b4d6f8a-0c2e-4a6c-9e0a-2c4e6a8c0e2a";
const NORTHWIND: &str = "6e8a0c2e-4a6c-4e0a-8c2e-6a8c0e2a4c6e";
const CONTOSO: &str = "a1c3e5a7-c9e1-4a3c-8e5a-7c9e1a3c5e7a";
const APP_ID: &str = "3c5e7a9c-1e3a-4c5e-9a7c-9e1a3c5e7a9c";
const API_ID: &str = "5e7a9c1e-3a5c-4e7a-8c9e-1a3c5e7a9c1e";
const REDIRECT: &str = "https://app.tailspin.example/signin-oidc";
const GRAPH: &str = "https://graph.microsoft.com/.default";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let certificate = TestCertificate::generate("tailspin-saas")?;
    let testkit = Testkit::builder()
        .config(
            Config::default()
                .tenant(TenantConfig::new(TAILSPIN, &["tailspin.example"]))
                .tenant(TenantConfig::new(FABRIKAM, &["fabrikam.example"]))
                .tenant(TenantConfig::new(NORTHWIND, &["northwind.example"]))
                .tenant(TenantConfig::new(CONTOSO, &["contoso.example"]))
                .app(
                    AppConfig::new(API_ID, TAILSPIN)
                        .identifier_uri("api://tailspin-projects")
                        .scopes(&["Projects.Read"]),
                )
                .app(
                    AppConfig::new(APP_ID, TAILSPIN)
                        .certificate(certificate.cert_pem.clone())
                        .redirect_uri(REDIRECT)
                        .multi_tenant()
                        .consented_in(FABRIKAM)
                        .consented_in(NORTHWIND)
                        .consented_in(CONTOSO),
                )
                .user(UserConfig::new("megan@fabrikam.example", FABRIKAM).name("Megan"))
                .user(UserConfig::new("pat@contoso.example", CONTOSO).name("Pat")),
        )
        .start()
        .await?;
    println!("testkit (local Entra ID) at {}", testkit.base_url());

    // The onboarded customers, as the SaaS keeps them in its own database.
    let customers = [("Fabrikam", FABRIKAM), ("Northwind", NORTHWIND)];

    let signer = Arc::new(PemSigner::from_pem(
        certificate.cert_pem.as_bytes(),
        certificate.key_pem.as_bytes(),
    )?);
    let app = ConfidentialClient::builder(
        Authority::entra_at(testkit.base_url(), "organizations")?,
        APP_ID,
    )
    .certificate(signer)
    .allowed_sign_in_tenants(customers.iter().map(|(_, tid)| *tid))
    .build()?;

    // 1. Sign-in at `organizations`.
    println!("\n1. sign-in at organizations, customers' tenants only");
    let megan = sign_in(&app, "megan@fabrikam.example").await?;
    let signed_in = app.acquire_token_by_auth_code(&megan.0, &megan.1).await?;
    let account = signed_in.account().ok_or("no account")?;
    println!(
        "   megan@fabrikam.example signed in: home account {}",
        account.home_account_id
    );
    if !account.home_account_id.ends_with(FABRIKAM) {
        return Err("the account should be Fabrikam's".into());
    }
    // Contoso consented to the app, but is not a customer of this SaaS.
    let pat = sign_in(&app, "pat@contoso.example").await?;
    match app.acquire_token_by_auth_code(&pat.0, &pat.1).await {
        Err(e) if e.kind() == ErrorKind::IdToken => {
            println!("   pat@contoso.example refused: {e}");
        }
        Err(e) => return Err(format!("unexpected error for pat: {e}").into()),
        Ok(_) => return Err("a user of a non-customer tenant signed in".into()),
    }

    // 2. The background job: an app token in every customer's tenant, from one client.
    println!("\n2. app tokens in each customer's tenant (client credentials, certificate)");
    for round in 1..=2 {
        for (name, tid) in customers {
            let token = app
                .acquire_token_for_client_with(&TokenRequest::new(&[GRAPH]).tenant(tid))
                .await?;
            let token_tid = tenant_of(token.access_token().expose_secret())?;
            println!(
                "   round {round}, {name}: token for tenant {token_tid} ({:?})",
                token.source()
            );
            if token_tid != tid {
                return Err(format!("{name}'s token is for {token_tid}").into());
            }
            if (round == 2) != token.is_from_cache() {
                return Err("the second round should come from the cache".into());
            }
        }
    }

    // 3. What went over the wire.
    let token_requests = testkit.request_count(Endpoint::Token);
    println!("\n3. token requests the testkit received: {token_requests} (2 sign-ins, 2 tenants)");
    if token_requests != 4 {
        return Err("expected one request per sign-in and one per customer tenant".into());
    }
    println!("\nmulti-tenant SaaS: sign-in restricted to customers, per-tenant app tokens cached");
    Ok(())
}

/// The browser's part of a sign-in (for the SaaS's own API, `Projects.Read`), scripted: the authorize URL's redirect back to the app.
async fn sign_in(
    app: &ConfidentialClient,
    user: &str,
) -> Result<(confidant::AuthCodeFlow, AuthorizationResponse), Box<dyn Error>> {
    let (url, flow) = app.authorization_url(
        &AuthorizationRequest::new(REDIRECT, &["api://tailspin-projects/Projects.Read"])
            .login_hint(user),
    )?;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let response = browser.get(url.as_str()).send().await?;
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or("the sign-in did not redirect back")?;
    let query = url::Url::parse(location)?
        .query()
        .unwrap_or_default()
        .to_owned();
    Ok((flow, AuthorizationResponse::from_form(&query)))
}

/// The `tid` of a token, decoded for display (the API's validator is what checks tokens).
fn tenant_of(jwt: &str) -> Result<String, Box<dyn Error>> {
    let payload = jwt.split('.').nth(1).ok_or("not a JWT")?;
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload)?)?;
    Ok(claims["tid"].as_str().ok_or("no tid")?.to_owned())
}

//! The offline world of the example: the testkit (B2C user flows, or an Entra tenant), the bank
//! API and the web app, each on its own loopback port.

use std::sync::Arc;

use confidant::validator::BearerValidator;
use confidant::{Authority, ConfidentialClient};
use confidant_testkit::{AppConfig, B2cPolicyConfig, Config, TenantConfig, Testkit, UserConfig};

use crate::webapp::{StepUp, WebApp, WebAppConfig, bank_api};

pub(crate) const TENANT_ID: &str = "0f5b2c7d-9e1a-4b3c-8d6e-2a4f6b8c0d1e";
pub(crate) const API_ID: &str = "6d8f0a2c-4e6b-4a8d-9c1e-3f5a7b9d1c3e";
pub(crate) const WEB_ID: &str = "9a1c3e5b-7d9f-4b1d-8e3a-5c7e9f1b3d5a";
pub(crate) const SIGN_IN_POLICY: &str = "B2C_1_signupsignin";
pub(crate) const MFA_POLICY: &str = "B2C_1_mfa";
pub(crate) const USER: &str = "erin@bank.example";

/// Everything running; dropping it stops the servers.
pub(crate) struct Offline {
    pub(crate) testkit: Testkit,
    pub(crate) app_url: String,
    pub(crate) api_url: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Offline {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn serve(listener: tokio::net::TcpListener, router: axum::Router) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    })
}

/// Starts the testkit, the API and the web app; `step_up` picks B2C or Entra.
pub(crate) async fn start(step_up: StepUp) -> Result<Offline, Box<dyn std::error::Error>> {
    let app_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let app_url = format!("http://{}", app_listener.local_addr()?);
    let redirect_uri = format!("{app_url}/callback");
    let (tenant, domain) = match step_up {
        StepUp::B2cUserFlow => (TENANT_ID, "bankb2c.onmicrosoft.com"),
        StepUp::EntraAuthContext => (TENANT_ID, "bank.onmicrosoft.com"),
    };
    let secret = uuid::Uuid::new_v4().simple().to_string();
    let mut config = Config::default()
        .tenant(TenantConfig::new(tenant, &[domain]))
        .app(
            AppConfig::new(API_ID, domain)
                .identifier_uri(format!("api://{API_ID}"))
                .scopes(&["Accounts.Read", "Accounts.Write"]),
        )
        .app(
            AppConfig::new(WEB_ID, domain)
                .secret(secret.clone())
                .redirect_uri(&redirect_uri),
        );
    config = match step_up {
        StepUp::B2cUserFlow => config
            .b2c_policy(B2cPolicyConfig::sign_up_sign_in(SIGN_IN_POLICY))
            .b2c_policy(B2cPolicyConfig::mfa(MFA_POLICY))
            .user(UserConfig::new(USER, domain).name("Erin")),
        StepUp::EntraAuthContext => {
            config.user(UserConfig::new(USER, domain).name("Erin").with_mfa())
        }
    };
    let testkit = Testkit::builder().config(config).start().await?;
    let authority = match step_up {
        StepUp::B2cUserFlow => Authority::b2c_at(testkit.base_url(), domain, SIGN_IN_POLICY)?,
        StepUp::EntraAuthContext => Authority::entra_at(testkit.base_url(), domain)?,
    };

    let mut validator = BearerValidator::builder(authority.clone()).audience(API_ID);
    if step_up == StepUp::B2cUserFlow {
        validator = validator.b2c_policy(MFA_POLICY);
    }
    let api = bank_api(validator.build()?, step_up, MFA_POLICY);
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api_url = format!("http://{}", api_listener.local_addr()?);

    let client = ConfidentialClient::builder(authority, WEB_ID)
        .client_secret(secret)
        .build()?;
    let app = WebApp::new(WebAppConfig {
        client,
        api_url: api_url.clone(),
        api_scope_prefix: format!("api://{API_ID}"),
        redirect_uri,
        secure_cookies: false,
    })?;
    let router = Arc::clone(&app).router();
    let tasks = vec![serve(api_listener, api), serve(app_listener, router)];
    Ok(Offline {
        testkit,
        app_url,
        api_url,
        tasks,
    })
}

//! `confidant-testkit`: a local emulator of Microsoft Entra ID over real HTTP on loopback, so
//! that confidential clients (confidant's, and anyone's) can be tested offline.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), confidant_testkit::TestkitError> {
//! use confidant_testkit::{AppConfig, Config, Testkit};
//!
//! let config = Config::default().app(AppConfig::new("my-app", "contoso").secret("s3cret"));
//! let testkit = Testkit::builder().config(config).start().await?;
//! let token_endpoint = testkit.token_endpoint("contoso");
//! assert!(token_endpoint.starts_with("http://127.0.0.1:"));
//! testkit.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The testkit shares no code with the crate it tests: it issues and checks tokens with
//! `jsonwebtoken` and parses certificates with `x509-cert`, so a bug in confidant's JOSE code
//! cannot confirm itself.

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use tokio::net::TcpListener;
use tokio::sync::watch;

mod assertion;
mod config;
mod entra;
mod errors;
mod faults;
mod keys;
mod keyvault;
mod managed_identity;
mod pfx;
mod registry;
mod tls;
mod user_flows;

pub use crate::config::{
    AppConfig, B2cPolicyConfig, Config, FederatedCredential, KeyVaultConfig, ManagedIdentityConfig,
    SecretConfig, TenantConfig, TrustedSubject, UserConfig, VaultAccessPolicy,
    VaultCertificateConfig, VaultKeyConfig, VaultSecretConfig,
};
pub use crate::faults::{Endpoint, Fault, RecordedRequest};
pub use crate::keys::{TestCa, TestCertificate};
pub use crate::keyvault::{VaultKeyType, VaultPermission, VaultSecretFormat};
pub use crate::managed_identity::ManagedIdentityInfo;

/// What can fail when starting or configuring the testkit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// Binding or serving the loopback port failed.
    #[error("testkit server: {0}")]
    Io(#[from] std::io::Error),
    /// The configuration is invalid; the message names the field.
    #[error("testkit configuration: {0}")]
    Config(String),
    /// Generating or parsing key material failed.
    #[error("testkit keys: {0}")]
    Keys(String),
}

/// A source of wall-clock time for everything the testkit issues and checks.
pub type ClockFn = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// State shared by the handlers and the handle.
pub(crate) struct Shared {
    pub(crate) base_url: String,
    pub(crate) registry: RwLock<registry::Registry>,
    pub(crate) keys: RwLock<KeySet>,
    pub(crate) faults: Mutex<faults::Faults>,
    pub(crate) replay: Mutex<assertion::ReplayCache>,
    pub(crate) vault: RwLock<keyvault::Vault>,
    /// The App Service host's `IDENTITY_HEADER` secret.
    pub(crate) identity_header: String,
    /// Authorization codes, refresh tokens, and the tests' switches for user flows.
    pub(crate) sessions: Mutex<user_flows::Sessions>,
    /// Strict or compatible checks of what clients send.
    pub(crate) mode: Mode,
    /// The test CA's certificate, PEM, in TLS mode.
    ca_pem: Option<String>,
    clock: RwLock<ClockFn>,
}

/// How strictly the testkit reads what clients send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// Exact RFC 7523 client assertions (integer times, a fresh `jti`, unpadded thumbprints) and
    /// client secrets in the body only: confidant's own tests hold its client to this.
    #[default]
    Strict,
    /// Tolerates what Entra ID tolerates from other clients (msal-python, .NET, Java): padded
    /// `x5t`, float or string times, no `nbf`, `x5c` as one string, `jti` reuse within the
    /// assertion's lifetime, client secrets in HTTP Basic. The testkit's README lists each
    /// difference.
    Compat,
}

pub(crate) struct KeySet {
    /// Published keys; the first signs.
    pub(crate) published: Vec<Arc<keys::SigningKey>>,
}

impl Shared {
    pub(crate) fn now(&self) -> SystemTime {
        let clock = self.clock.read().unwrap_or_else(|p| p.into_inner()).clone();
        clock()
    }

    pub(crate) fn now_unix(&self) -> u64 {
        self.now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// Configures a [`Testkit`] before it starts.
#[derive(Default)]
pub struct TestkitBuilder {
    config: Config,
    port: u16,
    clock: Option<ClockFn>,
    vault_tenant: Option<String>,
    tls: bool,
    mode: Mode,
}

impl std::fmt::Debug for TestkitBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestkitBuilder")
            .field("config", &self.config)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("mode", &self.mode)
            .finish()
    }
}

impl TestkitBuilder {
    /// Tenants and apps.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The loopback port (default 0: any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Also serves a Key Vault on its own loopback port, accepting tokens of `tenant` for
    /// `https://vault.azure.net` ([`Testkit::key_vault_url`]).
    pub fn key_vault(mut self, tenant: impl Into<String>) -> Self {
        self.vault_tenant = Some(tenant.into());
        self
    }

    /// Serves HTTPS: a test CA and a certificate for `127.0.0.1`, `::1` and `localhost` are
    /// generated at start; clients trust [`Testkit::ca_pem`]. Microsoft's own clients refuse
    /// plain `http` authorities.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Strict (the default) or compatible checks of client assertions and secrets.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Reads time from `clock` instead of the system clock (share it with the client under test).
    pub fn clock(mut self, clock: ClockFn) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Binds `127.0.0.1:{port}` and starts serving in the background.
    pub async fn start(self) -> Result<Testkit, TestkitError> {
        let registry = registry::Registry::new(&self.config)?;
        let vault_tenant = self
            .vault_tenant
            .clone()
            .or_else(|| self.config.key_vault.as_ref().map(|v| v.tenant.clone()));
        let mut vault = keyvault::Vault::default();
        if let Some(contents) = &self.config.key_vault {
            let now = self
                .clock
                .as_ref()
                .map_or_else(SystemTime::now, |clock| clock())
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            vault.fill(contents, now)?;
        }
        let tls = if self.tls {
            Some(tls::TlsMaterial::generate()?)
        } else {
            None
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let listener = bind(self.port).await?;
        let addr = listener.local_addr()?;
        let vault_listener = match &vault_tenant {
            Some(_) => Some(bind(0).await?),
            None => None,
        };
        if let (Some(tenant), Some(listener)) = (&vault_tenant, &vault_listener) {
            vault.tenant_id = registry.tenant_id(tenant);
            vault.base_url = format!("{scheme}://{}", listener.local_addr()?);
        }
        let shared = Arc::new(Shared {
            base_url: format!("{scheme}://{addr}"),
            registry: RwLock::new(registry),
            keys: RwLock::new(KeySet {
                published: vec![Arc::new(keys::SigningKey::generate()?)],
            }),
            faults: Mutex::new(faults::Faults::default()),
            replay: Mutex::new(assertion::ReplayCache::default()),
            vault: RwLock::new(vault),
            identity_header: uuid::Uuid::new_v4().simple().to_string(),
            sessions: Mutex::new(user_flows::Sessions::default()),
            mode: self.mode,
            ca_pem: tls.as_ref().map(|t| t.ca_pem.clone()),
            clock: RwLock::new(self.clock.unwrap_or_else(|| Arc::new(SystemTime::now))),
        });
        let (stop, stopped) = watch::channel(false);
        let mut servers = Vec::new();
        let entra = entra::router(Arc::clone(&shared));
        for listener in listener.all() {
            servers.push(serve(
                listener,
                entra.clone(),
                tls.as_ref(),
                stopped.clone(),
                "Entra ID",
            )?);
        }
        if let Some(bound) = vault_listener {
            let vault = keyvault::router(Arc::clone(&shared));
            for listener in bound.all() {
                servers.push(serve(
                    listener,
                    vault.clone(),
                    tls.as_ref(),
                    stopped.clone(),
                    "Key Vault",
                )?);
            }
        }
        Ok(Testkit {
            shared,
            stop,
            servers,
        })
    }
}

/// One server's loopback listeners: `127.0.0.1`, and `::1` on the same port when the host has
/// IPv6 loopback, so that `localhost` works whichever address a client tries first.
struct Bound {
    v4: TcpListener,
    v6: Option<TcpListener>,
}

impl Bound {
    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.v4.local_addr()
    }

    fn all(self) -> impl Iterator<Item = TcpListener> {
        std::iter::once(self.v4).chain(self.v6)
    }
}

/// Binds `127.0.0.1:{port}` (the error names the address), then `[::1]` on the port it got.
async fn bind(port: u16) -> Result<Bound, TestkitError> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let v4 = TcpListener::bind(addr).await.map_err(|e| {
        TestkitError::Io(std::io::Error::new(
            e.kind(),
            format!("cannot listen on {addr}: {e}"),
        ))
    })?;
    let port = v4.local_addr()?.port();
    let v6 = TcpListener::bind(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)))
        .await
        .ok();
    Ok(Bound { v4, v6 })
}

/// Serves `router` on `listener` (over TLS when `tls` is given) until `stopped` turns true.
fn serve(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<&tls::TlsMaterial>,
    stopped: watch::Receiver<bool>,
    what: &'static str,
) -> Result<tokio::task::JoinHandle<()>, TestkitError> {
    let shutdown = async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    Ok(match tls {
        Some(tls) => {
            let listener = tls.listener(listener)?;
            tokio::spawn(async move {
                let result = axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown)
                    .await;
                if let Err(e) = result {
                    tracing::error!(error = %e, server = what, "testkit server stopped");
                }
            })
        }
        None => tokio::spawn(async move {
            let result = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, server = what, "testkit server stopped");
            }
        }),
    })
}

/// A running emulator. Dropping it stops the server.
pub struct Testkit {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Testkit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Testkit")
            .field("base_url", &self.shared.base_url)
            .finish_non_exhaustive()
    }
}

impl Testkit {
    /// Starts a testkit with an empty configuration on a free loopback port.
    pub async fn start() -> Result<Self, TestkitError> {
        Self::builder().start().await
    }

    /// Configures a testkit.
    pub fn builder() -> TestkitBuilder {
        TestkitBuilder::default()
    }

    /// `http://127.0.0.1:{port}`, or `https://` in TLS mode.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// In TLS mode ([`TestkitBuilder::tls`]), the test CA's certificate (PEM) that clients must
    /// trust; `None` in plain HTTP mode.
    pub fn ca_pem(&self) -> Option<&str> {
        self.shared.ca_pem.as_deref()
    }

    /// The mode the testkit checks clients in.
    pub fn mode(&self) -> Mode {
        self.shared.mode
    }

    /// The authority URL for `tenant`: `{base}/{tenant}`.
    pub fn authority(&self, tenant: &str) -> String {
        format!("{}/{tenant}", self.shared.base_url)
    }

    /// The v2.0 token endpoint for `tenant`.
    pub fn token_endpoint(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.shared.base_url)
    }

    /// The v2.0 issuer of tokens for `tenant`: `{base}/{tenant id}/v2.0`.
    pub fn issuer(&self, tenant: &str) -> String {
        let tid = self.tenant_id(tenant);
        format!("{}/{tid}/v2.0", self.shared.base_url)
    }

    /// The tenant id a tenant name or domain resolves to (a GUID resolves to itself).
    pub fn tenant_id(&self, tenant: &str) -> String {
        self.shared
            .registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .tenant_id(tenant)
    }

    /// Registers (or replaces) an app while running.
    pub fn register_app(&self, app: AppConfig) -> Result<(), TestkitError> {
        self.shared
            .registry
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .register(app)
    }

    /// Makes the next `times` requests to `endpoint` misbehave as `fault`.
    pub fn inject(&self, endpoint: Endpoint, fault: Fault, times: usize) {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .inject(endpoint, fault, times);
    }

    /// Requests received by `endpoint` since start (or the last [`reset_counters`](Self::reset_counters)).
    pub fn request_count(&self, endpoint: Endpoint) -> usize {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .count(endpoint)
    }

    /// The last requests received by `endpoint` (up to 256), oldest first.
    pub fn requests(&self, endpoint: Endpoint) -> Vec<RecordedRequest> {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .recorded(endpoint)
    }

    /// Forgets counts, recorded requests and pending faults.
    pub fn reset_counters(&self) {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Publishes a new signing key and signs with it from now on; the old keys stay published.
    pub fn rotate_signing_key(&self) -> Result<String, TestkitError> {
        let key = Arc::new(keys::SigningKey::generate()?);
        let kid = key.kid.clone();
        self.shared
            .keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .published
            .insert(0, key);
        Ok(kid)
    }

    /// Stops publishing every key but the current signing key.
    pub fn retire_old_signing_keys(&self) {
        self.shared
            .keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .published
            .truncate(1);
    }

    /// Signs `claims` as an Entra access or ID token with the current signing key (RS256,
    /// Entra's header), for claims the emulated flows do not issue (delegated scopes, `acrs`,
    /// `amr`, other tenants). The testkit's clock does not apply: the claims are signed as given.
    pub fn sign_token(&self, claims: &serde_json::Value) -> Result<String, TestkitError> {
        entra::sign(&self.shared, claims).map_err(|e| TestkitError::Keys(e.message))
    }

    /// The `kid` of the current signing key.
    pub fn signing_key_id(&self) -> String {
        self.shared
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .published[0]
            .kid
            .clone()
    }

    /// Replaces the clock.
    pub fn set_clock(&self, clock: ClockFn) {
        *self.shared.clock.write().unwrap_or_else(|p| p.into_inner()) = clock;
    }

    /// The Key Vault's URL (`http://127.0.0.1:{port}`, `https://` in TLS mode), when started with
    /// [`TestkitBuilder::key_vault`].
    pub fn key_vault_url(&self) -> Option<String> {
        let vault = self.shared.vault.read().unwrap_or_else(|p| p.into_inner());
        (!vault.base_url.is_empty()).then(|| vault.base_url.clone())
    }

    /// Creates key `name` in the vault, or a new version of it (the current one from now on);
    /// `hsm` marks it `RSA-HSM`/`EC-HSM`. Returns the version.
    pub fn create_vault_key(
        &self,
        name: &str,
        kind: VaultKeyType,
        hsm: bool,
    ) -> Result<String, TestkitError> {
        let now = self.shared.now_unix();
        self.shared
            .vault
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .add_version(name, kind, hsm, None, now)
    }

    /// Creates certificate `name` (a key of `kind` with a self-signed certificate `CN={name}`),
    /// or rotates it to a new version, with Key Vault's default secret format (PKCS#12). A
    /// non-exportable (`hsm`) key's secret holds only the certificate. Returns the new
    /// certificate's PEM, to register with an app.
    pub fn create_vault_certificate(
        &self,
        name: &str,
        kind: VaultKeyType,
        hsm: bool,
    ) -> Result<String, TestkitError> {
        self.create_vault_certificate_as(name, kind, hsm, VaultSecretFormat::Pkcs12)
    }

    /// [`create_vault_certificate`](Self::create_vault_certificate) with the secret exported
    /// as `format`.
    pub fn create_vault_certificate_as(
        &self,
        name: &str,
        kind: VaultKeyType,
        hsm: bool,
        format: VaultSecretFormat,
    ) -> Result<String, TestkitError> {
        let now = self.shared.now_unix();
        let mut vault = self.shared.vault.write().unwrap_or_else(|p| p.into_inner());
        vault.add_version(name, kind, hsm, Some(format), now)?;
        vault
            .certificate_pem(name)
            .ok_or_else(|| TestkitError::Keys("certificate not stored".into()))
    }

    /// Gives the current version of vault certificate `name` another certificate (PEM) while
    /// its key stays: a certificate whose public key does not match its key.
    pub fn replace_vault_certificate(&self, name: &str, pem: &str) -> Result<(), TestkitError> {
        self.shared
            .vault
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .replace_certificate(name, pem)
    }

    /// Sets a new version of secret `name` with `content_type` (e.g. a base64 PFX as
    /// `application/x-pkcs12`); returns the version.
    pub fn put_vault_secret(&self, name: &str, content_type: &str, value: &str) -> String {
        let now = self.shared.now_unix();
        self.shared
            .vault
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .put_secret(name, content_type, value, now)
    }

    /// The B2C authority of `policy` in `tenant`: `{base}/{tenant}/{policy}`.
    pub fn b2c_authority(&self, tenant: &str, policy: &str) -> String {
        format!(
            "{}/{tenant}/{}",
            self.shared.base_url,
            policy.to_ascii_lowercase()
        )
    }

    /// The v2.0 authorize endpoint for `tenant`.
    pub fn authorize_endpoint(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/authorize", self.shared.base_url)
    }

    /// Adds (or replaces) a user while running.
    pub fn add_user(&self, user: UserConfig) {
        self.shared
            .registry
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .add_user(&user);
    }

    /// The object id (`oid`) of user `username` in `tenant`.
    pub fn user_object_id(&self, tenant: &str, username: &str) -> Option<String> {
        let registry = self
            .shared
            .registry
            .read()
            .unwrap_or_else(|p| p.into_inner());
        let tid = registry.tenant_id(tenant);
        registry.user(&tid, Some(username)).map(|u| u.oid)
    }

    /// Revokes every refresh token of user `username` in `tenant` (sign-out everywhere,
    /// password reset, admin revocation); returns how many sign-ins were revoked.
    pub fn revoke_refresh_tokens(&self, tenant: &str, username: &str) -> usize {
        let Some(oid) = self.user_object_id(tenant, username) else {
            return 0;
        };
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .revoke_user(&oid)
    }

    /// Blocks (or, with `false`, allows again) user `username`'s sign-in: `/authorize` answers
    /// `access_denied` (AADSTS50057, account disabled).
    pub fn block_sign_in(&self, username: &str, block: bool) {
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .block_sign_in(username, block);
    }

    /// Makes user `username` decline (or, with `false`, accept again) the consent prompt.
    pub fn decline_consent(&self, username: &str, decline: bool) {
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .decline_consent(username, decline);
    }

    /// The IMDS token endpoint (`{base}/metadata/identity/oauth2/token`); its origin is what
    /// `AZURE_POD_IDENTITY_AUTHORITY_HOST` would name.
    pub fn imds_endpoint(&self) -> String {
        format!("{}{}", self.shared.base_url, managed_identity::IMDS_PATH)
    }

    /// The App Service identity endpoint (`IDENTITY_ENDPOINT`).
    pub fn app_service_endpoint(&self) -> String {
        format!(
            "{}{}",
            self.shared.base_url,
            managed_identity::APP_SERVICE_PATH
        )
    }

    /// The App Service host's secret (`IDENTITY_HEADER`), required as `X-IDENTITY-HEADER`.
    pub fn app_service_identity_header(&self) -> &str {
        &self.shared.identity_header
    }

    /// A configured managed identity: `None` for the system-assigned one, else the
    /// user-assigned identity's name.
    pub fn managed_identity(&self, name: Option<&str>) -> Option<ManagedIdentityInfo> {
        self.shared
            .registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .identities
            .iter()
            .find(|identity| identity.name.as_deref() == name)
            .cloned()
    }

    /// Lets the app `client_id` (the token's `appid`/`azp`) do `permissions` in the vault.
    pub fn grant_vault_access(&self, client_id: &str, permissions: &[VaultPermission]) {
        self.shared
            .vault
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .grant(client_id, permissions);
    }

    /// Stops the servers and waits for them.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for server in std::mem::take(&mut self.servers) {
            let _ = server.await;
        }
    }
}

impl Drop for Testkit {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

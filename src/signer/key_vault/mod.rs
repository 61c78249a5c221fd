//! [`KeyVaultSigner`]: signatures from an Azure Key Vault (or Managed HSM) key that never leaves
//! the vault. The digest is computed here; the vault signs it (WIRE.md §4–5).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use url::Url;

use super::{Algorithm, Certificate, Signature, Signer, SignerError, SignerErrorKind};
use crate::error::Error;
use crate::http::{HttpClient, ReqwestClient, check_endpoint, is_loopback};
use crate::token_source::{TokenRequest, TokenSource};

mod rotation;

use self::rotation::{Reload, Rotation};

/// The Key Vault REST API version sent by default.
pub const DEFAULT_KEY_VAULT_API_VERSION: &str = "7.4";

/// A [`Signer`] backed by a Key Vault certificate's key: `x5t`/`x5t#S256`/`x5c` come from the
/// certificate, signatures from `POST {kid}/sign`. The private key is never requested.
///
/// The vault is reached with any [`TokenSource`] (a [`ConfidentialClient`](crate::ConfidentialClient),
/// a managed identity, …); the scope comes from the vault's own `401` challenge, and a token is
/// sent only to a vault whose host belongs to the challenge's resource (loopback vaults, such as
/// the testkit's, excepted).
///
/// Unless a version is pinned, the signer follows the certificate's rotation: every
/// [`rotation_check_interval`](KeyVaultSignerBuilder::rotation_check_interval) (default one
/// hour) a background check reads the certificate's current version, and assertions signed
/// after it use the new key and its thumbprint together ([`Signer::snapshot`]);
/// [`refresh`](KeyVaultSigner::refresh) checks on demand.
pub struct KeyVaultSigner {
    key_id: String,
    sign_url: Url,
    algorithms: Vec<Algorithm>,
    /// Signature length: the RSA modulus in bytes, or 64 for P-256.
    signature_len: usize,
    certificate: Certificate,
    vault: VaultClient,
    rotation: Option<Arc<Rotation<KeyVaultSigner>>>,
}

impl fmt::Debug for KeyVaultSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVaultSigner")
            .field("key_id", &self.key_id)
            .field("algorithms", &self.algorithms)
            .field("x5t#S256", &self.certificate.x5t_s256())
            .field("scope", &self.vault.scope)
            .field("rotation", &self.rotation)
            .finish_non_exhaustive()
    }
}

/// An authenticated conversation with one vault: the scope from its challenge, tokens from a
/// [`TokenSource`], `api-version` on every URL.
#[derive(Debug, Clone)]
struct VaultClient {
    vault: Url,
    tokens: Arc<dyn TokenSource>,
    http: Arc<dyn HttpClient>,
    scope: String,
    api_version: String,
    /// The tenant the vault's challenge names (`authorization="{login}/{tenant}"`), asked of
    /// the token source; kept only when the builder opted in.
    tenant: Option<String>,
}

impl VaultClient {
    /// Probes `{vault}/{probe…}` without a token and keeps the challenge's scope.
    async fn connect(
        vault_url: &str,
        tokens: Arc<dyn TokenSource>,
        http: Option<Arc<dyn HttpClient>>,
        api_version: String,
        probe: &[&str],
        follow_tenant: bool,
    ) -> Result<Self, Error> {
        let vault = check_endpoint(vault_url.trim_end_matches('/'))?;
        let http: Arc<dyn HttpClient> = match http {
            Some(http) => http,
            None => Arc::new(ReqwestClient::new()?),
        };
        let mut client = Self {
            vault,
            tokens,
            http,
            scope: String::new(),
            api_version,
            tenant: None,
        };
        let probe_url = client.url(probe)?;
        let response = send(client.http.as_ref(), "GET", &probe_url, None, None).await?;
        client.scope = challenge_scope(&response, &client.vault)?;
        if follow_tenant {
            client.tenant = challenge_tenant(&response);
        }
        Ok(client)
    }

    /// `{vault}/{segments…}?api-version=…`.
    fn url(&self, segments: &[&str]) -> Result<Url, Error> {
        let mut url = self.vault.clone();
        url.path_segments_mut()
            .map_err(|()| Error::InvalidEndpoint("the vault URL cannot have a path".into()))?
            .pop_if_empty()
            .extend(segments.iter().filter(|s| !s.is_empty()));
        Ok(self.versioned(url))
    }

    fn versioned(&self, mut url: Url) -> Url {
        url.query_pairs_mut()
            .append_pair("api-version", &self.api_version);
        url
    }

    /// An id the vault returned (`kid`, `sid`), checked to be in this vault.
    fn own_url(&self, id: &str) -> Result<Url, Error> {
        let url = check_endpoint(id)?;
        if url.host_str() != self.vault.host_str() || url.port() != self.vault.port() {
            return Err(Error::InvalidResponse(
                "the vault named an object in another vault".into(),
            ));
        }
        Ok(url)
    }

    /// One authenticated request, retried after 429, a 5xx or a failed connection (at most
    /// [`VAULT_RETRIES`] times, after `Retry-After` up to 10 s, else 0.5 s then 1 s).
    async fn call(&self, method: &str, url: &Url, body: Option<Vec<u8>>) -> Result<Value, Error> {
        let mut retries = 0;
        let mut request = TokenRequest::new(&[self.scope.as_str()]);
        if let Some(tenant) = &self.tenant {
            request = request.tenant(tenant.clone());
        }
        let mut reauthenticated = false;
        loop {
            let token = self.tokens.token(&request).await?;
            let result = send(
                self.http.as_ref(),
                method,
                url,
                Some(token.access_token().expose_secret()),
                body.clone(),
            )
            .await;
            let transient = match &result {
                Err(Error::Transport(e)) => e.is_retryable().then_some(None),
                Ok(response)
                    if response.status() == http::StatusCode::TOO_MANY_REQUESTS
                        || response.status().is_server_error() =>
                {
                    Some(crate::flows::retry_after(
                        response.headers(),
                        std::time::SystemTime::now(),
                    ))
                }
                _ => None,
            };
            // A token the vault no longer accepts (revoked, or a claims challenge): one more
            // try with a new token, never with the same one.
            if let Ok(response) = &result
                && response.status() == http::StatusCode::UNAUTHORIZED
                && !reauthenticated
            {
                reauthenticated = true;
                request = request.force_refresh(true);
                if let Some(claims) = challenge_claims(response) {
                    request = request.claims(claims);
                }
                tracing::debug!(
                    claims = request.claims.is_some(),
                    "Key Vault refused the token; asking for a new one"
                );
                continue;
            }
            if let Some(retry_after) = transient
                && retries < VAULT_RETRIES
            {
                let delay = retry_after.map_or(VAULT_RETRY_BASE * 2u32.pow(retries), |d| {
                    d.min(VAULT_MAX_RETRY_AFTER)
                });
                retries += 1;
                tracing::debug!(
                    retry = retries,
                    delay_ms = delay.as_millis() as u64,
                    "Key Vault request failed; retrying"
                );
                tokio::time::sleep(delay).await;
                continue;
            }
            return vault_json(&result?);
        }
    }
}

/// Configures a [`KeyVaultSigner`].
#[derive(Debug)]
pub struct KeyVaultSignerBuilder {
    vault_url: String,
    certificate: String,
    version: Option<String>,
    tokens: Arc<dyn TokenSource>,
    http: Option<Arc<dyn HttpClient>>,
    api_version: String,
    rotation_check_interval: Option<Duration>,
    follow_challenge_tenant: bool,
}

/// Retries of a vault request after 429, a 5xx or a failed connection.
const VAULT_RETRIES: u32 = 2;
const VAULT_RETRY_BASE: Duration = Duration::from_millis(500);
const VAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// How often a [`KeyVaultSigner`] checks for a new certificate version by default.
pub const DEFAULT_ROTATION_CHECK_INTERVAL: Duration = Duration::from_secs(3600);

impl KeyVaultSigner {
    /// A signer for the current version of certificate `name` in the vault at `vault_url`
    /// (`https://{vault}.vault.azure.net`).
    pub fn builder(
        vault_url: impl Into<String>,
        name: impl Into<String>,
        tokens: Arc<dyn TokenSource>,
    ) -> KeyVaultSignerBuilder {
        KeyVaultSignerBuilder {
            vault_url: vault_url.into(),
            certificate: name.into(),
            version: None,
            tokens,
            http: None,
            api_version: DEFAULT_KEY_VAULT_API_VERSION.to_owned(),
            rotation_check_interval: Some(DEFAULT_ROTATION_CHECK_INTERVAL),
            follow_challenge_tenant: false,
        }
    }

    /// The versioned key id of the version this signer was built with (see
    /// [`current`](Self::current) for the one assertions use after a rotation).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The version assertions are signed with now: the newest one a rotation check found, or
    /// this one when no check has found another (or the version is pinned).
    pub fn current(&self) -> Arc<KeyVaultSigner> {
        match &self.rotation {
            Some(rotation) => rotation.current(),
            None => Arc::new(self.version_only()),
        }
    }

    /// Checks the vault for a new certificate version now; `true` when one was loaded. A
    /// pinned version never changes (`false`).
    pub async fn refresh(&self) -> Result<bool, Error> {
        match &self.rotation {
            Some(rotation) => rotation.refresh().await,
            None => Ok(false),
        }
    }

    /// This version without rotation.
    fn version_only(&self) -> KeyVaultSigner {
        KeyVaultSigner {
            key_id: self.key_id.clone(),
            sign_url: self.sign_url.clone(),
            algorithms: self.algorithms.clone(),
            signature_len: self.signature_len,
            certificate: self.certificate.clone(),
            vault: self.vault.clone(),
            rotation: None,
        }
    }
}

impl KeyVaultSignerBuilder {
    /// Pins a certificate version (32 hex digits) instead of the current one.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// The HTTP client (default: [`ReqwestClient`]).
    pub fn http_client(mut self, http: Arc<dyn HttpClient>) -> Self {
        self.http = Some(http);
        self
    }

    /// The `api-version` sent (default [`DEFAULT_KEY_VAULT_API_VERSION`]).
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = version.into();
        self
    }

    /// How often to check for a new certificate version (default
    /// [`DEFAULT_ROTATION_CHECK_INTERVAL`]); `None` turns the background check off
    /// ([`KeyVaultSigner::refresh`] still works). A pinned version is never rotated.
    pub fn rotation_check_interval(mut self, interval: Option<Duration>) -> Self {
        self.rotation_check_interval = interval;
        self
    }

    /// Asks the token source for tokens of the tenant the vault's challenge names
    /// (`authorization="https://login.microsoftonline.com/{tenant}"`), for a vault in another
    /// tenant than the token source's own: the [`TokenRequest::tenant`] of every request.
    /// Off by default, so a vault cannot choose the tenant; without it, a token of another
    /// tenant is refused by the vault (AKV10032). A [`ConfidentialClient`](crate::ConfidentialClient)
    /// of a multi-tenant app honours it; a managed identity, bound to one tenant, refuses it.
    pub fn follow_challenge_tenant(mut self, follow: bool) -> Self {
        self.follow_challenge_tenant = follow;
        self
    }

    /// Answers the vault's challenge, fetches the certificate and its key's public part, and
    /// checks they belong together.
    pub async fn build(self) -> Result<KeyVaultSigner, Error> {
        let path = [
            "certificates",
            self.certificate.as_str(),
            self.version.as_deref().unwrap_or_default(),
        ];
        let vault = VaultClient::connect(
            &self.vault_url,
            self.tokens,
            self.http,
            self.api_version,
            &path,
            self.follow_challenge_tenant,
        )
        .await?;
        let (certificate, key_id) = fetch_certificate(&vault, &path).await?;
        let mut signer = load_key(&vault, certificate, key_id).await?;
        if self.version.is_none() {
            let current = Arc::new(signer.version_only());
            let version = current.key_id.clone();
            signer.rotation = Some(Rotation::new(
                vault,
                self.certificate,
                self.rotation_check_interval,
                current,
                version,
            ));
        }
        Ok(signer)
    }
}

/// `GET /certificates/{name}[/{version}]`: the certificate and its key's versioned id.
async fn fetch_certificate(
    vault: &VaultClient,
    path: &[&str],
) -> Result<(Certificate, String), Error> {
    let body = vault.call("GET", &vault.url(path)?, None).await?;
    parse_certificate(&body)
}

/// A certificate bundle's `cer` and `kid`.
fn parse_certificate(body: &Value) -> Result<(Certificate, String), Error> {
    let cer = body
        .get("cer")
        .and_then(Value::as_str)
        .and_then(|c| STANDARD.decode(c).ok())
        .ok_or_else(|| Error::InvalidResponse("the certificate has no `cer`".into()))?;
    let certificate = Certificate::from_der(&cer, &[])?;
    let key_id = body
        .get("kid")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::InvalidResponse("the certificate has no `kid`".into()))?
        .to_owned();
    Ok((certificate, key_id))
}

#[async_trait]
impl Reload for KeyVaultSigner {
    const WHAT: &'static str = "certificate";

    async fn newer(
        vault: &VaultClient,
        name: &str,
        current: &str,
    ) -> Result<Option<(Arc<Self>, String)>, Error> {
        let (certificate, key_id) = fetch_certificate(vault, &["certificates", name]).await?;
        if key_id == current {
            return Ok(None);
        }
        let signer = load_key(vault, certificate, key_id).await?;
        let version = signer.key_id.clone();
        Ok(Some((Arc::new(signer), version)))
    }
}

/// `GET {kid}`: the key's public part, checked against the certificate; a signer for this
/// version.
async fn load_key(
    vault: &VaultClient,
    certificate: Certificate,
    key_id: String,
) -> Result<KeyVaultSigner, Error> {
    let key_url = vault.versioned(vault.own_url(&key_id)?);
    let key = vault.call("GET", &key_url, None).await?;
    let jwk = key
        .get("key")
        .ok_or_else(|| Error::InvalidResponse("the key response has no `key`".into()))?;
    let (algorithms, signature_len) = check_key(jwk, &certificate)?;
    let sign_url = vault.versioned(vault.own_url(&format!("{key_id}/sign"))?);
    Ok(KeyVaultSigner {
        key_id,
        sign_url,
        algorithms,
        signature_len,
        certificate,
        vault: vault.clone(),
        rotation: None,
    })
}

/// A signer loaded from a Key Vault certificate's secret, and the version it came from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeyVaultCertificate {
    /// A [`PemSigner`](crate::PemSigner) or [`Pkcs12Signer`](crate::Pkcs12Signer) with the
    /// exported key.
    pub signer: Arc<dyn Signer>,
    /// The secret's version: compare with a later load to see a rotation.
    pub version: String,
}

impl KeyVaultCertificate {
    /// Loads the current version of certificate `name` from its secret (`GET /secrets/{name}`):
    /// `application/x-pkcs12` (base64 PFX, empty or no password) or `application/x-pem-file`
    /// (PKCS#8 key, then certificates). A certificate whose key is not exportable has no
    /// private key in its secret: use [`KeyVaultSigner`] for it.
    pub async fn load(
        vault_url: &str,
        name: &str,
        tokens: Arc<dyn TokenSource>,
        http: Option<Arc<dyn HttpClient>>,
    ) -> Result<Self, Error> {
        let path = ["secrets", name];
        let vault = VaultClient::connect(
            vault_url,
            tokens,
            http,
            DEFAULT_KEY_VAULT_API_VERSION.to_owned(),
            &path,
            false,
        )
        .await?;
        let (signer, version) = read_secret(&vault, name).await?;
        Ok(Self { signer, version })
    }
}

/// `GET /secrets/{name}`: the certificate's export as a local signer, and the secret's version.
async fn read_secret(vault: &VaultClient, name: &str) -> Result<(Arc<dyn Signer>, String), Error> {
    let body = vault
        .call("GET", &vault.url(&["secrets", name])?, None)
        .await?;
    parse_secret(&body)
}

/// A secret bundle holding a certificate with its key: a signer and the secret's version.
fn parse_secret(body: &Value) -> Result<(Arc<dyn Signer>, String), Error> {
    let value = body
        .get("value")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::InvalidResponse("the secret has no `value`".into()))?;
    let version = body
        .get("id")
        .and_then(Value::as_str)
        .and_then(|id| id.rsplit('/').next())
        .unwrap_or_default()
        .to_owned();
    let signer: Arc<dyn Signer> = match body.get("contentType").and_then(Value::as_str) {
        Some("application/x-pkcs12") => {
            let der = STANDARD.decode(value.trim()).map_err(|_| {
                Error::Signer(SignerError::new(
                    SignerErrorKind::Malformed,
                    "the PKCS#12 secret is not base64",
                ))
            })?;
            Arc::new(super::Pkcs12Signer::from_pkcs12(&der, None)?)
        }
        Some("application/x-pem-file") => Arc::new(
            super::PemSigner::builder()
                .certificate_pem(value.as_bytes())
                .build()?,
        ),
        _ => {
            return Err(Error::Signer(SignerError::new(
                SignerErrorKind::Unsupported,
                "the secret is neither application/x-pkcs12 nor application/x-pem-file",
            )));
        }
    };
    Ok((signer, version))
}

#[async_trait]
impl Reload for dyn Signer {
    const WHAT: &'static str = "secret";

    async fn newer(
        vault: &VaultClient,
        name: &str,
        current: &str,
    ) -> Result<Option<(Arc<Self>, String)>, Error> {
        let (signer, version) = read_secret(vault, name).await?;
        Ok((version != current).then_some((signer, version)))
    }
}

/// A local signer made from a Key Vault certificate's secret (its exportable key, as PKCS#12 or
/// PEM) that follows the secret's new versions: a background check every
/// [`rotation_check_interval`](KeyVaultSecretSignerBuilder::rotation_check_interval) (default
/// one hour), or [`refresh`](Self::refresh) on demand. Assertions signed after a rotation use
/// the new key and certificate together ([`Signer::snapshot`]); the trait's other methods
/// answer for the version loaded at build.
pub struct KeyVaultSecretSigner {
    initial: Arc<dyn Signer>,
    rotation: Arc<Rotation<dyn Signer>>,
}

impl fmt::Debug for KeyVaultSecretSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVaultSecretSigner")
            .field("signer", &self.initial)
            .field("rotation", &self.rotation)
            .finish()
    }
}

/// Configures a [`KeyVaultSecretSigner`].
#[derive(Debug)]
pub struct KeyVaultSecretSignerBuilder {
    vault_url: String,
    name: String,
    tokens: Arc<dyn TokenSource>,
    http: Option<Arc<dyn HttpClient>>,
    rotation_check_interval: Option<Duration>,
    follow_challenge_tenant: bool,
}

impl KeyVaultSecretSigner {
    /// A signer from the secret of certificate `name` in the vault at `vault_url`.
    pub fn builder(
        vault_url: impl Into<String>,
        name: impl Into<String>,
        tokens: Arc<dyn TokenSource>,
    ) -> KeyVaultSecretSignerBuilder {
        KeyVaultSecretSignerBuilder {
            vault_url: vault_url.into(),
            name: name.into(),
            tokens,
            http: None,
            rotation_check_interval: Some(DEFAULT_ROTATION_CHECK_INTERVAL),
            follow_challenge_tenant: false,
        }
    }

    /// The signer assertions use now, and its secret version.
    pub fn current(&self) -> (Arc<dyn Signer>, String) {
        (self.rotation.current(), self.rotation.version())
    }

    /// Checks the vault for a new secret version now; `true` when one was loaded.
    pub async fn refresh(&self) -> Result<bool, Error> {
        self.rotation.refresh().await
    }
}

impl KeyVaultSecretSignerBuilder {
    /// The HTTP client (default: [`ReqwestClient`]).
    pub fn http_client(mut self, http: Arc<dyn HttpClient>) -> Self {
        self.http = Some(http);
        self
    }

    /// How often to check for a new version (default [`DEFAULT_ROTATION_CHECK_INTERVAL`]);
    /// `None`: only [`KeyVaultSecretSigner::refresh`] checks.
    pub fn rotation_check_interval(mut self, interval: Option<Duration>) -> Self {
        self.rotation_check_interval = interval;
        self
    }

    /// Asks the token source for tokens of the tenant the vault's challenge names
    /// (`authorization="https://login.microsoftonline.com/{tenant}"`), for a vault in another
    /// tenant than the token source's own: the [`TokenRequest::tenant`](crate::TokenRequest::tenant) of every request.
    /// Off by default, so a vault cannot choose the tenant; without it, a token of another
    /// tenant is refused by the vault (AKV10032). A [`ConfidentialClient`](crate::ConfidentialClient)
    /// of a multi-tenant app honours it; a managed identity, bound to one tenant, refuses it.
    pub fn follow_challenge_tenant(mut self, follow: bool) -> Self {
        self.follow_challenge_tenant = follow;
        self
    }

    /// Answers the vault's challenge and loads the current version.
    pub async fn build(self) -> Result<KeyVaultSecretSigner, Error> {
        let vault = VaultClient::connect(
            &self.vault_url,
            self.tokens,
            self.http,
            DEFAULT_KEY_VAULT_API_VERSION.to_owned(),
            &["secrets", self.name.as_str()],
            self.follow_challenge_tenant,
        )
        .await?;
        let (initial, version) = read_secret(&vault, &self.name).await?;
        let rotation = Rotation::new(
            vault,
            self.name,
            self.rotation_check_interval,
            Arc::clone(&initial),
            version,
        );
        Ok(KeyVaultSecretSigner { initial, rotation })
    }
}

#[async_trait]
impl Signer for KeyVaultSecretSigner {
    fn algorithms(&self) -> &[Algorithm] {
        self.initial.algorithms()
    }

    fn key_id(&self) -> Option<&str> {
        self.initial.key_id()
    }

    fn certificate(&self) -> Option<&Certificate> {
        self.initial.certificate()
    }

    async fn sign(&self, alg: Algorithm, message: &[u8]) -> Result<Signature, SignerError> {
        self.initial.sign(alg, message).await
    }

    fn snapshot(&self) -> Option<Arc<dyn Signer>> {
        self.rotation.check_if_due();
        Some(self.rotation.current())
    }
}

/// The algorithms and signature length of a Key Vault JWK, after checking its public key is the
/// certificate's.
fn check_key(jwk: &Value, certificate: &Certificate) -> Result<(Vec<Algorithm>, usize), Error> {
    let member = |name: &str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
            .ok_or_else(|| Error::InvalidResponse(format!("the key has no valid `{name}`")))
    };
    let spki_bits = certificate.public_key_bits();
    let mismatch = || {
        Error::Signer(SignerError::new(
            SignerErrorKind::KeyMismatch,
            "the vault key's public key is not the certificate's",
        ))
    };
    match jwk.get("kty").and_then(Value::as_str) {
        Some("RSA" | "RSA-HSM") => {
            use der::Decode as _;
            let n = member("n")?;
            let rsa = pkcs1::RsaPublicKey::from_der(spki_bits).map_err(|_| mismatch())?;
            let strip = |b: &[u8]| b.iter().position(|x| *x != 0).map_or(0, |i| b.len() - i);
            if rsa.modulus.as_bytes() != n.as_slice().get(n.len() - strip(&n)..).unwrap_or(&[]) {
                return Err(mismatch());
            }
            if rsa.modulus.as_bytes().len() < 256 {
                return Err(Error::Signer(SignerError::new(
                    SignerErrorKind::WeakKey,
                    "the vault key is an RSA key under 2048 bits",
                )));
            }
            Ok((
                vec![Algorithm::Ps256, Algorithm::Rs256],
                rsa.modulus.as_bytes().len(),
            ))
        }
        Some("EC" | "EC-HSM") => {
            if jwk.get("crv").and_then(Value::as_str) != Some("P-256") {
                return Err(Error::Signer(SignerError::new(
                    SignerErrorKind::Unsupported,
                    "only P-256 vault keys are supported",
                )));
            }
            let (x, y) = (member("x")?, member("y")?);
            let mut point = vec![4u8];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            if point != spki_bits {
                return Err(mismatch());
            }
            Ok((vec![Algorithm::Es256], 64))
        }
        _ => Err(Error::Signer(SignerError::new(
            SignerErrorKind::Unsupported,
            "the vault key is neither RSA nor EC",
        ))),
    }
}

/// The scope from a Key Vault `401` challenge: `scope`, else `resource` + `/.default`; the
/// resource's host must be a DNS suffix of the vault's (loopback vaults excepted).
/// A parameter of a `Bearer` challenge (`key="value"`, comma-separated).
fn challenge_parameter(header: &str, name: &str) -> Option<String> {
    let rest = header.strip_prefix("Bearer ")?;
    rest.split(',').find_map(|part| {
        let (key, value) = part.trim().split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// The claims challenge of a `401` from the vault (CAE: the token was revoked or the policy
/// changed), decoded from its standard base64.
fn challenge_claims(response: &http::Response<Vec<u8>>) -> Option<String> {
    let header = response
        .headers()
        .get(http::header::WWW_AUTHENTICATE)?
        .to_str()
        .ok()?;
    let encoded = challenge_parameter(header, "claims")?;
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    String::from_utf8(decoded).ok()
}

/// The tenant a vault's challenge names: the last path segment of its `authorization` (or
/// `authorization_uri`) URL, when it is a plain tenant name or id.
fn challenge_tenant(probe: &http::Response<Vec<u8>>) -> Option<String> {
    let header = probe
        .headers()
        .get(http::header::WWW_AUTHENTICATE)?
        .to_str()
        .ok()?;
    let authorization = challenge_parameter(header, "authorization")
        .or_else(|| challenge_parameter(header, "authorization_uri"))?;
    let url = Url::parse(&authorization).ok()?;
    let tenant = url.path_segments()?.rfind(|s| !s.is_empty())?;
    crate::authority::check_segment("tenant", tenant)
        .ok()
        .map(str::to_owned)
}

fn challenge_scope(probe: &http::Response<Vec<u8>>, vault: &Url) -> Result<String, Error> {
    let header = probe
        .headers()
        .get(http::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| probe.status() == http::StatusCode::UNAUTHORIZED)
        .ok_or_else(|| {
            Error::InvalidResponse(format!(
                "the vault answered HTTP {} without a Bearer challenge",
                probe.status().as_u16()
            ))
        })?;
    let parameter = |name: &str| challenge_parameter(header, name);
    let scope = match (parameter("scope"), parameter("resource")) {
        (Some(scope), _) => scope,
        (None, Some(resource)) => format!("{}/.default", resource.trim_end_matches('/')),
        (None, None) => {
            return Err(Error::InvalidResponse(
                "the vault's challenge names no resource".into(),
            ));
        }
    };
    let resource_host = Url::parse(&scope)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    let vault_host = vault.host_str().unwrap_or_default().to_ascii_lowercase();
    let belongs = !resource_host.is_empty()
        && (vault_host == resource_host || vault_host.ends_with(&format!(".{resource_host}")));
    if !belongs && !is_loopback(vault) {
        return Err(Error::InvalidResponse(format!(
            "the vault's challenge asks for a token for `{resource_host}`, which `{vault_host}` does not belong to"
        )));
    }
    Ok(scope)
}

async fn send(
    http: &dyn HttpClient,
    method: &str,
    url: &Url,
    bearer: Option<&str>,
    body: Option<Vec<u8>>,
) -> Result<http::Response<Vec<u8>>, Error> {
    let mut request = http::Request::builder()
        .method(method)
        .uri(url.as_str())
        .header(http::header::ACCEPT, "application/json");
    if let Some(token) = bearer {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if body.is_some() {
        request = request.header(http::header::CONTENT_TYPE, "application/json");
    }
    let request = request
        .body(body.unwrap_or_default())
        .map_err(|e| Error::InvalidEndpoint(format!("cannot build the vault request: {e}")))?;
    Ok(crate::http::send_traced(http, "key_vault", request).await?)
}

/// A 200's JSON body, or Key Vault's error as a typed error.
fn vault_json(response: &http::Response<Vec<u8>>) -> Result<Value, Error> {
    let body: Option<Value> = serde_json::from_slice(response.body()).ok();
    if response.status() == http::StatusCode::OK {
        return body.ok_or_else(|| Error::InvalidResponse("the vault's answer is not JSON".into()));
    }
    let code = body
        .as_ref()
        .and_then(|b| b["error"]["code"].as_str())
        .unwrap_or("unknown");
    let inner = body
        .as_ref()
        .and_then(|b| b["error"]["innererror"]["code"].as_str())
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    // Key Vault's own number (`AKV10032: Invalid issuer.`) says which rule refused a token.
    let akv = body
        .as_ref()
        .and_then(|b| b["error"]["message"].as_str())
        .and_then(|m| crate::server_error::leading_number(m, "AKV", 8))
        .map(|n| format!(" AKV{n}"))
        .unwrap_or_default();
    let mut error = SignerError::new(
        SignerErrorKind::Remote,
        format!(
            "Key Vault answered HTTP {} {code}{inner}{akv}",
            response.status().as_u16()
        ),
    );
    if response.status() == http::StatusCode::TOO_MANY_REQUESTS
        || response.status().is_server_error()
    {
        error = error.retryable();
    }
    Err(Error::Signer(error))
}

#[async_trait]
impl Signer for KeyVaultSigner {
    fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    fn key_id(&self) -> Option<&str> {
        None
    }

    fn certificate(&self) -> Option<&Certificate> {
        Some(&self.certificate)
    }

    fn snapshot(&self) -> Option<Arc<dyn Signer>> {
        let rotation = self.rotation.as_ref()?;
        rotation.check_if_due();
        Some(rotation.current())
    }

    async fn sign(&self, alg: Algorithm, message: &[u8]) -> Result<Signature, SignerError> {
        if !self.algorithms.contains(&alg) {
            return Err(SignerError::new(
                SignerErrorKind::UnsupportedAlgorithm,
                format!("the vault key cannot sign {}", alg.as_str()),
            ));
        }
        let answer = self
            .vault
            .call("POST", &self.sign_url, Some(sign_request(alg, message)))
            .await
            .map_err(|e| match e {
                Error::Signer(s) => s,
                other => remote(format!("the sign request failed: {other}")),
            })?;
        self.signature_from(&answer)
    }
}

fn remote(message: String) -> SignerError {
    SignerError::new(SignerErrorKind::Remote, message)
}

/// The body of `POST {kid}/sign`: the SHA-256 of `message`, computed here.
fn sign_request(alg: Algorithm, message: &[u8]) -> Vec<u8> {
    let digest = Sha256::digest(message);
    serde_json::json!({"alg": alg.as_str(), "value": URL_SAFE_NO_PAD.encode(digest)})
        .to_string()
        .into_bytes()
}

impl KeyVaultSigner {
    /// The signature in a sign response, checked for the key's length.
    fn signature_from(&self, answer: &Value) -> Result<Signature, SignerError> {
        let signature = answer
            .get("value")
            .and_then(Value::as_str)
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
            .ok_or_else(|| remote("the sign response has no base64url `value`".into()))?;
        if signature.len() != self.signature_len {
            return Err(remote(format!(
                "the vault returned a {}-byte signature, expected {}",
                signature.len(),
                self.signature_len
            )));
        }
        Ok(Signature::new(signature))
    }

    /// Benchmark hook, not part of the API: everything `sign` does except the round trip
    /// (hash, request JSON, response JSON, base64), with `response` standing in for the
    /// vault's answer.
    #[doc(hidden)]
    pub fn local_share_of_sign(
        &self,
        alg: Algorithm,
        message: &[u8],
        response: &[u8],
    ) -> Result<Signature, SignerError> {
        std::hint::black_box(sign_request(alg, message));
        let answer: Value = serde_json::from_slice(response)
            .map_err(|_| remote("the sign response is not JSON".into()))?;
        self.signature_from(&answer)
    }
}

/// Key Vault's answers, for the fuzz targets: `data` as a 200 body (a certificate, a key checked
/// against `certificate`, a secret) and as an error body, and as a 401's challenge.
pub(crate) fn fuzz_responses(data: &[u8], certificate: &Certificate) -> bool {
    let ok = http::Response::builder()
        .status(200)
        .body(data.to_vec())
        .map(|response| vault_json(&response));
    let mut accepted = false;
    if let Ok(Ok(body)) = ok {
        accepted |= parse_certificate(&body).is_ok();
        accepted |= parse_secret(&body).is_ok();
        if let Some(jwk) = body.get("key") {
            accepted |= check_key(jwk, certificate).is_ok();
        }
    }
    if let Ok(response) = http::Response::builder().status(403).body(data.to_vec()) {
        let _ = vault_json(&response);
    }
    if let Ok(header) = http::HeaderValue::from_bytes(data)
        && let Ok(response) = http::Response::builder()
            .status(401)
            .header(http::header::WWW_AUTHENTICATE, header)
            .body(Vec::new())
        && let Ok(vault) = Url::parse("https://contoso.vault.azure.net")
    {
        accepted |= challenge_scope(&response, &vault).is_ok();
        let _ = challenge_claims(&response);
    }
    accepted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(value: &str) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(401)
            .header(http::header::WWW_AUTHENTICATE, value)
            .body(Vec::new())
            .expect("response")
    }

    fn vault(url: &str) -> Url {
        Url::parse(url).expect("url")
    }

    #[test]
    fn claims_from_a_cae_challenge() {
        let claims = r#"{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}"#;
        let header = format!(
            r#"Bearer authorization="https://login.microsoftonline.com/t", error="insufficient_claims", claims="{}""#,
            STANDARD.encode(claims)
        );
        assert_eq!(
            challenge_claims(&challenge(&header)).as_deref(),
            Some(claims)
        );
        assert_eq!(
            challenge_claims(&challenge(r#"Bearer resource="https://vault.azure.net""#)),
            None
        );
        assert_eq!(challenge_claims(&challenge(r#"Bearer claims="%%%""#)), None);
    }

    #[test]
    fn scope_from_the_challenge() {
        let prod = vault("https://contoso.vault.azure.net");
        let scope = |header: &str, url: &Url| challenge_scope(&challenge(header), url).ok();
        assert_eq!(
            scope(
                r#"Bearer authorization="https://login.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47", resource="https://vault.azure.net""#,
                &prod
            )
            .as_deref(),
            Some("https://vault.azure.net/.default")
        );
        assert_eq!(
            scope(
                r#"Bearer authorization_uri="https://login.microsoftonline.com/t", scope="https://vault.azure.net/.default""#,
                &prod
            )
            .as_deref(),
            Some("https://vault.azure.net/.default")
        );
        // A resource the vault host does not belong to: no token is sent.
        assert_eq!(
            scope(
                r#"Bearer authorization="https://login.microsoftonline.com/t", resource="https://evil.example""#,
                &prod
            ),
            None
        );
        assert_eq!(
            scope(
                r#"Bearer resource="https://azure.net""#,
                &vault("https://contoso.notazure.net")
            ),
            None,
            "a suffix must be a whole DNS label"
        );
        // Loopback vaults (the testkit) are exempt.
        assert!(
            scope(
                r#"Bearer resource="https://vault.azure.net""#,
                &vault("http://127.0.0.1:9000")
            )
            .is_some()
        );
        // Not a challenge.
        let ok = http::Response::builder()
            .status(200)
            .body(Vec::new())
            .expect("response");
        assert!(challenge_scope(&ok, &prod).is_err());
        assert!(challenge_scope(&challenge("Basic realm=x"), &prod).is_err());
    }
}

//! [`KeyVaultSigner`]: signatures from an Azure Key Vault (or Managed HSM) key that never leaves
//! the vault. The digest is computed here; the vault signs it (WIRE.md §4–5).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use url::Url;

use super::{Algorithm, Certificate, Signature, Signer, SignerError, SignerErrorKind};
use crate::error::Error;
use crate::http::{HttpClient, ReqwestClient, check_endpoint, is_loopback};
use crate::token_source::TokenSource;

/// The Key Vault REST API version sent by default.
pub const DEFAULT_KEY_VAULT_API_VERSION: &str = "7.4";

/// A [`Signer`] backed by a Key Vault certificate's key: `x5t`/`x5t#S256`/`x5c` come from the
/// certificate, signatures from `POST {kid}/sign`. The private key is never requested.
///
/// The vault is reached with any [`TokenSource`] (a [`ConfidentialClient`](crate::ConfidentialClient),
/// a managed identity, …); the scope comes from the vault's own `401` challenge, and a token is
/// sent only to a vault whose host belongs to the challenge's resource (loopback vaults, such as
/// the testkit's, excepted).
pub struct KeyVaultSigner {
    key_id: String,
    algorithms: Vec<Algorithm>,
    /// Signature length: the RSA modulus in bytes, or 64 for P-256.
    signature_len: usize,
    certificate: Certificate,
    tokens: Arc<dyn TokenSource>,
    http: Arc<dyn HttpClient>,
    scope: String,
    api_version: String,
}

impl fmt::Debug for KeyVaultSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVaultSigner")
            .field("key_id", &self.key_id)
            .field("algorithms", &self.algorithms)
            .field("x5t#S256", &self.certificate.x5t_s256())
            .field("scope", &self.scope)
            .finish_non_exhaustive()
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
}

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
        }
    }

    /// The versioned key id the signer signs with.
    pub fn key_id(&self) -> &str {
        &self.key_id
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

    /// Answers the vault's challenge, fetches the certificate and its key's public part, and
    /// checks they belong together.
    pub async fn build(self) -> Result<KeyVaultSigner, Error> {
        let vault = check_endpoint(self.vault_url.trim_end_matches('/'))?;
        let http: Arc<dyn HttpClient> = match self.http {
            Some(http) => http,
            None => Arc::new(ReqwestClient::new()?),
        };
        let mut certificate_url = vault.clone();
        {
            let mut path = certificate_url
                .path_segments_mut()
                .map_err(|()| Error::InvalidEndpoint("the vault URL cannot have a path".into()))?;
            path.pop_if_empty()
                .push("certificates")
                .push(&self.certificate);
            if let Some(version) = &self.version {
                path.push(version);
            }
        }
        let with_version = |url: &Url| -> Result<Url, Error> {
            let mut url = url.clone();
            url.query_pairs_mut()
                .append_pair("api-version", &self.api_version);
            Ok(url)
        };
        // The challenge: an unauthenticated probe names the scope (and the tenant).
        let probe = send(
            http.as_ref(),
            "GET",
            &with_version(&certificate_url)?,
            None,
            None,
        )
        .await?;
        let scope = challenge_scope(&probe, &vault)?;
        let token = self.tokens.get_token(&[scope.as_str()]).await?;
        let bearer = token.access_token().expose_secret().to_owned();

        let response = send(
            http.as_ref(),
            "GET",
            &with_version(&certificate_url)?,
            Some(&bearer),
            None,
        )
        .await?;
        let body = vault_json(&response)?;
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
        let key_url = check_endpoint(&key_id)?;
        if key_url.host_str() != vault.host_str() || key_url.port() != vault.port() {
            return Err(Error::InvalidResponse(
                "the certificate's key is in another vault".into(),
            ));
        }

        let response = send(
            http.as_ref(),
            "GET",
            &with_version(&key_url)?,
            Some(&bearer),
            None,
        )
        .await?;
        let key = vault_json(&response)?;
        let jwk = key
            .get("key")
            .ok_or_else(|| Error::InvalidResponse("the key response has no `key`".into()))?;
        let (algorithms, signature_len) = check_key(jwk, &certificate)?;
        Ok(KeyVaultSigner {
            key_id,
            algorithms,
            signature_len,
            certificate,
            tokens: self.tokens,
            http,
            scope,
            api_version: self.api_version,
        })
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
    let parameter = |name: &str| -> Option<String> {
        let rest = header.strip_prefix("Bearer ")?;
        rest.split(',').find_map(|part| {
            let (key, value) = part.trim().split_once('=')?;
            (key.trim() == name).then(|| value.trim().trim_matches('"').to_owned())
        })
    };
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
    Ok(http.send(request).await?)
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
    let mut error = SignerError::new(
        SignerErrorKind::Remote,
        format!(
            "Key Vault answered HTTP {} {code}{inner}",
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

    async fn sign(&self, alg: Algorithm, message: &[u8]) -> Result<Signature, SignerError> {
        if !self.algorithms.contains(&alg) {
            return Err(SignerError::new(
                SignerErrorKind::UnsupportedAlgorithm,
                format!("the vault key cannot sign {}", alg.as_str()),
            ));
        }
        let remote = |message: String| SignerError::new(SignerErrorKind::Remote, message);
        let digest = Sha256::digest(message);
        let body =
            serde_json::json!({"alg": alg.as_str(), "value": URL_SAFE_NO_PAD.encode(digest)});
        let mut url = Url::parse(&format!("{}/sign", self.key_id))
            .map_err(|e| remote(format!("bad key id: {e}")))?;
        url.query_pairs_mut()
            .append_pair("api-version", &self.api_version);
        let token = self
            .tokens
            .get_token(&[self.scope.as_str()])
            .await
            .map_err(|e| remote(format!("no token for the vault: {e}")))?;
        let response = send(
            self.http.as_ref(),
            "POST",
            &url,
            Some(token.access_token().expose_secret()),
            Some(body.to_string().into_bytes()),
        )
        .await
        .map_err(|e| remote(format!("the sign request failed: {e}")))?;
        let answer = vault_json(&response).map_err(|e| match e {
            Error::Signer(s) => s,
            other => remote(other.to_string()),
        })?;
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
}

//! Azure Key Vault's data plane (WIRE.md §4–5) on its own loopback port: keys with remote
//! signing, certificates and their secrets, the Bearer challenge, access per calling app, and
//! Key Vault's error bodies. Private keys stay here: `sign` is the only use of them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256, RsaKeySize};
use serde_json::{Value, json};
use sha1::{Digest as _, Sha1};

use crate::{Shared, TestkitError};

/// The audience Key Vault accepts.
pub(crate) const VAULT_RESOURCE: &str = "https://vault.azure.net";

/// A Key Vault key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum VaultKeyType {
    /// RSA 2048.
    #[serde(rename = "RSA-2048")]
    Rsa2048,
    /// RSA 3072.
    #[serde(rename = "RSA-3072")]
    Rsa3072,
    /// RSA 4096.
    #[serde(rename = "RSA-4096")]
    Rsa4096,
    /// EC P-256.
    #[serde(rename = "EC-P256")]
    EcP256,
}

/// How a certificate's secret is exported: the certificate policy's `contentType`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum VaultSecretFormat {
    /// `application/x-pkcs12`, Key Vault's default: a base64 PFX with the empty password.
    #[default]
    Pkcs12,
    /// `application/x-pem-file`: the PKCS#8 key, then the certificate.
    Pem,
}

/// What an app may do in the vault (Key Vault access policy permissions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VaultPermission {
    /// `GET /keys/...`.
    GetKey,
    /// `POST /keys/.../sign`.
    Sign,
    /// `GET /certificates/...`.
    GetCertificate,
    /// `GET /secrets/...`.
    GetSecret,
}

enum PrivateKey {
    Rsa(Box<rsa::RsaPrivateKey>),
    Ec(p256::ecdsa::SigningKey),
}

pub(crate) struct KeyVersion {
    version: String,
    hsm: bool,
    private: PrivateKey,
    /// The public JWK members (`kty` aside): `n`/`e` or `crv`/`x`/`y`.
    public: Value,
    /// The certificate of this version, when the key backs one.
    certificate: Option<Certificate>,
    created: u64,
}

struct Certificate {
    der: Vec<u8>,
    pem: String,
    key_pem: String,
    key_der: Vec<u8>,
    format: VaultSecretFormat,
}

/// The vault's contents and policy.
#[derive(Default)]
pub(crate) struct Vault {
    /// The tenant whose tokens the vault accepts (`authorization` of the challenge).
    pub(crate) tenant_id: String,
    pub(crate) base_url: String,
    /// Versions by key (or certificate) name, oldest first; the last is current.
    pub(crate) keys: HashMap<String, Vec<KeyVersion>>,
    pub(crate) access: HashMap<String, HashSet<VaultPermission>>,
    /// Secrets set directly (value, content type), versions oldest first.
    pub(crate) secrets: HashMap<String, Vec<StoredSecret>>,
}

pub(crate) struct StoredSecret {
    version: String,
    content_type: String,
    value: String,
    created: u64,
}

/// Key Vault object names: 1 to 127 ASCII letters, digits and dashes.
fn valid_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl Vault {
    /// Creates what the configuration lists; errors name the entry.
    pub(crate) fn fill(
        &mut self,
        config: &crate::config::KeyVaultConfig,
        now: u64,
    ) -> Result<(), TestkitError> {
        let bad_name = |field: String, name: &str| {
            TestkitError::Config(format!(
                "`key_vault.{field}.name`: `{name}` is not a Key Vault name (1 to 127 letters, \
                 digits and dashes)"
            ))
        };
        if config.tenant.trim().is_empty() {
            return Err(TestkitError::Config(
                "`key_vault.tenant`: must name the tenant whose tokens the vault accepts".into(),
            ));
        }
        for (i, key) in config.keys.iter().enumerate() {
            if !valid_name(&key.name) {
                return Err(bad_name(format!("keys[{i}]"), &key.name));
            }
            self.add_version(&key.name, key.kind, key.hsm, None, now)?;
        }
        for (i, cert) in config.certificates.iter().enumerate() {
            if !valid_name(&cert.name) {
                return Err(bad_name(format!("certificates[{i}]"), &cert.name));
            }
            if self.keys.contains_key(&cert.name) {
                return Err(TestkitError::Config(format!(
                    "`key_vault.certificates[{i}].name`: `{}` is also a key; a certificate's key \
                     takes its name",
                    cert.name
                )));
            }
            self.add_version(
                &cert.name,
                cert.kind,
                cert.hsm,
                Some(cert.secret_format),
                now,
            )?;
        }
        for (i, secret) in config.secrets.iter().enumerate() {
            if !valid_name(&secret.name) {
                return Err(bad_name(format!("secrets[{i}]"), &secret.name));
            }
            let content_type = secret.content_type.as_deref().unwrap_or_default();
            self.put_secret(&secret.name, content_type, &secret.value, now);
        }
        for (i, policy) in config.access_policies.iter().enumerate() {
            if policy.client_id.trim().is_empty() {
                return Err(TestkitError::Config(format!(
                    "`key_vault.access_policies[{i}].client_id`: must not be empty"
                )));
            }
            let permissions = policy.permissions(i)?;
            self.grant(&policy.client_id, &permissions);
        }
        Ok(())
    }

    /// Adds a new version of key `name` (with a self-signed certificate `CN={name}` when
    /// `certificate`); returns the version.
    pub(crate) fn add_version(
        &mut self,
        name: &str,
        kind: VaultKeyType,
        hsm: bool,
        certificate: Option<VaultSecretFormat>,
        now: u64,
    ) -> Result<String, TestkitError> {
        let keys_error = |e: String| TestkitError::Keys(format!("vault key: {e}"));
        let pair = match kind {
            VaultKeyType::Rsa2048 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048),
            VaultKeyType::Rsa3072 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_3072),
            VaultKeyType::Rsa4096 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_4096),
            VaultKeyType::EcP256 => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256),
        }
        .map_err(|e| keys_error(e.to_string()))?;
        let pkcs8 = pair.serialize_der();
        let (private, public) = if kind == VaultKeyType::EcP256 {
            use p256::pkcs8::DecodePrivateKey as _;
            let key = p256::ecdsa::SigningKey::from_pkcs8_der(&pkcs8)
                .map_err(|e| keys_error(e.to_string()))?;
            let point = key.verifying_key().to_encoded_point(false);
            let (x, y) = (point.x(), point.y());
            let public = json!({
                "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(x.map(|x| x.as_slice()).unwrap_or_default()),
                "y": URL_SAFE_NO_PAD.encode(y.map(|y| y.as_slice()).unwrap_or_default()),
            });
            (PrivateKey::Ec(key), public)
        } else {
            use rsa::pkcs8::DecodePrivateKey as _;
            use rsa::traits::PublicKeyParts as _;
            let key = rsa::RsaPrivateKey::from_pkcs8_der(&pkcs8)
                .map_err(|e| keys_error(e.to_string()))?;
            let public = json!({
                "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
            });
            (PrivateKey::Rsa(Box::new(key)), public)
        };
        let certificate = if let Some(format) = certificate {
            let mut params = rcgen::CertificateParams::default();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            let cert = params
                .self_signed(&pair)
                .map_err(|e| keys_error(e.to_string()))?;
            Some(Certificate {
                der: cert.der().to_vec(),
                pem: cert.pem(),
                key_pem: pair.serialize_pem(),
                key_der: pkcs8.clone(),
                format,
            })
        } else {
            None
        };
        let version = uuid::Uuid::new_v4().simple().to_string();
        self.keys
            .entry(name.to_owned())
            .or_default()
            .push(KeyVersion {
                version: version.clone(),
                hsm,
                private,
                public,
                certificate,
                created: now,
            });
        Ok(version)
    }

    /// Sets a new version of secret `name`; returns the version.
    pub(crate) fn put_secret(
        &mut self,
        name: &str,
        content_type: &str,
        value: &str,
        now: u64,
    ) -> String {
        let version = uuid::Uuid::new_v4().simple().to_string();
        self.secrets
            .entry(name.to_owned())
            .or_default()
            .push(StoredSecret {
                version: version.clone(),
                content_type: content_type.to_owned(),
                value: value.to_owned(),
                created: now,
            });
        version
    }

    pub(crate) fn grant(&mut self, client_id: &str, permissions: &[VaultPermission]) {
        self.access
            .entry(client_id.to_owned())
            .or_default()
            .extend(permissions.iter().copied());
    }

    /// Replaces the certificate of the current version of `name` (its key stays): a
    /// certificate that does not belong to its key, as a broken import would leave it.
    pub(crate) fn replace_certificate(
        &mut self,
        name: &str,
        pem: &str,
    ) -> Result<(), TestkitError> {
        use der::{DecodePem as _, Encode as _};
        let parsed = x509_cert::Certificate::from_pem(pem.as_bytes())
            .map_err(|e| TestkitError::Keys(format!("certificate PEM: {e}")))?;
        let der = parsed
            .to_der()
            .map_err(|e| TestkitError::Keys(format!("certificate DER: {e}")))?;
        let certificate = self
            .keys
            .get_mut(name)
            .and_then(|versions| versions.last_mut())
            .and_then(|version| version.certificate.as_mut())
            .ok_or_else(|| TestkitError::Config(format!("no certificate `{name}` in the vault")))?;
        certificate.der = der;
        certificate.pem = pem.to_owned();
        Ok(())
    }

    /// The certificate PEM of the current version of `name`.
    pub(crate) fn certificate_pem(&self, name: &str) -> Option<String> {
        self.keys
            .get(name)?
            .last()?
            .certificate
            .as_ref()
            .map(|c| c.pem.clone())
    }

    fn version(&self, name: &str, version: Option<&str>) -> Option<&KeyVersion> {
        let versions = self.keys.get(name)?;
        match version {
            None | Some("") => versions.last(),
            Some(v) => versions.iter().find(|k| k.version == v),
        }
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/keys/{name}", get(get_key))
        .route("/keys/{name}/", get(get_key))
        .route("/keys/{name}/{version}", get(get_key))
        .route("/keys/{name}/{version}/sign", post(sign))
        .route("/certificates/{name}", get(get_certificate))
        .route("/certificates/{name}/", get(get_certificate))
        .route("/certificates/{name}/{version}", get(get_certificate))
        .route("/secrets/{name}", get(get_secret))
        .route("/secrets/{name}/", get(get_secret))
        .route("/secrets/{name}/{version}", get(get_secret))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            crate::faults::middleware,
        ))
        .with_state(shared)
}

/// Key Vault's error body.
fn error(status: StatusCode, code: &str, inner: Option<&str>, message: &str) -> Response {
    let mut body = json!({"error": {"code": code, "message": message}});
    if let Some(inner) = inner {
        body["error"]["innererror"] = json!({"code": inner});
    }
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

fn json_ok(body: Value) -> Response {
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// Checks `api-version`, the bearer token (signature, audience, expiry) and the caller's
/// permission; the error response otherwise (built on the rare failure path, so its size does
/// not matter).
#[allow(clippy::result_large_err)]
fn authorize(
    shared: &Shared,
    headers: &HeaderMap,
    query: Option<&str>,
    needs: VaultPermission,
) -> Result<(), Response> {
    let has_version = query.is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "api-version" && !v.is_empty())
    });
    if !has_version {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            None,
            "The 'api-version' query parameter is required.",
        ));
    }
    let vault = shared.vault.read().unwrap_or_else(|p| p.into_inner());
    let challenge = || {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            None,
            "AKV10000: Request is missing a Bearer or PoP token.",
        );
        let value = format!(
            r#"Bearer authorization="{}/{}", resource="{VAULT_RESOURCE}""#,
            shared.base_url, vault.tenant_id
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(challenge)?;
    let claims = verify_token(shared, token).map_err(|message| {
        let mut response = challenge();
        *response.body_mut() = axum::body::Body::from(
            json!({"error": {"code": "Unauthorized", "message": message}}).to_string(),
        );
        response
    })?;
    if claims.get("tid").and_then(Value::as_str) != Some(vault.tenant_id.as_str()) {
        // A token of another tenant: the challenge again, naming the vault's tenant.
        let mut response = challenge();
        *response.body_mut() = axum::body::Body::from(
            json!({"error": {"code": "Unauthorized", "message": format!(
                "AKV10032: Invalid issuer. Expected one of {}/{}/, found {}.",
                shared.base_url,
                vault.tenant_id,
                claims.get("iss").and_then(Value::as_str).unwrap_or_default()
            )}})
            .to_string(),
        );
        return Err(response);
    }
    let caller = claims
        .get("appid")
        .or_else(|| claims.get("azp"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let allowed = vault.access.get(caller).is_some_and(|p| p.contains(&needs));
    if !allowed {
        return Err(error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            Some("ForbiddenByPolicy"),
            &format!(
                "The user, group or application 'appid={caller}' does not have the permission \
                 required by this operation ({needs:?}) in the vault's access policy."
            ),
        ));
    }
    Ok(())
}

/// A token the testkit issued for Key Vault: signature by a published key, `aud`, `exp`.
fn verify_token(shared: &Shared, token: &str) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| "AKV10000: Malformed token.")?;
    let keys = shared.keys.read().unwrap_or_else(|p| p.into_inner());
    let key = keys
        .published
        .iter()
        .find(|k| Some(&k.kid) == header.kid.as_ref())
        .ok_or("AKV10000: Token signed by an unknown key.")?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[VAULT_RESOURCE, &format!("{VAULT_RESOURCE}/")]);
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Value>(token, &key.decoding, &validation)
        .map_err(|_| "AKV10022: Invalid audience or signature.".to_owned())?;
    let exp = data.claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
    if exp <= shared.now_unix() {
        return Err("AKV10000: Token expired.".into());
    }
    Ok(data.claims)
}

/// `name` and, when the path has one, `version`.
fn object_path(params: &HashMap<String, String>) -> (&str, Option<&str>) {
    (
        params.get("name").map(String::as_str).unwrap_or_default(),
        params.get("version").map(String::as_str),
    )
}

fn key_id(base: &str, kind: &str, name: &str, version: &str) -> String {
    format!("{base}/{kind}/{name}/{version}")
}

fn not_found(kind: &str, name: &str) -> Response {
    let (code, what) = match kind {
        "keys" => ("KeyNotFound", "A key"),
        "secrets" => ("SecretNotFound", "A secret"),
        _ => ("CertificateNotFound", "A certificate"),
    };
    error(
        StatusCode::NOT_FOUND,
        code,
        None,
        &format!("{what} with (name/id) {name} was not found in this key vault."),
    )
}

fn key_body(vault: &Vault, name: &str, key: &KeyVersion) -> Value {
    let is_ec = matches!(key.private, PrivateKey::Ec(_));
    let kty = match (is_ec, key.hsm) {
        (false, false) => "RSA",
        (false, true) => "RSA-HSM",
        (true, false) => "EC",
        (true, true) => "EC-HSM",
    };
    let mut jwk = json!({
        "kid": key_id(&vault.base_url, "keys", name, &key.version),
        "kty": kty,
        "key_ops": ["sign", "verify"],
    });
    if let (Some(target), Some(members)) = (jwk.as_object_mut(), key.public.as_object()) {
        target.extend(members.clone());
    }
    let mut body = json!({
        "key": jwk,
        "attributes": {"enabled": true, "created": key.created, "updated": key.created, "exportable": false},
        "tags": {},
    });
    if key.certificate.is_some() {
        body["managed"] = json!(true);
    }
    body
}

/// `GET /keys/{name}[/{version}]`, versionless meaning the current version.
async fn get_key(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<HashMap<String, String>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (name, version) = object_path(&params);
    let (shared, query, headers) = (&*shared, query.as_deref(), &headers);
    if let Err(response) = authorize(shared, headers, query, VaultPermission::GetKey) {
        return response;
    }
    let vault = shared.vault.read().unwrap_or_else(|p| p.into_inner());
    match vault.version(name, version) {
        Some(key) => json_ok(key_body(&vault, name, key)),
        None => not_found("keys", name),
    }
}

async fn sign(
    State(shared): State<Arc<Shared>>,
    Path((name, version)): Path<(String, String)>,
    query: RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = authorize(&shared, &headers, query.0.as_deref(), VaultPermission::Sign) {
        return response;
    }
    let bad = |message: &str| error(StatusCode::BAD_REQUEST, "BadParameter", None, message);
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return bad("The request body is not valid JSON.");
    };
    let alg = request
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(digest) = request
        .get("value")
        .and_then(Value::as_str)
        .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
    else {
        return bad("Property 'value' is required and must be base64url.");
    };
    let vault = shared.vault.read().unwrap_or_else(|p| p.into_inner());
    let Some(key) = vault.version(&name, Some(&version)) else {
        return not_found("keys", &name);
    };
    if digest.len() != 32 {
        return bad("Invalid digest length for the algorithm.");
    }
    let signature = match (&key.private, alg) {
        (PrivateKey::Rsa(key), "RS256") => {
            use rsa::signature::hazmat::PrehashSigner as _;
            rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new((**key).clone())
                .sign_prehash(&digest)
                .map(|s| rsa::signature::SignatureEncoding::to_vec(&s))
                .ok()
        }
        (PrivateKey::Rsa(key), "PS256") => {
            use rsa::signature::hazmat::RandomizedPrehashSigner as _;
            rsa::pss::SigningKey::<sha2::Sha256>::new_with_salt_len((**key).clone(), 32)
                .sign_prehash_with_rng(&mut rsa::rand_core::OsRng, &digest)
                .map(|s| rsa::signature::SignatureEncoding::to_vec(&s))
                .ok()
        }
        (PrivateKey::Ec(key), "ES256") => {
            use p256::ecdsa::signature::hazmat::PrehashSigner as _;
            let signature: Result<p256::ecdsa::Signature, _> = key.sign_prehash(&digest);
            signature.map(|s| s.to_bytes().to_vec()).ok()
        }
        _ => {
            return bad(&format!(
                "Algorithm '{alg}' is not supported for this key type."
            ));
        }
    };
    match signature {
        Some(signature) => json_ok(json!({
            "kid": key_id(&vault.base_url, "keys", &name, &key.version),
            "value": URL_SAFE_NO_PAD.encode(signature),
        })),
        None => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            None,
            "Signing failed.",
        ),
    }
}

/// `GET /certificates/{name}[/{version}]`, versionless meaning the current version.
async fn get_certificate(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<HashMap<String, String>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (name, version) = object_path(&params);
    let (shared, query, headers) = (&*shared, query.as_deref(), &headers);
    if let Err(response) = authorize(shared, headers, query, VaultPermission::GetCertificate) {
        return response;
    }
    let vault = shared.vault.read().unwrap_or_else(|p| p.into_inner());
    let Some((key, certificate)) = vault
        .version(name, version)
        .and_then(|k| k.certificate.as_ref().map(|c| (k, c)))
    else {
        return not_found("certificates", name);
    };
    let base = &vault.base_url;
    json_ok(json!({
        "id": key_id(base, "certificates", name, &key.version),
        "kid": key_id(base, "keys", name, &key.version),
        "sid": key_id(base, "secrets", name, &key.version),
        "x5t": URL_SAFE_NO_PAD.encode(Sha1::digest(&certificate.der)),
        "cer": STANDARD.encode(&certificate.der),
        "attributes": {"enabled": true, "created": key.created, "updated": key.created},
        "policy": {"key_props": {"exportable": !key.hsm, "kty": if matches!(key.private, PrivateKey::Ec(_)) { "EC" } else { "RSA" }}},
    }))
}

/// `GET /secrets/{name}[/{version}]`, versionless meaning the current version.
async fn get_secret(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<HashMap<String, String>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (name, version) = object_path(&params);
    let (shared, query, headers) = (&*shared, query.as_deref(), &headers);
    if let Err(response) = authorize(shared, headers, query, VaultPermission::GetSecret) {
        return response;
    }
    let vault = shared.vault.read().unwrap_or_else(|p| p.into_inner());
    let base = &vault.base_url;
    if let Some(versions) = vault.secrets.get(name) {
        let stored = match version {
            None | Some("") => versions.last(),
            Some(v) => versions.iter().find(|s| s.version == v),
        };
        return match stored {
            Some(secret) => {
                let mut body = json!({
                    "value": secret.value,
                    "id": key_id(base, "secrets", name, &secret.version),
                    "attributes": {"enabled": true, "created": secret.created, "updated": secret.created},
                });
                // Key Vault leaves out a content type that was never set.
                if !secret.content_type.is_empty() {
                    body["contentType"] = json!(secret.content_type);
                }
                json_ok(body)
            }
            None => not_found("secrets", name),
        };
    }
    let Some((key, certificate)) = vault
        .version(name, version)
        .and_then(|k| k.certificate.as_ref().map(|c| (k, c)))
    else {
        return not_found("secrets", name);
    };
    // A non-exportable key's secret holds only the certificate.
    let (value, content_type) = match certificate.format {
        VaultSecretFormat::Pem if key.hsm => (certificate.pem.clone(), "application/x-pem-file"),
        VaultSecretFormat::Pem => (
            format!("{}{}", certificate.key_pem, certificate.pem),
            "application/x-pem-file",
        ),
        VaultSecretFormat::Pkcs12 => {
            let key_der = (!key.hsm).then_some(certificate.key_der.as_slice());
            match crate::pfx::build(key_der, &certificate.der) {
                Ok(pfx) => (STANDARD.encode(pfx), "application/x-pkcs12"),
                Err(message) => {
                    return error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "InternalError",
                        None,
                        &message,
                    );
                }
            }
        }
    };
    json_ok(json!({
        "value": value,
        "contentType": content_type,
        "id": key_id(base, "secrets", name, &key.version),
        "managed": true,
        "kid": key_id(base, "keys", name, &key.version),
        "attributes": {"enabled": true, "created": key.created, "updated": key.created},
    }))
}

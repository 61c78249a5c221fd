//! The configuration, parsed for lookups: tenants by name, apps by client id, registered
//! certificates by thumbprint, resources by App ID URI.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use der::{Decode as _, Encode as _};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use crate::TestkitError;
use crate::config::{AppConfig, Config};
use crate::keys::rsa_components;

const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
const ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";

/// Microsoft resources that get v1 tokens, as in Entra.
const FIRST_PARTY: &[&str] = &[
    "https://vault.azure.net",
    "https://managedhsm.azure.net",
    "https://management.azure.com",
    "https://management.core.windows.net",
    "https://eventhubs.azure.net",
    "https://storage.azure.com",
    "https://graph.microsoft.com",
    "00000003-0000-0000-c000-000000000000",
];

/// A public key the testkit can verify with.
#[derive(Debug, Clone)]
pub(crate) enum PublicKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        pkcs1: Vec<u8>,
    },
    /// P-256, uncompressed point.
    Ec { point: Vec<u8> },
}

impl PublicKey {
    fn from_certificate(cert: &x509_cert::Certificate) -> Result<Self, String> {
        let spki = &cert.tbs_certificate.subject_public_key_info;
        let bits = spki.subject_public_key.raw_bytes();
        match spki.algorithm.oid.to_string().as_str() {
            RSA_ENCRYPTION => {
                let der = spki.to_der().map_err(|e| e.to_string())?;
                let (n, e) = rsa_components(&der).map_err(|e| e.to_string())?;
                Ok(PublicKey::Rsa {
                    n,
                    e,
                    pkcs1: bits.to_vec(),
                })
            }
            EC_PUBLIC_KEY if bits.len() == 65 && bits[0] == 4 => Ok(PublicKey::Ec {
                point: bits.to_vec(),
            }),
            other => Err(format!("unsupported certificate key algorithm {other}")),
        }
    }

    pub(crate) fn decoding_key(&self) -> Result<jsonwebtoken::DecodingKey, String> {
        match self {
            PublicKey::Rsa { n, e, .. } => {
                Ok(jsonwebtoken::DecodingKey::from_rsa_raw_components(n, e))
            }
            PublicKey::Ec { point } => {
                let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
                let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
                jsonwebtoken::DecodingKey::from_ec_components(&x, &y).map_err(|e| e.to_string())
            }
        }
    }

    pub(crate) fn is_rsa(&self) -> bool {
        matches!(self, PublicKey::Rsa { .. })
    }

    /// Verifies an X.509 signature made with this key.
    fn verifies(&self, algorithm: &str, message: &[u8], signature: &[u8]) -> bool {
        use aws_lc_rs::signature::{
            ECDSA_P256_SHA256_ASN1, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey,
        };
        match (self, algorithm) {
            (PublicKey::Rsa { pkcs1, .. }, SHA256_WITH_RSA) => {
                UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, pkcs1)
                    .verify(message, signature)
                    .is_ok()
            }
            (PublicKey::Ec { point }, ECDSA_WITH_SHA256) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
                    .verify(message, signature)
                    .is_ok()
            }
            _ => false,
        }
    }
}

/// A parsed certificate.
#[derive(Debug, Clone)]
pub(crate) struct ParsedCertificate {
    pub(crate) x5t: String,
    pub(crate) x5t_s256: String,
    pub(crate) subject: String,
    pub(crate) issuer: String,
    pub(crate) key: PublicKey,
    tbs_der: Vec<u8>,
    signature_algorithm: String,
    signature: Vec<u8>,
    not_before: u64,
    not_after: u64,
}

impl ParsedCertificate {
    pub(crate) fn from_der(der: &[u8]) -> Result<Self, String> {
        let cert =
            x509_cert::Certificate::from_der(der).map_err(|e| format!("certificate: {e}"))?;
        let validity = &cert.tbs_certificate.validity;
        let unix = |t: x509_cert::time::Time| t.to_unix_duration().as_secs();
        Ok(Self {
            x5t: URL_SAFE_NO_PAD.encode(Sha1::digest(der)),
            x5t_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(der)),
            subject: cert.tbs_certificate.subject.to_string(),
            issuer: cert.tbs_certificate.issuer.to_string(),
            key: PublicKey::from_certificate(&cert)?,
            tbs_der: cert.tbs_certificate.to_der().map_err(|e| e.to_string())?,
            signature_algorithm: cert.signature_algorithm.oid.to_string(),
            signature: cert.signature.raw_bytes().to_vec(),
            not_before: unix(validity.not_before),
            not_after: unix(validity.not_after),
        })
    }

    fn from_pem(pem: &str) -> Result<Self, String> {
        let chain = x509_cert::Certificate::load_pem_chain(pem.as_bytes())
            .map_err(|e| format!("certificate PEM: {e}"))?;
        let first = chain.first().ok_or("no certificate in PEM")?;
        Self::from_der(&first.to_der().map_err(|e| e.to_string())?)
    }

    /// Whether `issuer` signed this certificate.
    pub(crate) fn is_signed_by(&self, issuer: &ParsedCertificate) -> bool {
        self.issuer == issuer.subject
            && issuer
                .key
                .verifies(&self.signature_algorithm, &self.tbs_der, &self.signature)
    }

    pub(crate) fn is_valid_at(&self, unix: u64) -> bool {
        self.not_before <= unix && unix <= self.not_after
    }
}

/// A registered app, parsed.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) config: AppConfig,
    pub(crate) tenants: Vec<String>,
    pub(crate) certificates: Vec<ParsedCertificate>,
}

impl App {
    pub(crate) fn is_in_tenant(&self, tid: &str) -> bool {
        self.tenants.iter().any(|t| t == tid)
    }

    /// The names that identify this app as a resource.
    fn resource_names(&self) -> impl Iterator<Item = String> + '_ {
        [
            self.config.client_id.clone(),
            format!("api://{}", self.config.client_id),
        ]
        .into_iter()
        .chain(self.config.identifier_uris.iter().cloned())
    }
}

/// What a scope's resource resolves to.
#[derive(Debug, Clone)]
pub(crate) enum Resource {
    App(Arc<App>),
    FirstParty(String),
}

pub(crate) struct Registry {
    tenants: HashMap<String, String>,
    apps: HashMap<String, Arc<App>>,
    pub(crate) authorities: Vec<ParsedCertificate>,
    pub(crate) token_lifetime_secs: u64,
    pub(crate) identities: Vec<crate::ManagedIdentityInfo>,
    pub(crate) identity_lifetime_secs: u64,
    users: Vec<User>,
    b2c_policies: Vec<crate::config::B2cPolicyConfig>,
}

/// A user, resolved.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) username: String,
    pub(crate) tid: String,
    pub(crate) oid: String,
    pub(crate) name: String,
    pub(crate) mfa: bool,
    /// Tenants where the user is a guest.
    pub(crate) guest_tenants: Vec<String>,
    /// The home object id and tenant, when this is the user's guest object in another tenant.
    pub(crate) home: Option<(String, String)>,
}

impl User {
    /// The user as seen from `tid`: itself at home, its guest object where it is a guest.
    pub(crate) fn in_tenant(&self, tid: &str) -> Option<User> {
        if self.tid == tid {
            return Some(self.clone());
        }
        self.guest_tenants.iter().any(|t| t == tid).then(|| User {
            oid: derived_guid(&["guest", tid, &self.oid]),
            tid: tid.to_owned(),
            home: Some((self.oid.clone(), self.tid.clone())),
            guest_tenants: Vec::new(),
            ..self.clone()
        })
    }
}

impl Registry {
    pub(crate) fn new(config: &Config) -> Result<Self, TestkitError> {
        let mut registry = Self {
            tenants: HashMap::new(),
            apps: HashMap::new(),
            authorities: Vec::new(),
            token_lifetime_secs: config.token_lifetime_secs,
            identities: Vec::new(),
            identity_lifetime_secs: config.managed_identity_token_lifetime_secs,
            users: Vec::new(),
            b2c_policies: config.b2c_policies.clone(),
        };
        if config.managed_identity_token_lifetime_secs < 300 {
            return Err(TestkitError::Config(
                "`managed_identity_token_lifetime_secs`: at least 300 seconds".into(),
            ));
        }
        if config.token_lifetime_secs < 300 {
            return Err(TestkitError::Config(
                "`token_lifetime_secs`: at least 300 seconds".into(),
            ));
        }
        for (i, tenant) in config.tenants.iter().enumerate() {
            if !is_guid(&tenant.id) {
                return Err(TestkitError::Config(format!(
                    "`tenants[{i}].id`: `{}` is not a GUID",
                    tenant.id
                )));
            }
            for domain in &tenant.domains {
                registry
                    .tenants
                    .insert(domain.to_ascii_lowercase(), tenant.id.to_ascii_lowercase());
            }
        }
        for (i, pem) in config.certificate_authorities.iter().enumerate() {
            let ca = ParsedCertificate::from_pem(pem).map_err(|e| {
                TestkitError::Config(format!("`certificate_authorities[{i}]`: {e}"))
            })?;
            registry.authorities.push(ca);
        }
        for app in &config.apps {
            registry.register(app.clone())?;
        }
        for user in &config.users {
            registry.add_user(user);
        }
        for (i, identity) in config.managed_identities.iter().enumerate() {
            let resolved = crate::ManagedIdentityInfo::resolve(identity, &registry);
            if resolved.name.is_none()
                && registry.identities.iter().any(|other| other.name.is_none())
            {
                return Err(TestkitError::Config(format!(
                    "`managed_identities[{i}]`: only one system-assigned identity per host"
                )));
            }
            registry.identities.push(resolved);
        }
        Ok(registry)
    }

    pub(crate) fn register(&mut self, config: AppConfig) -> Result<(), TestkitError> {
        let field = |name: &str| format!("`apps[{}].{name}`", config.client_id);
        if config.client_id.is_empty() {
            return Err(TestkitError::Config(
                "`apps[].client_id`: must not be empty".into(),
            ));
        }
        let mut certificates = Vec::new();
        for (i, pem) in config.certificates.iter().enumerate() {
            let cert = ParsedCertificate::from_pem(pem).map_err(|e| {
                TestkitError::Config(format!("{}[{i}]: {e}", field("certificates")))
            })?;
            certificates.push(cert);
        }
        if let Some(v) = config.access_token_version
            && v != 1
            && v != 2
        {
            return Err(TestkitError::Config(format!(
                "{}: 1 or 2",
                field("access_token_version")
            )));
        }
        let home_tid = self.tenant_id(&config.home_tenant);
        let mut tenants = vec![home_tid];
        tenants.extend(config.consented_tenants.iter().map(|t| self.tenant_id(t)));
        let app = App {
            tenants,
            certificates,
            config,
        };
        self.apps
            .insert(app.config.client_id.to_ascii_lowercase(), Arc::new(app));
        Ok(())
    }

    /// A GUID resolves to itself; a configured domain to its tenant; anything else to a stable id
    /// derived from the name, so that any tenant path works.
    pub(crate) fn tenant_id(&self, name: &str) -> String {
        let lower = name.to_ascii_lowercase();
        if is_guid(&lower) {
            return lower;
        }
        if let Some(id) = self.tenants.get(&lower) {
            return id.clone();
        }
        derived_guid(&["tenant", &lower])
    }

    /// Whether `policy` is a B2C user flow here, and whether it is an MFA flow; `None` when
    /// it is not served.
    pub(crate) fn b2c_policy(&self, policy: &str) -> Option<bool> {
        let lower = policy.to_ascii_lowercase();
        if !lower.starts_with("b2c_1_") && !lower.starts_with("b2c_1a_") {
            return None;
        }
        if self.b2c_policies.is_empty() {
            return Some(false);
        }
        self.b2c_policies
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(policy))
            .map(|p| p.mfa)
    }

    /// Adds (or replaces) a user.
    pub(crate) fn add_user(&mut self, config: &crate::config::UserConfig) {
        let tid = self.tenant_id(&config.tenant);
        let username = config.username.clone();
        let user = User {
            oid: config
                .object_id
                .clone()
                .unwrap_or_else(|| derived_guid(&["user", &tid, &username.to_ascii_lowercase()])),
            name: config.name.clone().unwrap_or_else(|| username.clone()),
            mfa: config.mfa,
            guest_tenants: config.guest_in.iter().map(|t| self.tenant_id(t)).collect(),
            home: None,
            tid,
            username,
        };
        self.users
            .retain(|u| !(u.tid == user.tid && u.username.eq_ignore_ascii_case(&user.username)));
        self.users.push(user);
    }

    /// The user `username` in tenant `tid`; with no name, the tenant's only user.
    pub(crate) fn user(&self, tid: &str, username: Option<&str>) -> Option<User> {
        let mut in_tenant = self.users.iter().filter(|u| u.tid == tid);
        match username {
            Some(name) => in_tenant
                .find(|u| u.username.eq_ignore_ascii_case(name))
                .cloned(),
            None => {
                let first = in_tenant.next()?;
                in_tenant.next().is_none().then(|| first.clone())
            }
        }
    }

    /// The user signing in at `organizations` or `common`, found by name in any tenant.
    pub(crate) fn user_in_any_tenant(&self, username: &str) -> Option<User> {
        self.users
            .iter()
            .find(|u| u.username.eq_ignore_ascii_case(username))
            .cloned()
    }

    pub(crate) fn app(&self, client_id: &str) -> Option<Arc<App>> {
        self.apps.get(&client_id.to_ascii_lowercase()).cloned()
    }

    /// The resource a scope names (its part before `/.default` or the permission).
    pub(crate) fn resource(&self, name: &str) -> Option<Resource> {
        let wanted = name.trim_end_matches('/');
        for app in self.apps.values() {
            if app
                .resource_names()
                .any(|n| n.trim_end_matches('/').eq_ignore_ascii_case(wanted))
            {
                return Some(Resource::App(Arc::clone(app)));
            }
        }
        FIRST_PARTY
            .iter()
            .find(|r| r.eq_ignore_ascii_case(wanted))
            .map(|_| Resource::FirstParty(name.to_owned()))
    }
}

pub(crate) fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A stable GUID-shaped id from `parts` (object ids of service principals, unknown tenants).
pub(crate) fn derived_guid(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hasher.finalize()[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

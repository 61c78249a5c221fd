//! The testkit's configuration: tenants and app registrations, from Rust or from JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::TestkitError;
use crate::keyvault::{VaultKeyType, VaultPermission, VaultSecretFormat};

/// Everything the emulator knows at start. Unknown JSON fields are refused, so a typo fails
/// loudly instead of being ignored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Config {
    /// Tenants with domain names. Any GUID tenant exists without being listed; a domain that is
    /// not listed gets a stable tenant id derived from its name.
    pub tenants: Vec<TenantConfig>,
    /// App registrations.
    pub apps: Vec<AppConfig>,
    /// Access-token lifetime in seconds (Entra's default is about an hour). From 7200 seconds
    /// on, responses carry `refresh_in` = half the lifetime, as Entra does for long-lived tokens.
    pub token_lifetime_secs: u64,
    /// CA certificates (PEM) that anchor subject-name + issuer (`x5c`) registrations.
    pub certificate_authorities: Vec<String>,
    /// Managed identities served by the IMDS and App Service endpoints.
    pub managed_identities: Vec<ManagedIdentityConfig>,
    /// Users who can sign in at `/authorize` (no UI: `login_hint` picks one).
    pub users: Vec<UserConfig>,
    /// Azure AD B2C user flows served at `/{tenant}/{policy}/...`. When empty, any `B2C_1_`
    /// or `B2C_1A_` policy works as a plain sign-in flow.
    pub b2c_policies: Vec<B2cPolicyConfig>,
    /// Lifetime of managed-identity tokens in seconds (about 24 hours, as in Azure).
    pub managed_identity_token_lifetime_secs: u64,
    /// A Key Vault served on its own port, with its contents and access policies.
    pub key_vault: Option<KeyVaultConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            tenants: Vec::new(),
            apps: Vec::new(),
            token_lifetime_secs: 3599,
            certificate_authorities: Vec::new(),
            managed_identities: Vec::new(),
            users: Vec::new(),
            b2c_policies: Vec::new(),
            managed_identity_token_lifetime_secs: 86_399,
            key_vault: None,
        }
    }
}

impl Config {
    /// Parses the JSON form. Errors name the bad field by its path (`apps[1].secrets[0].value`)
    /// and give the line and column; unknown fields are errors.
    pub fn from_json(json: &str) -> Result<Self, TestkitError> {
        let mut reader = serde_json::Deserializer::from_str(json);
        let config: Self = serde_path_to_error::deserialize(&mut reader).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                TestkitError::Config(inner.to_string())
            } else {
                TestkitError::Config(format!("`{path}`: {inner}"))
            }
        })?;
        reader
            .end()
            .map_err(|e| TestkitError::Config(format!("after the configuration: {e}")))?;
        Ok(config)
    }

    /// Serves a Key Vault with these contents ([`crate::TestkitBuilder::key_vault`] names only the
    /// tenant, for a vault filled while running).
    pub fn key_vault(mut self, vault: KeyVaultConfig) -> Self {
        self.key_vault = Some(vault);
        self
    }

    /// Adds a tenant.
    pub fn tenant(mut self, tenant: TenantConfig) -> Self {
        self.tenants.push(tenant);
        self
    }

    /// Adds an app registration.
    pub fn app(mut self, app: AppConfig) -> Self {
        self.apps.push(app);
        self
    }

    /// Sets the access-token lifetime.
    pub fn token_lifetime_secs(mut self, secs: u64) -> Self {
        self.token_lifetime_secs = secs;
        self
    }

    /// Adds a B2C user flow.
    pub fn b2c_policy(mut self, policy: B2cPolicyConfig) -> Self {
        self.b2c_policies.push(policy);
        self
    }

    /// Adds a user.
    pub fn user(mut self, user: UserConfig) -> Self {
        self.users.push(user);
        self
    }

    /// Adds a managed identity.
    pub fn managed_identity(mut self, identity: ManagedIdentityConfig) -> Self {
        self.managed_identities.push(identity);
        self
    }

    /// Trusts a CA (PEM) for subject-name + issuer registrations.
    pub fn certificate_authority(mut self, pem: impl Into<String>) -> Self {
        self.certificate_authorities.push(pem.into());
        self
    }
}

/// A tenant: its id and the domain names that resolve to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TenantConfig {
    /// The tenant id (a GUID).
    pub id: String,
    /// Domain names, such as `contoso.onmicrosoft.com`; a bare name like `contoso` works too.
    #[serde(default)]
    pub domains: Vec<String>,
}

impl TenantConfig {
    /// A tenant with its id and domains.
    pub fn new(id: impl Into<String>, domains: &[&str]) -> Self {
        Self {
            id: id.into(),
            domains: domains.iter().map(|d| (*d).to_owned()).collect(),
        }
    }
}

/// An app registration (with its service principal in the home tenant).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AppConfig {
    /// The application (client) id.
    pub client_id: String,
    /// The tenant that owns the registration (id or domain).
    pub home_tenant: String,
    /// Password credentials.
    #[serde(default)]
    pub secrets: Vec<SecretConfig>,
    /// Certificates (PEM), matched by the `x5t` / `x5t#S256` of a client assertion.
    #[serde(default)]
    pub certificates: Vec<String>,
    /// Subject name + issuer registrations: the assertion carries `x5c`, whose leaf must have
    /// this subject and issuer and chain to one of the configured certificate authorities.
    #[serde(default)]
    pub trusted_subjects: Vec<TrustedSubject>,
    /// Federated identity credentials (workload identity).
    #[serde(default)]
    pub federated_credentials: Vec<FederatedCredential>,
    /// App roles this app (as a resource) defines.
    #[serde(default)]
    pub app_roles: Vec<String>,
    /// Delegated scopes this app (as a resource) exposes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// App ID URIs, such as `api://{client_id}`; the client id itself always names the app too.
    #[serde(default)]
    pub identifier_uris: Vec<String>,
    /// Application permissions granted to this app: resource (client id, App ID URI or
    /// first-party URI) to role names. They become the `roles` claim.
    #[serde(default)]
    pub granted_roles: BTreeMap<String, Vec<String>>,
    /// Other tenants where the app has been consented (a service principal exists).
    #[serde(default)]
    pub consented_tenants: Vec<String>,
    /// Redirect URIs for user flows.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// `accessTokenAcceptedVersion` of this app as a resource: 1 or 2 (default 2).
    #[serde(default)]
    pub access_token_version: Option<u8>,
    /// `signInAudience` `AzureADMultipleOrgs`: users sign in at `organizations` or `common`
    /// (from the home tenant and the consented ones). Single-tenant apps are refused there
    /// (AADSTS50194), as Entra ID refuses them.
    #[serde(default)]
    pub multi_tenant: bool,
}

impl AppConfig {
    /// An app with no credentials yet.
    pub fn new(client_id: impl Into<String>, home_tenant: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            home_tenant: home_tenant.into(),
            secrets: Vec::new(),
            certificates: Vec::new(),
            trusted_subjects: Vec::new(),
            federated_credentials: Vec::new(),
            app_roles: Vec::new(),
            scopes: Vec::new(),
            identifier_uris: Vec::new(),
            granted_roles: BTreeMap::new(),
            consented_tenants: Vec::new(),
            redirect_uris: Vec::new(),
            access_token_version: None,
            multi_tenant: false,
        }
    }

    /// Makes the app multi-tenant: users of its home and consented tenants sign in at
    /// `organizations` or `common`.
    pub fn multi_tenant(mut self) -> Self {
        self.multi_tenant = true;
        self
    }

    /// Adds a client secret that never expires.
    pub fn secret(mut self, value: impl Into<String>) -> Self {
        self.secrets.push(SecretConfig {
            value: value.into(),
            expires_at: None,
        });
        self
    }

    /// Adds a client secret that expires at `expires_at` (Unix seconds).
    pub fn secret_expiring(mut self, value: impl Into<String>, expires_at: u64) -> Self {
        self.secrets.push(SecretConfig {
            value: value.into(),
            expires_at: Some(expires_at),
        });
        self
    }

    /// Registers a certificate (PEM).
    pub fn certificate(mut self, pem: impl Into<String>) -> Self {
        self.certificates.push(pem.into());
        self
    }

    /// Trusts certificates with this subject and issuer, presented in `x5c`.
    pub fn trusted_subject(
        mut self,
        subject: impl Into<String>,
        issuer: impl Into<String>,
    ) -> Self {
        self.trusted_subjects.push(TrustedSubject {
            subject: subject.into(),
            issuer: issuer.into(),
        });
        self
    }

    /// Adds a federated credential.
    pub fn federated_credential(mut self, credential: FederatedCredential) -> Self {
        self.federated_credentials.push(credential);
        self
    }

    /// Defines app roles (this app as a resource).
    pub fn app_roles(mut self, roles: &[&str]) -> Self {
        self.app_roles.extend(roles.iter().map(|r| (*r).to_owned()));
        self
    }

    /// Adds an App ID URI.
    pub fn identifier_uri(mut self, uri: impl Into<String>) -> Self {
        self.identifier_uris.push(uri.into());
        self
    }

    /// Grants application permissions on `resource`.
    pub fn grant_roles(mut self, resource: impl Into<String>, roles: &[&str]) -> Self {
        self.granted_roles
            .entry(resource.into())
            .or_default()
            .extend(roles.iter().map(|r| (*r).to_owned()));
        self
    }

    /// Consents the app in another tenant.
    pub fn consented_in(mut self, tenant: impl Into<String>) -> Self {
        self.consented_tenants.push(tenant.into());
        self
    }

    /// Exposes delegated scopes (this app as a resource), such as `Accounts.Read`.
    pub fn scopes(mut self, scopes: &[&str]) -> Self {
        self.scopes.extend(scopes.iter().map(|s| (*s).to_owned()));
        self
    }

    /// Registers a redirect URI for the authorization code flow.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uris.push(uri.into());
        self
    }

    /// Sets `accessTokenAcceptedVersion` (1 or 2).
    pub fn access_token_version(mut self, version: u8) -> Self {
        self.access_token_version = Some(version);
        self
    }
}

/// A client secret.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SecretConfig {
    /// The secret value.
    pub value: String,
    /// When it stops working (Unix seconds); never when absent.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

impl std::fmt::Debug for SecretConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretConfig")
            .field("value", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A subject name + issuer registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TrustedSubject {
    /// The certificate subject, RFC 4514 form (`CN=app.contoso.com`).
    pub subject: String,
    /// The issuer, RFC 4514 form.
    pub issuer: String,
}

/// A federated identity credential: tokens from `issuer` for `subject` may stand in for a
/// client credential.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FederatedCredential {
    /// The external token's `iss`.
    pub issuer: String,
    /// The external token's `sub`.
    pub subject: String,
    /// Accepted `aud` values (default `api://AzureADTokenExchange`).
    #[serde(default = "default_federated_audiences")]
    pub audiences: Vec<String>,
    /// The issuer's signing keys as a JWKS document. Not needed when the issuer is one of the
    /// testkit's own tenants.
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
}

impl FederatedCredential {
    /// Trusts tokens from `issuer` for `subject`, audience `api://AzureADTokenExchange`.
    pub fn new(issuer: impl Into<String>, subject: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            subject: subject.into(),
            audiences: default_federated_audiences(),
            jwks: None,
        }
    }

    /// Verifies the issuer's tokens with these keys (a JWKS document).
    pub fn with_jwks(mut self, jwks: serde_json::Value) -> Self {
        self.jwks = Some(jwks);
        self
    }
}

fn default_federated_audiences() -> Vec<String> {
    vec!["api://AzureADTokenExchange".to_owned()]
}

/// A managed identity: the system-assigned identity of the emulated host (no `name`), or a
/// user-assigned identity. Ids left out are derived from the tenant and the name, stably.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ManagedIdentityConfig {
    /// The identity's tenant (id or domain).
    pub tenant: String,
    /// A user-assigned identity's resource name; absent for the system-assigned identity.
    #[serde(default)]
    pub name: Option<String>,
    /// The client (application) id: the tokens' `appid`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The object (principal) id: the tokens' `oid`.
    #[serde(default)]
    pub object_id: Option<String>,
    /// The ARM resource id: the tokens' `xms_mirid`.
    #[serde(default)]
    pub resource_id: Option<String>,
}

impl ManagedIdentityConfig {
    /// The host's system-assigned identity in `tenant`.
    pub fn system_assigned(tenant: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
            name: None,
            client_id: None,
            object_id: None,
            resource_id: None,
        }
    }

    /// A user-assigned identity called `name` in `tenant`.
    pub fn user_assigned(tenant: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            ..Self::system_assigned(tenant)
        }
    }

    /// Sets the client id instead of deriving it.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }
}

/// A user who can sign in at `/authorize`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UserConfig {
    /// The sign-in name (`preferred_username`), such as `alice@contoso.com`; `login_hint` picks
    /// the user by it.
    pub username: String,
    /// The user's home tenant (id or domain).
    pub tenant: String,
    /// The display name (`name`).
    #[serde(default)]
    pub name: Option<String>,
    /// The object id (`oid`); derived from the tenant and username when absent.
    #[serde(default)]
    pub object_id: Option<String>,
    /// Whether the user has a second factor registered: an `acrs` step-up or an MFA user flow
    /// succeeds (adding `mfa` to `amr`) only then.
    #[serde(default)]
    pub mfa: bool,
    /// Tenants (ids or domains) where the user is a guest (B2B): an on-behalf-of request at
    /// one of them is answered with that tenant's token for the user's guest object; at any
    /// other tenant it is refused (AADSTS50020).
    #[serde(default)]
    pub guest_in: Vec<String>,
}

impl UserConfig {
    /// A user without a second factor.
    pub fn new(username: impl Into<String>, tenant: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            tenant: tenant.into(),
            name: None,
            object_id: None,
            mfa: false,
            guest_in: Vec::new(),
        }
    }

    /// Makes the user a guest in `tenant` (id or domain).
    pub fn guest_in(mut self, tenant: impl Into<String>) -> Self {
        self.guest_in.push(tenant.into());
        self
    }

    /// Registers a second factor.
    pub fn with_mfa(mut self) -> Self {
        self.mfa = true;
        self
    }

    /// Sets the display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// An Azure AD B2C user flow (policy).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct B2cPolicyConfig {
    /// The policy name, such as `B2C_1_signupsignin`.
    pub name: String,
    /// An MFA user flow: its tokens carry `amr` with `mfa` (the testkit's convention; B2C apps
    /// recognise the flow by `tfp`/`acr`). Users enrol their second factor during the flow.
    #[serde(default)]
    pub mfa: bool,
}

impl B2cPolicyConfig {
    /// A sign-up/sign-in user flow.
    pub fn sign_up_sign_in(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            mfa: false,
        }
    }

    /// A user flow that requires a second factor.
    pub fn mfa(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            mfa: true,
        }
    }
}

/// The Key Vault: the tenant whose tokens it accepts, what it holds at start, and who may use
/// it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct KeyVaultConfig {
    /// The tenant (name, domain or GUID) whose tokens for `https://vault.azure.net` it accepts.
    pub tenant: String,
    /// Keys, generated at start.
    #[serde(default)]
    pub keys: Vec<VaultKeyConfig>,
    /// Certificates (a key and a self-signed certificate `CN={name}`), generated at start.
    #[serde(default)]
    pub certificates: Vec<VaultCertificateConfig>,
    /// Secrets.
    #[serde(default)]
    pub secrets: Vec<VaultSecretConfig>,
    /// Access policies: what each client may do.
    #[serde(default)]
    pub access_policies: Vec<VaultAccessPolicy>,
}

impl KeyVaultConfig {
    /// An empty vault accepting tokens of `tenant`.
    pub fn new(tenant: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
            ..Self::default()
        }
    }

    /// Adds a key.
    pub fn key(mut self, name: impl Into<String>, kind: VaultKeyType, hsm: bool) -> Self {
        self.keys.push(VaultKeyConfig {
            name: name.into(),
            kind,
            hsm,
        });
        self
    }

    /// Adds a certificate whose secret is exported as `secret_format`.
    pub fn certificate(
        mut self,
        name: impl Into<String>,
        kind: VaultKeyType,
        secret_format: VaultSecretFormat,
    ) -> Self {
        self.certificates.push(VaultCertificateConfig {
            name: name.into(),
            kind,
            hsm: false,
            secret_format,
        });
        self
    }

    /// Adds a secret with a content type.
    pub fn secret(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
        content_type: impl Into<String>,
    ) -> Self {
        self.secrets.push(VaultSecretConfig {
            name: name.into(),
            value: value.into(),
            content_type: Some(content_type.into()),
        });
        self
    }

    /// Lets `client_id` do `permissions`.
    pub fn allow(mut self, client_id: impl Into<String>, permissions: &[VaultPermission]) -> Self {
        let mut policy = VaultAccessPolicy {
            client_id: client_id.into(),
            ..VaultAccessPolicy::default()
        };
        for permission in permissions {
            let (list, name) = match permission {
                VaultPermission::GetKey => (&mut policy.keys, "get"),
                VaultPermission::Sign => (&mut policy.keys, "sign"),
                VaultPermission::GetCertificate => (&mut policy.certificates, "get"),
                VaultPermission::GetSecret => (&mut policy.secrets, "get"),
            };
            list.push(name.to_owned());
        }
        self.access_policies.push(policy);
        self
    }
}

/// A vault key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct VaultKeyConfig {
    /// The key name (1 to 127 letters, digits and dashes).
    pub name: String,
    /// `RSA-2048`, `RSA-3072`, `RSA-4096` or `EC-P256`.
    #[serde(rename = "type")]
    pub kind: VaultKeyType,
    /// An HSM key (`RSA-HSM` / `EC-HSM`).
    #[serde(default)]
    pub hsm: bool,
}

/// A vault certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct VaultCertificateConfig {
    /// The certificate name (1 to 127 letters, digits and dashes).
    pub name: String,
    /// Its key: `RSA-2048` (the default), `RSA-3072`, `RSA-4096` or `EC-P256`.
    #[serde(rename = "type", default = "default_certificate_key")]
    pub kind: VaultKeyType,
    /// A non-exportable HSM key: the certificate's secret then holds only the certificate.
    #[serde(default)]
    pub hsm: bool,
    /// How its secret is exported: `pkcs12` (Key Vault's default) or `pem`.
    #[serde(default)]
    pub secret_format: VaultSecretFormat,
}

fn default_certificate_key() -> VaultKeyType {
    VaultKeyType::Rsa2048
}

/// A vault secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct VaultSecretConfig {
    /// The secret name (1 to 127 letters, digits and dashes).
    pub name: String,
    /// The value.
    pub value: String,
    /// Its content type (none by default).
    #[serde(default)]
    pub content_type: Option<String>,
}

/// A Key Vault access policy, with the permission names of Azure's access policies.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct VaultAccessPolicy {
    /// The client (app or managed identity client id) the policy grants to.
    pub client_id: String,
    /// Key permissions: `get`, `sign`.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Certificate permissions: `get`.
    #[serde(default)]
    pub certificates: Vec<String>,
    /// Secret permissions: `get`.
    #[serde(default)]
    pub secrets: Vec<String>,
}

/// Azure's permission names for one kind of vault object, with what each allows.
type PermissionNames = &'static [(&'static str, VaultPermission)];

impl VaultAccessPolicy {
    /// The permissions, or an error naming the entry (`index` in `access_policies`) and the
    /// unsupported name.
    pub(crate) fn permissions(&self, index: usize) -> Result<Vec<VaultPermission>, TestkitError> {
        let mut permissions = Vec::new();
        let lists: [(&str, &[String], PermissionNames); 3] = [
            (
                "keys",
                &self.keys,
                &[
                    ("get", VaultPermission::GetKey),
                    ("sign", VaultPermission::Sign),
                ],
            ),
            (
                "certificates",
                &self.certificates,
                &[("get", VaultPermission::GetCertificate)],
            ),
            (
                "secrets",
                &self.secrets,
                &[("get", VaultPermission::GetSecret)],
            ),
        ];
        for (field, names, known) in lists {
            for (i, name) in names.iter().enumerate() {
                let permission = known
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, p)| *p)
                    .ok_or_else(|| {
                        let supported: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
                        TestkitError::Config(format!(
                            "`key_vault.access_policies[{index}].{field}[{i}]`: `{name}` is not \
                             supported (supported: {})",
                            supported.join(", ")
                        ))
                    })?;
                permissions.push(permission);
            }
        }
        Ok(permissions)
    }
}

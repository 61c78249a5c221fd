//! Workload identity federation: a token another issuer wrote to a file (Kubernetes' projected
//! service-account token, for example) is sent as the `client_assertion` (WIRE.md section 6).

use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::authority::Authority;
use crate::error::Error;
use crate::flows::{ClientBuilder, ConfidentialClient, WithCredential};

/// The public cloud's login host, used when `AZURE_AUTHORITY_HOST` is not set.
const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com/";
/// Larger files are not tokens: refuse rather than send them.
const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// The file holding the federated token; read afresh for every token request, so a token the
/// platform rotated (Kubernetes rewrites it well before expiry) is always the one sent.
#[derive(Clone)]
pub(crate) struct FederatedTokenFile {
    path: PathBuf,
}

impl fmt::Debug for FederatedTokenFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FederatedTokenFile")
            .field("path", &self.path)
            .finish()
    }
}

impl FederatedTokenFile {
    pub(crate) fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The token, trimmed; a typed error when the file is missing, unreadable, empty or too large.
    pub(crate) fn read(&self) -> Result<Zeroizing<String>, Error> {
        let path = self.path.display();
        let fail = |what: String| {
            Error::Configuration(format!("the federated token file `{path}` {what}"))
        };
        let metadata =
            std::fs::metadata(&self.path).map_err(|e| fail(format!("cannot be read: {e}")))?;
        if metadata.len() > MAX_TOKEN_FILE_BYTES {
            return Err(fail(format!("is larger than {MAX_TOKEN_FILE_BYTES} bytes")));
        }
        let bytes = Zeroizing::new(
            std::fs::read(&self.path).map_err(|e| fail(format!("cannot be read: {e}")))?,
        );
        let text = std::str::from_utf8(&bytes).map_err(|_| fail("is not UTF-8 text".to_owned()))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(fail("is empty".to_owned()));
        }
        if token.split('.').count() != 3 || token.contains(char::is_whitespace) {
            return Err(fail("does not hold a compact JWT".to_owned()));
        }
        Ok(Zeroizing::new(token.to_owned()))
    }
}

/// Workload identity configuration from the environment Azure's webhooks and SDKs use:
/// `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE` and
/// `AZURE_AUTHORITY_HOST` (default `https://login.microsoftonline.com/`).
///
/// ```no_run
/// # async fn run() -> Result<(), confidant::Error> {
/// use confidant::WorkloadIdentity;
///
/// let client = WorkloadIdentity::from_env()?.client_builder()?.build()?;
/// let token = client.acquire_token_for_client(&["https://vault.azure.net/.default"]).await?;
/// # let _ = token; Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadIdentity {
    client_id: String,
    tenant_id: String,
    token_file: PathBuf,
    authority_host: String,
}

impl WorkloadIdentity {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `var` instead of the process environment (tests,
    /// embedding), with the same rules.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let required = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    Error::Configuration(format!("workload identity needs {name} to be set"))
                })
        };
        let mut authority_host = var("AZURE_AUTHORITY_HOST")
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_AUTHORITY_HOST.to_owned());
        if !authority_host.ends_with('/') {
            authority_host.push('/');
        }
        Ok(Self {
            client_id: required("AZURE_CLIENT_ID")?,
            tenant_id: required("AZURE_TENANT_ID")?,
            token_file: PathBuf::from(required("AZURE_FEDERATED_TOKEN_FILE")?),
            authority_host,
        })
    }

    /// The client (application) id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The tenant.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// The federated token file.
    pub fn token_file(&self) -> &Path {
        &self.token_file
    }

    /// The login host, with a trailing `/`.
    pub fn authority_host(&self) -> &str {
        &self.authority_host
    }

    /// The authority: `{AZURE_AUTHORITY_HOST}{AZURE_TENANT_ID}`, with the Entra layout on a
    /// host that is not a Microsoft cloud's.
    pub fn authority(&self) -> Result<Authority, Error> {
        Authority::parse(&format!("{}{}", self.authority_host, self.tenant_id)).or_else(|_| {
            Authority::entra_at(self.authority_host.trim_end_matches('/'), &self.tenant_id)
        })
    }

    /// A client builder for this app at this authority, authenticating with the token file.
    /// Checks that the file is readable now, so a mistake shows at start-up.
    pub fn client_builder(&self) -> Result<ClientBuilder<WithCredential>, Error> {
        let file = FederatedTokenFile::new(&self.token_file);
        file.read()?;
        Ok(
            ConfidentialClient::builder(self.authority()?, self.client_id.clone())
                .federated_token_file(self.token_file.clone()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn environment_is_read_and_checked() {
        let identity = WorkloadIdentity::from_vars(lookup(&[
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
        ]))
        .expect("complete");
        assert_eq!(identity.authority_host(), DEFAULT_AUTHORITY_HOST);
        assert_eq!(
            identity
                .authority()
                .expect("authority")
                .token_endpoint()
                .as_str(),
            "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token"
        );
        let gov = WorkloadIdentity::from_vars(lookup(&[
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/f"),
            ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us"),
        ]))
        .expect("gov");
        assert_eq!(gov.authority_host(), "https://login.microsoftonline.us/");
        for missing in [
            "AZURE_CLIENT_ID",
            "AZURE_TENANT_ID",
            "AZURE_FEDERATED_TOKEN_FILE",
        ] {
            let vars: Vec<(&str, &str)> = [
                ("AZURE_CLIENT_ID", "c"),
                ("AZURE_TENANT_ID", "t"),
                ("AZURE_FEDERATED_TOKEN_FILE", "/f"),
            ]
            .into_iter()
            .filter(|(k, _)| *k != missing)
            .collect();
            let e = WorkloadIdentity::from_vars(lookup(&vars)).expect_err(missing);
            assert!(e.to_string().contains(missing), "{e}");
        }
        let http = WorkloadIdentity::from_vars(lookup(&[
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/f"),
            ("AZURE_AUTHORITY_HOST", "http://login.example/"),
        ]))
        .expect("parsed");
        assert!(http.authority().is_err(), "http to a public host");
    }
}

//! `confidant`: tokens, client assertions, certificate thumbprints and JWT decoding.
//!
//! Exit codes: 0 success; 1 rejected (the authority refused the credential or request);
//! 2 usage or configuration error; 3 network or service error.

#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Args, Parser, Subcommand, ValueEnum};
use confidant::credential::AssertionCallback;
use confidant::http::{HttpClient, ReqwestClient};
use confidant::{
    Algorithm, Authority, Certificate, ClientAssertionBuilder, ConfidentialClient, Error, Password,
    PemSigner, Pkcs12Signer, Signer,
};

#[derive(Parser)]
#[command(
    name = "confidant",
    version,
    about = "Entra ID and OpenID Connect client credentials from the shell"
)]
struct Cli {
    /// Also trust the CA certificates in this PEM file (a private authority, the testkit in TLS mode).
    #[arg(long, global = true, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Gets an app token (client credentials) and prints it.
    Token {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        credential: CredentialArgs,
        /// A scope; repeat for several. App tokens take one `{resource}/.default`.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Prints JSON with the token, its expiry and scopes.
        #[arg(long)]
        json: bool,
        /// The client assertion's algorithm, for a provider that pins the client to one
        /// (default: PS256 for RSA, ES256 for P-256).
        #[arg(long, value_enum, requires = "certificate")]
        alg: Option<Alg>,
    },
    /// Prints a signed client assertion (RFC 7523) for the authority's token endpoint.
    Assertion {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        certificate: CertificateArgs,
        /// The JWS algorithm (default: PS256 for RSA, ES256 for P-256).
        #[arg(long, value_enum)]
        alg: Option<Alg>,
    },
    /// Prints the SHA-1 and SHA-256 thumbprints of a PEM or PFX certificate.
    Thumbprint {
        /// A PEM certificate, or a PFX with `--password`.
        file: PathBuf,
        /// The PFX password.
        #[arg(
            long,
            env = "AZURE_CLIENT_CERTIFICATE_PASSWORD",
            hide_env_values = true
        )]
        password: Option<String>,
        /// Prints JSON.
        #[arg(long)]
        json: bool,
    },
    /// Validates bearer access tokens like an API would, printing their claims.
    ///
    /// Discovery at `<authority>/.well-known/openid-configuration`. With `--batch`, reads JSON
    /// lines `{"token": "..."}` on standard input and writes one JSON line per input line.
    Validate(ValidateArgs),
    /// Prints a JWT's header and claims WITHOUT verifying its signature.
    Decode {
        /// The token, or `-` to read it from standard input.
        token: String,
    },
}

#[derive(Args)]
struct ValidateArgs {
    /// Reads `{"token": "<compact JWS>"}` lines on stdin; writes one result line per input line.
    #[arg(long)]
    batch: bool,
    /// The authority or issuer URL (Entra: `https://login.microsoftonline.com/<tenant>/v2.0`).
    #[arg(long)]
    authority: String,
    /// An accepted audience; repeat for several.
    #[arg(long = "audience", required = true)]
    audiences: Vec<String>,
    /// An accepted tenant id; repeat for several (required for `common`/`organizations`).
    #[arg(long = "tenant")]
    tenants: Vec<String>,
    /// Clock skew in seconds (default 300, at most 600).
    #[arg(long, value_name = "SECONDS")]
    clock_skew: Option<u64>,
    /// The least seconds between JWKS refreshes for unknown key ids (default 300).
    #[arg(long, value_name = "SECONDS")]
    jwks_min_refresh: Option<u64>,
    /// A scope the token must carry; repeat for several (all required).
    #[arg(long = "require-scope")]
    require_scopes: Vec<String>,
    /// An app role the token must carry; repeat for several (all required).
    #[arg(long = "require-role")]
    require_roles: Vec<String>,
    /// The least client authentication: 0 public, 1 secret, 2 certificate.
    #[arg(long, value_parser = ["0", "1", "2"])]
    require_azpacr: Option<String>,
    /// A Conditional Access authentication context the token's `acrs` must contain (e.g. c1).
    #[arg(long)]
    require_acrs: Option<String>,
    /// A B2C policy accepted besides the authority's.
    #[arg(long)]
    b2c_policy: Option<String>,
    /// The token; read from standard input when absent.
    token: Option<String>,
}

#[derive(Args)]
struct Target {
    /// The authority URL (Entra, B2C, CIAM, or an OpenID issuer, discovered).
    #[arg(long, conflicts_with = "tenant")]
    authority: Option<String>,
    /// The tenant, with `--authority-host` (Entra layout).
    #[arg(long, env = "AZURE_TENANT_ID")]
    tenant: Option<String>,
    /// The login host for `--tenant`.
    #[arg(
        long,
        env = "AZURE_AUTHORITY_HOST",
        default_value = "https://login.microsoftonline.com"
    )]
    authority_host: String,
    /// The application (client) id.
    #[arg(long, env = "AZURE_CLIENT_ID")]
    client_id: String,
}

#[derive(Args)]
struct CertificateArgs {
    /// A PEM file with the certificate (and the key, unless `--key`), or a PFX file.
    #[arg(long, env = "AZURE_CLIENT_CERTIFICATE_PATH")]
    certificate: Option<PathBuf>,
    /// A PEM private key, when not in the certificate file.
    #[arg(long, requires = "certificate")]
    key: Option<PathBuf>,
    /// The PFX password or PEM key passphrase.
    #[arg(
        long,
        env = "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        hide_env_values = true
    )]
    password: Option<String>,
    /// Sends the certificate chain as `x5c` (subject name + issuer registrations).
    #[arg(long, env = "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", value_parser = parse_bool, default_value = "false")]
    x5c: bool,
}

#[derive(Args)]
struct CredentialArgs {
    /// A client secret (prefer the AZURE_CLIENT_SECRET variable: arguments show in `ps`).
    #[arg(long, env = "AZURE_CLIENT_SECRET", hide_env_values = true, conflicts_with_all = ["certificate", "assertion_file"])]
    client_secret: Option<String>,
    #[command(flatten)]
    certificate: CertificateArgs,
    /// A file holding a client assertion JWT (a federated token), re-read for every request.
    #[arg(
        long,
        env = "AZURE_FEDERATED_TOKEN_FILE",
        conflicts_with = "certificate"
    )]
    assertion_file: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Alg {
    #[value(name = "PS256")]
    Ps256,
    #[value(name = "RS256")]
    Rs256,
    #[value(name = "ES256")]
    Es256,
}

impl From<Alg> for Algorithm {
    fn from(alg: Alg) -> Self {
        match alg {
            Alg::Ps256 => Algorithm::Ps256,
            Alg::Rs256 => Algorithm::Rs256,
            Alg::Es256 => Algorithm::Es256,
        }
    }
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" | "" => Ok(false),
        other => Err(format!(
            "`{other}` is not a boolean (use true/false or 1/0)"
        )),
    }
}

/// A failure and its exit code.
struct Failure {
    code: u8,
    message: String,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = if e.is_rejected() {
            1
        } else if e.is_transport() || e.is_retryable() || e.is_invalid_response() {
            3
        } else {
            2
        };
        Self {
            code,
            message: format!("{} ({})", e, e.kind().as_str()),
        }
    }
}

impl From<confidant::SignerError> for Failure {
    fn from(e: confidant::SignerError) -> Self {
        Failure::from(Error::from(e))
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("confidant: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let http = http_client(cli.ca_file.as_deref())?;
    match cli.command {
        Command::Token {
            target,
            credential,
            scopes,
            json,
            alg,
        } => token(http, target, credential, scopes, json, alg).await,
        Command::Assertion {
            target,
            certificate,
            alg,
        } => assertion(http, target, certificate, alg).await,
        Command::Thumbprint {
            file,
            password,
            json,
        } => thumbprint(&file, password, json),
        Command::Validate(args) => validate(http, args).await,
        Command::Decode { token } => decode(&token),
    }
}

fn http_client(ca_file: Option<&Path>) -> Result<Arc<dyn HttpClient>, Failure> {
    let mut builder = ReqwestClient::builder();
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
        builder = builder.add_root_certificates_pem(&pem);
    }
    Ok(Arc::new(builder.build()?))
}

async fn authority(http: &dyn HttpClient, target: &Target) -> Result<Authority, Failure> {
    match (&target.authority, &target.tenant) {
        (Some(url), _) => match Authority::parse(url) {
            Ok(authority) => Ok(authority),
            // Not a Microsoft host: an OpenID provider, described by its discovery document.
            Err(e) if e.is_invalid_endpoint() && confidant::http::check_endpoint(url).is_ok() => {
                Ok(Authority::discover(http, url).await?)
            }
            Err(e) => Err(e.into()),
        },
        (None, Some(tenant)) => Ok(Authority::entra_at(
            target.authority_host.trim_end_matches('/'),
            tenant,
        )?),
        (None, None) => Err(usage("give --authority, or --tenant (or AZURE_TENANT_ID)")),
    }
}

async fn validate(http: Arc<dyn HttpClient>, args: ValidateArgs) -> Result<(), Failure> {
    use confidant::validator::{BearerValidator, ClientAuthStrength, Requirements};
    use std::io::{BufRead as _, Write as _};
    use std::time::Duration;

    let authority = Authority::resolve(http.as_ref(), &args.authority).await?;
    let mut builder = BearerValidator::builder(authority).http_client(http);
    for audience in &args.audiences {
        builder = builder.audience(audience);
    }
    if !args.tenants.is_empty() {
        builder = builder.allowed_tenants(args.tenants.iter().map(String::as_str));
    }
    if let Some(seconds) = args.clock_skew {
        builder = builder.clock_skew(Duration::from_secs(seconds));
    }
    if let Some(seconds) = args.jwks_min_refresh {
        builder = builder.unknown_kid_cooldown(Duration::from_secs(seconds));
    }
    if let Some(policy) = &args.b2c_policy {
        builder = builder.b2c_policy(policy);
    }
    let validator = builder.build()?;
    let mut requirements = Requirements::new();
    if !args.require_scopes.is_empty() {
        requirements = requirements.all_scopes(args.require_scopes.iter().map(String::as_str));
    }
    if !args.require_roles.is_empty() {
        requirements = requirements.all_roles(args.require_roles.iter().map(String::as_str));
    }
    if let Some(level) = &args.require_azpacr {
        requirements = requirements.min_client_auth(match level.as_str() {
            "0" => ClientAuthStrength::Public,
            "1" => ClientAuthStrength::Secret,
            _ => ClientAuthStrength::Certificate,
        });
    }
    if let Some(context) = &args.require_acrs {
        requirements = requirements.auth_context(context);
    }

    if !args.batch {
        let token = match args.token {
            Some(token) if token != "-" => token,
            _ => {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|e| usage(format!("cannot read the token from stdin: {e}")))?;
                text.trim().to_owned()
            }
        };
        return match validator.validate_with(&token, &requirements).await {
            Ok(valid) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(valid.claims()).unwrap_or_default()
                );
                Ok(())
            }
            Err(e) => Err(Failure {
                code: if e.kind() == confidant::validator::ValidationErrorKind::Metadata {
                    3
                } else {
                    1
                },
                message: format!("{e} ({}: {})", e.kind().as_str(), e.detail()),
            }),
        };
    }
    if args.token.is_some() {
        return Err(usage(
            "--batch reads tokens from stdin; give no TOKEN argument",
        ));
    }
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| usage(format!("cannot read stdin: {e}")))?;
        let token = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v.get("token").and_then(|t| t.as_str()).map(str::to_owned));
        let result = match token {
            None => serde_json::json!({
                "ok": false,
                "kind": "malformed",
                "message": "the input line is not a JSON object with a string member \"token\"",
            }),
            Some(token) => match validator.validate_with(&token, &requirements).await {
                Ok(valid) => serde_json::json!({"ok": true, "claims": valid.claims()}),
                Err(e) => serde_json::json!({
                    "ok": false,
                    "kind": e.kind().as_str(),
                    "message": format!("{e} ({})", e.detail()),
                }),
            },
        };
        writeln!(stdout, "{result}")
            .and_then(|()| stdout.flush())
            .map_err(|e| Failure {
                code: 3,
                message: format!("cannot write stdout: {e}"),
            })?;
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))
}

fn load_signer(args: &CertificateArgs) -> Result<Option<Arc<dyn Signer>>, Failure> {
    let Some(path) = &args.certificate else {
        return Ok(None);
    };
    let password = args.password.as_deref().map(Password::new);
    let bytes = read(path)?;
    let signer: Arc<dyn Signer> =
        if bytes.starts_with(b"-----") || bytes.windows(11).any(|w| w == b"-----BEGIN ") {
            let mut builder = PemSigner::builder().certificate_pem(&bytes);
            if let Some(key) = &args.key {
                builder = builder.private_key_pem(&read(key)?);
            }
            if let Some(p) = password {
                builder = builder.passphrase(p);
            }
            Arc::new(builder.build()?)
        } else {
            Arc::new(Pkcs12Signer::from_pkcs12(&bytes, password.as_ref())?)
        };
    Ok(Some(signer))
}

async fn token(
    http: Arc<dyn HttpClient>,
    target: Target,
    credential: CredentialArgs,
    scopes: Vec<String>,
    json: bool,
    alg: Option<Alg>,
) -> Result<(), Failure> {
    let authority = authority(http.as_ref(), &target).await?;
    let builder =
        ConfidentialClient::builder(authority, target.client_id.clone()).http_client(http);
    let builder = if let Some(secret) = credential.client_secret {
        builder.client_secret(secret)
    } else if let Some(signer) = load_signer(&credential.certificate)? {
        let builder = builder
            .certificate(signer)
            .send_x5c(credential.certificate.x5c);
        match alg {
            Some(alg) => builder.assertion_algorithm(alg.into()),
            None => builder,
        }
    } else if let Some(path) = credential.assertion_file {
        builder.client_assertion(AssertionCallback::new(move |_| {
            let path = path.clone();
            async move { std::fs::read_to_string(&path) }
        }))
    } else {
        return Err(usage(
            "no credential: give --client-secret, --certificate (PEM or PFX) or --assertion-file (or their AZURE_* variables)",
        ));
    };
    let client = builder.build()?;
    let result = client.acquire_token_for_client(&scopes).await?;
    if json {
        let expires_on = result
            .expires_on()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let out = serde_json::json!({
            "access_token": result.access_token().expose_secret(),
            "token_type": result.token().token_type(),
            "expires_on": expires_on,
            "scopes": result.token().scopes(),
        });
        println!("{out}");
    } else {
        println!("{}", result.access_token().expose_secret());
    }
    Ok(())
}

async fn assertion(
    http: Arc<dyn HttpClient>,
    target: Target,
    args: CertificateArgs,
    alg: Option<Alg>,
) -> Result<(), Failure> {
    let authority = authority(http.as_ref(), &target).await?;
    let signer = load_signer(&args)?
        .ok_or_else(|| usage("give --certificate (or AZURE_CLIENT_CERTIFICATE_PATH)"))?;
    let mut builder =
        ClientAssertionBuilder::for_authority(&authority, target.client_id).x5c(args.x5c);
    if let Some(alg) = alg {
        builder = builder.algorithm(alg.into());
    }
    let assertion = builder.sign(signer.as_ref()).await?;
    println!("{}", assertion.expose_secret());
    Ok(())
}

fn thumbprint(file: &Path, password: Option<String>, json: bool) -> Result<(), Failure> {
    let bytes = read(file)?;
    let certificate = if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        Certificate::from_pem(&bytes)?
    } else {
        let password = password.map(Password::new);
        Pkcs12Signer::from_pkcs12(&bytes, password.as_ref())?
            .certificate()
            .clone()
    };
    if json {
        let out = serde_json::json!({
            "subject": certificate.subject(),
            "sha1": certificate.sha1_hex(),
            "sha256": certificate.sha256_hex(),
            "x5t": certificate.x5t(),
            "x5t#S256": certificate.x5t_s256(),
        });
        println!("{out}");
    } else {
        println!("subject   {}", certificate.subject());
        println!("sha1      {}", certificate.sha1_hex());
        println!("sha256    {}", certificate.sha256_hex());
        println!("x5t       {}", certificate.x5t());
        println!("x5t#S256  {}", certificate.x5t_s256());
    }
    Ok(())
}

fn decode(token: &str) -> Result<(), Failure> {
    let token = if token == "-" {
        let mut input = String::new();
        std::io::stdin()
            .read_to_string(&mut input)
            .map_err(|e| usage(format!("cannot read standard input: {e}")))?;
        input
    } else {
        token.to_owned()
    };
    let parts: Vec<&str> = token.trim().split('.').collect();
    if parts.len() != 3 {
        return Err(usage(
            "not a compact JWS: expected three dot-separated parts",
        ));
    }
    let part = |i: usize, name: &str| -> Result<serde_json::Value, Failure> {
        let bytes = URL_SAFE_NO_PAD
            .decode(parts[i])
            .map_err(|_| usage(format!("the {name} is not unpadded base64url")))?;
        serde_json::from_slice(&bytes).map_err(|_| usage(format!("the {name} is not JSON")))
    };
    let out = serde_json::json!({
        "verified": false,
        "note": "decoded WITHOUT verifying the signature; do not trust these claims",
        "header": part(0, "header")?,
        "claims": part(1, "claims")?,
    });
    eprintln!("confidant: UNVERIFIED: the signature was not checked");
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(())
}

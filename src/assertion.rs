//! The RFC 7523 `private_key_jwt` client-assertion builder.
//!
//! Built by hand (serde_json + base64url) rather than with a generic JWT encoder: the signer is
//! async and may be remote, and the header, which is the same for every assertion of one signer,
//! is encoded once and kept.

use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::authority::Authority;
use crate::clock::{Clock, SystemClock, unix_seconds};
use crate::error::Error;
use crate::signer::{Algorithm, Signer, fill_random};

/// The `client_assertion_type` that goes with a client assertion.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The longest lifetime an assertion may have (Entra documents 10 minutes).
pub const MAX_LIFETIME: Duration = Duration::from_secs(600);

/// A reused assertion is not handed out once less than this remains before its `exp`.
const REUSE_MARGIN: Duration = Duration::from_secs(60);

const REGISTERED_CLAIMS: &[&str] = &["aud", "iss", "sub", "jti", "iat", "nbf", "exp"];

/// Which certificate thumbprint header the assertion carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ThumbprintHeader {
    /// `x5t#S256` with PS256 and ES256, `x5t` with RS256 (what Entra expects; the default).
    #[default]
    Auto,
    /// `x5t#S256` only.
    Sha256,
    /// `x5t` (SHA-1) only.
    Sha1,
    /// Both `x5t` and `x5t#S256`.
    Both,
    /// Neither (the provider selects the key by `kid` or tries them all).
    None,
}

/// A signed client assertion: a compact JWS for the `client_assertion` form field.
///
/// Not `Clone`, redacted in `Debug`: it authenticates the client until it expires.
pub struct ClientAssertion {
    jwt: Zeroizing<String>,
    expires_at: SystemTime,
}

impl ClientAssertion {
    /// The compact JWS.
    ///
    /// # Security
    /// Only the token request body may carry this; never log or persist it.
    pub fn expose_secret(&self) -> &str {
        &self.jwt
    }

    /// The assertion's `exp`.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

impl fmt::Debug for ClientAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientAssertion([redacted])")
    }
}

/// Builds RFC 7523 client assertions ([RFC 7523 §3]) for one client and token endpoint.
///
/// Defaults: the first algorithm of PS256, RS256, ES256 that the signer offers; `x5t#S256` with
/// PS256/ES256 and `x5t` with RS256; no `x5c`; `aud` = the token endpoint; `iss` = `sub` = the
/// client id; a fresh UUID v4 `jti`; `iat` = `nbf` = now; `exp` = now + 600 s. Configure once,
/// then call [`sign`](Self::sign) for each token request.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), confidant::Error> {
/// use confidant::{Authority, ClientAssertionBuilder, PemSigner};
/// # let cert_pem = include_bytes!("../tests/fixtures/rsa2048.crt");
/// # let key_pem = include_bytes!("../tests/fixtures/rsa2048.pkcs8.key");
/// let signer = PemSigner::from_pem(cert_pem, key_pem)?;
/// let authority = Authority::parse("https://login.microsoftonline.com/contoso.onmicrosoft.com")?;
/// let builder = ClientAssertionBuilder::for_authority(&authority, "00000000-0000-0000-0000-000000000001");
/// let assertion = builder.sign(&signer).await?;
/// assert_eq!(assertion.expose_secret().split('.').count(), 3);
/// # Ok(()) }
/// ```
///
/// [RFC 7523 §3]: https://www.rfc-editor.org/rfc/rfc7523#section-3
pub struct ClientAssertionBuilder {
    client_id: String,
    audience: String,
    algorithm: Option<Algorithm>,
    preferred: Vec<Algorithm>,
    thumbprint: ThumbprintHeader,
    x5c: bool,
    lifetime: Duration,
    extra_claims: serde_json::Map<String, serde_json::Value>,
    clock: Arc<dyn Clock>,
    reuse: bool,
    microsoft: bool,
    /// `{"aud":…,"iss":…,"sub":…,"jti":"` and `,"k":v…}`: the fixed parts of the claims.
    claims_parts: OnceLock<(String, String)>,
    state: Mutex<State>,
}

/// What is computed once and kept between calls.
#[derive(Default)]
struct State {
    /// The encoded header for the last signer used, with what it was built from.
    header: Option<CachedHeader>,
    /// The last assertion, when reuse is on.
    last: Option<(Zeroizing<String>, SystemTime)>,
    /// Randomness for `jti`s, drawn from the CSPRNG in batches: one draw costs as much as the
    /// rest of the assertion around an ES256 signature.
    random: RandomPool,
}

const JTI_BATCH: usize = 32;

struct RandomPool {
    bytes: [u8; 16 * JTI_BATCH],
    next: usize,
}

impl Default for RandomPool {
    fn default() -> Self {
        Self {
            bytes: [0; 16 * JTI_BATCH],
            next: JTI_BATCH,
        }
    }
}

impl RandomPool {
    /// A fresh random UUID v4; every 16 bytes are used once.
    fn uuid_v4(&mut self) -> Result<uuid::Uuid, Error> {
        if self.next == JTI_BATCH {
            fill_random(&mut self.bytes)?;
            self.next = 0;
        }
        let start = self.next * 16;
        let mut random = [0u8; 16];
        random.copy_from_slice(&self.bytes[start..start + 16]);
        self.bytes[start..start + 16].fill(0);
        self.next += 1;
        Ok(uuid::Builder::from_random_bytes(random).into_uuid())
    }
}

struct CachedHeader {
    alg: Algorithm,
    x5t_s256: Option<String>,
    key_id: Option<String>,
    encoded: Arc<str>,
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    x5t: Option<&'a str>,
    #[serde(rename = "x5t#S256", skip_serializing_if = "Option::is_none")]
    x5t_s256: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x5c: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
}

impl ClientAssertionBuilder {
    /// Assertions for `client_id` at the token endpoint `audience` (a generic OpenID provider).
    pub fn new(client_id: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            audience: audience.into(),
            algorithm: None,
            preferred: vec![Algorithm::Ps256, Algorithm::Rs256, Algorithm::Es256],
            thumbprint: ThumbprintHeader::Auto,
            x5c: false,
            lifetime: MAX_LIFETIME,
            extra_claims: serde_json::Map::new(),
            clock: Arc::new(SystemClock),
            reuse: false,
            microsoft: false,
            claims_parts: OnceLock::new(),
            state: Mutex::new(State::default()),
        }
    }

    /// Assertions for `client_id` at `authority`'s token endpoint, with its defaults.
    pub fn for_authority(authority: &Authority, client_id: impl Into<String>) -> Self {
        let mut builder = Self::new(client_id, authority.token_endpoint().as_str());
        builder.microsoft = authority.is_microsoft();
        builder
    }

    /// The same settings for another authority's token endpoint (a B2C user flow's).
    pub(crate) fn for_other_authority(&self, authority: &Authority) -> Self {
        Self {
            client_id: self.client_id.clone(),
            audience: authority.token_endpoint().as_str().to_owned(),
            algorithm: self.algorithm,
            preferred: self.preferred.clone(),
            thumbprint: self.thumbprint,
            x5c: self.x5c,
            lifetime: self.lifetime,
            extra_claims: self.extra_claims.clone(),
            clock: Arc::clone(&self.clock),
            reuse: self.reuse,
            microsoft: authority.is_microsoft(),
            claims_parts: OnceLock::new(),
            state: Mutex::new(State::default()),
        }
    }

    fn changed(mut self) -> Self {
        self.claims_parts = OnceLock::new();
        self.state = Mutex::new(State::default());
        self
    }

    /// Always use `alg`; [`sign`](Self::sign) fails if the signer cannot produce it.
    pub fn algorithm(mut self, alg: Algorithm) -> Self {
        self.algorithm = Some(alg);
        self.changed()
    }

    /// The algorithms the provider accepts, preferred first (for example from discovery's
    /// `token_endpoint_auth_signing_alg_values_supported`); the first one the signer offers wins.
    pub fn preferred_algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.preferred = algorithms.to_vec();
        self.changed()
    }

    /// Which thumbprint header to send (default [`ThumbprintHeader::Auto`]).
    pub fn thumbprint(mut self, thumbprint: ThumbprintHeader) -> Self {
        self.thumbprint = thumbprint;
        self.changed()
    }

    /// Sends the certificate chain as `x5c`, for subject name + issuer registrations.
    pub fn x5c(mut self, send: bool) -> Self {
        self.x5c = send;
        self.changed()
    }

    /// How long each assertion is valid: more than zero and at most 10 minutes.
    pub fn lifetime(mut self, lifetime: Duration) -> Result<Self, Error> {
        if lifetime.is_zero() || lifetime > MAX_LIFETIME {
            return Err(Error::Configuration(format!(
                "assertion lifetime must be between 1 s and {} s",
                MAX_LIFETIME.as_secs()
            )));
        }
        self.lifetime = lifetime;
        Ok(self.changed())
    }

    /// Adds a claim. The registered claims (`aud`, `iss`, `sub`, `jti`, `iat`, `nbf`, `exp`) are
    /// the builder's and cannot be overridden.
    pub fn extra_claim(
        mut self,
        name: impl Into<String>,
        value: serde_json::Value,
    ) -> Result<Self, Error> {
        let name = name.into();
        if REGISTERED_CLAIMS.contains(&name.as_str()) {
            return Err(Error::Configuration(format!(
                "claim `{name}` is set by the assertion builder and cannot be overridden"
            )));
        }
        self.extra_claims.insert(name, value);
        Ok(self.changed())
    }

    /// Reads `iat`/`nbf`/`exp` from `clock`.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self.changed()
    }

    /// Reuses one assertion across calls until shortly (60 s) before its `exp`, as msal-python
    /// does. Off by default: providers that enforce single use of `jti` (RFC 7523 §3) reject a
    /// replayed assertion.
    pub fn reuse(mut self, reuse: bool) -> Self {
        self.reuse = reuse;
        self.changed()
    }

    /// The `aud` claim.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Picks the algorithm for `signer`.
    fn choose_algorithm(&self, signer: &dyn Signer) -> Result<Algorithm, Error> {
        let offered = signer.algorithms();
        let chosen = match self.algorithm {
            Some(alg) => offered.contains(&alg).then_some(alg),
            None => self.preferred.iter().copied().find(|a| offered.contains(a)),
        };
        chosen.ok_or_else(|| {
            let offered: Vec<&str> = offered.iter().map(|a| a.as_str()).collect();
            Error::Configuration(format!(
                "the signer offers {offered:?}, none of the algorithms asked for"
            ))
        })
    }

    fn header(
        &self,
        state: &mut State,
        signer: &dyn Signer,
        alg: Algorithm,
    ) -> Result<Arc<str>, Error> {
        let certificate = signer.certificate();
        let x5t_s256 = certificate.map(|c| c.x5t_s256());
        let key_id = signer.key_id();
        if let Some(h) = &state.header
            && h.alg == alg
            && h.x5t_s256.as_deref() == x5t_s256
            && h.key_id.as_deref() == key_id
        {
            return Ok(Arc::clone(&h.encoded));
        }
        if alg == Algorithm::Es256 && self.microsoft {
            tracing::warn!(
                "ES256 client assertion for a Microsoft authority: Entra ID accepts RSA certificates only"
            );
        }
        let (sha1, sha256) = match self.thumbprint {
            ThumbprintHeader::Auto if alg == Algorithm::Rs256 => (true, false),
            ThumbprintHeader::Auto | ThumbprintHeader::Sha256 => (false, true),
            ThumbprintHeader::Sha1 => (true, false),
            ThumbprintHeader::Both => (true, true),
            ThumbprintHeader::None => (false, false),
        };
        if self.x5c && certificate.is_none() {
            return Err(Error::Configuration(
                "x5c was asked for but the signer has no certificate".into(),
            ));
        }
        let header = Header {
            alg: alg.as_str(),
            typ: "JWT",
            x5t: certificate.filter(|_| sha1).map(|c| c.x5t()),
            x5t_s256: x5t_s256.filter(|_| sha256),
            x5c: certificate.filter(|_| self.x5c).map(|c| c.x5c()),
            kid: key_id,
        };
        let json = serde_json::to_vec(&header).map_err(|e| {
            Error::Configuration(format!("cannot encode the assertion header: {e}"))
        })?;
        let encoded: Arc<str> = URL_SAFE_NO_PAD.encode(json).into();
        state.header = Some(CachedHeader {
            alg,
            x5t_s256: x5t_s256.map(str::to_owned),
            key_id: key_id.map(str::to_owned),
            encoded: Arc::clone(&encoded),
        });
        Ok(encoded)
    }

    fn claims_parts(&self) -> Result<(String, String), Error> {
        let encode = |v: &str| {
            serde_json::to_string(v)
                .map_err(|e| Error::Configuration(format!("cannot encode a claim: {e}")))
        };
        let client_id = encode(&self.client_id)?;
        let prefix = format!(
            r#"{{"aud":{},"iss":{client_id},"sub":{client_id},"jti":""#,
            encode(&self.audience)?
        );
        let mut suffix = String::new();
        for (name, value) in &self.extra_claims {
            suffix.push(',');
            suffix.push_str(&encode(name)?);
            suffix.push(':');
            suffix.push_str(
                &serde_json::to_string(value).map_err(|e| {
                    Error::Configuration(format!("cannot encode claim `{name}`: {e}"))
                })?,
            );
        }
        suffix.push('}');
        Ok((prefix, suffix))
    }

    /// Signs a new assertion with `signer` (or returns the kept one, when reuse is on).
    pub async fn sign(&self, signer: &dyn Signer) -> Result<ClientAssertion, Error> {
        // A rotating signer hands out one version for the header and the signature both.
        let snapshot = signer.snapshot();
        let signer: &dyn Signer = snapshot.as_deref().unwrap_or(signer);
        let alg = self.choose_algorithm(signer)?;
        let now = self.clock.now();
        let (header, jti) = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let header = self.header(&mut state, signer, alg)?;
            if let Some((jwt, expires_at)) = state.last.as_ref().filter(|_| self.reuse) {
                let fresh = now + REUSE_MARGIN < *expires_at;
                if fresh && jwt.split('.').next() == Some(&*header) {
                    return Ok(ClientAssertion {
                        jwt: jwt.clone(),
                        expires_at: *expires_at,
                    });
                }
            }
            (header, state.random.uuid_v4()?)
        };
        let (prefix, suffix) = match self.claims_parts.get() {
            Some(parts) => parts,
            None => {
                let parts = self.claims_parts()?;
                self.claims_parts.get_or_init(|| parts)
            }
        };

        let iat = unix_seconds(now);
        let exp = iat + self.lifetime.as_secs();
        let mut claims = String::with_capacity(prefix.len() + suffix.len() + 96);
        claims.push_str(prefix);
        let _ = write!(
            claims,
            r#"{}","iat":{iat},"nbf":{iat},"exp":{exp}"#,
            jti.hyphenated()
        );
        claims.push_str(suffix);

        let mut jwt = String::with_capacity(header.len() + claims.len() * 4 / 3 + 700);
        jwt.push_str(&header);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(claims.as_bytes(), &mut jwt);
        let signature = signer.sign(alg, jwt.as_bytes()).await?;
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_bytes(), &mut jwt);

        let expires_at = SystemTime::UNIX_EPOCH + Duration::from_secs(exp);
        let jwt = Zeroizing::new(jwt);
        if self.reuse {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.last = Some((jwt.clone(), expires_at));
        }
        Ok(ClientAssertion { jwt, expires_at })
    }
}

impl fmt::Debug for ClientAssertionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAssertionBuilder")
            .field("client_id", &self.client_id)
            .field("audience", &self.audience)
            .field("algorithm", &self.algorithm)
            .field("thumbprint", &self.thumbprint)
            .field("x5c", &self.x5c)
            .field("lifetime", &self.lifetime)
            .field("reuse", &self.reuse)
            .finish_non_exhaustive()
    }
}

//! Client assertions (RFC 7523) checked as Entra ID checks them, with `jsonwebtoken`.
//!
//! Strict, as the crate's own client must be: `jti` required and single use, integer times,
//! `nbf` required, lifetime at most 10 minutes, `nbf`/`iat` within 5 minutes of skew, thumbprints
//! unpadded, `x5c` an array. [`Mode::Compat`] tolerates what Entra tolerates from other clients:
//! padded thumbprints, float or numeric-string times, no `nbf`, `x5c` as one string or with line
//! breaks inside its entries, and a `jti` reused within the assertion's lifetime.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;

use crate::errors::OAuthError;
use crate::registry::{App, ParsedCertificate};
use crate::{Mode, Shared};

/// Clock skew tolerated on `nbf`, `iat` and `exp`.
const SKEW: u64 = 300;
/// The longest assertion lifetime accepted (`exp` minus `nbf`, or `iat`).
const MAX_LIFETIME: u64 = 600;

/// `jti`s seen, per client, until their assertion expires.
#[derive(Default)]
pub(crate) struct ReplayCache {
    seen: HashMap<(String, String), u64>,
}

impl ReplayCache {
    /// Records `jti`; false if it was seen and has not expired.
    fn first_use(&mut self, client_id: &str, jti: &str, exp: u64, now: u64) -> bool {
        self.seen.retain(|_, expires| *expires + SKEW >= now);
        self.seen
            .insert((client_id.to_owned(), jti.to_owned()), exp)
            .is_none()
    }
}

/// The `azpacr` value of the authentication that succeeded.
pub(crate) const CERTIFICATE_AUTH: &str = "2";

fn signature_error(message: impl Into<String>) -> OAuthError {
    OAuthError::invalid_client(700027, message)
}

/// Decodes the claims without verifying, to tell a federated token from a client's own
/// assertion (its `iss` is the client id).
fn peek_claims(jwt: &str) -> Option<Value> {
    let claims = jwt.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()
}

/// Checks a `client_assertion` for `app` posted to `audience` (the token endpoint URL).
pub(crate) fn verify(
    shared: &Shared,
    app: &App,
    jwt: &str,
    audience: &str,
) -> Result<(), OAuthError> {
    let malformed = || OAuthError::invalid_request(50027, "JWT token is invalid or malformed.");
    let claims = peek_claims(jwt).ok_or_else(malformed)?;
    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if issuer != app.config.client_id && !app.config.federated_credentials.is_empty() {
        return verify_federated(shared, app, jwt, &claims);
    }

    let header = Header::parse(jwt, shared.mode).ok_or_else(malformed)?;
    let alg = header.alg;
    let certificate = find_certificate(shared, app, &header)?;
    let rsa_alg = alg != jsonwebtoken::Algorithm::ES256;
    if certificate.key.is_rsa() != rsa_alg {
        return Err(signature_error(
            "Client assertion algorithm does not match the certificate key.",
        ));
    }
    let key = certificate.key.decoding_key().map_err(signature_error)?;
    // The header was read by hand (compat mode accepts headers jsonwebtoken's own type does
    // not), so only the signature is checked here; times and audience are checked below
    // against the testkit's clock and the exact URL.
    let (message, signature) = jwt.rsplit_once('.').ok_or_else(malformed)?;
    let valid =
        jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key, alg).map_err(|e| {
            signature_error(format!(
                "Client assertion failed signature validation: {e}."
            ))
        })?;
    if !valid {
        return Err(signature_error(
            "Client assertion failed signature validation.",
        ));
    }

    check_claims(shared, app, &claims, audience)
}

/// The header fields Entra reads from a client assertion.
struct Header {
    alg: jsonwebtoken::Algorithm,
    x5t: Option<String>,
    x5t_s256: Option<String>,
    x5c: Option<Vec<String>>,
}

impl Header {
    /// `None` when the header is not a JSON object of the expected shape for `mode`.
    fn parse(jwt: &str, mode: Mode) -> Option<Self> {
        let segment = jwt.split('.').next()?;
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).ok()?).ok()?;
        let header = header.as_object()?;
        let alg = match header.get("alg")?.as_str()? {
            "RS256" => jsonwebtoken::Algorithm::RS256,
            "PS256" => jsonwebtoken::Algorithm::PS256,
            "ES256" => jsonwebtoken::Algorithm::ES256,
            _ => jsonwebtoken::Algorithm::HS256,
        };
        let thumbprint = |name: &str| -> Option<Option<String>> {
            match header.get(name) {
                None => Some(None),
                Some(Value::String(t)) if mode == Mode::Compat => {
                    Some(Some(t.trim_end_matches('=').to_owned()))
                }
                Some(Value::String(t)) if !t.contains('=') => Some(Some(t.clone())),
                Some(_) => None,
            }
        };
        let x5c = match header.get("x5c") {
            None => None,
            Some(Value::Array(entries)) => Some(
                entries
                    .iter()
                    .map(|e| e.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()?,
            ),
            Some(Value::String(one)) if mode == Mode::Compat => Some(vec![one.clone()]),
            Some(_) => return None,
        };
        // msal-python cuts `x5c` entries out of PEM with their line breaks; Entra reads them.
        let x5c = match (x5c, mode) {
            (Some(entries), Mode::Compat) => Some(
                entries
                    .into_iter()
                    .map(|e| e.chars().filter(|c| !c.is_ascii_whitespace()).collect())
                    .collect(),
            ),
            (x5c, _) => x5c,
        };
        Some(Self {
            alg,
            x5t: thumbprint("x5t")?,
            x5t_s256: thumbprint("x5t#S256")?,
            x5c,
        })
    }
}

fn find_certificate(
    shared: &Shared,
    app: &App,
    header: &Header,
) -> Result<ParsedCertificate, OAuthError> {
    if header.alg == jsonwebtoken::Algorithm::HS256 {
        return Err(signature_error(
            "Client assertion algorithm is not supported (RS256, PS256 or ES256).",
        ));
    }
    if let Some(x5c) = header
        .x5c
        .as_ref()
        .filter(|_| !app.config.trusted_subjects.is_empty())
    {
        return subject_name_certificate(shared, app, x5c);
    }
    if let Some(s256) = &header.x5t_s256 {
        if let Some(c) = app.certificates.iter().find(|c| &c.x5t_s256 == s256) {
            return Ok(c.clone());
        }
    } else if let Some(x5t) = &header.x5t {
        if let Some(c) = app.certificates.iter().find(|c| &c.x5t == x5t) {
            return Ok(c.clone());
        }
    } else {
        return Err(signature_error(
            "Client assertion contains no x5t, x5t#S256 or x5c header.",
        ));
    }
    Err(signature_error(format!(
        "The certificate with identifier used to sign the client assertion is not registered on application {}.",
        app.config.client_id
    )))
}

/// Subject name + issuer: the `x5c` leaf must carry a trusted subject and issuer and chain to a
/// configured certificate authority.
fn subject_name_certificate(
    shared: &Shared,
    app: &App,
    x5c: &[String],
) -> Result<ParsedCertificate, OAuthError> {
    let mut chain = Vec::new();
    for entry in x5c {
        let der = STANDARD
            .decode(entry)
            .map_err(|_| signature_error("x5c entries must be standard base64 DER."))?;
        chain.push(ParsedCertificate::from_der(&der).map_err(signature_error)?);
    }
    let leaf = chain
        .first()
        .cloned()
        .ok_or_else(|| signature_error("x5c is empty."))?;
    if !app
        .config
        .trusted_subjects
        .iter()
        .any(|t| t.subject == leaf.subject && t.issuer == leaf.issuer)
    {
        return Err(signature_error(format!(
            "No subject name + issuer registration on application {} matches the x5c certificate.",
            app.config.client_id
        )));
    }
    let now = shared.now_unix();
    let registry = shared.registry.read().unwrap_or_else(|p| p.into_inner());
    // Each certificate must be signed by the next; the last by a trusted authority.
    for pair in chain.windows(2) {
        if !pair[0].is_signed_by(&pair[1]) {
            return Err(signature_error("The x5c chain does not link."));
        }
    }
    let top = chain.last().unwrap_or(&leaf);
    let anchored = registry
        .authorities
        .iter()
        .any(|ca| (top.x5t_s256 == ca.x5t_s256 || top.is_signed_by(ca)) && ca.is_valid_at(now));
    if !anchored || !chain.iter().all(|c| c.is_valid_at(now)) {
        return Err(signature_error(
            "The x5c chain does not lead to a trusted, valid certificate authority.",
        ));
    }
    Ok(leaf)
}

fn check_claims(
    shared: &Shared,
    app: &App,
    claims: &Value,
    audience: &str,
) -> Result<(), OAuthError> {
    let client_id = &app.config.client_id;
    let now = shared.now_unix();
    let time_error = |m: &str| {
        OAuthError::invalid_client(
            700024,
            format!("Client assertion is not within its valid time range. {m}"),
        )
    };
    let compat = shared.mode == Mode::Compat;
    let int = |name: &str| -> Result<Option<u64>, OAuthError> {
        match claims.get(name) {
            None => Ok(None),
            Some(v) => seconds(v, compat).map(Some).ok_or_else(|| {
                OAuthError::invalid_request(
                    50027,
                    format!("Claim `{name}` must be an integer number of seconds."),
                )
            }),
        }
    };
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == audience,
        Some(Value::Array(values)) => values.iter().any(|v| v.as_str() == Some(audience)),
        _ => false,
    };
    if !aud_ok {
        return Err(OAuthError::invalid_client(
            700023,
            format!(
                "Client assertion audience claim does not match the token endpoint {audience}."
            ),
        ));
    }
    if claims.get("iss").and_then(Value::as_str) != Some(client_id)
        || claims.get("sub").and_then(Value::as_str) != Some(client_id)
    {
        return Err(OAuthError::invalid_client(
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    let exp = int("exp")?.ok_or_else(|| time_error("The exp claim is missing."))?;
    let nbf = int("nbf")?;
    if nbf.is_none() && !compat {
        return Err(time_error(
            "The nbf claim is missing (the testkit's strict mode requires it).",
        ));
    }
    let iat = int("iat")?;
    if now > exp + SKEW {
        return Err(time_error("It has expired."));
    }
    let start = nbf.or(iat).unwrap_or(now);
    if start > now + SKEW {
        return Err(time_error("It is not valid yet."));
    }
    if exp.saturating_sub(start) > MAX_LIFETIME {
        return Err(time_error("Its lifetime exceeds 10 minutes."));
    }
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty());
    let Some(jti) = jti else {
        return Err(OAuthError::invalid_request(
            50027,
            "Client assertion has no jti.",
        ));
    };
    let first = shared
        .replay
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .first_use(client_id, jti, exp, now);
    // Entra accepts an assertion again until it expires; only strict mode holds clients to
    // RFC 7523's single use.
    if !first && !compat {
        return Err(OAuthError::invalid_client(
            700027,
            "Client assertion jti was already used (the testkit's strict mode enforces single use, RFC 7523 section 3).",
        ));
    }
    Ok(())
}

/// A time claim as whole seconds: an integer, or in compat mode also a float (truncated) or a
/// string holding either.
fn seconds(value: &Value, compat: bool) -> Option<u64> {
    if let Some(n) = value.as_u64() {
        return Some(n);
    }
    if !compat {
        return None;
    }
    let float = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (0.0..1e12).contains(&float).then_some(float as u64)
}

/// A federated token: an external issuer's JWT for a subject the app trusts.
fn verify_federated(
    shared: &Shared,
    app: &App,
    jwt: &str,
    claims: &Value,
) -> Result<(), OAuthError> {
    let no_match = || {
        OAuthError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_request",
            70021,
            "No matching federated identity record found for presented assertion.",
        )
    };
    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(values)) => values.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let credential = app
        .config
        .federated_credentials
        .iter()
        .find(|c| {
            c.issuer == issuer
                && c.subject == subject
                && c.audiences.iter().any(|a| audiences.contains(&a.as_str()))
        })
        .ok_or_else(no_match)?;
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| no_match())?;
    let key = match &credential.jwks {
        Some(jwks) => {
            let set: jsonwebtoken::jwk::JwkSet =
                serde_json::from_value(jwks.clone()).map_err(|_| no_match())?;
            let jwk = match &header.kid {
                Some(kid) => set.find(kid),
                None => set.keys.first(),
            }
            .ok_or_else(no_match)?;
            jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|_| no_match())?
        }
        None => own_key(shared, issuer, header.kid.as_deref()).ok_or_else(no_match)?,
    };
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(jwt, &key, &validation).map_err(|e| {
        signature_error(format!("Federated token failed signature validation: {e}."))
    })?;
    let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
    if shared.now_unix() > exp + SKEW {
        return Err(OAuthError::invalid_client(
            700024,
            "Client assertion is not within its valid time range: the federated token has expired.",
        ));
    }
    Ok(())
}

/// One of the testkit's own signing keys, when `issuer` is one of its tenants.
fn own_key(shared: &Shared, issuer: &str, kid: Option<&str>) -> Option<jsonwebtoken::DecodingKey> {
    if !issuer.starts_with(&shared.base_url) {
        return None;
    }
    let keys = shared.keys.read().unwrap_or_else(|p| p.into_inner());
    keys.published
        .iter()
        .find(|k| Some(k.kid.as_str()) == kid)
        .map(|k| k.decoding.clone())
}

//! Bearer-token validation, per VALIDATION.md.
//!
//! This release has the verification core: the strict compact-JWS parser (§2), the algorithm
//! allow-list (§3), key classification (§4) and the claim rules C1–C6 (§6), composed in the order
//! of §8.2, with the error kinds of §8. Discovery, the JWKS lifecycle, the authorization helpers,
//! the `BearerValidator` builder and the tower layer build on it.

// The core is exercised by tests until `BearerValidator` (issue 6) calls it.
#![allow(dead_code)]

mod claims;
mod error;
mod json;
mod jwk;
mod jws;

use std::time::SystemTime;

use serde_json::{Map, Value};

pub use self::error::{ValidationError, ValidationErrorKind};

/// Validates `token` against `keys` and `rules` at `now`, in the order of §8.2 (1)–(10); the
/// verified claims on success.
pub(crate) fn validate_with(
    token: &str,
    keys: &jwk::KeySet,
    rules: &claims::Rules,
    max_token_bytes: usize,
    now: SystemTime,
) -> Result<Map<String, Value>, ValidationError> {
    let jws = jws::parse(token, max_token_bytes)?;
    let key = keys.select(jws.kid.as_deref())?;
    key.verify(&jws)?;
    let payload = jws::decode_b64url(jws.payload)?;
    let claims = json::parse_object(&payload).map_err(error::malformed)?;
    claims::check(&claims, rules, now, jws.is_at_jwt)?;
    Ok(claims)
}

#[cfg(test)]
mod tests;

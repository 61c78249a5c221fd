//! JWKS parsing and key classification (VALIDATION.md K1–K4): each key judged once, at load,
//! into a parsed backend key, so verification does no parsing.

use std::collections::HashMap;

use der::Encode as _;
use serde_json::{Map, Value};

use super::error::{ValidationError, ValidationErrorKind};
use super::json;
use super::jws::{CompactJws, decode_b64url};
use crate::signer::{Algorithm, Backend, PublicKey};

/// Most keys accepted in one set (L4).
const MAX_KEYS: usize = 100;
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A usable verification key.
pub(crate) struct VerificationKey {
    key: PublicKey,
    is_rsa: bool,
    /// The JWK's `alg`, when it pins one.
    alg: Option<Algorithm>,
    /// The RSA modulus length in bytes (a valid signature's length).
    modulus_len: usize,
    /// The JWK's `issuer` (Entra), for K5.
    pub(crate) issuer: Option<String>,
    /// The JWK's `cloud_instance_name` (Entra), for K5.
    pub(crate) cloud: Option<String>,
    /// The public material, to tell duplicates with different keys apart (K4).
    material: Vec<u8>,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey")
            .field("rsa", &self.is_rsa)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl VerificationKey {
    /// Classifies one JWK (K3); `Err` names the failed rule.
    pub(crate) fn from_jwk(
        jwk: &Map<String, Value>,
        backend: Backend,
    ) -> Result<Self, &'static str> {
        if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
            tracing::error!("a published JWK carries private key material; the key is not used");
            return Err("the key carries private members");
        }
        match jwk.get("use") {
            None => {}
            Some(Value::String(u)) if u == "sig" => {}
            _ => return Err("use is not sig"),
        }
        if let Some(ops) = jwk.get("key_ops") {
            let ops = ops.as_array().ok_or("key_ops is not an array")?;
            let names: Vec<&str> = ops.iter().filter_map(Value::as_str).collect();
            let distinct = names
                .iter()
                .enumerate()
                .all(|(i, n)| !names[..i].contains(n));
            if names.len() != ops.len() || !distinct || !names.contains(&"verify") {
                return Err("key_ops must be distinct strings including verify");
            }
        }
        let issuer = match jwk.get("issuer") {
            None => None,
            Some(Value::String(i)) => Some(i.clone()),
            Some(_) => return Err("issuer is not a string"),
        };
        let cloud = match jwk.get("cloud_instance_name") {
            None => None,
            Some(Value::String(c)) => Some(c.clone()),
            Some(_) => return Err("cloud_instance_name is not a string"),
        };
        let alg = match jwk.get("alg") {
            None => None,
            Some(Value::String(a)) => Some(Algorithm::from_name(a).ok_or("alg is not allowed")?),
            Some(_) => return Err("alg is not a string"),
        };
        let member = |name: &str| -> Result<Vec<u8>, &'static str> {
            let text = jwk
                .get(name)
                .and_then(Value::as_str)
                .ok_or("a key member is missing")?;
            decode_b64url(text).map_err(|_| "a key member is not canonical base64url")
        };
        match jwk.get("kty").and_then(Value::as_str) {
            Some("RSA") => {
                if alg == Some(Algorithm::Es256) {
                    return Err("alg does not fit kty");
                }
                let n = member("n")?;
                let e = member("e")?;
                let n = strip_zeros(&n);
                let e = strip_zeros(&e);
                let bits = (n.len() * 8)
                    .saturating_sub(n.first().map_or(8, |b| b.leading_zeros() as usize));
                if !(2048..=8192).contains(&bits) || n.last().is_none_or(|b| b & 1 == 0) {
                    return Err("RSA modulus must be odd and 2048 to 8192 bits");
                }
                let exponent_ok = e.len() <= 4
                    && e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)) >= 65537
                    && e.last().is_some_and(|b| b & 1 == 1);
                if !exponent_ok {
                    return Err("RSA exponent must be odd and 65537 <= e < 2^32");
                }
                let der = pkcs1::RsaPublicKey {
                    modulus: pkcs1::UintRef::new(n).map_err(|_| "bad modulus")?,
                    public_exponent: pkcs1::UintRef::new(e).map_err(|_| "bad exponent")?,
                }
                .to_der()
                .map_err(|_| "bad RSA key")?;
                let key = PublicKey::rsa(backend, &der).ok_or("the backend refused the RSA key")?;
                Ok(Self {
                    key,
                    is_rsa: true,
                    alg,
                    modulus_len: n.len(),
                    issuer,
                    cloud,
                    material: der,
                })
            }
            Some("EC") => {
                if jwk.get("crv").and_then(Value::as_str) != Some("P-256") {
                    return Err("only the P-256 curve is supported");
                }
                if alg.is_some_and(|a| a != Algorithm::Es256) {
                    return Err("alg does not fit the curve");
                }
                let (x, y) = (member("x")?, member("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err("x and y must be 32 bytes");
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                let key = PublicKey::ec_p256(backend, &point).ok_or("the point is not on P-256")?;
                Ok(Self {
                    key,
                    is_rsa: false,
                    alg,
                    modulus_len: 0,
                    issuer,
                    cloud,
                    material: point,
                })
            }
            _ => Err("kty is not RSA or EC"),
        }
    }

    /// Checks A2 and A4 and verifies `jws` with this key.
    pub(crate) fn verify(&self, jws: &CompactJws<'_>) -> Result<(), ValidationError> {
        let fits = if self.is_rsa {
            jws.alg.is_rsa()
        } else {
            jws.alg == Algorithm::Es256
        };
        if !fits || self.alg.is_some_and(|a| a != jws.alg) {
            return Err(ValidationError::new(
                ValidationErrorKind::UnsupportedAlg,
                "alg does not fit the key",
            ));
        }
        let expected_len = if self.is_rsa { self.modulus_len } else { 64 };
        let bad = || {
            ValidationError::new(
                ValidationErrorKind::BadSignature,
                "the signature does not verify",
            )
        };
        if jws.signature.len() != expected_len {
            return Err(bad());
        }
        if self.key.verify(jws.alg, jws.signing_input, &jws.signature) {
            Ok(())
        } else {
            Err(bad())
        }
    }
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// What a `kid` maps to.
#[derive(Debug)]
enum Slot {
    Usable(Box<VerificationKey>),
    /// A key that failed policy or clashed with another of the same `kid` (K3, K4).
    Rejected,
}

/// A key set, classified at load.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    by_kid: HashMap<String, Slot>,
    /// Usable keys without a `kid` (only `danger_accept_missing_kid` may use one).
    without_kid: Vec<VerificationKey>,
}

impl KeySet {
    /// Parses a JWKS document (P4/P5, L4). A bad document fails; a bad entry drops one key.
    pub(crate) fn from_json(bytes: &[u8], backend: Backend) -> Result<Self, &'static str> {
        let document = json::parse_object(bytes)?;
        let keys = document
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("the JWKS has no keys array")?;
        if keys.len() > MAX_KEYS {
            return Err("the JWKS has more than 100 keys");
        }
        let mut set = KeySet::default();
        for entry in keys {
            let Some(jwk) = entry.as_object() else {
                continue;
            };
            let kid = match jwk.get("kid") {
                None => None,
                Some(Value::String(k)) => Some(k.clone()),
                Some(_) => continue,
            };
            let classified = VerificationKey::from_jwk(jwk, backend);
            match (kid, classified) {
                (None, Ok(key)) => set.without_kid.push(key),
                (None, Err(_)) => {}
                (Some(kid), Err(reason)) => {
                    tracing::debug!(kid = %kid.escape_debug(), reason, "JWK rejected");
                    set.by_kid.insert(kid, Slot::Rejected);
                }
                (Some(kid), Ok(key)) => {
                    let slot = match set.by_kid.remove(&kid) {
                        None => Slot::Usable(Box::new(key)),
                        Some(Slot::Usable(existing)) if existing.material == key.material => {
                            Slot::Usable(existing)
                        }
                        Some(_) => Slot::Rejected,
                    };
                    set.by_kid.insert(kid, slot);
                }
            }
        }
        Ok(set)
    }

    /// The usable keys.
    pub(crate) fn usable_count(&self) -> usize {
        self.by_kid
            .values()
            .filter(|s| matches!(s, Slot::Usable(_)))
            .count()
            + self.without_kid.len()
    }

    /// The key for `kid` (K2): byte-exact, exactly one.
    pub(crate) fn select(&self, kid: Option<&str>) -> Result<&VerificationKey, ValidationError> {
        let Some(kid) = kid else {
            return Err(ValidationError::new(
                ValidationErrorKind::KeyNotFound,
                "the token has no kid",
            ));
        };
        match self.by_kid.get(kid) {
            Some(Slot::Usable(key)) => Ok(key),
            Some(Slot::Rejected) => Err(ValidationError::new(
                ValidationErrorKind::KeyRejected,
                "the kid names a rejected key",
            )),
            None => Err(ValidationError::new(
                ValidationErrorKind::KeyNotFound,
                "no key has this kid",
            )),
        }
    }

    /// The only usable key, for `danger_accept_missing_kid` (K2): `None` unless exactly one.
    pub(crate) fn sole_key(&self) -> Option<&VerificationKey> {
        let mut usable = self
            .by_kid
            .values()
            .filter_map(|s| match s {
                Slot::Usable(k) => Some(&**k),
                Slot::Rejected => None,
            })
            .chain(self.without_kid.iter());
        let first = usable.next()?;
        usable.next().is_none().then_some(first)
    }

    /// The `kid`s of the usable keys, sorted (for logging key-set changes).
    pub(crate) fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self
            .by_kid
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Usable(_)))
            .map(|(k, _)| k.as_str())
            .collect();
        kids.sort_unstable();
        kids
    }

    /// Whether `kid` is unknown (neither usable nor a rejected tombstone): the case that may
    /// trigger a refresh (L8).
    pub(crate) fn is_unknown(&self, kid: &str) -> bool {
        !self.by_kid.contains_key(kid)
    }
}

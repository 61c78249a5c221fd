//! Bearer-token validation, per VALIDATION.md.
//!
//! [`BearerValidator`] checks an access token in the order of §8.2: the strict compact-JWS parser
//! (§2), the algorithm allow-list (§3), the key set from discovery with its lifecycle (§4, §5),
//! the signature, then the claim rules (§6). [`Requirements`] are the per-route authorization
//! helpers (§7); [`BearerChallenge`] turns a rejection into the RFC 6750 response (§8.3), and the
//! `axum` feature adds a tower layer and extractor.

mod authz;
mod bearer;
mod challenge;
mod claims;
mod error;
mod json;
mod jwk;
mod jws;
#[cfg(feature = "axum")]
mod layer;
mod object;
mod source;

pub use self::authz::{CallerKind, ClientAuthStrength, Requirements, ValidatedToken};
pub use self::bearer::{BearerValidator, BearerValidatorBuilder};
pub use self::challenge::{
    BearerChallenge, ChallengeContext, HeaderProblem, StepUpForm, bearer_token,
};
pub use self::error::{ValidationError, ValidationErrorKind};
#[cfg(feature = "axum")]
pub use self::layer::{BearerLayer, BearerService, Rejection};

#[cfg(test)]
mod tests;

/// The JWKS parser, for the fuzz targets.
pub(crate) fn fuzz_jwks(data: &[u8]) -> bool {
    jwk::KeySet::from_json(data, crate::signer::Backend::default()).is_ok()
}

//! Bearer-token validation, per VALIDATION.md.
//!
//! This release has the verification core: the strict compact-JWS parser (§2), the algorithm
//! allow-list (§3) and key classification (§4), with the error kinds of §8. Discovery, the
//! JWKS lifecycle, claim rules, the `BearerValidator` builder and the tower layer build on it.

// The core is exercised by tests until `BearerValidator` (issue 6) calls it.
#![allow(dead_code)]

mod error;
mod json;
mod jwk;
mod jws;

pub use self::error::{ValidationError, ValidationErrorKind};

#[cfg(test)]
mod tests;

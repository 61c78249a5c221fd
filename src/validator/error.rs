//! `ValidationError`: exactly one per rejected token, with a stable kind (VALIDATION.md §8.1).

use std::fmt;

/// Why a bearer token was rejected. The names are those of VALIDATION.md; renaming one is a
/// breaking change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValidationErrorKind {
    /// Not a canonical compact JWS with strict JSON (P1–P6, C1 on a modelled claim's shape).
    Malformed,
    /// An algorithm or header member outside the allow-list (A1, A2, P7).
    UnsupportedAlg,
    /// Not an access token of an accepted type (P8, C6).
    WrongTokenType,
    /// No usable key with the token's `kid` (K2, L8).
    KeyNotFound,
    /// The `kid` names a key that failed the key policy (K3, K4).
    KeyRejected,
    /// Discovery or the key set could not be obtained (L7, L9).
    Metadata,
    /// The signature does not verify (A4).
    BadSignature,
    /// A required claim is missing or has the wrong JSON type (C1).
    MissingClaim,
    /// Past `exp` plus skew (C2).
    Expired,
    /// Before `nbf` minus skew (C2).
    NotYetValid,
    /// `iat` in the future beyond skew (C2).
    IssuedInFuture,
    /// Issuer, tenant, signing-key issuer or B2C policy not accepted (C3, C4, K5, C7).
    BadIssuer,
    /// `aud` not accepted (C5).
    BadAudience,
    /// A scope, role, client or authentication-strength requirement not met (§7).
    Forbidden,
    /// A stronger authentication is needed (Z6).
    StepUpRequired,
}

impl ValidationErrorKind {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnsupportedAlg => "unsupported_alg",
            Self::WrongTokenType => "wrong_token_type",
            Self::KeyNotFound => "key_not_found",
            Self::KeyRejected => "key_rejected",
            Self::Metadata => "metadata",
            Self::BadSignature => "bad_signature",
            Self::MissingClaim => "missing_claim",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::BadIssuer => "bad_issuer",
            Self::BadAudience => "bad_audience",
            Self::Forbidden => "forbidden",
            Self::StepUpRequired => "step_up_required",
        }
    }

    /// The fixed sentence `Display` and RFC 6750 `error_description` use for this kind.
    pub fn description(self) -> &'static str {
        match self {
            Self::Malformed => "The access token is malformed",
            Self::UnsupportedAlg => "The access token uses an unsupported algorithm",
            Self::WrongTokenType => "The token is not an access token for this API",
            Self::KeyNotFound => "The access token signing key is unknown",
            Self::KeyRejected => "The access token signing key is not acceptable",
            Self::Metadata => "The issuer's signing keys are unavailable",
            Self::BadSignature => "The access token signature is invalid",
            Self::MissingClaim => "The access token lacks a required claim",
            Self::Expired => "The access token expired",
            Self::NotYetValid => "The access token is not yet valid",
            Self::IssuedInFuture => "The access token was issued in the future",
            Self::BadIssuer => "The access token issuer is not accepted",
            Self::BadAudience => "The access token audience is not accepted",
            Self::Forbidden => "The access token does not grant this operation",
            Self::StepUpRequired => "A stronger authentication is required",
        }
    }
}

impl fmt::Display for ValidationErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected token. `Display` is the kind's fixed sentence; the detail (never token material)
/// shows only in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ValidationError {
    kind: ValidationErrorKind,
    detail: &'static str,
    /// What a client needs to recover (`forbidden`, `step_up_required`); never token material.
    remedy: Option<Box<Remedy>>,
}

/// How the caller can obtain an acceptable token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Remedy {
    /// A token with these scopes (space-separated), for `insufficient_scope`.
    Scope(String),
    /// Step-up: the minified `claims` request and the `acr_values` of RFC 9470.
    Claims { request: String, acr_values: String },
}

impl ValidationError {
    pub(crate) fn new(kind: ValidationErrorKind, detail: &'static str) -> Self {
        Self {
            kind,
            detail,
            remedy: None,
        }
    }

    pub(crate) fn with_remedy(mut self, remedy: Remedy) -> Self {
        self.remedy = Some(Box::new(remedy));
        self
    }

    /// For `forbidden` on a scope rule: the scopes a token must carry (space-separated), for the
    /// `scope` attribute of the `insufficient_scope` challenge.
    pub fn required_scope(&self) -> Option<&str> {
        match self.remedy.as_deref() {
            Some(Remedy::Scope(scope)) => Some(scope),
            _ => None,
        }
    }

    /// For `step_up_required`: the minified claims request to send back to the client, e.g.
    /// `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`.
    pub fn claims_challenge(&self) -> Option<&str> {
        match self.remedy.as_deref() {
            Some(Remedy::Claims { request, .. }) => Some(request),
            _ => None,
        }
    }

    /// For `step_up_required`: the RFC 9470 `acr_values` (space-separated).
    pub fn acr_values(&self) -> Option<&str> {
        match self.remedy.as_deref() {
            Some(Remedy::Claims { acr_values, .. }) => Some(acr_values),
            _ => None,
        }
    }

    /// The class of the rejection.
    pub fn kind(&self) -> ValidationErrorKind {
        self.kind
    }

    /// Which rule failed, in words (no token material).
    pub fn detail(&self) -> &str {
        self.detail
    }
}

impl fmt::Debug for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidationError")
            .field("kind", &self.kind)
            .field("detail", &self.detail)
            .field("remedy", &self.remedy)
            .finish()
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.description())
    }
}

impl std::error::Error for ValidationError {}

pub(crate) fn malformed(detail: &'static str) -> ValidationError {
    ValidationError::new(ValidationErrorKind::Malformed, detail)
}

//! RFC 6750 challenges (VALIDATION.md §8.3) and the `Authorization: Bearer` header, for any
//! HTTP framework; the axum layer uses them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, StatusCode, header};

use super::error::{ValidationError, ValidationErrorKind};

/// Whether `b` may appear inside a quoted challenge value (RFC 6750 §3:
/// `%x20-21 / %x23-5B / %x5D-7E`).
pub(crate) fn is_quoted_safe(b: u8) -> bool {
    matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

fn is_b64token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

/// Why a request carries no usable bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderProblem {
    /// No `Authorization` header, or another scheme: 401 without an error code.
    Missing,
    /// Several `Authorization` headers, no token or two, or bytes outside `b64token`: 400
    /// `invalid_request`.
    Invalid,
}

/// The bearer token of `headers` (RFC 6750 §2.1; the scheme is case-insensitive). Tokens in the
/// query string or body are never looked at.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, HeaderProblem> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(HeaderProblem::Missing);
    };
    if values.next().is_some() {
        return Err(HeaderProblem::Invalid);
    }
    let bytes = value.as_bytes();
    let scheme_end = bytes.iter().position(|b| *b == b' ').unwrap_or(bytes.len());
    if !bytes[..scheme_end].eq_ignore_ascii_case(b"bearer") {
        return Err(HeaderProblem::Missing);
    }
    let rest = &bytes[scheme_end..];
    let token = rest.trim_ascii();
    // One token: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let body_len = token
        .iter()
        .position(|b| !is_b64token(*b))
        .unwrap_or(token.len());
    let well_formed = body_len > 0 && token[body_len..].iter().all(|b| *b == b'=');
    if !well_formed {
        return Err(HeaderProblem::Invalid);
    }
    std::str::from_utf8(token).map_err(|_| HeaderProblem::Invalid)
}

/// An RFC 6750 response: status, `WWW-Authenticate` and the RFC 6750 error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerChallenge {
    status: StatusCode,
    www_authenticate: String,
    error: Option<&'static str>,
    kind: Option<ValidationErrorKind>,
}

/// How a step-up is asked for (§8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StepUpForm {
    /// Entra's `error="insufficient_claims", claims="<base64>"`, understood by MSAL (default).
    #[default]
    InsufficientClaims,
    /// RFC 9470's `error="insufficient_user_authentication", acr_values="…"`.
    Rfc9470,
}

/// Where challenges point: the `realm` and, for step-up, the authorization endpoint.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ChallengeContext<'a> {
    /// `realm`, omitted when `None`.
    pub realm: Option<&'a str>,
    /// `authorization_uri` of the `insufficient_claims` challenge.
    pub authorization_uri: &'a str,
    /// The step-up form.
    pub step_up: StepUpForm,
}

impl<'a> ChallengeContext<'a> {
    /// Challenges with `realm` (omitted when `None`) whose step-up points at
    /// `authorization_uri`, in Entra's `insufficient_claims` form.
    pub fn new(realm: Option<&'a str>, authorization_uri: &'a str) -> Self {
        Self {
            realm,
            authorization_uri,
            step_up: StepUpForm::default(),
        }
    }

    /// The step-up form.
    pub fn step_up(mut self, form: StepUpForm) -> Self {
        self.step_up = form;
        self
    }
}

impl BearerChallenge {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `WWW-Authenticate` value.
    pub fn www_authenticate(&self) -> &str {
        &self.www_authenticate
    }

    /// The RFC 6750 error code (`invalid_token`, `insufficient_scope`, …), none for a missing
    /// token.
    pub fn error_code(&self) -> Option<&'static str> {
        self.error
    }

    /// The validation error kind behind it, if a token was judged.
    pub fn kind(&self) -> Option<ValidationErrorKind> {
        self.kind
    }

    /// The response to a request without a usable `Authorization` header.
    pub fn for_header(problem: HeaderProblem, context: &ChallengeContext<'_>) -> Self {
        match problem {
            HeaderProblem::Missing => Self {
                status: StatusCode::UNAUTHORIZED,
                www_authenticate: Attributes::new(context.realm).finish(),
                error: None,
                kind: None,
            },
            HeaderProblem::Invalid => {
                let mut attributes = Attributes::new(context.realm);
                attributes.push("error", "invalid_request");
                attributes.push(
                    "error_description",
                    "The request has no single bearer token",
                );
                Self {
                    status: StatusCode::BAD_REQUEST,
                    www_authenticate: attributes.finish(),
                    error: Some("invalid_request"),
                    kind: None,
                }
            }
        }
    }

    /// The response to a rejected token.
    pub fn for_error(error: &ValidationError, context: &ChallengeContext<'_>) -> Self {
        let kind = error.kind();
        let mut attributes = Attributes::new(context.realm);
        let (status, code) = match kind {
            ValidationErrorKind::Forbidden => {
                attributes.push("error", "insufficient_scope");
                attributes.push("error_description", kind.description());
                if let Some(scope) = error.required_scope() {
                    attributes.push("scope", scope);
                }
                (StatusCode::FORBIDDEN, "insufficient_scope")
            }
            ValidationErrorKind::StepUpRequired => match context.step_up {
                StepUpForm::InsufficientClaims => {
                    attributes.push("authorization_uri", context.authorization_uri);
                    attributes.push("error", "insufficient_claims");
                    attributes.push("error_description", kind.description());
                    // Standard, padded base64: MSAL decodes only lengths that are a multiple
                    // of 4.
                    let claims = STANDARD.encode(error.claims_challenge().unwrap_or("{}"));
                    attributes.push("claims", &claims);
                    (StatusCode::UNAUTHORIZED, "insufficient_claims")
                }
                StepUpForm::Rfc9470 => {
                    attributes.push("error", "insufficient_user_authentication");
                    attributes.push("error_description", kind.description());
                    if let Some(acr) = error.acr_values() {
                        attributes.push("acr_values", acr);
                    }
                    (StatusCode::UNAUTHORIZED, "insufficient_user_authentication")
                }
            },
            _ => {
                attributes.push("error", "invalid_token");
                attributes.push("error_description", kind.description());
                (StatusCode::UNAUTHORIZED, "invalid_token")
            }
        };
        Self {
            status,
            www_authenticate: attributes.finish(),
            error: Some(code),
            kind: Some(kind),
        }
    }
}

/// `Bearer a="…", b="…"`, dropping characters RFC 6750 does not allow in values.
struct Attributes(String);

impl Attributes {
    fn new(realm: Option<&str>) -> Self {
        let mut this = Self(String::from("Bearer"));
        if let Some(realm) = realm {
            this.push("realm", realm);
        }
        this
    }

    fn push(&mut self, name: &str, value: &str) {
        if self.0.len() > "Bearer".len() {
            self.0.push(',');
        }
        self.0.push(' ');
        self.0.push_str(name);
        self.0.push_str("=\"");
        self.0
            .extend(value.bytes().filter(|b| is_quoted_safe(*b)).map(char::from));
        self.0.push('"');
    }

    fn finish(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;
    use crate::validator::Requirements;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(
                header::AUTHORIZATION,
                HeaderValue::from_str(v).expect("value"),
            );
        }
        map
    }

    #[test]
    fn authorization_header() {
        assert_eq!(bearer_token(&headers(&[])), Err(HeaderProblem::Missing));
        assert_eq!(
            bearer_token(&headers(&["Basic abc"])),
            Err(HeaderProblem::Missing)
        );
        assert_eq!(
            bearer_token(&headers(&["Bearer abc.def-_~+/=="])),
            Ok("abc.def-_~+/==")
        );
        assert_eq!(bearer_token(&headers(&["bEaReR abc"])), Ok("abc"));
        for bad in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a=b",
            "Bearer a,b",
            "Bearer \"a\"",
        ] {
            assert_eq!(
                bearer_token(&headers(&[bad])),
                Err(HeaderProblem::Invalid),
                "{bad}"
            );
        }
        assert_eq!(
            bearer_token(&headers(&["Bearer a", "Bearer b"])),
            Err(HeaderProblem::Invalid)
        );
    }

    #[test]
    fn challenges() {
        let context = ChallengeContext::new(Some("api"), "https://login.example/authorize");
        let missing = BearerChallenge::for_header(HeaderProblem::Missing, &context);
        assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(missing.www_authenticate(), r#"Bearer realm="api""#);
        let expired = ValidationError::new(ValidationErrorKind::Expired, "x");
        assert_eq!(
            BearerChallenge::for_error(&expired, &context).www_authenticate(),
            r#"Bearer realm="api", error="invalid_token", error_description="The access token expired""#
        );
        let token = crate::validator::ValidatedToken::for_tests(&serde_json::json!({"scp": "a"}));
        let scope = token
            .check(&Requirements::new().all_scopes(["Files.Read"]))
            .expect_err("scope");
        let c = BearerChallenge::for_error(&scope, &context);
        assert_eq!(c.status(), StatusCode::FORBIDDEN);
        assert!(c.www_authenticate().ends_with(r#"error="insufficient_scope", error_description="The access token does not grant this operation", scope="Files.Read""#));
        let step = token
            .check(&Requirements::new().auth_context("c1"))
            .expect_err("step-up");
        let c = BearerChallenge::for_error(&step, &context);
        assert_eq!(c.status(), StatusCode::UNAUTHORIZED);
        let claims =
            STANDARD.encode(r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#);
        assert_eq!(claims.len() % 4, 0);
        assert_eq!(
            c.www_authenticate(),
            format!(
                r#"Bearer realm="api", authorization_uri="https://login.example/authorize", error="insufficient_claims", error_description="A stronger authentication is required", claims="{claims}""#
            )
        );
        let rfc = BearerChallenge::for_error(
            &step,
            &ChallengeContext::new(None, "https://login.example/authorize")
                .step_up(StepUpForm::Rfc9470),
        );
        assert_eq!(
            rfc.www_authenticate(),
            r#"Bearer error="insufficient_user_authentication", error_description="A stronger authentication is required", acr_values="c1""#
        );
    }
}

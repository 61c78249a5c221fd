//! The crate's one error type.

use std::fmt;

use crate::http::TransportError;
use crate::signer::SignerError;

/// Everything that can go wrong in confidant.
///
/// Branch with the `is_*()` predicates or [`Error::kind`]; messages never contain secrets,
/// tokens, response bodies or URL queries, so they are safe to log. Cloning is cheap: callers
/// that waited on one shared token request all receive its error.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Loading a key or certificate failed, or the signer refused to sign. Usually a bad file,
    /// a wrong password, or a key that does not match its certificate.
    #[error(transparent)]
    Signer(#[from] SignerError),
    /// An authority or endpoint URL is malformed, or uses `http` for a host that is not loopback.
    #[error("invalid endpoint: {0}")]
    InvalidEndpoint(String),
    /// A builder was given values that do not fit together (for example an algorithm the
    /// signer cannot produce, or an assertion lifetime over 10 minutes).
    #[error("invalid configuration: {0}")]
    Configuration(String),
    /// DNS, TLS, connect, timeout or an oversized body.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A server answered, but not in the shape its protocol requires (for example a discovery
    /// document without `token_endpoint`, or whose `issuer` differs from the one asked for).
    #[error("invalid response: {0}")]
    InvalidResponse(String),
}

/// The class of an [`Error`], as a stable machine-readable value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// See [`Error::Signer`].
    Signer,
    /// See [`Error::InvalidEndpoint`].
    InvalidEndpoint,
    /// See [`Error::Configuration`].
    Configuration,
    /// See [`Error::Transport`].
    Transport,
    /// See [`Error::InvalidResponse`].
    InvalidResponse,
}

impl ErrorKind {
    /// The stable snake_case name of this kind; renaming one is a breaking change.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Signer => "signer",
            ErrorKind::InvalidEndpoint => "invalid_endpoint",
            ErrorKind::Configuration => "configuration",
            ErrorKind::Transport => "transport",
            ErrorKind::InvalidResponse => "invalid_response",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Signer(_) => ErrorKind::Signer,
            Error::InvalidEndpoint(_) => ErrorKind::InvalidEndpoint,
            Error::Configuration(_) => ErrorKind::Configuration,
            Error::Transport(_) => ErrorKind::Transport,
            Error::InvalidResponse(_) => ErrorKind::InvalidResponse,
        }
    }

    /// A key, certificate or signing failure; [`Error::signer_error`] has the details.
    pub fn is_signer(&self) -> bool {
        matches!(self, Error::Signer(_))
    }

    /// A malformed URL, or `http` to a host that is not loopback.
    pub fn is_invalid_endpoint(&self) -> bool {
        matches!(self, Error::InvalidEndpoint(_))
    }

    /// A builder refused its configuration.
    pub fn is_configuration(&self) -> bool {
        matches!(self, Error::Configuration(_))
    }

    /// The request did not complete (DNS, TLS, connect, timeout, oversized body).
    pub fn is_transport(&self) -> bool {
        matches!(self, Error::Transport(_))
    }

    /// The server answered with something its protocol does not allow.
    pub fn is_invalid_response(&self) -> bool {
        matches!(self, Error::InvalidResponse(_))
    }

    /// The same request may succeed later: a timeout or a connection failure.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(e) => e.is_retryable(),
            Error::Signer(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// The signer error inside, if this is one.
    pub fn signer_error(&self) -> Option<&SignerError> {
        match self {
            Error::Signer(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_stable_names() {
        let e = Error::Configuration("lifetime over 600 s".into());
        assert!(e.is_configuration());
        assert_eq!(e.kind().as_str(), "configuration");
        assert!(!e.is_retryable());
        assert_eq!(
            Error::InvalidEndpoint("x".into()).kind().to_string(),
            "invalid_endpoint"
        );
    }
}

//! The crate's one error type.

use std::fmt;

use std::time::Duration;

use crate::http::TransportError;
use crate::server_error::{ServerError, ServerErrorClass};
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
    /// The authority answered the token request with an error (RFC 6749 §5.2), or with a
    /// throttling or server-failure status; [`ServerError::class`] says which.
    #[error("token request rejected: {0}")]
    Server(Box<ServerError>),
    /// A server answered, but not in the shape its protocol requires (for example a discovery
    /// document without `token_endpoint`, or whose `issuer` differs from the one asked for).
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// The redirect back from `/authorize` does not belong to the flow: `state` differs (a
    /// forged or replayed callback), or it carries no code.
    #[error("invalid authorization response: {0}")]
    AuthorizationResponse(String),
    /// The ID token of a sign-in failed validation (signature, issuer, audience, nonce,
    /// lifetime); nothing from that response was kept.
    #[error("invalid ID token ({}): {}", .0.kind(), .0.detail())]
    IdToken(crate::validator::ValidationError),
    /// The persistent or distributed cache (a [`TokenStore`](crate::cache::TokenStore)) failed:
    /// a file that cannot be read, written or locked, or one refused for its owner, mode or a
    /// symlink; Redis unreachable. Token requests go on without it.
    #[error("token store: {0}")]
    Store(String),
}

impl From<ServerError> for Error {
    fn from(e: ServerError) -> Self {
        Error::Server(Box::new(e))
    }
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
    /// See [`Error::AuthorizationResponse`].
    AuthorizationResponse,
    /// See [`Error::IdToken`].
    IdToken,
    /// See [`Error::Store`].
    Store,
    /// See [`Error::Server`]; the class says which kind of refusal or failure.
    Server(ServerErrorClass),
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
            ErrorKind::AuthorizationResponse => "invalid_authorization_response",
            ErrorKind::IdToken => "invalid_id_token",
            ErrorKind::Store => "store",
            ErrorKind::Server(class) => class.as_str(),
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
            Error::AuthorizationResponse(_) => ErrorKind::AuthorizationResponse,
            Error::IdToken(_) => ErrorKind::IdToken,
            Error::Store(_) => ErrorKind::Store,
            Error::Server(e) => ErrorKind::Server(e.class()),
        }
    }

    /// The authority's error, if it answered with one.
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            Error::Server(e) => Some(e.as_ref()),
            _ => None,
        }
    }

    /// The authority rejected the client's credential (`invalid_client`).
    pub fn is_invalid_client(&self) -> bool {
        self.kind() == ErrorKind::Server(ServerErrorClass::InvalidClient)
    }

    /// Throttled: wait [`Error::retry_after`] before the next request.
    pub fn is_throttled(&self) -> bool {
        self.kind() == ErrorKind::Server(ServerErrorClass::Throttled)
    }

    /// The authority reported a failure on its side (5xx).
    pub fn is_service_unavailable(&self) -> bool {
        self.kind() == ErrorKind::Server(ServerErrorClass::ServiceUnavailable)
    }

    /// How long the authority asked to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        self.server_error().and_then(ServerError::retry_after)
    }

    /// The claims challenge carried by the error, to replay in a step-up request.
    pub fn claims_challenge(&self) -> Option<&str> {
        self.server_error().and_then(ServerError::claims)
    }

    /// The authority refused the request itself (any OAuth error but throttling and 5xx): the
    /// same request will fail again.
    pub fn is_rejected(&self) -> bool {
        matches!(self, Error::Server(e)
            if !matches!(e.class(), ServerErrorClass::Throttled | ServerErrorClass::ServiceUnavailable))
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

    /// The same request may succeed later: a timeout, a connection failure, throttling or a
    /// server failure.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(e) => e.is_retryable(),
            Error::Signer(e) => e.is_retryable(),
            Error::Server(e) => matches!(
                e.class(),
                ServerErrorClass::Throttled | ServerErrorClass::ServiceUnavailable
            ),
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

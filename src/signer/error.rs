//! Errors from loading keys and certificates and from signing.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// What went wrong in a [`Signer`](super::Signer) or while loading its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignerErrorKind {
    /// The PEM, DER or PKCS#12 input is garbage, truncated or not the structure expected.
    Malformed,
    /// The password or passphrase does not decrypt the key.
    WrongPassword,
    /// The PKCS#12 integrity check (MAC) failed although the password decrypts the content:
    /// the file was altered.
    IntegrityCheckFailed,
    /// The private key does not belong to any of the certificates given.
    KeyMismatch,
    /// The key is too weak: RSA under 2048 bits, or a public exponent outside policy.
    WeakKey,
    /// A key type, curve, size or encryption scheme confidant does not support.
    Unsupported,
    /// The signer cannot produce the requested algorithm.
    UnsupportedAlgorithm,
    /// The certificate is outside its validity period and the signer was told to refuse that.
    CertificateExpired,
    /// The input holds no certificate.
    MissingCertificate,
    /// The input holds no private key.
    MissingKey,
    /// Reading a key or certificate file failed.
    Io,
    /// A remote signer (Key Vault, an HSM) failed or refused.
    Remote,
    /// The crypto backend failed to produce a signature.
    SigningFailed,
}

impl SignerErrorKind {
    /// The stable snake_case name of this kind; renaming one is a breaking change.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::WrongPassword => "wrong_password",
            Self::IntegrityCheckFailed => "integrity_check_failed",
            Self::KeyMismatch => "key_mismatch",
            Self::WeakKey => "weak_key",
            Self::Unsupported => "unsupported",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::CertificateExpired => "certificate_expired",
            Self::MissingCertificate => "missing_certificate",
            Self::MissingKey => "missing_key",
            Self::Io => "io",
            Self::Remote => "remote",
            Self::SigningFailed => "signing_failed",
        }
    }
}

impl fmt::Display for SignerErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from loading a key or certificate, or from signing.
///
/// The message names the problem and never contains key material or passwords. Cloning is cheap
/// (the cause is shared), so one failure can be handed to every caller waiting on it.
#[derive(Debug, Clone)]
pub struct SignerError {
    kind: SignerErrorKind,
    message: String,
    retryable: bool,
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

impl SignerError {
    /// A new error of `kind` with a message for people.
    ///
    /// Implementations of [`Signer`](super::Signer) use this; the message must not contain
    /// secret material.
    pub fn new(kind: SignerErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retryable: false,
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Marks the error as transient (a remote signer that timed out or was throttled).
    pub fn retryable(mut self) -> Self {
        self.retryable = true;
        self
    }

    /// The class of this error.
    pub fn kind(&self) -> SignerErrorKind {
        self.kind
    }

    /// The same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The input could not be parsed.
    pub fn is_malformed(&self) -> bool {
        self.kind == SignerErrorKind::Malformed
    }

    /// The password or passphrase is wrong.
    pub fn is_wrong_password(&self) -> bool {
        self.kind == SignerErrorKind::WrongPassword
    }

    /// The key and certificate do not belong together.
    pub fn is_key_mismatch(&self) -> bool {
        self.kind == SignerErrorKind::KeyMismatch
    }

    pub(crate) fn malformed(what: &str, source: impl StdError + Send + Sync + 'static) -> Self {
        Self::new(SignerErrorKind::Malformed, format!("malformed {what}")).with_source(source)
    }
}

impl fmt::Display for SignerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "signer error ({}): {}", self.kind, self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl StdError for SignerError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

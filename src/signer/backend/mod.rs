//! The crypto backends behind the local signers: aws-lc-rs (default) and RustCrypto.

use std::fmt;

use super::Algorithm;
use super::error::{SignerError, SignerErrorKind};
use super::key::{KeyKind, PrivateKeyDer};

#[cfg(feature = "aws-lc")]
mod aws_lc;
#[cfg(feature = "rust-crypto")]
mod rust_crypto;

/// Which crypto library signs with a local key.
///
/// The default is aws-lc-rs when the `aws-lc` feature is on (it is by default), else RustCrypto.
/// The `rust-crypto` backend uses the `rsa` crate, subject to [RUSTSEC-2023-0071] (a timing side
/// channel in RSA private-key operations, the "Marvin attack"); prefer aws-lc where an attacker can
/// time many signatures.
///
/// [RUSTSEC-2023-0071]: https://rustsec.org/advisories/RUSTSEC-2023-0071
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// aws-lc-rs (feature `aws-lc`, on by default).
    #[cfg(feature = "aws-lc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "aws-lc")))]
    AwsLc,
    /// Pure-Rust `rsa` + `p256` (feature `rust-crypto`).
    #[cfg(feature = "rust-crypto")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rust-crypto")))]
    RustCrypto,
}

impl Default for Backend {
    fn default() -> Self {
        #[cfg(feature = "aws-lc")]
        return Backend::AwsLc;
        #[cfg(not(feature = "aws-lc"))]
        return Backend::RustCrypto;
    }
}

/// A parsed private key held by one backend.
pub(crate) enum KeyPair {
    #[cfg(feature = "aws-lc")]
    AwsLc(aws_lc::KeyPair),
    #[cfg(feature = "rust-crypto")]
    RustCrypto(rust_crypto::KeyPair),
}

impl KeyPair {
    pub(crate) fn from_pkcs8(backend: Backend, key: &PrivateKeyDer) -> Result<Self, SignerError> {
        match backend {
            #[cfg(feature = "aws-lc")]
            Backend::AwsLc => aws_lc::KeyPair::from_pkcs8(key).map(KeyPair::AwsLc),
            #[cfg(feature = "rust-crypto")]
            Backend::RustCrypto => rust_crypto::KeyPair::from_pkcs8(key).map(KeyPair::RustCrypto),
        }
    }

    /// PKCS#1 `RSAPublicKey` DER for RSA, the uncompressed point for P-256.
    pub(crate) fn public_key(&self) -> &[u8] {
        match self {
            #[cfg(feature = "aws-lc")]
            KeyPair::AwsLc(k) => k.public_key(),
            #[cfg(feature = "rust-crypto")]
            KeyPair::RustCrypto(k) => k.public_key(),
        }
    }

    pub(crate) fn sign(&self, alg: Algorithm, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        match self {
            #[cfg(feature = "aws-lc")]
            KeyPair::AwsLc(k) => k.sign(alg, message),
            #[cfg(feature = "rust-crypto")]
            KeyPair::RustCrypto(k) => k.sign(alg, message),
        }
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            #[cfg(feature = "aws-lc")]
            KeyPair::AwsLc(_) => f.write_str("KeyPair(aws-lc, [redacted])"),
            #[cfg(feature = "rust-crypto")]
            KeyPair::RustCrypto(_) => f.write_str("KeyPair(rust-crypto, [redacted])"),
        }
    }
}

/// Verifies a JWS signature with a public key in the form [`KeyPair::public_key`] returns.
pub(crate) fn verify(
    backend: Backend,
    alg: Algorithm,
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> bool {
    match backend {
        #[cfg(feature = "aws-lc")]
        Backend::AwsLc => aws_lc::verify(alg, public_key, message, signature),
        #[cfg(feature = "rust-crypto")]
        Backend::RustCrypto => rust_crypto::verify(alg, public_key, message, signature),
    }
}

fn wrong_algorithm(kind: KeyKind, alg: Algorithm) -> SignerError {
    SignerError::new(
        SignerErrorKind::UnsupportedAlgorithm,
        format!("a {} key cannot produce {alg}", kind.name()),
    )
}

fn rejected(reason: &str) -> SignerError {
    SignerError::new(
        SignerErrorKind::Unsupported,
        format!("the crypto backend rejected the key: {reason}"),
    )
}

//! Private-key normalization (PKCS#8, PKCS#1, SEC1, encrypted PKCS#8) and the local key shared by
//! the PEM and PKCS#12 signers.

use std::sync::Arc;

use der::{Decode as _, Encode as _};
use zeroize::Zeroizing;

use super::backend::{Backend, KeyPair};
use super::certificate::{Certificate, EC_PUBLIC_KEY, PRIME256V1, RSA_ENCRYPTION};
use super::error::{SignerError, SignerErrorKind};
use super::{Algorithm, Signature};
use crate::clock::{Clock, SystemClock};
use crate::secret::Password;

const RSA_ALGORITHMS: &[Algorithm] = &[Algorithm::Ps256, Algorithm::Rs256];
const EC_ALGORITHMS: &[Algorithm] = &[Algorithm::Es256];

/// The smallest and largest RSA moduli accepted.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa { bits: usize },
    EcP256,
}

impl KeyKind {
    pub(crate) fn name(self) -> String {
        match self {
            KeyKind::Rsa { bits } => format!("RSA-{bits}"),
            KeyKind::EcP256 => "P-256".to_owned(),
        }
    }

    fn algorithms(self) -> &'static [Algorithm] {
        match self {
            KeyKind::Rsa { .. } => RSA_ALGORITHMS,
            KeyKind::EcP256 => EC_ALGORITHMS,
        }
    }
}

/// A checked, unencrypted PKCS#8 private key; zeroized on drop.
pub(crate) struct PrivateKeyDer {
    pkcs8: Zeroizing<Vec<u8>>,
    kind: KeyKind,
}

impl PrivateKeyDer {
    pub(crate) fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    pub(crate) fn kind(&self) -> KeyKind {
        self.kind
    }

    /// An unencrypted PKCS#8 `PrivateKeyInfo`.
    pub(crate) fn from_pkcs8_der(der: &[u8]) -> Result<Self, SignerError> {
        let info = pkcs8::PrivateKeyInfo::from_der(der)
            .map_err(|e| SignerError::malformed("PKCS#8 private key", e))?;
        let oid = info.algorithm.oid;
        let kind = if oid == RSA_ENCRYPTION {
            rsa_kind(info.private_key)?
        } else if oid == EC_PUBLIC_KEY {
            match info.algorithm.parameters_oid() {
                Ok(curve) if curve == PRIME256V1 => KeyKind::EcP256,
                Ok(curve) => {
                    return Err(SignerError::new(
                        SignerErrorKind::Unsupported,
                        format!("EC curve {curve} is not supported; use P-256"),
                    ));
                }
                Err(e) => return Err(SignerError::malformed("EC key parameters", e)),
            }
        } else {
            return Err(SignerError::new(
                SignerErrorKind::Unsupported,
                format!("key algorithm {oid} is not supported; use RSA (2048-8192 bits) or P-256"),
            ));
        };
        Ok(Self {
            pkcs8: Zeroizing::new(der.to_vec()),
            kind,
        })
    }

    /// A PKCS#1 `RSAPrivateKey` (`BEGIN RSA PRIVATE KEY`).
    pub(crate) fn from_pkcs1_der(der: &[u8]) -> Result<Self, SignerError> {
        let kind = rsa_kind(der)?;
        let info = pkcs8::PrivateKeyInfo::new(
            spki::AlgorithmIdentifierRef {
                oid: RSA_ENCRYPTION,
                parameters: Some(der::asn1::AnyRef::NULL),
            },
            der,
        );
        Ok(Self {
            pkcs8: encode(&info)?,
            kind,
        })
    }

    /// A SEC1 `ECPrivateKey` (`BEGIN EC PRIVATE KEY`).
    pub(crate) fn from_sec1_der(der: &[u8]) -> Result<Self, SignerError> {
        let key = sec1::EcPrivateKey::from_der(der)
            .map_err(|e| SignerError::malformed("SEC1 EC private key", e))?;
        if let Some(curve) = key.parameters.and_then(|p| p.named_curve())
            && curve != PRIME256V1
        {
            return Err(SignerError::new(
                SignerErrorKind::Unsupported,
                format!("EC curve {curve} is not supported; use P-256"),
            ));
        }
        let curve = der::asn1::AnyRef::from(&PRIME256V1);
        let info = pkcs8::PrivateKeyInfo::new(
            spki::AlgorithmIdentifierRef {
                oid: EC_PUBLIC_KEY,
                parameters: Some(curve),
            },
            der,
        );
        Ok(Self {
            pkcs8: encode(&info)?,
            kind: KeyKind::EcP256,
        })
    }

    /// An `EncryptedPrivateKeyInfo` (`BEGIN ENCRYPTED PRIVATE KEY`, PKCS#12 shrouded key bags
    /// that use PBES2).
    pub(crate) fn from_encrypted_pkcs8_der(
        der: &[u8],
        password: &[u8],
    ) -> Result<Self, SignerError> {
        let info = pkcs8::EncryptedPrivateKeyInfo::from_der(der)
            .map_err(|e| SignerError::malformed("encrypted PKCS#8 private key", e))?;
        let plain = info.decrypt(password).map_err(|e| match e {
            pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::UnsupportedAlgorithm { oid }) => {
                SignerError::new(
                    SignerErrorKind::Unsupported,
                    format!("private key encryption {oid} is not supported"),
                )
            }
            _ => wrong_password(),
        })?;
        // A wrong password that happens to leave valid padding yields garbage, not PKCS#8.
        Self::from_pkcs8_der(plain.as_bytes()).map_err(|e| {
            if e.is_malformed() {
                wrong_password()
            } else {
                e
            }
        })
    }

    /// One PEM block holding a private key, by its label.
    pub(crate) fn from_pem_block(
        label: &str,
        der: &[u8],
        passphrase: Option<&Password>,
    ) -> Result<Self, SignerError> {
        match label {
            "PRIVATE KEY" => Self::from_pkcs8_der(der),
            "RSA PRIVATE KEY" => Self::from_pkcs1_der(der),
            "EC PRIVATE KEY" => Self::from_sec1_der(der),
            "ENCRYPTED PRIVATE KEY" => {
                let passphrase = passphrase.ok_or_else(|| {
                    SignerError::new(
                        SignerErrorKind::WrongPassword,
                        "the private key is encrypted and no passphrase was given",
                    )
                })?;
                Self::from_encrypted_pkcs8_der(der, passphrase.expose_secret().as_bytes())
            }
            other => Err(SignerError::new(
                SignerErrorKind::Unsupported,
                format!("PEM block `{other}` is not a supported private key"),
            )),
        }
    }
}

pub(crate) fn wrong_password() -> SignerError {
    SignerError::new(
        SignerErrorKind::WrongPassword,
        "the password does not decrypt the private key",
    )
}

fn encode(info: &pkcs8::PrivateKeyInfo<'_>) -> Result<Zeroizing<Vec<u8>>, SignerError> {
    info.to_der()
        .map(Zeroizing::new)
        .map_err(|e| SignerError::malformed("private key", e))
}

/// Checks an RSA key against the policy: 2048-8192 bits, odd public exponent 65537 <= e < 2^32.
fn rsa_kind(pkcs1_der: &[u8]) -> Result<KeyKind, SignerError> {
    let key = pkcs1::RsaPrivateKey::from_der(pkcs1_der)
        .map_err(|e| SignerError::malformed("RSA private key", e))?;
    if key.other_prime_infos.is_some() {
        return Err(SignerError::new(
            SignerErrorKind::Unsupported,
            "multi-prime RSA keys are not supported",
        ));
    }
    let bits = uint_bits(key.modulus.as_bytes());
    if bits < *RSA_BITS.start() {
        return Err(SignerError::new(
            SignerErrorKind::WeakKey,
            format!("RSA key of {bits} bits is too small; at least 2048 are required"),
        ));
    }
    if bits > *RSA_BITS.end() {
        return Err(SignerError::new(
            SignerErrorKind::Unsupported,
            format!("RSA key of {bits} bits is larger than the 8192 supported"),
        ));
    }
    let e = key.public_exponent.as_bytes();
    let exponent_ok = e.len() <= 4
        && e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)) >= 65537
        && e.last().is_some_and(|b| b & 1 == 1);
    if !exponent_ok {
        return Err(SignerError::new(
            SignerErrorKind::WeakKey,
            "RSA public exponent must be odd, at least 65537 and below 2^32",
        ));
    }
    Ok(KeyKind::Rsa { bits })
}

/// Bit length of a big-endian unsigned integer.
fn uint_bits(bytes: &[u8]) -> usize {
    let bytes = match bytes.iter().position(|b| *b != 0) {
        Some(first) => &bytes[first..],
        None => return 0,
    };
    bytes.len() * 8 - bytes[0].leading_zeros() as usize
}

/// How a local signer loads its key and certificate.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SignerOptions {
    /// The crypto library that signs; see [`Backend`].
    pub backend: Backend,
    /// Refuse a certificate outside its validity period instead of logging a warning.
    pub refuse_expired_certificate: bool,
    /// The clock the validity check reads.
    pub clock: Arc<dyn Clock>,
}

impl Default for SignerOptions {
    fn default() -> Self {
        Self {
            backend: Backend::default(),
            refuse_expired_certificate: false,
            clock: Arc::new(SystemClock),
        }
    }
}

impl SignerOptions {
    /// Signs with `backend`.
    pub fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// Refuses (`true`) or only warns about (`false`, the default) an expired or not yet valid
    /// certificate.
    pub fn with_refuse_expired_certificate(mut self, refuse: bool) -> Self {
        self.refuse_expired_certificate = refuse;
        self
    }

    /// Reads the time for the validity check from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

/// Implements [`Signer`](super::Signer) for a wrapper whose `key` field is a [`LocalKey`].
macro_rules! local_signer {
    ($signer:ty) => {
        #[async_trait::async_trait]
        impl $crate::signer::Signer for $signer {
            fn algorithms(&self) -> &[$crate::signer::Algorithm] {
                self.key.algorithms()
            }

            fn key_id(&self) -> Option<&str> {
                None
            }

            fn certificate(&self) -> Option<&$crate::signer::Certificate> {
                Some(self.key.certificate())
            }

            async fn sign(
                &self,
                alg: $crate::signer::Algorithm,
                message: &[u8],
            ) -> Result<$crate::signer::Signature, $crate::signer::SignerError> {
                self.key.sign(alg, message)
            }
        }
    };
}
pub(crate) use local_signer;

/// A parsed key with its certificate, held in memory.
#[derive(Debug)]
pub(crate) struct LocalKey {
    key: KeyPair,
    certificate: Certificate,
    algorithms: &'static [Algorithm],
}

impl LocalKey {
    /// Loads `key`, picks the certificate among `certificates` (DER) that matches it, keeps the
    /// rest as its chain, and checks the validity period.
    pub(crate) fn new(
        key: PrivateKeyDer,
        certificates: &[Vec<u8>],
        options: &SignerOptions,
    ) -> Result<Self, SignerError> {
        if certificates.is_empty() {
            return Err(SignerError::new(
                SignerErrorKind::MissingCertificate,
                "no certificate was given",
            ));
        }
        let pair = KeyPair::from_pkcs8(options.backend, &key)?;
        let mut leaf = None;
        for (i, der) in certificates.iter().enumerate() {
            let cert = x509_cert::Certificate::from_der(der)
                .map_err(|e| SignerError::malformed("X.509 certificate", e))?;
            let bits = cert
                .tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes();
            if leaf.is_none() && bits == pair.public_key() {
                leaf = Some(i);
            }
        }
        let leaf = leaf.ok_or_else(|| {
            SignerError::new(
                SignerErrorKind::KeyMismatch,
                "the private key matches none of the certificates",
            )
        })?;
        let chain: Vec<&[u8]> = certificates
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != leaf)
            .map(|(_, der)| der.as_slice())
            .collect();
        let certificate = Certificate::from_der(&certificates[leaf], &chain)?;
        let now = options.clock.now();
        if !certificate.is_valid_at(now) {
            if options.refuse_expired_certificate {
                return Err(SignerError::new(
                    SignerErrorKind::CertificateExpired,
                    format!(
                        "certificate {} is outside its validity period",
                        certificate.x5t_s256()
                    ),
                ));
            }
            tracing::warn!(
                x5t_s256 = certificate.x5t_s256(),
                subject = certificate.subject(),
                "signing certificate is outside its validity period"
            );
        }
        Ok(Self {
            key: pair,
            certificate,
            algorithms: key.kind().algorithms(),
        })
    }

    pub(crate) fn algorithms(&self) -> &[Algorithm] {
        self.algorithms
    }

    pub(crate) fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    pub(crate) fn sign(&self, alg: Algorithm, message: &[u8]) -> Result<Signature, SignerError> {
        self.key.sign(alg, message).map(Signature::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_length() {
        assert_eq!(uint_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(uint_bits(&[0x01]), 1);
        assert_eq!(uint_bits(&[0, 0]), 0);
        assert_eq!(uint_bits(&[]), 0);
    }
}

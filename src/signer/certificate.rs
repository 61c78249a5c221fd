//! X.509 certificate data for the `x5t`, `x5t#S256` and `x5c` headers.

use std::fmt;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use der::Decode as _;
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use super::error::{SignerError, SignerErrorKind};
use super::{Algorithm, Backend};

/// A certificate with its chain, parsed once.
///
/// Thumbprints are computed at construction over the leaf certificate's DER (not its public
/// key), as Entra ID expects.
#[derive(Clone)]
pub struct Certificate {
    /// Leaf first, then the rest of the chain towards the root.
    chain: Vec<Vec<u8>>,
    sha1: [u8; 20],
    sha256: [u8; 32],
    x5t: String,
    x5t_s256: String,
    not_before: SystemTime,
    not_after: SystemTime,
    subject: String,
    issuer: String,
    /// The `subjectPublicKey` bits: PKCS#1 `RSAPublicKey` DER, or an uncompressed EC point.
    public_key: Vec<u8>,
    public_key_algorithm: der::asn1::ObjectIdentifier,
}

pub(crate) const RSA_ENCRYPTION: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
pub(crate) const EC_PUBLIC_KEY: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
pub(crate) const PRIME256V1: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

impl Certificate {
    /// Parses a leaf certificate (DER) and the rest of its chain (DER, any order).
    ///
    /// The chain is put in `x5c` order: leaf first, each next certificate the issuer of the one
    /// before; certificates that do not link are appended in the order given.
    pub fn from_der(leaf: &[u8], chain: &[&[u8]]) -> Result<Self, SignerError> {
        let parsed = x509_cert::Certificate::from_der(leaf)
            .map_err(|e| SignerError::malformed("X.509 certificate", e))?;
        let mut rest = Vec::with_capacity(chain.len());
        for der in chain {
            let cert = x509_cert::Certificate::from_der(der)
                .map_err(|e| SignerError::malformed("X.509 certificate in chain", e))?;
            rest.push((cert, der.to_vec()));
        }
        Self::from_parsed(parsed, leaf.to_vec(), rest)
    }

    /// Parses PEM holding one or more `CERTIFICATE` blocks; the first is the leaf.
    pub fn from_pem(pem: &[u8]) -> Result<Self, SignerError> {
        let ders = super::pem::certificates_from_pem(pem)?;
        let (leaf, rest) = ders.split_first().ok_or_else(|| {
            SignerError::new(
                SignerErrorKind::MissingCertificate,
                "no CERTIFICATE block in PEM",
            )
        })?;
        let rest: Vec<&[u8]> = rest.iter().map(Vec::as_slice).collect();
        Self::from_der(leaf, &rest)
    }

    fn from_parsed(
        leaf: x509_cert::Certificate,
        leaf_der: Vec<u8>,
        mut rest: Vec<(x509_cert::Certificate, Vec<u8>)>,
    ) -> Result<Self, SignerError> {
        let tbs = &leaf.tbs_certificate;
        let spki = &tbs.subject_public_key_info;
        let public_key = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| {
                SignerError::new(
                    SignerErrorKind::Malformed,
                    "certificate public key has unused bits",
                )
            })?
            .to_vec();

        // Order the chain: follow issuer -> subject links from the leaf.
        let mut ordered = vec![leaf_der];
        let mut issuer = tbs.issuer.clone();
        let mut current_subject = tbs.subject.clone();
        while issuer != current_subject {
            let Some(pos) = rest
                .iter()
                .position(|(c, _)| c.tbs_certificate.subject == issuer)
            else {
                break;
            };
            let (cert, der) = rest.remove(pos);
            current_subject = cert.tbs_certificate.subject.clone();
            issuer = cert.tbs_certificate.issuer.clone();
            ordered.push(der);
        }
        ordered.extend(rest.into_iter().map(|(_, der)| der));

        let sha1: [u8; 20] = Sha1::digest(&ordered[0]).into();
        let sha256: [u8; 32] = Sha256::digest(&ordered[0]).into();
        Ok(Self {
            x5t: URL_SAFE_NO_PAD.encode(sha1),
            x5t_s256: URL_SAFE_NO_PAD.encode(sha256),
            sha1,
            sha256,
            not_before: tbs.validity.not_before.to_system_time(),
            not_after: tbs.validity.not_after.to_system_time(),
            subject: tbs.subject.to_string(),
            issuer: tbs.issuer.to_string(),
            public_key,
            public_key_algorithm: spki.algorithm.oid,
            chain: ordered,
        })
    }

    /// The `subjectPublicKey` bits: PKCS#1 `RSAPublicKey` DER, or an uncompressed EC point.
    pub(crate) fn public_key_bits(&self) -> &[u8] {
        &self.public_key
    }

    /// The leaf certificate, DER.
    pub fn der(&self) -> &[u8] {
        &self.chain[0]
    }

    /// The chain in `x5c` order, leaf first, DER.
    pub fn chain(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        self.chain.iter().map(Vec::as_slice)
    }

    /// SHA-1 of the leaf DER.
    pub fn sha1_thumbprint(&self) -> &[u8; 20] {
        &self.sha1
    }

    /// SHA-256 of the leaf DER.
    pub fn sha256_thumbprint(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// The SHA-1 thumbprint as upper-case hex, as the Azure portal shows it.
    pub fn sha1_hex(&self) -> String {
        hex_upper(&self.sha1)
    }

    /// The SHA-256 thumbprint as upper-case hex.
    pub fn sha256_hex(&self) -> String {
        hex_upper(&self.sha256)
    }

    /// The `x5t` header value: unpadded base64url of the SHA-1 thumbprint (27 characters).
    pub fn x5t(&self) -> &str {
        &self.x5t
    }

    /// The `x5t#S256` header value: unpadded base64url of the SHA-256 thumbprint (43 characters).
    pub fn x5t_s256(&self) -> &str {
        &self.x5t_s256
    }

    /// The `x5c` header value: the chain, leaf first, each DER in standard padded base64 without
    /// line breaks ([RFC 7515 §4.1.6]).
    ///
    /// [RFC 7515 §4.1.6]: https://www.rfc-editor.org/rfc/rfc7515#section-4.1.6
    pub fn x5c(&self) -> Vec<String> {
        self.chain.iter().map(|der| STANDARD.encode(der)).collect()
    }

    /// Start of the validity period.
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// End of the validity period.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// Whether `time` lies within the validity period.
    pub fn is_valid_at(&self, time: SystemTime) -> bool {
        self.not_before <= time && time <= self.not_after
    }

    /// The subject distinguished name (RFC 4514 form).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The issuer distinguished name (RFC 4514 form).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Verifies a JWS signature made with this certificate's key, using `backend`.
    ///
    /// For checking what a signer produced (tests, diagnostics); bearer tokens are validated by
    /// the validator, which also applies issuer, audience and lifetime rules.
    pub fn verify_signature(
        &self,
        backend: Backend,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        let key_matches = if alg.is_rsa() {
            self.public_key_algorithm == RSA_ENCRYPTION
        } else {
            self.public_key_algorithm == EC_PUBLIC_KEY
        };
        key_matches && super::backend::verify(backend, alg, &self.public_key, message, signature)
    }

    /// Re-encodes the parsed leaf to check it round-trips; used only by tests.
    #[cfg(test)]
    fn reencode_leaf(&self) -> Vec<u8> {
        x509_cert::Certificate::from_der(self.der())
            .and_then(|c| der::Encode::to_der(&c))
            .unwrap_or_default()
    }
}

fn hex_upper(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02X}");
            s
        })
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject)
            .field("issuer", &self.issuer)
            .field("x5t#S256", &self.x5t_s256)
            .field("chain_len", &self.chain.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &[u8] = include_bytes!("../../tests/fixtures/rsa2048.crt");

    #[test]
    fn thumbprints_are_over_the_certificate_der() {
        let cert = Certificate::from_pem(CERT).expect("fixture parses");
        assert_eq!(cert.x5t().len(), 27);
        assert_eq!(cert.x5t_s256().len(), 43);
        assert_eq!(
            cert.sha256_thumbprint(),
            &<[u8; 32]>::from(Sha256::digest(cert.der()))
        );
        assert_eq!(cert.reencode_leaf(), cert.der());
        assert!(!cert.x5c()[0].contains('\n'));
    }

    #[test]
    fn garbage_is_a_typed_error() {
        let err = Certificate::from_der(b"\x30\x03\x02\x01", &[]).expect_err("garbage");
        assert!(err.is_malformed());
        let err = Certificate::from_pem(b"hello").expect_err("no blocks");
        assert_eq!(err.kind(), SignerErrorKind::MissingCertificate);
    }
}

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

#[cfg(all(feature = "aws-lc", feature = "rust-crypto"))]
const AVAILABLE: &[Backend] = &[Backend::AwsLc, Backend::RustCrypto];
#[cfg(all(feature = "aws-lc", not(feature = "rust-crypto")))]
const AVAILABLE: &[Backend] = &[Backend::AwsLc];
#[cfg(all(not(feature = "aws-lc"), feature = "rust-crypto"))]
const AVAILABLE: &[Backend] = &[Backend::RustCrypto];
#[cfg(not(any(feature = "aws-lc", feature = "rust-crypto")))]
const AVAILABLE: &[Backend] = &[];

impl Backend {
    /// The backends compiled in, the default first.
    pub fn available() -> &'static [Backend] {
        AVAILABLE
    }
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

/// A public key parsed once by one backend, for the validator's key sets.
pub(crate) enum PublicKey {
    #[cfg(feature = "aws-lc")]
    AwsLc(aws_lc::PublicKey),
    #[cfg(feature = "rust-crypto")]
    RustCrypto(rust_crypto::PublicKey),
}

impl PublicKey {
    /// An RSA key from its PKCS#1 `RSAPublicKey` DER; `None` if the backend refuses it.
    pub(crate) fn rsa(backend: Backend, pkcs1_der: &[u8]) -> Option<Self> {
        match backend {
            #[cfg(feature = "aws-lc")]
            Backend::AwsLc => aws_lc::PublicKey::rsa(pkcs1_der).map(PublicKey::AwsLc),
            #[cfg(feature = "rust-crypto")]
            Backend::RustCrypto => {
                rust_crypto::PublicKey::rsa(pkcs1_der).map(PublicKey::RustCrypto)
            }
        }
    }

    /// A P-256 key from its uncompressed point; `None` if it is not on the curve.
    pub(crate) fn ec_p256(backend: Backend, point: &[u8]) -> Option<Self> {
        match backend {
            #[cfg(feature = "aws-lc")]
            Backend::AwsLc => aws_lc::PublicKey::ec_p256(point).map(PublicKey::AwsLc),
            #[cfg(feature = "rust-crypto")]
            Backend::RustCrypto => {
                rust_crypto::PublicKey::ec_p256(point).map(PublicKey::RustCrypto)
            }
        }
    }

    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        match self {
            #[cfg(feature = "aws-lc")]
            PublicKey::AwsLc(k) => k.verify(alg, message, signature),
            #[cfg(feature = "rust-crypto")]
            PublicKey::RustCrypto(k) => k.verify(alg, message, signature),
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

/// Fills `dest` from the backend's CSPRNG (aws-lc's DRBG, or the operating system's).
pub(crate) fn fill_random(dest: &mut [u8]) -> Result<(), SignerError> {
    let failed = |_| {
        SignerError::new(
            SignerErrorKind::SigningFailed,
            "the random generator failed",
        )
    };
    #[cfg(feature = "aws-lc")]
    return aws_lc_rs::rand::fill(dest).map_err(failed);
    #[cfg(not(feature = "aws-lc"))]
    return rsa::rand_core::RngCore::try_fill_bytes(&mut rsa::rand_core::OsRng, dest)
        .map_err(failed);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// RSASSA-PKCS1-v1_5 is deterministic: our RS256 must reproduce Wycheproof's signatures byte
    /// for byte, and the `e = 3` keys must fall to the key policy.
    #[test]
    fn wycheproof_rsa_pkcs1_sha256_generation() {
        let json: serde_json::Value = serde_json::from_slice(include_bytes!(
            "../../../tests/fixtures/wycheproof/rsa_pkcs1_2048_sig_gen_test.json"
        ))
        .expect("vectors parse");
        let groups = json["testGroups"].as_array().expect("groups");
        let (mut signed, mut refused) = (0, 0);
        for group in groups.iter().filter(|g| g["sha"] == "SHA-256") {
            let pkcs8 = hex(group["privateKeyPkcs8"].as_str().expect("pkcs8"));
            let exponent = group["privateKey"]["publicExponent"].as_str().expect("e");
            let key = PrivateKeyDer::from_pkcs8_der(&pkcs8);
            if exponent != "010001" {
                let err = key.err().expect("small exponent refused");
                assert_eq!(err.kind(), SignerErrorKind::WeakKey, "{err}");
                refused += 1;
                continue;
            }
            let key = key.expect("e = 65537 key loads");
            for &backend in Backend::available() {
                let pair = KeyPair::from_pkcs8(backend, &key).expect("backend loads key");
                for test in group["tests"].as_array().expect("tests") {
                    let msg = hex(test["msg"].as_str().expect("msg"));
                    let expected = hex(test["sig"].as_str().expect("sig"));
                    let sig = pair.sign(Algorithm::Rs256, &msg).expect("signs");
                    assert_eq!(sig, expected, "tcId {} on {backend:?}", test["tcId"]);
                    assert!(verify(
                        backend,
                        Algorithm::Rs256,
                        pair.public_key(),
                        &msg,
                        &sig
                    ));
                    signed += 1;
                }
            }
        }
        assert_eq!(refused, 2);
        assert_eq!(signed, 8 * Backend::available().len());
    }

    #[test]
    fn verify_rejects_wrong_algorithm_and_garbage_keys() {
        for &backend in Backend::available() {
            assert!(!verify(
                backend,
                Algorithm::Rs256,
                b"not a key",
                b"m",
                &[0; 256]
            ));
            assert!(!verify(
                backend,
                Algorithm::Es256,
                b"not a point",
                b"m",
                &[0; 64]
            ));
            assert!(!verify(backend, Algorithm::Ps256, &[], b"m", &[]));
        }
    }
}

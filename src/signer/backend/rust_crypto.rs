//! Pure-Rust signing and verification with `rsa` and `p256`.
//!
//! `rsa` is subject to RUSTSEC-2023-0071 (see [`Backend`](super::Backend)).

use p256::ecdsa::{SigningKey as EcSigningKey, VerifyingKey as EcVerifyingKey};
use p256::pkcs8::DecodePrivateKey as _;
use rsa::pkcs1::{DecodeRsaPublicKey as _, EncodeRsaPublicKey as _};
use rsa::rand_core::OsRng;
use rsa::traits::PublicKeyParts as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;
use signature::{RandomizedSigner as _, SignatureEncoding as _, Signer as _, Verifier as _};

use super::{rejected, wrong_algorithm};
use crate::signer::Algorithm;
use crate::signer::error::{SignerError, SignerErrorKind};
use crate::signer::key::{KeyKind, PrivateKeyDer};

pub(crate) enum KeyPair {
    Rsa(Box<RsaKeys>),
    Ec {
        key: EcSigningKey,
        public_key: Vec<u8>,
    },
}

pub(crate) struct RsaKeys {
    pkcs1v15: rsa::pkcs1v15::SigningKey<Sha256>,
    pss: rsa::pss::BlindedSigningKey<Sha256>,
    bits: usize,
    public_key: Vec<u8>,
}

impl KeyPair {
    pub(crate) fn from_pkcs8(key: &PrivateKeyDer) -> Result<Self, SignerError> {
        match key.kind() {
            KeyKind::Rsa { bits } => {
                let private = RsaPrivateKey::from_pkcs8_der(key.pkcs8())
                    .map_err(|e| rejected(&e.to_string()))?;
                private.validate().map_err(|e| rejected(&e.to_string()))?;
                let public_key = RsaPublicKey::from(&private)
                    .to_pkcs1_der()
                    .map_err(|e| rejected(&e.to_string()))?
                    .as_bytes()
                    .to_vec();
                Ok(KeyPair::Rsa(Box::new(RsaKeys {
                    pkcs1v15: rsa::pkcs1v15::SigningKey::new(private.clone()),
                    pss: rsa::pss::BlindedSigningKey::new(private),
                    bits,
                    public_key,
                })))
            }
            KeyKind::EcP256 => {
                let key = EcSigningKey::from_pkcs8_der(key.pkcs8())
                    .map_err(|e| rejected(&e.to_string()))?;
                let public_key = key
                    .verifying_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec();
                Ok(KeyPair::Ec { key, public_key })
            }
        }
    }

    pub(crate) fn public_key(&self) -> &[u8] {
        match self {
            KeyPair::Rsa(keys) => &keys.public_key,
            KeyPair::Ec { public_key, .. } => public_key,
        }
    }

    pub(crate) fn sign(&self, alg: Algorithm, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let failed = |_| {
            SignerError::new(
                SignerErrorKind::SigningFailed,
                "the rsa/p256 backend failed to sign",
            )
        };
        match (self, alg) {
            (KeyPair::Rsa(keys), Algorithm::Rs256) => {
                Ok(keys.pkcs1v15.try_sign(message).map_err(failed)?.to_vec())
            }
            (KeyPair::Rsa(keys), Algorithm::Ps256) => Ok(keys
                .pss
                .try_sign_with_rng(&mut OsRng, message)
                .map_err(failed)?
                .to_vec()),
            (KeyPair::Ec { key, .. }, Algorithm::Es256) => {
                let sig: p256::ecdsa::Signature = key.try_sign(message).map_err(failed)?;
                Ok(sig.to_bytes().to_vec())
            }
            (KeyPair::Rsa(keys), _) => Err(wrong_algorithm(KeyKind::Rsa { bits: keys.bits }, alg)),
            (KeyPair::Ec { .. }, _) => Err(wrong_algorithm(KeyKind::EcP256, alg)),
        }
    }
}

pub(crate) fn verify(alg: Algorithm, public_key: &[u8], message: &[u8], sig: &[u8]) -> bool {
    match alg {
        Algorithm::Rs256 | Algorithm::Ps256 => {
            let Ok(key) = RsaPublicKey::from_pkcs1_der(public_key) else {
                return false;
            };
            if !(2048..=8192).contains(&key.n().bits()) {
                return false;
            }
            if alg == Algorithm::Rs256 {
                let Ok(sig) = rsa::pkcs1v15::Signature::try_from(sig) else {
                    return false;
                };
                rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key)
                    .verify(message, &sig)
                    .is_ok()
            } else {
                let Ok(sig) = rsa::pss::Signature::try_from(sig) else {
                    return false;
                };
                rsa::pss::VerifyingKey::<Sha256>::new(key)
                    .verify(message, &sig)
                    .is_ok()
            }
        }
        Algorithm::Es256 => {
            let (Ok(key), Ok(sig)) = (
                EcVerifyingKey::from_sec1_bytes(public_key),
                p256::ecdsa::Signature::from_slice(sig),
            ) else {
                return false;
            };
            key.verify(message, &sig).is_ok()
        }
    }
}

/// A public key parsed once for repeated verification (the validator's key sets).
pub(crate) enum PublicKey {
    Rsa(
        Box<(
            rsa::pkcs1v15::VerifyingKey<Sha256>,
            rsa::pss::VerifyingKey<Sha256>,
        )>,
    ),
    Ec(EcVerifyingKey),
}

impl PublicKey {
    pub(crate) fn rsa(pkcs1_der: &[u8]) -> Option<Self> {
        let key = RsaPublicKey::from_pkcs1_der(pkcs1_der).ok()?;
        if !(2048..=8192).contains(&key.n().bits()) {
            return None;
        }
        Some(PublicKey::Rsa(Box::new((
            rsa::pkcs1v15::VerifyingKey::new(key.clone()),
            rsa::pss::VerifyingKey::new(key),
        ))))
    }

    pub(crate) fn ec_p256(point: &[u8]) -> Option<Self> {
        EcVerifyingKey::from_sec1_bytes(point)
            .ok()
            .map(PublicKey::Ec)
    }

    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], sig: &[u8]) -> bool {
        match (self, alg) {
            (PublicKey::Rsa(keys), Algorithm::Rs256) => rsa::pkcs1v15::Signature::try_from(sig)
                .is_ok_and(|s| keys.0.verify(message, &s).is_ok()),
            (PublicKey::Rsa(keys), Algorithm::Ps256) => {
                rsa::pss::Signature::try_from(sig).is_ok_and(|s| keys.1.verify(message, &s).is_ok())
            }
            (PublicKey::Ec(key), Algorithm::Es256) => p256::ecdsa::Signature::from_slice(sig)
                .is_ok_and(|s| key.verify(message, &s).is_ok()),
            _ => false,
        }
    }
}

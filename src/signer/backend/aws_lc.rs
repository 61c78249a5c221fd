//! aws-lc-rs signing and verification.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey};

use super::{rejected, wrong_algorithm};
use crate::signer::Algorithm;
use crate::signer::error::{SignerError, SignerErrorKind};
use crate::signer::key::{KeyKind, PrivateKeyDer};

pub(crate) enum KeyPair {
    Rsa {
        key: RsaKeyPair,
        public_key: Vec<u8>,
    },
    Ec {
        key: EcdsaKeyPair,
        public_key: Vec<u8>,
    },
}

impl KeyPair {
    pub(crate) fn from_pkcs8(key: &PrivateKeyDer) -> Result<Self, SignerError> {
        match key.kind() {
            KeyKind::Rsa { .. } => {
                let key =
                    RsaKeyPair::from_pkcs8(key.pkcs8()).map_err(|e| rejected(&e.to_string()))?;
                let public_key = key.public_key().as_ref().to_vec();
                Ok(KeyPair::Rsa { key, public_key })
            }
            KeyKind::EcP256 => {
                let key = EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    key.pkcs8(),
                )
                .map_err(|e| rejected(&e.to_string()))?;
                let public_key = key.public_key().as_ref().to_vec();
                Ok(KeyPair::Ec { key, public_key })
            }
        }
    }

    pub(crate) fn public_key(&self) -> &[u8] {
        match self {
            KeyPair::Rsa { public_key, .. } | KeyPair::Ec { public_key, .. } => public_key,
        }
    }

    pub(crate) fn sign(&self, alg: Algorithm, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let failed =
            |_| SignerError::new(SignerErrorKind::SigningFailed, "aws-lc-rs failed to sign");
        match (self, alg) {
            (KeyPair::Rsa { key, .. }, Algorithm::Ps256 | Algorithm::Rs256) => {
                let encoding = if alg == Algorithm::Ps256 {
                    &signature::RSA_PSS_SHA256
                } else {
                    &signature::RSA_PKCS1_SHA256
                };
                let mut out = vec![0; key.public_modulus_len()];
                key.sign(encoding, &SystemRandom::new(), message, &mut out)
                    .map_err(failed)?;
                Ok(out)
            }
            (KeyPair::Ec { key, .. }, Algorithm::Es256) => {
                let sig = key.sign(&SystemRandom::new(), message).map_err(failed)?;
                Ok(sig.as_ref().to_vec())
            }
            (KeyPair::Rsa { key, .. }, _) => Err(wrong_algorithm(
                KeyKind::Rsa {
                    bits: key.public_modulus_len() * 8,
                },
                alg,
            )),
            (KeyPair::Ec { .. }, _) => Err(wrong_algorithm(KeyKind::EcP256, alg)),
        }
    }
}

pub(crate) fn verify(alg: Algorithm, public_key: &[u8], message: &[u8], sig: &[u8]) -> bool {
    let params: &dyn signature::VerificationAlgorithm = match alg {
        Algorithm::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
    };
    UnparsedPublicKey::new(params, public_key)
        .verify(message, sig)
        .is_ok()
}

/// A public key parsed once for repeated verification (the validator's key sets).
pub(crate) enum PublicKey {
    Rsa {
        rs256: signature::ParsedPublicKey,
        ps256: signature::ParsedPublicKey,
    },
    Ec(signature::ParsedPublicKey),
}

impl PublicKey {
    pub(crate) fn rsa(pkcs1_der: &[u8]) -> Option<Self> {
        Some(PublicKey::Rsa {
            rs256: signature::ParsedPublicKey::new(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                pkcs1_der,
            )
            .ok()?,
            ps256: signature::ParsedPublicKey::new(&signature::RSA_PSS_2048_8192_SHA256, pkcs1_der)
                .ok()?,
        })
    }

    pub(crate) fn ec_p256(point: &[u8]) -> Option<Self> {
        signature::ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
            .ok()
            .map(PublicKey::Ec)
    }

    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], sig: &[u8]) -> bool {
        let key = match (self, alg) {
            (PublicKey::Rsa { rs256, .. }, Algorithm::Rs256) => rs256,
            (PublicKey::Rsa { ps256, .. }, Algorithm::Ps256) => ps256,
            (PublicKey::Ec(key), Algorithm::Es256) => key,
            _ => return false,
        };
        key.verify_sig(message, sig).is_ok()
    }
}

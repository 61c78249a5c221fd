//! [`Pkcs12Signer`]: a PFX / PKCS#12 file ([RFC 7292]) with its password.
//!
//! The `pkcs12` crate parses the structures and derives the legacy keys; decryption is assembled
//! here from `pkcs5` (PBES2), `des` and `rc2` (the PKCS#12 PBE schemes), and the MAC from `hmac`.
//!
//! [RFC 7292]: https://www.rfc-editor.org/rfc/rfc7292

use std::path::Path;

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut as _, InnerIvInit as _, KeyIvInit as _};
use der::asn1::{AnyRef, ObjectIdentifier, OctetString};
use der::{Decode as _, Encode as _};
use hmac::Hmac;
use pkcs12::kdf::{Pkcs12KeyType, derive_key};
use sha1::Sha1;
use sha2::{Sha256, Sha384, Sha512};
use spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

use super::Certificate;
use super::error::{SignerError, SignerErrorKind};
use super::key::{LocalKey, PrivateKeyDer, SignerOptions, wrong_password};
use super::pem::read_file;
use crate::secret::Password;

const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ENCRYPTED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
const PBES2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
const SHA1_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const SHA256_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const X509_CERTIFICATE: ObjectIdentifier = pkcs12::PKCS_12_X509_CERT_OID;

/// More iterations than any real exporter uses; a file asking for more is refused rather than
/// allowed to burn CPU.
const MAX_ITERATIONS: u32 = 1_000_000;
/// Nesting depth of `safeContentsBag`s.
const MAX_DEPTH: usize = 4;

/// Signs with the private key and certificate of a PFX / PKCS#12 file.
///
/// Handles what OpenSSL, Windows, .NET and Key Vault export: PBES2 (PBKDF2 with HMAC-SHA-1/-256
/// and AES-128/192/256-CBC or 3DES), `pbeWithSHAAnd3-KeyTripleDES-CBC`, `pbeWithSHAAnd2-KeyTripleDES-CBC`,
/// `pbeWithSHAAnd40BitRC2-CBC` and `pbeWithSHAAnd128BitRC2-CBC`, with a SHA-1 or SHA-2 MAC, which
/// is verified. An empty password and an absent one are both tried where the file is ambiguous.
/// The certificate matching the key becomes the leaf; the others form its chain.
///
/// ```
/// # fn main() -> Result<(), confidant::SignerError> {
/// use confidant::{Password, Pkcs12Signer};
/// # let pfx = include_bytes!("../../tests/fixtures/rsa2048.aes.pfx");
/// let signer = Pkcs12Signer::from_pkcs12(pfx, Some(&Password::new("fixture-password")))?;
/// println!("x5t = {}", signer.certificate().x5t());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Pkcs12Signer {
    key: LocalKey,
}

impl Pkcs12Signer {
    /// Loads a PFX from bytes.
    pub fn from_pkcs12(der: &[u8], password: Option<&Password>) -> Result<Self, SignerError> {
        Self::from_pkcs12_with(der, password, &SignerOptions::default())
    }

    /// Loads a PFX from a file.
    pub fn from_file(
        path: impl AsRef<Path>,
        password: Option<&Password>,
    ) -> Result<Self, SignerError> {
        let der = read_file(path.as_ref())?;
        Self::from_pkcs12(&der, password)
    }

    /// Loads a PFX from bytes with explicit options (backend, validity policy).
    pub fn from_pkcs12_with(
        der: &[u8],
        password: Option<&Password>,
        options: &SignerOptions,
    ) -> Result<Self, SignerError> {
        let contents = decode(der, password)?;
        let mut first_error = None;
        for key in contents.keys {
            match LocalKey::new(key, &contents.certificates, options) {
                Ok(key) => return Ok(Self { key }),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or_else(|| {
            SignerError::new(
                SignerErrorKind::MissingKey,
                "the PKCS#12 file holds no private key",
            )
        }))
    }

    /// The signing certificate with its chain.
    pub fn certificate(&self) -> &Certificate {
        self.key.certificate()
    }
}

super::key::local_signer!(Pkcs12Signer);

/// A password as each scheme wants it.
struct Secret {
    /// UTF-8, for PBES2.
    utf8: Zeroizing<Vec<u8>>,
    /// BMPString with two trailing zero bytes for a present password; empty for an absent one
    /// (RFC 7292 Appendix B.1), for the PKCS#12 KDF.
    bmp: Zeroizing<Vec<u8>>,
}

impl Secret {
    fn present(password: &str) -> Self {
        let mut bmp = Zeroizing::new(Vec::with_capacity(password.len() * 2 + 2));
        for unit in password.encode_utf16() {
            bmp.extend_from_slice(&unit.to_be_bytes());
        }
        bmp.extend_from_slice(&[0, 0]);
        Self {
            utf8: Zeroizing::new(password.as_bytes().to_vec()),
            bmp,
        }
    }

    fn absent() -> Self {
        Self {
            utf8: Zeroizing::new(Vec::new()),
            bmp: Zeroizing::new(Vec::new()),
        }
    }

    /// The encodings to try: a given password; for an empty or absent one, both the empty string
    /// and no password, since exporters disagree.
    fn candidates(password: Option<&Password>) -> Vec<Self> {
        match password.map(Password::expose_secret) {
            Some(p) if !p.is_empty() => vec![Self::present(p)],
            _ => vec![Self::present(""), Self::absent()],
        }
    }
}

#[derive(Default)]
struct Contents {
    keys: Vec<PrivateKeyDer>,
    certificates: Vec<Vec<u8>>,
}

fn malformed(e: der::Error) -> SignerError {
    SignerError::malformed("PKCS#12 file", e)
}

fn decode(der: &[u8], password: Option<&Password>) -> Result<Contents, SignerError> {
    let pfx = pkcs12::pfx::Pfx::from_der(der).map_err(malformed)?;
    if pfx.auth_safe.content_type != DATA {
        return Err(SignerError::new(
            SignerErrorKind::Unsupported,
            "only password-integrity PKCS#12 files are supported (public-key integrity is not)",
        ));
    }
    let auth_safe = pfx
        .auth_safe
        .content
        .decode_as::<OctetString>()
        .map_err(malformed)?;
    let auth_safe = auth_safe.as_bytes();
    let candidates = Secret::candidates(password);

    let Some(mac) = &pfx.mac_data else {
        // No integrity check: the right password is the one that decrypts.
        let mut last = wrong_password();
        for secret in &candidates {
            match read_auth_safe(auth_safe, secret) {
                Ok(contents) => return Ok(contents),
                Err(e) if e.is_wrong_password() => last = e,
                Err(e) => return Err(e),
            }
        }
        return Err(last);
    };

    for secret in &candidates {
        if verify_mac(mac, auth_safe, &secret.bmp)? {
            return read_auth_safe(auth_safe, secret);
        }
    }
    // The MAC failed with every encoding. If the password still decrypts the content, the file
    // was altered; otherwise the password is wrong.
    for secret in &candidates {
        if read_auth_safe(auth_safe, secret).is_ok() {
            return Err(SignerError::new(
                SignerErrorKind::IntegrityCheckFailed,
                "the PKCS#12 MAC does not match: the file was altered",
            ));
        }
    }
    Err(SignerError::new(
        SignerErrorKind::WrongPassword,
        "the PKCS#12 MAC does not verify: wrong password (or a damaged file)",
    ))
}

fn verify_mac(
    mac: &pkcs12::mac_data::MacData,
    data: &[u8],
    password: &[u8],
) -> Result<bool, SignerError> {
    let salt = mac.mac_salt.as_bytes();
    let rounds = iterations(mac.iterations)?;
    let expected = mac.mac.digest.as_bytes();
    macro_rules! check {
        ($digest:ty) => {{
            let len = <$digest as sha2::Digest>::output_size();
            let key = Zeroizing::new(derive_key::<$digest>(
                password,
                salt,
                Pkcs12KeyType::Mac,
                rounds,
                len,
            ));
            let mut hmac = <Hmac<$digest> as hmac::Mac>::new_from_slice(&key).map_err(|_| {
                SignerError::new(SignerErrorKind::Malformed, "bad PKCS#12 MAC key length")
            })?;
            hmac::Mac::update(&mut hmac, data);
            Ok(hmac::Mac::verify_slice(hmac, expected).is_ok())
        }};
    }
    match mac.mac.algorithm.oid {
        SHA1_OID => check!(Sha1),
        SHA256_OID => check!(Sha256),
        SHA384_OID => check!(Sha384),
        SHA512_OID => check!(Sha512),
        other => Err(SignerError::new(
            SignerErrorKind::Unsupported,
            format!("PKCS#12 MAC digest {other} is not supported"),
        )),
    }
}

fn iterations(value: i32) -> Result<i32, SignerError> {
    match u32::try_from(value) {
        Ok(n) if (1..=MAX_ITERATIONS).contains(&n) => Ok(value),
        _ => Err(SignerError::new(
            SignerErrorKind::Unsupported,
            format!("iteration count {value} is outside 1..={MAX_ITERATIONS}"),
        )),
    }
}

fn read_auth_safe(auth_safe: &[u8], secret: &Secret) -> Result<Contents, SignerError> {
    let infos = Vec::<cms::content_info::ContentInfo>::from_der(auth_safe).map_err(malformed)?;
    let mut contents = Contents::default();
    for info in infos {
        if info.content_type == DATA {
            let data = info.content.decode_as::<OctetString>().map_err(malformed)?;
            read_safe_contents(data.as_bytes(), secret, &mut contents, 0, false)?;
        } else if info.content_type == ENCRYPTED_DATA {
            let encrypted = info
                .content
                .decode_as::<cms::encrypted_data::EncryptedData>()
                .map_err(malformed)?;
            let eci = &encrypted.enc_content_info;
            let Some(ciphertext) = &eci.encrypted_content else {
                continue;
            };
            let plain = decrypt(&eci.content_enc_alg, ciphertext.as_bytes(), secret)?;
            read_safe_contents(&plain, secret, &mut contents, 0, true)?;
        } else {
            return Err(SignerError::new(
                SignerErrorKind::Unsupported,
                format!(
                    "PKCS#12 content type {} is not supported",
                    info.content_type
                ),
            ));
        }
    }
    Ok(contents)
}

fn read_safe_contents(
    der: &[u8],
    secret: &Secret,
    contents: &mut Contents,
    depth: usize,
    decrypted: bool,
) -> Result<(), SignerError> {
    if depth > MAX_DEPTH {
        return Err(SignerError::new(
            SignerErrorKind::Malformed,
            "PKCS#12 bags nest too deeply",
        ));
    }
    let bags = pkcs12::safe_bag::SafeContents::from_der(der).map_err(|e| {
        // Wrongly decrypted data that passed the padding check lands here.
        if decrypted {
            wrong_password()
        } else {
            malformed(e)
        }
    })?;
    for bag in bags {
        // `bag_value` is the `[0] EXPLICIT` wrapper; its content is the value's own TLV.
        let wrapper = AnyRef::from_der(&bag.bag_value).map_err(malformed)?;
        let value = wrapper.value();
        match bag.bag_id {
            pkcs12::PKCS_12_KEY_BAG_OID => {
                contents.keys.push(PrivateKeyDer::from_pkcs8_der(value)?)
            }
            pkcs12::PKCS_12_PKCS8_KEY_BAG_OID => {
                let info = pkcs12::pbe_params::EncryptedPrivateKeyInfo::from_der(value)
                    .map_err(malformed)?;
                let plain = decrypt(
                    &info.encryption_algorithm,
                    info.encrypted_data.as_bytes(),
                    secret,
                )?;
                contents
                    .keys
                    .push(PrivateKeyDer::from_pkcs8_der(&plain).map_err(|e| {
                        if e.is_malformed() {
                            wrong_password()
                        } else {
                            e
                        }
                    })?);
            }
            pkcs12::PKCS_12_CERT_BAG_OID => {
                let bag = pkcs12::cert_type::CertBag::from_der(value).map_err(malformed)?;
                if bag.cert_id == X509_CERTIFICATE {
                    contents
                        .certificates
                        .push(bag.cert_value.as_bytes().to_vec());
                }
            }
            pkcs12::PKCS_12_SAFE_CONTENTS_BAG_OID => {
                read_safe_contents(value, secret, contents, depth + 1, decrypted)?
            }
            // CRLs, secrets and unknown bags do not concern signing.
            _ => {}
        }
    }
    Ok(())
}

/// Decrypts PKCS#12 content or a shrouded key bag.
fn decrypt(
    algorithm: &AlgorithmIdentifierOwned,
    ciphertext: &[u8],
    secret: &Secret,
) -> Result<Zeroizing<Vec<u8>>, SignerError> {
    if algorithm.oid == PBES2 {
        let encoded = algorithm.to_der().map_err(malformed)?;
        let scheme = pkcs5::EncryptionScheme::try_from(encoded.as_slice()).map_err(|e| {
            SignerError::new(SignerErrorKind::Unsupported, "unsupported PBES2 parameters")
                .with_source(e)
        })?;
        if let Some(params) = scheme.pbes2() {
            match &params.kdf {
                pkcs5::pbes2::Kdf::Pbkdf2(p) if p.iteration_count <= MAX_ITERATIONS => {}
                pkcs5::pbes2::Kdf::Pbkdf2(p) => {
                    iterations(i32::try_from(p.iteration_count).unwrap_or(i32::MAX))?;
                }
                _ => {
                    return Err(SignerError::new(
                        SignerErrorKind::Unsupported,
                        "only PBKDF2 is supported in PBES2",
                    ));
                }
            }
        }
        return scheme
            .decrypt(&*secret.utf8, ciphertext)
            .map(Zeroizing::new)
            .map_err(|e| match e {
                pkcs5::Error::UnsupportedAlgorithm { oid } => SignerError::new(
                    SignerErrorKind::Unsupported,
                    format!("PBES2 cipher {oid} is not supported"),
                ),
                _ => wrong_password(),
            });
    }

    let params = algorithm
        .parameters
        .as_ref()
        .ok_or_else(|| {
            SignerError::new(SignerErrorKind::Malformed, "PKCS#12 PBE without parameters")
        })?
        .decode_as::<pkcs12::pbe_params::Pkcs12PbeParams>()
        .map_err(malformed)?;
    let salt = params.salt.as_bytes();
    let rounds = iterations(params.iterations)?;
    let key = |len| {
        Zeroizing::new(derive_key::<Sha1>(
            &secret.bmp,
            salt,
            Pkcs12KeyType::EncryptionKey,
            rounds,
            len,
        ))
    };
    let iv = || derive_key::<Sha1>(&secret.bmp, salt, Pkcs12KeyType::Iv, rounds, 8);
    let bad_padding = |_| wrong_password();
    let plain = match algorithm.oid {
        pkcs12::PKCS_12_PBE_WITH_SHAAND3_KEY_TRIPLE_DES_CBC => {
            cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key(24), &iv())
                .map_err(|_| bad_key())?
                .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
                .map_err(bad_padding)?
        }
        pkcs12::PKCS_12_PBE_WITH_SHAAND2_KEY_TRIPLE_DES_CBC => {
            cbc::Decryptor::<des::TdesEde2>::new_from_slices(&key(16), &iv())
                .map_err(|_| bad_key())?
                .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
                .map_err(bad_padding)?
        }
        pkcs12::PKCS_12_PBEWITH_SHAAND40_BIT_RC2_CBC
        | pkcs12::PKCS_12_PBE_WITH_SHAAND128_BIT_RC2_CBC => {
            let bytes = if algorithm.oid == pkcs12::PKCS_12_PBEWITH_SHAAND40_BIT_RC2_CBC {
                5
            } else {
                16
            };
            let cipher = rc2::Rc2::new_with_eff_key_len(&key(bytes), bytes * 8);
            let iv = iv();
            cbc::Decryptor::<rc2::Rc2>::inner_iv_slice_init(cipher, &iv)
                .map_err(|_| bad_key())?
                .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
                .map_err(bad_padding)?
        }
        other => {
            return Err(SignerError::new(
                SignerErrorKind::Unsupported,
                format!("PKCS#12 encryption {other} is not supported"),
            ));
        }
    };
    Ok(Zeroizing::new(plain))
}

fn bad_key() -> SignerError {
    SignerError::new(SignerErrorKind::Malformed, "bad PKCS#12 key or IV length")
}

#[cfg(test)]
mod tests {
    use super::*;

    const AES_PFX: &[u8] = include_bytes!("../../tests/fixtures/rsa2048.aes.pfx");
    const LEGACY_PFX: &[u8] = include_bytes!("../../tests/fixtures/rsa2048.legacy.pfx");

    /// Re-encodes `pfx` with one bit of its MAC digest flipped.
    fn tamper_mac(pfx: &[u8]) -> Vec<u8> {
        let mut parsed = pkcs12::pfx::Pfx::from_der(pfx).expect("fixture parses");
        let mac = parsed.mac_data.as_mut().expect("fixture has a MAC");
        let mut digest = mac.mac.digest.as_bytes().to_vec();
        digest[0] ^= 1;
        mac.mac.digest = OctetString::new(digest).expect("octets");
        parsed.to_der().expect("re-encodes")
    }

    #[test]
    fn altered_mac_is_an_integrity_failure_not_a_wrong_password() {
        let password = Password::new("fixture-password");
        for pfx in [AES_PFX, LEGACY_PFX] {
            let err =
                Pkcs12Signer::from_pkcs12(&tamper_mac(pfx), Some(&password)).expect_err("tampered");
            assert_eq!(err.kind(), SignerErrorKind::IntegrityCheckFailed, "{err}");
        }
    }

    #[test]
    fn absurd_iteration_counts_are_refused() {
        assert!(iterations(0).is_err());
        assert!(iterations(-5).is_err());
        assert!(iterations(i32::MAX).is_err());
        assert_eq!(iterations(2048).ok(), Some(2048));
    }

    #[test]
    fn password_encodings() {
        let present = Secret::present("ab");
        assert_eq!(&*present.bmp, &[0, b'a', 0, b'b', 0, 0]);
        assert_eq!(&*present.utf8, b"ab");
        assert!(Secret::absent().bmp.is_empty());
        assert_eq!(Secret::candidates(None).len(), 2);
        assert_eq!(Secret::candidates(Some(&Password::new("x"))).len(), 1);
    }
}

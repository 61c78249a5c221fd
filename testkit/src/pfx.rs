//! PKCS#12 (PFX) files as Key Vault exports a certificate's secret: the certificate in a plain
//! bag, the key (when exportable) in a PBES2-encrypted PKCS#8 bag, an HMAC-SHA256 MAC; all with
//! the empty password.

use der::asn1::OctetString;
use der::{Any, Decode as _, Encode as _, Tag};
use hmac::{Hmac, Mac as _};
use pkcs12::cert_type::CertBag;
use pkcs12::digest_info::DigestInfo;
use pkcs12::kdf::{Pkcs12KeyType, derive_key_utf8};
use pkcs12::mac_data::MacData;
use pkcs12::pfx::{Pfx, Version};
use pkcs12::safe_bag::SafeBag;
use sha2::Sha256;

const ID_DATA: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const SHA256: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ITERATIONS: u32 = 2048;

fn random16() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

/// `data` content: the DER of `inner` wrapped in an OCTET STRING.
fn data(inner: Vec<u8>) -> Result<cms::content_info::ContentInfo, der::Error> {
    Ok(cms::content_info::ContentInfo {
        content_type: ID_DATA,
        content: Any::new(Tag::OctetString, inner)?,
    })
}

/// A PFX holding `certificate_der` and, if given, the PKCS#8 key `key_pkcs8_der`.
pub(crate) fn build(
    key_pkcs8_der: Option<&[u8]>,
    certificate_der: &[u8],
) -> Result<Vec<u8>, String> {
    build_inner(key_pkcs8_der, certificate_der).map_err(|e| format!("PKCS#12 encoding: {e}"))
}

fn build_inner(key: Option<&[u8]>, certificate: &[u8]) -> Result<Vec<u8>, der::Error> {
    let cert_bag = CertBag {
        cert_id: pkcs12::PKCS_12_X509_CERT_OID,
        cert_value: OctetString::new(certificate)?,
    };
    let mut bags = vec![SafeBag {
        bag_id: pkcs12::PKCS_12_CERT_BAG_OID,
        bag_value: cert_bag.to_der()?,
        bag_attributes: None,
    }];
    if let Some(key) = key {
        let salt = random16();
        let iv = random16();
        let params = pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(ITERATIONS, &salt, &iv)
            .map_err(|_| der::Error::from(der::ErrorKind::Failed))?;
        let encrypted = pkcs8::PrivateKeyInfo::from_der(key)?
            .encrypt_with_params(params, b"")
            .map_err(|_| der::Error::from(der::ErrorKind::Failed))?;
        bags.push(SafeBag {
            bag_id: pkcs12::PKCS_12_PKCS8_KEY_BAG_OID,
            bag_value: encrypted.as_bytes().to_vec(),
            bag_attributes: None,
        });
    }
    let safe_contents = bags.to_der()?;
    let auth_safe = vec![data(safe_contents)?].to_der()?;

    let salt = random16();
    let mac_key = derive_key_utf8::<Sha256>("", &salt, Pkcs12KeyType::Mac, ITERATIONS as i32, 32)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&mac_key)
        .map_err(|_| der::Error::from(der::ErrorKind::Failed))?;
    mac.update(&auth_safe);
    let digest = mac.finalize().into_bytes();
    let pfx = Pfx {
        version: Version::V3,
        auth_safe: data(auth_safe)?,
        mac_data: Some(MacData {
            mac: DigestInfo {
                algorithm: spki::AlgorithmIdentifierOwned {
                    oid: SHA256,
                    parameters: Some(Any::null()),
                },
                digest: OctetString::new(digest.as_slice())?,
            },
            mac_salt: OctetString::new(salt.as_slice())?,
            iterations: ITERATIONS as i32,
        }),
    };
    pfx.to_der()
}

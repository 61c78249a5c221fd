//! Key material the testkit makes at start: its token-signing keys (published as a JWKS) and
//! test certificates for the apps under test.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use der::Decode as _;
use rcgen::{CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, PKCS_RSA_SHA256};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use crate::TestkitError;

/// One of the testkit's token-signing keys, with its self-signed certificate.
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pub(crate) encoding: jsonwebtoken::EncodingKey,
    pub(crate) decoding: jsonwebtoken::DecodingKey,
    /// `n`, `e`, `x5c` as a JWK without the per-tenant `issuer` member.
    pub(crate) jwk: serde_json::Value,
}

impl SigningKey {
    pub(crate) fn generate() -> Result<Self, TestkitError> {
        let cert = TestCertificate::generate("confidant-testkit token signing")?;
        let (n, e) = rsa_components(&cert.spki_der)?;
        let kid = cert.x5t.clone();
        let encoding = jsonwebtoken::EncodingKey::from_rsa_der(&cert.pkcs1_private_key()?);
        let decoding = jsonwebtoken::DecodingKey::from_rsa_raw_components(&n, &e);
        let jwk = serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "kid": kid,
            "x5t": kid,
            "n": URL_SAFE_NO_PAD.encode(&n),
            "e": URL_SAFE_NO_PAD.encode(&e),
            "x5c": [STANDARD.encode(&cert.cert_der)],
            "cloud_instance_name": "microsoftonline.com",
        });
        Ok(Self {
            kid,
            encoding,
            decoding,
            jwk,
        })
    }
}

/// The modulus and exponent (big-endian, no leading zeros) of an RSA SubjectPublicKeyInfo.
pub(crate) fn rsa_components(spki_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), TestkitError> {
    let spki = x509_cert::spki::SubjectPublicKeyInfoOwned::from_der(spki_der)
        .map_err(|e| TestkitError::Keys(format!("public key: {e}")))?;
    let key = pkcs1::RsaPublicKey::from_der(spki.subject_public_key.raw_bytes())
        .map_err(|e| TestkitError::Keys(format!("RSA public key: {e}")))?;
    Ok((
        key.modulus.as_bytes().to_vec(),
        key.public_exponent.as_bytes().to_vec(),
    ))
}

/// A freshly generated RSA-2048 key with a certificate, for registering an app in a test.
///
/// ```
/// let cert = confidant_testkit::TestCertificate::generate("my-service").expect("generated");
/// assert!(cert.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
/// assert_eq!(cert.x5t_s256.len(), 43);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct TestCertificate {
    /// The certificate, PEM (followed by its issuer when issued by a [`TestCa`]).
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM. Test-only: never use it for anything real.
    pub key_pem: String,
    key_pkcs8: Vec<u8>,
    /// The leaf certificate, DER.
    pub cert_der: Vec<u8>,
    /// The SubjectPublicKeyInfo, DER.
    pub spki_der: Vec<u8>,
    /// `x5t`: unpadded base64url SHA-1 of the certificate DER.
    pub x5t: String,
    /// `x5t#S256`: unpadded base64url SHA-256 of the certificate DER.
    pub x5t_s256: String,
    /// The subject, `CN={common name}`.
    pub subject: String,
}

impl std::fmt::Debug for TestCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCertificate")
            .field("subject", &self.subject)
            .field("x5t#S256", &self.x5t_s256)
            .finish_non_exhaustive()
    }
}

fn params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params
}

fn keys_error(e: rcgen::Error) -> TestkitError {
    TestkitError::Keys(e.to_string())
}

impl TestCertificate {
    /// A self-signed certificate `CN={common_name}` with a new RSA-2048 key.
    pub fn generate(common_name: &str) -> Result<Self, TestkitError> {
        let key = KeyPair::generate_for(&PKCS_RSA_SHA256).map_err(keys_error)?;
        let cert = params(common_name).self_signed(&key).map_err(keys_error)?;
        Self::assemble(common_name, cert.der().to_vec(), cert.pem(), &key)
    }

    fn assemble(
        common_name: &str,
        cert_der: Vec<u8>,
        cert_pem: String,
        key: &KeyPair,
    ) -> Result<Self, TestkitError> {
        use der::Encode as _;
        let parsed = x509_cert::Certificate::from_der(&cert_der)
            .map_err(|e| TestkitError::Keys(format!("generated certificate: {e}")))?;
        let spki_der = parsed
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| TestkitError::Keys(format!("generated certificate: {e}")))?;
        Ok(Self {
            x5t: URL_SAFE_NO_PAD.encode(Sha1::digest(&cert_der)),
            x5t_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(&cert_der)),
            cert_pem,
            key_pem: key.serialize_pem(),
            key_pkcs8: key.serialize_der(),
            spki_der,
            cert_der,
            subject: format!("CN={common_name}"),
        })
    }

    /// The PKCS#1 `RSAPrivateKey` inside the PKCS#8 key.
    fn pkcs1_private_key(&self) -> Result<Vec<u8>, TestkitError> {
        let info = pkcs8::PrivateKeyInfo::try_from(self.key_pkcs8.as_slice())
            .map_err(|e| TestkitError::Keys(format!("generated key: {e}")))?;
        Ok(info.private_key.to_vec())
    }
}

/// A test certificate authority, for subject-name + issuer (`x5c`) registrations.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM.
    pub cert_pem: String,
    /// The CA's subject, `CN={common name}`.
    pub subject: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new self-signed CA `CN={common_name}`.
    pub fn generate(common_name: &str) -> Result<Self, TestkitError> {
        let key = KeyPair::generate_for(&PKCS_RSA_SHA256).map_err(keys_error)?;
        let mut ca = params(common_name);
        ca.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = ca.self_signed(&key).map_err(keys_error)?;
        Ok(Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(ca, key),
            subject: format!("CN={common_name}"),
        })
    }

    /// Issues a leaf `CN={common_name}` with a new RSA-2048 key; its `cert_pem` holds the leaf
    /// then this CA.
    pub fn issue(&self, common_name: &str) -> Result<TestCertificate, TestkitError> {
        let key = KeyPair::generate_for(&PKCS_RSA_SHA256).map_err(keys_error)?;
        let cert = params(common_name)
            .signed_by(&key, &self.issuer)
            .map_err(keys_error)?;
        let pem = format!("{}{}", cert.pem(), self.cert_pem);
        TestCertificate::assemble(common_name, cert.der().to_vec(), pem, &key)
    }

    /// Issues a TLS server certificate `CN=localhost` for `127.0.0.1`, `::1` and `localhost`
    /// (RSA-2048, serverAuth), for serving a test peer (an OpenID provider, a mock API) over
    /// HTTPS to clients that trust this CA.
    pub fn issue_tls_server(&self) -> Result<TestCertificate, TestkitError> {
        let key = KeyPair::generate_for(&PKCS_RSA_SHA256).map_err(keys_error)?;
        let mut params = params("localhost");
        params.subject_alt_names = vec![
            rcgen::SanType::DnsName("localhost".try_into().map_err(keys_error)?),
            rcgen::SanType::IpAddress([127, 0, 0, 1].into()),
            rcgen::SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()),
        ];
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).map_err(keys_error)?;
        let pem = format!("{}{}", cert.pem(), self.cert_pem);
        TestCertificate::assemble("localhost", cert.der().to_vec(), pem, &key)
    }
}

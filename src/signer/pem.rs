//! [`PemSigner`]: a certificate (chain) and private key from PEM.

use std::fmt;
use std::path::Path;

use zeroize::Zeroizing;

use super::error::{SignerError, SignerErrorKind};
use super::key::{LocalKey, PrivateKeyDer, SignerOptions};
use super::{Backend, Certificate};
use crate::secret::Password;

/// One decoded PEM block: its label and DER bytes (zeroized on drop: it may be a key).
pub(crate) struct PemBlock {
    pub(crate) label: String,
    pub(crate) der: Zeroizing<Vec<u8>>,
}

/// Splits text holding any number of PEM blocks, skipping text between them (such as the
/// `Bag Attributes` lines `openssl pkcs12` writes).
pub(crate) fn pem_blocks(input: &[u8]) -> Result<Vec<PemBlock>, SignerError> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    const END: &[u8] = b"-----END ";
    let mut blocks = Vec::new();
    let mut rest = input;
    while let Some(start) = find(rest, BEGIN) {
        let from_begin = &rest[start..];
        let Some(end_marker) = find(from_begin, END) else {
            return Err(SignerError::new(
                SignerErrorKind::Malformed,
                "PEM block without an END line",
            ));
        };
        // The END line runs to the next newline (or the end of input).
        let after_end = &from_begin[end_marker..];
        let line_len = after_end
            .iter()
            .position(|b| *b == b'\n')
            .map_or(after_end.len(), |p| p + 1);
        let block = &from_begin[..end_marker + line_len];
        if find(block, b"Proc-Type:").is_some() {
            return Err(SignerError::new(
                SignerErrorKind::Unsupported,
                "legacy OpenSSL-encrypted PEM is not supported; convert it to encrypted PKCS#8 \
                 (openssl pkcs8 -topk8)",
            ));
        }
        let (label, der) = pem_rfc7468::decode_vec(block).map_err(|e| {
            SignerError::new(
                SignerErrorKind::Malformed,
                format!("malformed PEM block: {e}"),
            )
        })?;
        blocks.push(PemBlock {
            label: label.to_owned(),
            der: Zeroizing::new(der),
        });
        rest = &from_begin[end_marker + line_len..];
    }
    Ok(blocks)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The DER of every `CERTIFICATE` block, in order.
pub(crate) fn certificates_from_pem(input: &[u8]) -> Result<Vec<Vec<u8>>, SignerError> {
    Ok(pem_blocks(input)?
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE")
        .map(|b| b.der.to_vec())
        .collect())
}

/// Signs with a private key and certificate loaded from PEM.
///
/// Accepts PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) and
/// encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`, with a passphrase); RSA of 2048 to 8192 bits and
/// P-256. The key is parsed once, here, and checked against the certificates: the one whose
/// public key matches becomes the leaf, the others its chain.
///
/// ```
/// # fn main() -> Result<(), confidant::SignerError> {
/// use confidant::PemSigner;
/// # let cert_pem = include_bytes!("../../tests/fixtures/rsa2048.crt");
/// # let key_pem = include_bytes!("../../tests/fixtures/rsa2048.pkcs8.key");
/// let signer = PemSigner::from_pem(cert_pem, key_pem)?;
/// println!("x5t#S256 = {}", signer.certificate().x5t_s256());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PemSigner {
    key: LocalKey,
}

impl PemSigner {
    /// Loads an unencrypted key and its certificate (chain) from PEM.
    pub fn from_pem(certificate_pem: &[u8], private_key_pem: &[u8]) -> Result<Self, SignerError> {
        Self::builder()
            .certificate_pem(certificate_pem)
            .private_key_pem(private_key_pem)
            .build()
    }

    /// Loads a PEM file holding both the private key and the certificates, as
    /// `AZURE_CLIENT_CERTIFICATE_PATH` and Key Vault's `application/x-pem-file` secrets do.
    pub fn from_combined_pem(
        pem: &[u8],
        passphrase: Option<&Password>,
    ) -> Result<Self, SignerError> {
        let mut builder = Self::builder().combined_pem(pem);
        if let Some(p) = passphrase {
            builder = builder.passphrase(p.clone());
        }
        builder.build()
    }

    /// Reads [`from_combined_pem`](Self::from_combined_pem) input from a file.
    pub fn from_combined_pem_file(
        path: impl AsRef<Path>,
        passphrase: Option<&Password>,
    ) -> Result<Self, SignerError> {
        let pem = read_file(path.as_ref())?;
        Self::from_combined_pem(&pem, passphrase)
    }

    /// A builder for the other combinations: encrypted keys, a backend, validity policy.
    pub fn builder() -> PemSignerBuilder {
        PemSignerBuilder::default()
    }

    /// The signing certificate with its chain.
    pub fn certificate(&self) -> &Certificate {
        self.key.certificate()
    }
}

super::key::local_signer!(PemSigner);

/// Configures a [`PemSigner`].
#[derive(Default)]
pub struct PemSignerBuilder {
    pem: Vec<Zeroizing<Vec<u8>>>,
    passphrase: Option<Password>,
    options: SignerOptions,
}

impl fmt::Debug for PemSignerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The PEM inputs may hold a private key: show only how many there are.
        f.debug_struct("PemSignerBuilder")
            .field("pem_inputs", &self.pem.len())
            .field("passphrase", &self.passphrase)
            .field("options", &self.options)
            .finish()
    }
}

impl PemSignerBuilder {
    /// PEM with one or more `CERTIFICATE` blocks.
    pub fn certificate_pem(mut self, pem: &[u8]) -> Self {
        self.pem.push(Zeroizing::new(pem.to_vec()));
        self
    }

    /// PEM with one private key block.
    pub fn private_key_pem(mut self, pem: &[u8]) -> Self {
        self.pem.push(Zeroizing::new(pem.to_vec()));
        self
    }

    /// PEM with the key and the certificates together.
    pub fn combined_pem(self, pem: &[u8]) -> Self {
        self.private_key_pem(pem)
    }

    /// The passphrase of an `ENCRYPTED PRIVATE KEY`.
    pub fn passphrase(mut self, passphrase: Password) -> Self {
        self.passphrase = Some(passphrase);
        self
    }

    /// Signs with `backend` (default: aws-lc-rs when enabled).
    pub fn backend(mut self, backend: Backend) -> Self {
        self.options.backend = backend;
        self
    }

    /// Loading options: backend, validity policy, clock.
    pub fn options(mut self, options: SignerOptions) -> Self {
        self.options = options;
        self
    }

    /// Parses and checks everything given.
    pub fn build(self) -> Result<PemSigner, SignerError> {
        let mut key = None;
        let mut certificates = Vec::new();
        for pem in &self.pem {
            for block in pem_blocks(pem)? {
                if block.label == "CERTIFICATE" {
                    certificates.push(block.der.to_vec());
                } else if block.label.ends_with("PRIVATE KEY") {
                    if key.is_some() {
                        return Err(SignerError::new(
                            SignerErrorKind::Malformed,
                            "more than one private key was given",
                        ));
                    }
                    key = Some(PrivateKeyDer::from_pem_block(
                        &block.label,
                        &block.der,
                        self.passphrase.as_ref(),
                    )?);
                }
            }
        }
        let key = key.ok_or_else(|| {
            SignerError::new(
                SignerErrorKind::MissingKey,
                "no private key block in the PEM",
            )
        })?;
        Ok(PemSigner {
            key: LocalKey::new(key, &certificates, &self.options)?,
        })
    }
}

pub(crate) fn read_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, SignerError> {
    std::fs::read(path).map(Zeroizing::new).map_err(|e| {
        SignerError::new(
            SignerErrorKind::Io,
            format!("cannot read {}", path.display()),
        )
        .with_source(e)
    })
}

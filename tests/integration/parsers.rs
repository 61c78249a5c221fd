//! Property tests: random and mutated bytes into every parser of untrusted input never panic,
//! and fail with a typed error.

use confidant::{Authority, Certificate, Password, PemSigner, Pkcs12Signer};
use proptest::prelude::*;

use crate::support::fixture;

/// Flips, truncates or splices the fixture at positions chosen by proptest.
fn mutate(original: &[u8], edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for (pos, value) in edits {
        if !bytes.is_empty() {
            let i = pos % bytes.len();
            bytes[i] ^= value | 1;
        }
    }
    let keep = bytes.len().saturating_sub(cut % 64);
    bytes.truncate(keep);
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Certificate::from_der(&bytes, &[]);
        let _ = Certificate::from_pem(&bytes);
        let _ = PemSigner::from_pem(&bytes, &bytes);
        let _ = PemSigner::from_combined_pem(&bytes, Some(&Password::new("x")));
        let _ = Pkcs12Signer::from_pkcs12(&bytes, None);
        let _ = Authority::parse(&String::from_utf8_lossy(&bytes));
        let _ = Authority::from_discovery("https://id.example.com", &bytes);
    }

    #[test]
    fn mutated_pfx_never_panics(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4), cut in any::<usize>()) {
        for file in ["rsa2048.aes.pfx", "rsa2048.legacy.pfx", "rsa2048.plain.pfx"] {
            let bytes = mutate(&fixture(file), &edits, cut);
            if let Err(e) = Pkcs12Signer::from_pkcs12(&bytes, Some(&Password::new("fixture-password"))) {
                prop_assert!(!e.to_string().contains("fixture-password"));
            }
        }
    }

    #[test]
    fn mutated_pem_never_panics(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4), cut in any::<usize>()) {
        let cert = fixture("rsa2048.crt");
        for key in ["rsa2048.pkcs8.key", "rsa2048.pkcs1.key", "ec-p256.sec1.key", "rsa2048.encrypted.key"] {
            let bytes = mutate(&fixture(key), &edits, cut);
            let _ = PemSigner::builder()
                .certificate_pem(&cert)
                .private_key_pem(&bytes)
                .passphrase(Password::new("fixture-password"))
                .build();
        }
        let _ = Certificate::from_pem(&mutate(&cert, &edits, cut));
    }

    #[test]
    fn mutated_der_inside_valid_pem_never_panics(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4), cut in any::<usize>()) {
        use base64::Engine as _;
        for key in ["rsa2048.pkcs8.key", "ec-p256.pkcs8.key"] {
            let text = String::from_utf8(fixture(key)).expect("PEM text");
            let (label, der) = pem_rfc7468::decode_vec(text.as_bytes()).expect("fixture");
            let der = mutate(&der, &edits, cut);
            let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
            let pem = format!("-----BEGIN {label}-----\n{b64}\n-----END {label}-----\n");
            let _ = PemSigner::from_pem(&fixture("rsa2048.crt"), pem.as_bytes());
        }
    }
}

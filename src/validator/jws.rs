//! The compact JWS parser (VALIDATION.md §2, A1): everything up to, not including, the key.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::error::{ValidationError, ValidationErrorKind, malformed};
use super::object::Object;
use crate::signer::Algorithm;

/// The default and largest accepted token sizes (P1).
pub(crate) const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;
pub(crate) const MAX_TOKEN_BYTES: usize = 256 * 1024;

/// A compact JWS whose header passed P1–P8 and A1; the payload is still encoded (P10).
#[derive(Debug)]
pub(crate) struct CompactJws<'a> {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
    /// `header.payload`, the bytes the signature covers.
    pub(crate) signing_input: &'a [u8],
    pub(crate) payload: &'a str,
    pub(crate) signature: Vec<u8>,
    /// `typ` was `at+jwt` (RFC 9068).
    pub(crate) is_at_jwt: bool,
}

/// Decodes canonical unpadded base64url (P3): no padding, whitespace or other alphabet, length
/// mod 4 not 1, unused trailing bits zero.
pub(crate) fn decode_b64url(part: &str) -> Result<Vec<u8>, ValidationError> {
    // The engine refuses padding, non-alphabet bytes, impossible lengths and non-zero trailing
    // bits (its default `decode_allow_trailing_bits = false`).
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| malformed("a token part is not canonical base64url"))
}

/// Parses `token` (P1–P8, A1).
pub(crate) fn parse(token: &str, max_bytes: usize) -> Result<CompactJws<'_>, ValidationError> {
    if token.len() > max_bytes {
        return Err(malformed("the token is longer than allowed"));
    }
    // One scan: find the two dots and check every other byte is in the base64url alphabet.
    let mut dots = [0usize; 2];
    let mut count = 0;
    for (i, b) in token.bytes().enumerate() {
        match CLASS[usize::from(b)] {
            B64 => {}
            DOT if count < 2 => {
                dots[count] = i;
                count += 1;
            }
            DOT => return Err(malformed("a compact JWS has exactly three parts")),
            _ => return Err(malformed("a token part is not canonical base64url")),
        }
    }
    if count != 2 {
        return Err(malformed("a compact JWS has exactly three parts"));
    }
    let (header_b64, payload_b64, signature_b64) = (
        &token[..dots[0]],
        &token[dots[0] + 1..dots[1]],
        &token[dots[1] + 1..],
    );
    if header_b64.is_empty() || payload_b64.is_empty() {
        return Err(malformed("the header and payload must not be empty"));
    }
    let header_bytes = decode_b64url(header_b64)?;
    // The payload's alphabet was checked above; its length and trailing bits when decoded.
    let signature = decode_b64url(signature_b64)?;
    let header = Object::parse(header_bytes, 8).map_err(malformed)?;

    for member in ["kid", "typ", "cty"] {
        if header.str(member).is_err() {
            return Err(malformed("kid, typ and cty must be strings"));
        }
    }
    let alg = match header.get_str("alg") {
        Some("RS256") => Algorithm::Rs256,
        Some("PS256") => Algorithm::Ps256,
        Some("ES256") => Algorithm::Es256,
        _ => {
            return Err(ValidationError::new(
                ValidationErrorKind::UnsupportedAlg,
                "alg is not RS256, PS256 or ES256",
            ));
        }
    };
    for member in ["crit", "enc", "zip", "b64"] {
        if header.contains(member) {
            return Err(ValidationError::new(
                ValidationErrorKind::UnsupportedAlg,
                "crit, enc, zip and b64 are not supported",
            ));
        }
    }
    if header.contains("cty") {
        return Err(ValidationError::new(
            ValidationErrorKind::WrongTokenType,
            "nested tokens (cty) are refused",
        ));
    }
    let typ = header.get_str("typ").map(|t| {
        let lower = t.to_ascii_lowercase();
        lower
            .strip_prefix("application/")
            .map(str::to_owned)
            .unwrap_or(lower)
    });
    let is_at_jwt = match typ.as_deref() {
        None | Some("jwt") => false,
        Some("at+jwt") => true,
        Some(_) => {
            return Err(ValidationError::new(
                ValidationErrorKind::WrongTokenType,
                "typ is not JWT or at+jwt",
            ));
        }
    };
    Ok(CompactJws {
        alg,
        kid: header.get_str("kid").map(str::to_owned),
        signing_input: &token.as_bytes()[..dots[1]],
        payload: payload_b64,
        signature,
        is_at_jwt,
    })
}

const OTHER: u8 = 0;
const B64: u8 = 1;
const DOT: u8 = 2;

/// The class of each byte: base64url alphabet, `.`, or anything else.
static CLASS: [u8; 256] = {
    let mut table = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' {
            table[b] = B64;
        }
        b += 1;
    }
    table[b'.' as usize] = DOT;
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn token(header: &str) -> String {
        format!(
            "{}.{}.{}",
            b64(header),
            b64(r#"{"sub":"x"}"#),
            URL_SAFE_NO_PAD.encode([1u8; 32])
        )
    }

    fn kind(t: &str) -> ValidationErrorKind {
        parse(t, DEFAULT_MAX_TOKEN_BYTES)
            .expect_err("rejected")
            .kind()
    }

    #[test]
    fn accepts_a_plain_header() {
        let t = token(r#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#);
        let jws = parse(&t, DEFAULT_MAX_TOKEN_BYTES).expect("parses");
        assert_eq!(jws.alg, Algorithm::Rs256);
        assert_eq!(jws.kid.as_deref(), Some("k1"));
        assert_eq!(jws.signature.len(), 32);
        assert!(!jws.is_at_jwt);
        let t = token(r#"{"alg":"ES256","typ":"application/AT+JWT"}"#);
        assert!(
            parse(&t, DEFAULT_MAX_TOKEN_BYTES)
                .expect("at+jwt")
                .is_at_jwt
        );
    }

    #[test]
    fn parsing_rules() {
        use ValidationErrorKind::*;
        let good = token(r#"{"alg":"RS256"}"#);
        // P1
        assert_eq!(parse(&good, 10).expect_err("long").kind(), Malformed);
        // P2
        assert_eq!(kind("a.b"), Malformed);
        assert_eq!(kind("a.b.c.d.e"), Malformed);
        assert_eq!(
            kind(&format!(".{}", &good[good.find('.').expect("dot")..])),
            Malformed
        );
        // P3
        assert_eq!(kind(&good.replacen('.', "=.", 1)), Malformed);
        assert_eq!(kind(&format!(" {good}")), Malformed);
        assert_eq!(kind(&format!("{good}=")), Malformed);
        let header = b64(r#"{"alg":"RS256"}"#);
        let mut bad_bits = header.clone();
        bad_bits.pop();
        bad_bits.push('1'); // non-zero unused trailing bits
        assert_eq!(kind(&good.replacen(&header, &bad_bits, 1)), Malformed);
        // P4, P5, P6
        assert_eq!(kind(&token(r#"{"alg":"RS256","alg":"RS256"}"#)), Malformed);
        assert_eq!(kind(&token(r#"{"alg":"RS256","kid":7}"#)), Malformed);
        assert_eq!(kind(&token(r#"{"alg":"RS256"}x"#)), Malformed);
        // A1
        for alg in [
            r#""none""#,
            r#""HS256""#,
            r#""rs256""#,
            r#""RS512""#,
            r#""EdDSA""#,
            r#""""#,
            "256",
            "null",
        ] {
            assert_eq!(
                kind(&token(&format!(r#"{{"alg":{alg}}}"#))),
                UnsupportedAlg,
                "{alg}"
            );
        }
        assert_eq!(kind(&token(r#"{"typ":"JWT"}"#)), UnsupportedAlg);
        // P7
        for member in ["crit", "enc", "zip", "b64"] {
            assert_eq!(
                kind(&token(&format!(r#"{{"alg":"RS256","{member}":["x"]}}"#))),
                UnsupportedAlg
            );
        }
        // P8
        assert_eq!(
            kind(&token(r#"{"alg":"RS256","cty":"JWT"}"#)),
            WrongTokenType
        );
        assert_eq!(
            kind(&token(r#"{"alg":"RS256","typ":"dpop+jwt"}"#)),
            WrongTokenType
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_text_never_panics(token in ".{0,400}") {
            let _ = parse(&token, DEFAULT_MAX_TOKEN_BYTES);
        }

        #[test]
        fn canonical_base64url_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let encoded = URL_SAFE_NO_PAD.encode(&bytes);
            prop_assert_eq!(decode_b64url(&encoded).expect("canonical"), bytes);
            let padded = format!("{}=", encoded);
            let spaced = format!(" {}", encoded);
            prop_assert!(decode_b64url(&padded).is_err());
            prop_assert!(decode_b64url(&spaced).is_err());
        }

        #[test]
        fn arbitrary_key_material_never_panics(
            n in proptest::collection::vec(any::<u8>(), 0..600),
            e in proptest::collection::vec(any::<u8>(), 0..9),
            x in proptest::collection::vec(any::<u8>(), 0..40),
            y in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let jwks = serde_json::json!({"keys": [
                {"kty": "RSA", "kid": "r", "n": URL_SAFE_NO_PAD.encode(&n), "e": URL_SAFE_NO_PAD.encode(&e)},
                {"kty": "EC", "kid": "e", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(&x), "y": URL_SAFE_NO_PAD.encode(&y)},
            ]});
            let _ = crate::validator::jwk::KeySet::from_json(jwks.to_string().as_bytes(), crate::signer::Backend::default());
        }

        #[test]
        fn arbitrary_key_sets_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = crate::validator::jwk::KeySet::from_json(&bytes, crate::signer::Backend::default());
        }
    }
}

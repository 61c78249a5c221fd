//! Step-up: reading a resource's `WWW-Authenticate` (RFC 7235 challenges; Entra's
//! `insufficient_claims` with base64 `claims`), and merging claims requests with the client's
//! capabilities (`xms_cc`, WIRE.md section 3).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

use super::Inner;
use crate::error::Error;

/// Longest header accepted: challenges are short; anything longer is refused, not parsed.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// One challenge of a `WWW-Authenticate` header: a scheme and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Challenge {
    /// `Bearer`, `PoP`, `Basic`, ... as sent.
    pub scheme: String,
    /// Parameters in order, names lower-cased, quoted values unescaped.
    pub params: Vec<(String, String)>,
    /// A token68 instead of parameters (rare; `Negotiate abc==`).
    pub token68: Option<String>,
}

impl Challenge {
    /// Parses every challenge of a `WWW-Authenticate` header value.
    ///
    /// ```
    /// use confidant::Challenge;
    ///
    /// // An API asking for a step-up: Entra's `insufficient_claims` with base64 `claims`.
    /// let header = r#"Bearer realm="", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19""#;
    /// let challenges = Challenge::parse_header(header)?;
    /// assert_eq!(challenges[0].scheme, "Bearer");
    /// let claims = challenges[0].claims().expect("a claims challenge")?;
    /// assert!(claims.contains(r#""acrs""#));
    /// // Pass `claims` to `TokenRequest::claims` (or a new sign-in) to get a token that satisfies it.
    /// # Ok::<(), confidant::Error>(())
    /// ```
    pub fn parse_header(header: &str) -> Result<Vec<Challenge>, Error> {
        if header.len() > MAX_HEADER_BYTES {
            return Err(Error::InvalidResponse(
                "the WWW-Authenticate header is too long".into(),
            ));
        }
        Parser {
            rest: header.as_bytes(),
        }
        .challenges()
        .ok_or_else(|| Error::InvalidResponse("the WWW-Authenticate header is malformed".into()))
    }

    /// Whether the scheme is `name` (case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(name)
    }

    /// A parameter's value (`name` case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The RFC 6750 `error` (`invalid_token`, `insufficient_scope`, Entra's
    /// `insufficient_claims`).
    pub fn error(&self) -> Option<&str> {
        self.param("error")
    }

    /// The B2C user flow the resource asks for: the `acr` value of the `claims` request when it
    /// names a policy (`B2C_1_…`, `B2C_1A_…`). Switch to it with
    /// [`ConfidentialClient::for_b2c_policy`](crate::ConfidentialClient::for_b2c_policy).
    pub fn b2c_policy(&self) -> Option<String> {
        let claims = self.claims()?.ok()?;
        let value: Value = serde_json::from_str(&claims).ok()?;
        let acr = value["access_token"]["acr"]["value"]
            .as_str()
            .or_else(|| value["id_token"]["acr"]["value"].as_str())?;
        let lower = acr.to_ascii_lowercase();
        (lower.starts_with("b2c_1_") || lower.starts_with("b2c_1a_")).then_some(lower)
    }

    /// The claims the resource asks for, decoded from the `claims` parameter (standard base64
    /// as Entra sends it, or base64url), checked to be a JSON object. `None` without one.
    pub fn claims(&self) -> Option<Result<String, Error>> {
        let encoded = self.param("claims")?.trim();
        let decoded = STANDARD
            .decode(encoded)
            .or_else(|_| URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('=')))
            .map_err(|_| Error::InvalidResponse("the challenge's claims are not base64".into()));
        Some(decoded.and_then(|bytes| {
            let text = String::from_utf8(bytes).map_err(|_| {
                Error::InvalidResponse("the challenge's claims are not UTF-8".into())
            })?;
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(_)) => Ok(text),
                _ => Err(Error::InvalidResponse(
                    "the challenge's claims are not a JSON object".into(),
                )),
            }
        }))
    }
}

/// A byte-level parser of RFC 7235's `#challenge` (with RFC 7230 tokens and quoted strings).
struct Parser<'a> {
    rest: &'a [u8],
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while let [b' ' | b'\t', rest @ ..] = self.rest {
            self.rest = rest;
        }
    }

    /// Skips whitespace and empty list elements (`, ,`).
    fn skip_commas(&mut self) -> bool {
        let mut any = false;
        loop {
            self.skip_ws();
            match self.rest {
                [b',', rest @ ..] => {
                    self.rest = rest;
                    any = true;
                }
                _ => return any,
            }
        }
    }

    fn token(&mut self) -> Option<String> {
        let len = self.rest.iter().take_while(|b| is_tchar(**b)).count();
        if len == 0 {
            return None;
        }
        let (token, rest) = self.rest.split_at(len);
        self.rest = rest;
        std::str::from_utf8(token).ok().map(str::to_owned)
    }

    fn quoted(&mut self) -> Option<String> {
        let [b'"', rest @ ..] = self.rest else {
            return None;
        };
        self.rest = rest;
        let mut value = Vec::new();
        loop {
            match self.rest {
                [b'"', rest @ ..] => {
                    self.rest = rest;
                    return String::from_utf8(value).ok();
                }
                [b'\\', c, rest @ ..] => {
                    value.push(*c);
                    self.rest = rest;
                }
                [c, rest @ ..] if *c != b'\r' && *c != b'\n' && *c != 0 => {
                    value.push(*c);
                    self.rest = rest;
                }
                _ => return None,
            }
        }
    }

    /// After a scheme: `name = value` pairs, or a token68, up to the next challenge.
    fn challenges(mut self) -> Option<Vec<Challenge>> {
        let mut out: Vec<Challenge> = Vec::new();
        self.skip_commas();
        while !self.rest.is_empty() {
            let scheme = self.token()?;
            let mut challenge = Challenge {
                scheme,
                params: Vec::new(),
                token68: None,
            };
            let spaced = matches!(self.rest, [b' ' | b'\t', ..]);
            self.skip_ws();
            if spaced && !self.rest.is_empty() && self.rest[0] != b',' {
                // A token68 (`abc+/def==`) ends at the end or a comma; anything else is the
                // parameter list.
                let chars = self
                    .rest
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(b))
                    .count();
                let equals = self.rest[chars..]
                    .iter()
                    .take_while(|b| **b == b'=')
                    .count();
                let mut after = Parser {
                    rest: &self.rest[chars + equals..],
                };
                after.skip_ws();
                if chars > 0 && (after.rest.is_empty() || after.rest[0] == b',') {
                    let (token68, _) = self.rest.split_at(chars + equals);
                    challenge.token68 = Some(std::str::from_utf8(token68).ok()?.to_owned());
                    self.rest = after.rest;
                } else {
                    self.params(&mut challenge)?;
                }
            }
            out.push(challenge);
            self.skip_commas();
        }
        (!out.is_empty()).then_some(out)
    }

    /// `name = (token | quoted-string)` separated by commas, until one that is not a
    /// parameter (the next challenge's scheme).
    fn params(&mut self, challenge: &mut Challenge) -> Option<()> {
        loop {
            let saved = self.rest;
            let Some(name) = self.token() else {
                self.rest = saved;
                return Some(());
            };
            self.skip_ws();
            if !matches!(self.rest, [b'=', ..]) {
                // A new challenge's scheme.
                self.rest = saved;
                return Some(());
            }
            self.rest = &self.rest[1..];
            self.skip_ws();
            let value = if matches!(self.rest, [b'"', ..]) {
                self.quoted()?
            } else {
                self.token()?
            };
            challenge.params.push((name.to_ascii_lowercase(), value));
            self.skip_ws();
            if self.rest.is_empty() {
                return Some(());
            }
            if !self.skip_commas() {
                return None;
            }
        }
    }
}

/// Deep-merges object `extra` into `base`.
fn merge(base: &mut Map<String, Value>, extra: Map<String, Value>) {
    for (name, value) in extra {
        match (base.get_mut(&name), value) {
            (Some(Value::Object(existing)), Value::Object(more)) => merge(existing, more),
            (_, value) => {
                base.insert(name, value);
            }
        }
    }
}

/// The `claims` to send: the request's (a challenge's) merged with the client capabilities
/// (`{"access_token":{"xms_cc":{"values":[...]}}}`); `None` when neither exists.
pub(crate) fn merge_capabilities(
    inner: &Inner,
    claims: Option<&str>,
) -> Result<Option<String>, Error> {
    merge_claims(claims, &inner.capabilities)
}

fn merge_claims(claims: Option<&str>, capabilities: &[String]) -> Result<Option<String>, Error> {
    if capabilities.is_empty() {
        return Ok(claims.map(str::to_owned));
    }
    let mut merged = match claims {
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Err(Error::Configuration(
                    "the claims request is not a JSON object".into(),
                ));
            }
        },
        None => Map::new(),
    };
    let Value::Object(capability) = json!({"access_token": {"xms_cc": {"values": capabilities}}})
    else {
        return Ok(claims.map(str::to_owned));
    };
    merge(&mut merged, capability);
    Ok(Some(Value::Object(merged).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(header: &str) -> Vec<Challenge> {
        Challenge::parse_header(header).unwrap_or_else(|e| panic!("{header}: {e}"))
    }

    #[test]
    fn entra_insufficient_claims() {
        let claims = r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#;
        let header = format!(
            r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="{}""#,
            STANDARD.encode(claims)
        );
        let challenges = parse(&header);
        assert_eq!(challenges.len(), 1);
        let c = &challenges[0];
        assert!(c.is("bearer"));
        assert_eq!(c.error(), Some("insufficient_claims"));
        assert_eq!(c.param("REALM"), Some(""));
        assert_eq!(
            c.claims().map(|r| r.expect("claims")).as_deref(),
            Some(claims)
        );
    }

    #[test]
    fn b2c_policy_from_an_acr_request() {
        let header = |claims: &str| {
            parse(&format!(
                r#"Bearer error="insufficient_claims", claims="{}""#,
                STANDARD.encode(claims)
            ))
            .remove(0)
        };
        assert_eq!(
            header(r#"{"access_token":{"acr":{"essential":true,"value":"B2C_1_mfa"}}}"#)
                .b2c_policy()
                .as_deref(),
            Some("b2c_1_mfa")
        );
        assert_eq!(
            header(r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#).b2c_policy(),
            None
        );
        assert_eq!(
            header(r#"{"access_token":{"acr":{"value":"urn:mace:incommon:iap:silver"}}}"#)
                .b2c_policy(),
            None
        );
    }

    #[test]
    fn several_challenges_and_token68() {
        let challenges = parse(
            r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple", Negotiate abc+/def==, Bearer error=invalid_token"#,
        );
        let schemes: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["Newauth", "Basic", "Negotiate", "Bearer"]);
        assert_eq!(challenges[0].param("title"), Some(r#"Login to "apps""#));
        assert_eq!(challenges[0].param("type"), Some("1"));
        assert_eq!(challenges[2].token68.as_deref(), Some("abc+/def=="));
        assert_eq!(challenges[3].error(), Some("invalid_token"));
        assert_eq!(parse("Bearer").len(), 1);
        assert_eq!(
            parse(" , Bearer ,, Basic realm=x")[1].param("realm"),
            Some("x")
        );
    }

    #[test]
    fn malformed_headers_are_errors_not_panics() {
        for header in [
            "",
            "Bearer realm=\"unterminated",
            "Bearer realm=\"a\" error=\"b\"",
            "=x",
            "Bearer \u{7f}",
            "Bearer claims=\"a\r\nb\"",
        ] {
            assert!(Challenge::parse_header(header).is_err(), "{header:?}");
        }
        let not_json = parse(&format!(r#"Bearer claims="{}""#, STANDARD.encode("[1]")));
        assert!(not_json[0].claims().is_some_and(|r| r.is_err()));
        let not_b64 = parse(r#"Bearer claims="%%%""#);
        assert!(not_b64[0].claims().is_some_and(|r| r.is_err()));
        assert!(Challenge::parse_header(&"a".repeat(20_000)).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_header_parses_or_errs(header in "[ -~\t]{0,120}") {
            let _ = Challenge::parse_header(&header);
        }

        #[test]
        fn challenge_shaped_headers_round_trip(
            scheme in "[A-Za-z][A-Za-z0-9-]{0,10}",
            values in proptest::collection::vec("[ -!#-\\[\\]-~]{0,12}", 1..4),
        ) {
            let params: Vec<String> = values
                .iter()
                .enumerate()
                .map(|(i, v)| format!("p{i}=\"{v}\""))
                .collect();
            let header = format!("{scheme} {}", params.join(", "));
            let parsed = Challenge::parse_header(&header).expect("well-formed");
            proptest::prop_assert_eq!(parsed.len(), 1);
            for (i, v) in values.iter().enumerate() {
                proptest::prop_assert_eq!(parsed[0].param(&format!("p{i}")), Some(v.as_str()));
            }
        }
    }

    #[test]
    fn capabilities_merge_into_claims() {
        let cp1 = ["CP1".to_owned()];
        assert_eq!(merge_claims(None, &[]).expect("none"), None);
        assert_eq!(
            merge_claims(None, &cp1).expect("cp1").as_deref(),
            Some(r#"{"access_token":{"xms_cc":{"values":["CP1"]}}}"#)
        );
        let merged = merge_claims(
            Some(r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}},"id_token":{"acr":{}}}"#),
            &cp1,
        )
        .expect("merged")
        .expect("some");
        let value: Value = serde_json::from_str(&merged).expect("json");
        assert_eq!(value["access_token"]["acrs"]["value"], "c1");
        assert_eq!(value["access_token"]["xms_cc"]["values"][0], "CP1");
        assert!(value["id_token"]["acr"].is_object());
        assert!(merge_claims(Some("[]"), &cp1).is_err());
    }
}

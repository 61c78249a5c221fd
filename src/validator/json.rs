//! Strict JSON for token headers, payloads and key sets (P4, P5): one object, UTF-8 without BOM,
//! nothing after it, depth at most 32, no member twice (compared after unescaping), and no two
//! names differing only in ASCII case where one of them is read by the crate.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

pub(crate) const MAX_DEPTH: usize = 32;

/// Member names the crate reads; a case variant of one beside it is an attack on readers that
/// fold case.
const READ_MEMBERS: &[&str] = &[
    "alg",
    "kid",
    "typ",
    "cty",
    "crit",
    "enc",
    "zip",
    "b64",
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "tid",
    "oid",
    "azp",
    "azpacr",
    "appid",
    "appidacr",
    "ver",
    "idtyp",
    "scp",
    "scope",
    "roles",
    "acr",
    "acrs",
    "amr",
    "tfp",
    "client_id",
    "jti",
    "nonce",
    "at_hash",
    "c_hash",
    "cnf",
    "kty",
    "crv",
    "n",
    "e",
    "x",
    "y",
    "use",
    "key_ops",
    "keys",
    "issuer",
];

/// Whether `name` is, up to ASCII case, a member name the crate reads.
pub(crate) fn is_read_member(name: &str) -> bool {
    READ_MEMBERS.iter().any(|m| m.eq_ignore_ascii_case(name))
}

/// Parses `bytes` as one strict JSON object.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, &'static str> {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err("JSON starts with a byte-order mark");
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = Strict { depth: 0 }
        .deserialize(&mut deserializer)
        .map_err(|e| {
            if e.to_string().contains("duplicate") {
                "a JSON member appears twice"
            } else {
                "invalid JSON"
            }
        })?;
    deserializer
        .end()
        .map_err(|_| "data after the JSON object")?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err("JSON is not an object"),
    }
}

struct Strict {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.depth > MAX_DEPTH {
            return Err(de::Error::custom("nesting too deep"));
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict {
            depth: self.depth + 1,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(name) = access.next_key::<String>()? {
            if map.contains_key(&name) {
                return Err(de::Error::custom("duplicate member"));
            }
            let clashes =
                map.keys().any(|k| k.eq_ignore_ascii_case(&name)) && is_read_member(&name);
            if clashes {
                return Err(de::Error::custom("duplicate member differing in case"));
            }
            let value = access.next_value_seed(Strict {
                depth: self.depth + 1,
            })?;
            map.insert(name, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_object;

    #[test]
    fn strictness() {
        assert!(parse_object(br#"{"a":1,"b":[1,{"c":null}]}"#).is_ok());
        assert_eq!(
            parse_object(br#"{"aud":1,"\u0061ud":2}"#),
            Err("a JSON member appears twice")
        );
        assert_eq!(
            parse_object(br#"{"tid":"a","TID":"b"}"#),
            Err("a JSON member appears twice")
        );
        assert!(
            parse_object(br#"{"foo":"a","FOO":"b"}"#).is_ok(),
            "unread members may differ in case"
        );
        assert!(parse_object(b"\xEF\xBB\xBF{}").is_err());
        assert!(parse_object(br#"{} {}"#).is_err());
        assert!(parse_object(br#"[1]"#).is_err());
        assert!(
            parse_object(br#"{"s":"\ud800"}"#).is_err(),
            "lone surrogate"
        );
        let deep = format!("{}{}", "{\"a\":[".repeat(20), "]}".repeat(20));
        assert!(parse_object(deep.as_bytes()).is_err(), "depth over 32");
        assert!(parse_object(b"{\"a\":\xff}").is_err());
    }
}

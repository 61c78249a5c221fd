//! A strict JSON object kept as its bytes plus an index of its top-level members, for token
//! headers and payloads: the same rules as [`super::json`] (P4, P5), without building a value
//! tree. Strings without escapes are read in place; only escaped ones are copied.

use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::json::{MAX_DEPTH, is_read_member};

/// Text in the object: a range of its bytes, or a copy when it had escapes.
#[derive(Debug, Clone)]
enum Text {
    At(Range<usize>),
    Owned(Box<str>),
}

/// What a top-level member's value is, as far as the claim rules care.
#[derive(Debug, Clone)]
enum Shape {
    String(Text),
    /// An array whose items are all strings.
    Strings(Vec<Text>),
    /// A number that fits `u64`.
    Unsigned(u64),
    /// Any other number (negative, fractional or huge).
    Float(f64),
    Other,
}

#[derive(Debug, Clone)]
struct Member {
    /// The name's length and first eight bytes: most lookups end on this comparison.
    tag: (usize, u64),
    name: Text,
    shape: Shape,
}

/// A tag with ASCII letters lower-cased (and other bytes possibly merged: a prefilter only).
fn fold((len, head): (usize, u64)) -> (usize, u64) {
    (len, head | 0x2020_2020_2020_2020)
}

/// The lookup tag of a name.
fn tag(name: &[u8]) -> (usize, u64) {
    let mut head = [0u8; 8];
    let n = name.len().min(8);
    head[..n].copy_from_slice(&name[..n]);
    (name.len(), u64::from_le_bytes(head))
}

/// A validated JSON object.
#[derive(Clone)]
pub(crate) struct Object {
    text: String,
    members: Vec<Member>,
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: values may be personal data.
        f.debug_list()
            .entries(self.members.iter().map(|m| self.text(&m.name)))
            .finish()
    }
}

/// The JSON type of a member, as the claim rules distinguish them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    /// An array of strings (possibly empty).
    Strings,
    Number,
    Other,
}

/// A member is present with a type other than the one asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WrongType;

impl Object {
    /// Parses `bytes` as one strict JSON object; `members` is the expected member count.
    pub(crate) fn parse(bytes: Vec<u8>, members: usize) -> Result<Self, &'static str> {
        if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
            return Err("JSON starts with a byte-order mark");
        }
        // UTF-8 is checked once for the whole text, not string by string.
        // Kept as a `String`: boxing would shrink, that is copy, the decoded buffer.
        let text = String::from_utf8(bytes).map_err(|_| "JSON is not UTF-8")?;
        let members = {
            let base = text.as_ptr() as usize;
            let mut deserializer = serde_json::Deserializer::from_str(&text);
            let members = deserializer
                .deserialize_map(TopLevel {
                    base,
                    capacity: members,
                })
                .map_err(classify)?;
            deserializer
                .end()
                .map_err(|_| "data after the JSON object")?;
            members
        };
        Ok(Self { text, members })
    }

    fn text<'a>(&'a self, text: &'a Text) -> &'a str {
        match text {
            // The ranges were cut at string boundaries of the text.
            Text::At(range) => self.text.get(range.clone()).unwrap_or_default(),
            Text::Owned(s) => s,
        }
    }

    /// Whether `text` is `name`, compared as bytes (no UTF-8 check on the hot path).
    fn is(&self, text: &Text, name: &str) -> bool {
        match text {
            Text::At(range) => {
                range.len() == name.len() && &self.text.as_bytes()[range.clone()] == name.as_bytes()
            }
            Text::Owned(s) => &**s == name,
        }
    }

    fn member(&self, name: &str) -> Option<&Member> {
        let wanted = tag(name.as_bytes());
        self.members
            .iter()
            .find(|m| m.tag == wanted && (name.len() <= 8 || self.is(&m.name, name)))
    }

    /// Each member's name and the JSON type the claim rules see, in document order.
    pub(crate) fn kinds(&self) -> impl Iterator<Item = (&[u8], Kind)> {
        self.members.iter().map(|m| {
            let kind = match &m.shape {
                Shape::String(_) => Kind::String,
                Shape::Strings(_) => Kind::Strings,
                Shape::Unsigned(_) | Shape::Float(_) => Kind::Number,
                Shape::Other => Kind::Other,
            };
            let name: &[u8] = match &m.name {
                Text::At(range) => self.text.as_bytes().get(range.clone()).unwrap_or_default(),
                Text::Owned(s) => s.as_bytes(),
            };
            (name, kind)
        })
    }

    /// Whether `name` is present (with any value).
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.member(name).is_some()
    }

    /// A string member; `WrongType` if present as something else.
    pub(crate) fn str(&self, name: &str) -> Result<Option<&str>, WrongType> {
        match self.member(name).map(|m| &m.shape) {
            None => Ok(None),
            Some(Shape::String(t)) => Ok(Some(self.text(t))),
            Some(_) => Err(WrongType),
        }
    }

    /// A string member, `None` if absent or not a string.
    pub(crate) fn get_str(&self, name: &str) -> Option<&str> {
        self.str(name).ok().flatten()
    }

    /// An array-of-strings member; `WrongType` if present as something else.
    pub(crate) fn strings(
        &self,
        name: &str,
    ) -> Result<Option<impl Iterator<Item = &str> + '_>, WrongType> {
        match self.member(name).map(|m| &m.shape) {
            None => Ok(None),
            Some(Shape::Strings(items)) => Ok(Some(items.iter().map(|t| self.text(t)))),
            Some(_) => Err(WrongType),
        }
    }

    /// A number member: `Ok(Some(Ok(u)))` when it fits `u64`, `Ok(Some(Err(f)))` otherwise;
    /// `WrongType` if another type.
    pub(crate) fn number(&self, name: &str) -> Result<Option<Result<u64, f64>>, WrongType> {
        match self.member(name).map(|m| &m.shape) {
            None => Ok(None),
            Some(Shape::Unsigned(u)) => Ok(Some(Ok(*u))),
            Some(Shape::Float(f)) => Ok(Some(Err(*f))),
            Some(_) => Err(WrongType),
        }
    }

    /// The object's JSON text.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }
}

fn classify(e: serde_json::Error) -> &'static str {
    if e.to_string().contains("duplicate") {
        "a JSON member appears twice"
    } else {
        "invalid JSON"
    }
}

/// The byte range of `part` inside the buffer starting at `base`.
fn range_of(base: usize, part: &str) -> Range<usize> {
    // `part` is borrowed from the buffer at `base`; saturating keeps a broken invariant from
    // panicking (the lookups below use `get`, so a bad range reads as absent).
    let start = (part.as_ptr() as usize).saturating_sub(base);
    start..start + part.len()
}

/// A key or string: borrowed when the input had no escapes.
enum Str<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Str<'_> {
    fn as_str(&self) -> &str {
        match self {
            Str::Borrowed(s) => s,
            Str::Owned(s) => s,
        }
    }
}

struct StrSeed;

impl<'de> DeserializeSeed<'de> for StrSeed {
    type Value = Str<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Str<'de>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for StrSeed {
    type Value = Str<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Str<'de>, E> {
        Ok(Str::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Str<'de>, E> {
        Ok(Str::Owned(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Str<'de>, E> {
        Ok(Str::Owned(v))
    }
}

/// P5 for one pair of names: not the same, nor case variants of a name the crate reads.
fn check_pair(earlier: &str, name: &str) -> Result<(), &'static str> {
    if earlier == name {
        return Err("duplicate member");
    }
    if earlier.eq_ignore_ascii_case(name) && is_read_member(name) {
        return Err("duplicate member differing in case");
    }
    Ok(())
}

/// P5 for one object: `name` against the names seen before it.
fn check_new_name(seen: &[Str<'_>], name: &str) -> Result<(), &'static str> {
    seen.iter()
        .filter(|earlier| earlier.as_str().len() == name.len())
        .try_for_each(|earlier| check_pair(earlier.as_str(), name))
}

struct TopLevel {
    base: usize,
    capacity: usize,
}

impl<'de> Visitor<'de> for TopLevel {
    type Value = Vec<Member>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Vec<Member>, A::Error> {
        let mut members: Vec<Member> = Vec::with_capacity(self.capacity);
        // The borrowed names, for the duplicate check: inline for the usual member counts.
        let mut inline: [&'de str; 40] = [""; 40];
        let mut spilled: Vec<&'de str> = Vec::new();
        while let Some(name) = access.next_key_seed(StrSeed)? {
            let name_tag = tag(name.as_str().as_bytes());
            let folded = fold(name_tag);
            let seen = members.len();
            let names = if seen <= inline.len() {
                &inline[..seen]
            } else {
                &spilled[..]
            };
            for (earlier, member) in names.iter().zip(&members) {
                // Names that differ in length or, folded, in their first eight bytes cannot
                // clash.
                if fold(member.tag) == folded {
                    let earlier = match &member.name {
                        Text::Owned(s) => s,
                        Text::At(_) => *earlier,
                    };
                    check_pair(earlier, name.as_str()).map_err(de::Error::custom)?;
                }
            }
            // Validate the value strictly, and capture the shapes the claim rules read.
            let shape = access.next_value_seed(Validate {
                depth: 1,
                base: self.base,
            })?;
            let (borrowed, name) = match name {
                Str::Borrowed(s) => (s, Text::At(range_of(self.base, s))),
                Str::Owned(s) => ("", Text::Owned(s.into_boxed_str())),
            };
            if seen < inline.len() {
                inline[seen] = borrowed;
            } else {
                if spilled.is_empty() {
                    spilled.extend_from_slice(&inline);
                }
                spilled.push(borrowed);
            }
            members.push(Member {
                tag: name_tag,
                name,
                shape: shape.unwrap_or(Shape::Other),
            });
        }
        Ok(members)
    }
}

/// Walks a value under the strict rules without building it; at depth 1 it reports strings,
/// arrays of strings and numbers.
struct Validate {
    depth: usize,
    base: usize,
}

impl Validate {
    fn text(&self, s: Str<'_>) -> Text {
        match s {
            Str::Borrowed(b) => Text::At(range_of(self.base, b)),
            Str::Owned(o) => Text::Owned(o.into_boxed_str()),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Validate {
    type Value = Option<Shape>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Shape>, D::Error> {
        if self.depth > MAX_DEPTH {
            return Err(de::Error::custom("nesting too deep"));
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Validate {
    type Value = Option<Shape>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Option<Shape>, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, v: i64) -> Result<Option<Shape>, E> {
        Ok(Some(Shape::Float(v as f64)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Option<Shape>, E> {
        Ok(Some(Shape::Unsigned(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Option<Shape>, E> {
        Ok(Some(Shape::Float(v)))
    }
    fn visit_unit<E>(self) -> Result<Option<Shape>, E> {
        Ok(None)
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Option<Shape>, E> {
        Ok(Some(Shape::String(self.text(Str::Borrowed(v)))))
    }
    fn visit_str<E>(self, v: &str) -> Result<Option<Shape>, E> {
        Ok(Some(Shape::String(Text::Owned(v.into()))))
    }
    fn visit_string<E>(self, v: String) -> Result<Option<Shape>, E> {
        Ok(Some(Shape::String(Text::Owned(v.into_boxed_str()))))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Shape>, A::Error> {
        let mut strings = Some(Vec::new());
        while let Some(item) = seq.next_element_seed(Validate {
            depth: self.depth + 1,
            base: self.base,
        })? {
            match (item, &mut strings) {
                (Some(Shape::String(text)), Some(list)) => list.push(text),
                _ => strings = None,
            }
        }
        Ok(strings.map(Shape::Strings))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Option<Shape>, A::Error> {
        let mut names: Vec<Str<'de>> = Vec::new();
        while let Some(name) = access.next_key_seed(StrSeed)? {
            check_new_name(&names, name.as_str()).map_err(de::Error::custom)?;
            access.next_value_seed(Validate {
                depth: self.depth + 1,
                base: self.base,
            })?;
            names.push(name);
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Object, &'static str> {
        Object::parse(text.as_bytes().to_vec(), 8)
    }

    #[test]
    fn strictness_matches_the_tree_parser() {
        for text in [
            r#"{"a":1,"b":[1,{"c":null}]}"#,
            r#"{"aud":1,"\u0061ud":2}"#,
            r#"{"tid":"a","TID":"b"}"#,
            r#"{"foo":"a","FOO":"b"}"#,
            "\u{feff}{}",
            r#"{} {}"#,
            r#"[1]"#,
            r#"{"s":"\ud800"}"#,
            r#"{"a":{"b":1,"b":2}}"#,
            r#"{"a":[{"kid":1,"KID":2}]}"#,
            "{\"a\":\"\u{0}\"}",
            r#"{"a":1,}"#,
            "",
        ] {
            assert_eq!(
                parse(text).is_ok(),
                super::super::json::parse_object(text.as_bytes()).is_ok(),
                "{text:?}"
            );
        }
        let many: Vec<String> = (0..60).map(|i| format!("\"m{i}\":{i}")).collect();
        assert!(parse(&format!("{{{}}}", many.join(","))).is_ok());
        for late in ["m3", "m45", "m59"] {
            let text = format!("{{{},\"{late}\":0}}", many.join(","));
            assert!(parse(&text).is_err(), "a duplicate after {late}");
        }
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(40), "]".repeat(40));
        assert!(parse(&deep).is_err(), "depth over 32");
        assert!(Object::parse(b"{\"a\":\"\xff\"}".to_vec(), 8).is_err());
    }

    #[test]
    fn reads_members_in_place_and_escaped() {
        let o = parse(r#"{"iss":"https://x","sub":"a\"b","roles":["r1","r\u0032"],"exp":17.5,"n":null,"m":[1,"x"]}"#)
            .expect("parses");
        assert_eq!(o.str("iss"), Ok(Some("https://x")));
        assert_eq!(o.str("sub"), Ok(Some("a\"b")));
        assert_eq!(
            o.strings("roles")
                .expect("array")
                .expect("present")
                .collect::<Vec<_>>(),
            ["r1", "r2"]
        );
        assert_eq!(o.number("exp"), Ok(Some(Err(17.5))));
        assert_eq!(o.str("exp"), Err(WrongType));
        assert_eq!(o.str("n"), Err(WrongType));
        assert!(
            o.strings("m").is_err(),
            "mixed arrays are not string arrays"
        );
        assert_eq!(o.str("absent"), Ok(None));
        assert!(o.contains("n"));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::Object;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Object::parse(bytes, 8);
        }

        #[test]
        fn agrees_with_the_tree_parser(text in r#"\{("[a-zA-Z]{1,4}":(1|"x"|\[\]|\{\}|null),){0,8}"[a-z]{1,3}":0\}"#) {
            prop_assert_eq!(
                Object::parse(text.as_bytes().to_vec(), 8).is_ok(),
                super::super::json::parse_object(text.as_bytes()).is_ok(),
                "{}", text
            );
        }

        #[test]
        fn a_repeated_member_is_refused(name in "[a-z]{1,12}", other in "[A-Z]{1,12}") {
            let text = format!(r#"{{"{name}":1,"{other}":2,"{name}":3}}"#);
            prop_assert!(Object::parse(text.into_bytes(), 8).is_err());
        }
    }
}

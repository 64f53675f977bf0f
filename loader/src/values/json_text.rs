//! JSON kept as its text, so nothing on the way alters it: the text of the
//! value a JSON pointer names inside an event exactly as written
//! ([`raw_at`]), a json cell that carries that text to the warehouse
//! ([`JsonText`]), and the equality a json column promises ([`canonical`]).
//!
//! `serde_json` (without `arbitrary_precision`) reads every number past
//! 64-bit integers as a double and forgets how a number was written
//! (`1.50`, `12345678901234567890123`); its text does not.
//!
//! Only reads text that `serde_json` has already accepted as JSON: on other
//! text the answers are unspecified but never a panic.

use bytes::BufMut;
use postgres_types::{IsNull, ToSql, Type};
use std::borrow::Cow;
use std::fmt;

/// The JSON text of one cell, exactly as the event wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonText(pub String);

impl fmt::Display for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `jsonb`'s binary format version: the text follows it.
const JSONB_VERSION: u8 = 1;

/// Sends the text as written: PostgreSQL parses it into `jsonb` itself,
/// numbers as exact `numeric`.
impl ToSql for JsonText {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        if *ty == Type::JSONB {
            out.put_u8(JSONB_VERSION);
        }
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::JSONB | Type::JSON | Type::TEXT | Type::VARCHAR)
    }

    postgres_types::to_sql_checked!();
}

fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_space(text: &[u8], mut at: usize) -> usize {
    while at < text.len() && is_space(text[at]) {
        at += 1;
    }
    at
}

/// The end of the string starting at `at` (its opening quote).
fn string_end(text: &[u8], mut at: usize) -> usize {
    at += 1;
    while at < text.len() {
        match text[at] {
            b'\\' => at += 2,
            b'"' => return at + 1,
            _ => at += 1,
        }
    }
    text.len()
}

/// The end of the value starting at `at`.
fn value_end(text: &[u8], mut at: usize) -> usize {
    match text.get(at) {
        Some(b'"') => string_end(text, at),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            while at < text.len() {
                match text[at] {
                    b'"' => {
                        at = string_end(text, at);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return at + 1;
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
            text.len()
        }
        _ => {
            while at < text.len() && !matches!(text[at], b',' | b'}' | b']') && !is_space(text[at]) {
                at += 1;
            }
            at
        }
    }
}

/// A key's text (between its quotes) as the string it denotes.
fn key_text(raw: &str) -> Cow<'_, str> {
    let Some(inner) = raw.get(1..raw.len().saturating_sub(1)) else {
        return Cow::Borrowed("");
    };
    if inner.contains('\\') {
        Cow::Owned(serde_json::from_str::<String>(raw).unwrap_or_default())
    } else {
        Cow::Borrowed(inner)
    }
}

/// The member `name` of the object `object` (the last one when a key
/// repeats, as `serde_json` reads it).
fn member<'a>(object: &'a str, name: &str) -> Option<&'a str> {
    let text = object.as_bytes();
    let mut found = None;
    let mut at = skip_space(text, 1);
    while at < text.len() && text[at] == b'"' {
        let key_end = string_end(text, at);
        let value_at = skip_space(text, skip_space(text, key_end) + 1);
        let end = value_end(text, value_at);
        if key_text(object.get(at..key_end)?) == name {
            found = object.get(value_at..end);
        }
        at = skip_space(text, end);
        if text.get(at) != Some(&b',') {
            break;
        }
        at = skip_space(text, at + 1);
    }
    found
}

/// The element `index` of the array `array`.
fn element(array: &str, index: usize) -> Option<&str> {
    let text = array.as_bytes();
    let mut at = skip_space(text, 1);
    for position in 0.. {
        if at >= text.len() || text[at] == b']' {
            return None;
        }
        let end = value_end(text, at);
        if position == index {
            return array.get(at..end);
        }
        at = skip_space(text, end);
        if text.get(at) != Some(&b',') {
            return None;
        }
        at = skip_space(text, at + 1);
    }
    None
}

/// An array index token as RFC 6901 (and [`crate::pointer`]) reads it.
fn array_index(token: &str) -> Option<usize> {
    if token.is_empty() || (token.len() > 1 && token.starts_with('0')) || token.starts_with('+') {
        return None;
    }
    token.parse().ok()
}

/// The text of the value `pointer` (RFC 6901) names inside `document`,
/// exactly as written; `None` where [`crate::pointer::lookup`] finds nothing.
pub fn raw_at<'a>(document: &'a str, pointer: &str) -> Option<&'a str> {
    let mut value = document.trim_matches(|c: char| c.is_ascii() && is_space(c as u8));
    if pointer.is_empty() {
        return Some(value);
    }
    for token in pointer.strip_prefix('/')?.split('/') {
        let token = if token.contains('~') {
            Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
        } else {
            Cow::Borrowed(token)
        };
        value = match value.as_bytes().first()? {
            b'{' => member(value, &token)?,
            b'[' => element(value, array_index(&token)?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// The canonical text of a JSON document, by which two json values are
/// equal: object members sorted by key (a repeated key: the last one), no
/// space, strings as `serde_json` writes them, numbers by exact decimal
/// value (`1.0`, `1` and `1e0` alike; `-0` is `0`). `None` if not JSON.
pub fn canonical(document: &str) -> Option<String> {
    let value = document.trim_matches(|c: char| c.is_ascii() && is_space(c as u8));
    let mut out = String::with_capacity(value.len());
    write_canonical(value, &mut out)?;
    Some(out)
}

fn write_canonical(value: &str, out: &mut String) -> Option<()> {
    let text = value.as_bytes();
    match text.first()? {
        b'{' => {
            let mut members = std::collections::BTreeMap::new();
            let mut at = skip_space(text, 1);
            while text.get(at) == Some(&b'"') {
                let key_end = string_end(text, at);
                let value_at = skip_space(text, skip_space(text, key_end) + 1);
                let end = value_end(text, value_at);
                let mut member = String::new();
                write_canonical(value.get(value_at..end)?, &mut member)?;
                members.insert(key_text(value.get(at..key_end)?).into_owned(), member);
                at = skip_space(text, end);
                if text.get(at) == Some(&b',') {
                    at = skip_space(text, at + 1);
                }
            }
            out.push('{');
            for (index, (key, member)) in members.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(key).ok()?);
                out.push(':');
                out.push_str(member);
            }
            out.push('}');
        }
        b'[' => {
            out.push('[');
            let mut at = skip_space(text, 1);
            let mut first = true;
            while at < text.len() && text[at] != b']' {
                let end = value_end(text, at);
                if !first {
                    out.push(',');
                }
                first = false;
                write_canonical(value.get(at..end)?, out)?;
                at = skip_space(text, end);
                if text.get(at) == Some(&b',') {
                    at = skip_space(text, at + 1);
                }
            }
            out.push(']');
        }
        b'"' => out.push_str(&serde_json::to_string(&serde_json::from_str::<String>(value).ok()?).ok()?),
        b't' | b'f' | b'n' => out.push_str(value),
        _ => out.push_str(&super::decimal::Decimal::parse(value)?.canonical()),
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_at_a_pointer_is_the_text_as_written() {
        // A repeated key: the last one, as serde_json reads it.
        assert_eq!(raw_at(r#"{"a": 1, "a" :[2 ]}"#, "/a"), Some("[2 ]"));
        let single = r#"{"a": {"b" : [1, 12345678901234567890123, {"c":1.50}], "~/k": "x\"}"}, "s":"é\u00e9"}"#;
        assert_eq!(raw_at(single, "/a/b/1"), Some("12345678901234567890123"));
        assert_eq!(raw_at(single, "/a/b/2/c"), Some("1.50"));
        assert_eq!(raw_at(single, "/a/~0~1k"), Some(r#""x\"}""#));
        assert_eq!(raw_at(single, "/s"), Some(r#""é\u00e9""#));
        assert_eq!(raw_at(single, "/a/b/3"), None);
        assert_eq!(raw_at(single, "/a/b/01"), None);
        assert_eq!(raw_at(single, "/s/0"), None);
        assert_eq!(raw_at(single, ""), Some(single));
        assert_eq!(raw_at(r#"{"\u0061": 1}"#, "/a"), Some("1"));
    }

    #[test]
    fn canonical_json_ignores_layout_and_order_but_not_values() {
        let a = canonical(r#"{"b": [1.50, -0, 1e2], "a": "\u00e9", "a": "é"}"#).unwrap();
        let b = canonical(r#"{"a":"é","b":[1.5,0,100]}"#).unwrap();
        assert_eq!(a, b);
        assert_ne!(canonical("[1, 2]"), canonical("[2, 1]"));
        assert_ne!(
            canonical("12345678901234567890123"),
            canonical("12345678901234567890124")
        );
    }
}

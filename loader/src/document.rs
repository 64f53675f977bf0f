//! A JSON event read without building it: serde_json checks the whole text
//! exactly as it does when it builds a `serde_json::Value` (the same walk,
//! so the same errors and limits), but keeps nothing; then only the values
//! the configured pointers name are found in the text itself and read. Per
//! row: no map, no key and no string other than the ones a cell keeps
//! (building a `Value` per row to read a few fields was a quarter of
//! `relay load`'s CPU in malloc and free).

use crate::values::json_text::raw_at;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;

/// A record's value that serde_json accepts as a JSON object.
#[derive(Debug, Clone, Copy)]
pub struct Document<'a> {
    text: &'a str,
}

/// `bytes` as a JSON object, or why not, in the words serde_json has for
/// it when it reads the bytes into a `Value`.
pub fn check(bytes: &[u8]) -> Result<Document<'_>, String> {
    let Shape { object } = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    if !object {
        return Err("not a JSON object".into());
    }
    // serde_json checked every string as UTF-8, and JSON outside strings is ASCII.
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not JSON: {e}"))?;
    Ok(Document { text })
}

impl<'a> Document<'a> {
    /// The text of the value `pointer` names, exactly as written; `None`
    /// where `serde_json::Value::pointer` finds nothing.
    pub fn raw(&self, pointer: &str) -> Option<&'a str> {
        raw_at(self.text, pointer)
    }
}

/// The scalar a value's text (as [`Document::raw`] finds it) denotes, as
/// serde_json reads it; an object or array stands as an empty one of its
/// kind (only its kind is asked of it, its text is the value).
pub fn scalar(raw: &str) -> Value {
    match raw.as_bytes().first() {
        Some(b'{') => Value::Object(serde_json::Map::new()),
        Some(b'[') => Value::Array(Vec::new()),
        // Text inside a checked document: it parses.
        _ => serde_json::from_str(raw).unwrap_or(Value::Null),
    }
}

/// Whether a checked value is an object. Deserializing it takes every value
/// as `Value`'s own deserializer does (any value, keys as strings), so the
/// errors are the same, and keeps none of it.
struct Shape {
    object: bool,
}

/// Any JSON value, walked and dropped.
struct Skip;

/// An object's key, read and dropped.
struct Key;

struct SkipVisitor;
struct KeyVisitor;

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Shape, D::Error> {
        struct ShapeVisitor;
        impl<'de> Visitor<'de> for ShapeVisitor {
            type Value = Shape;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Shape, A::Error> {
                SkipVisitor.visit_map(map)?;
                Ok(Shape { object: true })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Shape, A::Error> {
                SkipVisitor.visit_seq(seq)?;
                Ok(Shape { object: false })
            }
            fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
                Ok(Shape { object: false })
            }
            fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
                Ok(Shape { object: false })
            }
            fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
                Ok(Shape { object: false })
            }
            fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
                Ok(Shape { object: false })
            }
            fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
                Ok(Shape { object: false })
            }
            fn visit_unit<E>(self) -> Result<Shape, E> {
                Ok(Shape { object: false })
            }
        }
        deserializer.deserialize_any(ShapeVisitor)
    }
}

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Skip, D::Error> {
        deserializer.deserialize_any(SkipVisitor)
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E>(self, _: &str) -> Result<Key, E> {
        Ok(Key)
    }
}

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while let Some(Key) = map.next_key()? {
            let Skip = map.next_value()?;
        }
        Ok(Skip)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while let Some(Skip) = seq.next_element()? {}
        Ok(Skip)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
}

#[cfg(test)]
#[path = "document_tests.rs"]
mod tests;

//! A JSON event read without building it. One scan checks the text and
//! finds the configured pointers' values in it ([`crate::scan`]); what the
//! scan cannot vouch for, serde_json checks exactly as it does when it
//! builds a `serde_json::Value` (the same walk, so the same errors and
//! limits) but keeps nothing, and values are then found by pointer in the
//! text ([`raw_at`]). Only the values cells need are read. Per row: no map,
//! no key and no string other than the ones a cell keeps (building a
//! `Value` per row to read a few fields was a quarter of `relay load`'s CPU
//! in malloc and free).

use crate::scan::{Place, PointerSet};
use crate::values::json_text::raw_at;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A record's value that serde_json accepts as a JSON object.
#[derive(Debug, Clone)]
pub struct Document<'a> {
    text: &'a str,
    pointers: &'a PointerSet,
    /// The text of each of `pointers`' nodes, when the scan could tell.
    found: Option<Vec<Option<&'a str>>>,
}

/// `bytes` as a JSON object, with the values of `pointers` found, or why
/// not, in the words serde_json has for it when it reads the bytes into a
/// `Value`.
pub fn check<'a>(bytes: &'a [u8], pointers: &'a PointerSet) -> Result<Document<'a>, String> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if let Some(found) = pointers.scan(text) {
            return Ok(Document {
                text,
                pointers,
                found: Some(found),
            });
        }
    }
    let Shape { object } = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    if !object {
        return Err("not a JSON object".into());
    }
    // serde_json checked every string as UTF-8, and JSON outside strings is ASCII.
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not JSON: {e}"))?;
    Ok(Document {
        text,
        pointers,
        found: None,
    })
}

impl<'a> Document<'a> {
    /// The text of the value `pointer` names, exactly as written; `None`
    /// where `serde_json::Value::pointer` finds nothing.
    pub fn raw(&self, pointer: &str) -> Option<&'a str> {
        self.raw_at_place(pointer, self.pointers.node_of(pointer))
    }

    /// [`Document::raw`] of `pointer`, whose place in this document's
    /// pointer set is `place` (found once per loader, not per row).
    pub fn raw_at_place(&self, pointer: &str, place: Place) -> Option<&'a str> {
        match (&self.found, place) {
            (Some(found), Place::Node(node)) => found[node],
            (_, Place::Nowhere) => None,
            _ => raw_at(self.text, pointer),
        }
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

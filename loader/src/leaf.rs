//! A value as a cell reads it ([`Leaf`]): what a JSON value is, from a tree
//! or from the value's text as a checked document holds it ([`leaf`]), a
//! string borrowed from that text unless it holds an escape. Numbers are
//! read as serde_json reads them, so a cell sees what it saw when events
//! were built as `Value`s.

use serde_json::Value;
use std::borrow::Cow;

/// A value as a cell reads it: what it is, never null. An object or array
/// is only its kind; its text is in [`Source`].
#[derive(Debug, Clone, PartialEq)]
pub enum Leaf<'a> {
    Str(Cow<'a, str>),
    Number(serde_json::Number),
    Bool(bool),
    Object,
    Array,
}

impl<'a> Leaf<'a> {
    /// The leaf of a value in a tree; `None` for null.
    pub fn of(value: &'a Value) -> Option<Leaf<'a>> {
        Some(match value {
            Value::Null => return None,
            Value::Bool(b) => Leaf::Bool(*b),
            Value::Number(n) => Leaf::Number(n.clone()),
            Value::String(s) => Leaf::Str(Cow::Borrowed(s)),
            Value::Array(_) => Leaf::Array,
            Value::Object(_) => Leaf::Object,
        })
    }
}

/// The value a value's text (as [`crate::document::Document::raw`] finds it) denotes, as
/// serde_json reads it (`None` for null); a string borrowed from the text
/// unless it holds an escape.
pub fn leaf(raw: &str) -> Option<Leaf<'_>> {
    Some(match raw.as_bytes().first()? {
        b'{' => Leaf::Object,
        b'[' => Leaf::Array,
        b'n' => return None,
        b't' => Leaf::Bool(true),
        b'f' => Leaf::Bool(false),
        b'"' => {
            let inner = &raw[1..raw.len() - 1];
            if inner.contains('\\') {
                // Text inside a checked document: it parses.
                Leaf::Str(Cow::Owned(serde_json::from_str(raw).ok()?))
            } else {
                Leaf::Str(Cow::Borrowed(inner))
            }
        }
        _ => Leaf::Number(number(raw)?),
    })
}

/// Digits of an integer that an `i64` always holds.
const INTEGER_DIGITS_HELD: usize = 18;

/// A number's text as serde_json reads it (an integer in 64 bits, anything
/// else a double; `-0` is the double -0.0).
fn number(raw: &str) -> Option<serde_json::Number> {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    let plain = !digits.is_empty()
        && digits.len() <= INTEGER_DIGITS_HELD
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit());
    if plain {
        return raw.parse::<i64>().ok().map(serde_json::Number::from);
    }
    serde_json::from_str(raw).ok()
}

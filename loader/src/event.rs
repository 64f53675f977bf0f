//! An event as the loader reads it ([`crate::format::Parser::read`]): a
//! JSON object's checked text ([`crate::document`]) or the object Relay
//! builds from a text or regex line, and the value a pointer names in it
//! ([`Found`]): only that value is read, a string borrowed when it can be.

use crate::document::{leaf, Document};
use crate::scan::Place;
use serde_json::Value;
use std::borrow::Cow;

/// An event, as [`crate::format::Parser::read`] gives it.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// A JSON object's text, checked, never built into a tree.
    Json(Document<'a>),
    /// The object of a text or regex line (strings only, one level).
    Built(Value),
}

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

/// Where a found value's JSON text comes from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// Exactly as the event wrote it.
    Written(&'a str),
    /// A value of an event Relay built (its JSON is serde_json's).
    Built(&'a Value),
}

impl Source<'_> {
    /// The value's JSON text (strings with their quotes).
    pub fn json(&self) -> String {
        match self {
            Source::Written(text) => (*text).to_owned(),
            Source::Built(value) => value.to_string(),
        }
    }
}

/// The value a pointer names in an event (never null).
#[derive(Debug, Clone)]
pub struct Found<'a> {
    pub leaf: Leaf<'a>,
    pub source: Source<'a>,
}

impl Event<'_> {
    /// The value `pointer` names, unless it is missing or null.
    pub fn find(&self, pointer: &str) -> Option<Found<'_>> {
        self.find_at_place(pointer, Place::Unknown)
    }

    /// [`Event::find`] of `pointer`, whose place in the pointer set the
    /// event was read with is `place` ([`Place::Unknown`] if not known).
    pub fn find_at_place(&self, pointer: &str, place: Place) -> Option<Found<'_>> {
        match self {
            Event::Json(document) => {
                let written = match place {
                    Place::Unknown => document.raw(pointer)?,
                    known => document.raw_at_place(pointer, known)?,
                };
                Some(Found {
                    leaf: leaf(written)?,
                    source: Source::Written(written),
                })
            }
            Event::Built(event) => {
                let value = crate::pointer::lookup(event, pointer)?;
                Some(Found {
                    leaf: Leaf::of(value)?,
                    source: Source::Built(value),
                })
            }
        }
    }

    /// The whole value `pointer` names (objects and arrays too, for route
    /// conditions), unless it is missing or null.
    pub fn value(&self, pointer: &str) -> Option<Cow<'_, Value>> {
        let value = match self {
            // Text inside a checked document: it parses.
            Event::Json(document) => Cow::Owned(serde_json::from_str(document.raw(pointer)?).ok()?),
            Event::Built(event) => Cow::Borrowed(crate::pointer::lookup(event, pointer)?),
        };
        (!value.is_null()).then_some(value)
    }
}

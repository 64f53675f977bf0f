//! An event as the loader reads it ([`crate::format::Parser::read`]): a
//! JSON object's checked text ([`crate::document`]) or the fields of a text
//! or regex line ([`Fields`]), and the value a pointer names in it
//! ([`Found`]): only that value is read, a string borrowed when it can be.
//! No tree is built per event (only for a route condition on a whole
//! object or array).

use crate::document::Document;
use crate::leaf::leaf;
pub use crate::leaf::Leaf;
use crate::scan::Place;
use serde_json::Value;
use std::borrow::Cow;

/// An event, as [`crate::format::Parser::read`] gives it.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// A JSON object's text, checked, never built into a tree.
    Json(Document<'a>),
    /// The fields of a text or regex line.
    Fields(Fields<'a>),
}

/// The event object of a text or regex line, `{"name": "text", …}`, as its
/// fields: names sorted (as a JSON object of them is written), texts
/// borrowed from the line.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Fields<'a> {
    /// `fields`, names distinct.
    pub fn new(mut fields: Vec<(&'a str, &'a str)>) -> Fields<'a> {
        fields.sort_unstable_by_key(|(name, _)| *name);
        Fields { fields }
    }

    /// The field `pointer` names (`None` for the whole object, `Some(None)`
    /// where there is nothing: a field's text has no members).
    fn field(&self, pointer: &str) -> Option<Option<&'a str>> {
        if pointer.is_empty() {
            return None;
        }
        let Some(token) = pointer.strip_prefix('/').filter(|t| !t.contains('/')) else {
            return Some(None);
        };
        let name: Cow<'_, str> = if token.contains('~') {
            Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
        } else {
            Cow::Borrowed(token)
        };
        let found = self.fields.binary_search_by_key(&name.as_ref(), |(name, _)| *name);
        Some(found.ok().map(|at| self.fields[at].1))
    }

    /// The object as a tree.
    fn tree(&self) -> Value {
        let members = self
            .fields
            .iter()
            .map(|(name, text)| ((*name).to_owned(), Value::from(*text)));
        Value::Object(members.collect())
    }
}

/// Where a found value's JSON text comes from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// Exactly as the event wrote it.
    Written(&'a str),
    /// A field of a line (its JSON is serde_json's string).
    Field(&'a str),
    /// A line's whole event object (its JSON is serde_json's).
    Fields(&'a Fields<'a>),
}

impl Source<'_> {
    /// The value's JSON text (strings with their quotes).
    pub fn json(&self) -> String {
        match self {
            Source::Written(text) => (*text).to_owned(),
            Source::Field(text) => Value::from(*text).to_string(),
            Source::Fields(fields) => fields.tree().to_string(),
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
            Event::Fields(fields) => Some(match fields.field(pointer) {
                None => Found {
                    leaf: Leaf::Object,
                    source: Source::Fields(fields),
                },
                Some(text) => Found {
                    leaf: Leaf::Str(Cow::Borrowed(text?)),
                    source: Source::Field(text?),
                },
            }),
        }
    }

    /// The whole value `pointer` names (objects and arrays too, for route
    /// conditions), unless it is missing or null.
    pub fn value(&self, pointer: &str) -> Option<Value> {
        let value = match self {
            // Text inside a checked document: it parses.
            Event::Json(document) => serde_json::from_str(document.raw(pointer)?).ok()?,
            Event::Fields(fields) => match fields.field(pointer) {
                None => fields.tree(),
                Some(text) => Value::from(text?),
            },
        };
        (!value.is_null()).then_some(value)
    }
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;

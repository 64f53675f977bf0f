//! Property: reading a JSON event as checked text finds, at every pointer,
//! what `serde_json::Value::pointer` finds in the tree serde_json builds of
//! the same text (the loader's read before [`super`]), and refuses exactly
//! the texts serde_json refuses, in the same words.

use crate::event::{Event, Leaf, Source};
use crate::format::{Format, Parser};
use crate::scan::PointerSet;
use crate::values::json_text::raw_at;
use proptest::prelude::*;

/// Generated documents per property.
const CASES: u32 = 4096;

/// Keys that pointers name, with the characters pointers escape, keys
/// written with escapes, array-index look-alikes and the empty key.
const KEYS: &[&str] = &["a", "b", "id", "", "0", "1", "01", "a/b", "m~n", "~1", "é", "-"];

/// A key as written: plain, or with every character \u-escaped.
fn key_text(key: &str, escaped: bool) -> String {
    if escaped {
        let mut out = String::from("\"");
        for unit in key.encode_utf16() {
            out.push_str(&format!("\\u{unit:04x}"));
        }
        out.push('"');
        out
    } else {
        serde_json::to_string(key).unwrap()
    }
}

fn space() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "", " ", "\n", " \t\r\n "])
}

/// Scalars as they may be written.
const SCALARS: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-0",
    "-0.0",
    "1.50",
    "1e2",
    "2E-3",
    "12345678901234567890123",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "0.1",
    "\"\"",
    "\"x\"",
    "\"a\\\"b\"",
    "\"\\u00e9\"",
    "\"\\ud83d\\ude00\"",
    "\"tab\\there\"",
    "\"2026-12-07T09:28:04.004729Z\"",
    "\"6f1c0a52-3c5f-4f0e-9a4e-0d5b6c7d8e9f\"",
    "\" 42 \"",
];

/// Scalars serde_json refuses (out of range, a lone surrogate, a control
/// character, a leading zero).
const REFUSED: &[&str] = &["1e400", "\"\\ud800\"", "\"\u{1}\"", "01", "-", "1.", "tru"];

fn scalar_text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(SCALARS.to_vec()).prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |d| d.is_finite())
            .prop_map(|d| format!("{d:e}")),
        "[a-z /~\\\\\"]{0,6}".prop_map(|s| serde_json::to_string(&s).unwrap()),
    ]
}

/// A JSON text (objects may repeat a key) with random layout.
fn value_text() -> impl Strategy<Value = String> {
    scalar_text().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec((inner.clone(), space(), space()), 0..5).prop_map(|items| {
                let items: Vec<String> = items.into_iter().map(|(v, a, b)| format!("{a}{v}{b}")).collect();
                format!("[{}]", items.join(","))
            }),
            object_of(inner),
        ]
    })
}

/// An object of values from `inner`, keys from [`KEYS`] (repeated at times).
fn object_of(inner: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::sample::select(KEYS.to_vec()),
            any::<bool>(),
            inner,
            space(),
            space(),
        ),
        0..8,
    )
    .prop_map(|members| {
        let members: Vec<String> = members
            .into_iter()
            .map(|(k, escaped, v, a, b)| format!("{a}{}{b}:{a}{v}{b}", key_text(k, escaped)))
            .collect();
        format!("{{{}}}", members.join(","))
    })
}

/// A pointer of tokens from the keys and small indices, escaped as RFC 6901 says.
fn pointer() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        prop::sample::select(KEYS.to_vec()).prop_map(str::to_owned),
        (0usize..4).prop_map(|i| i.to_string()),
        Just("+1".to_owned()),
    ];
    prop::collection::vec(token, 0..4).prop_map(|tokens| {
        tokens
            .iter()
            .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
            .collect()
    })
}

/// What the loader read before: the tree, or serde_json's reason.
fn tree(text: &str) -> Result<serde_json::Value, String> {
    let value: serde_json::Value = serde_json::from_slice(text.as_bytes()).map_err(|e| format!("not JSON: {e}"))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err("not a JSON object".into())
    }
}

/// Reads `text` as the loader does, knowing the first half of `pointers`
/// in advance (the others are looked up afterwards), and compares.
fn same_reading(text: &str, pointers: &[String]) -> Result<(), TestCaseError> {
    let json = Parser::new(Format::Json, None, None).unwrap();
    let known = PointerSet::new(pointers[..pointers.len().div_ceil(2)].iter().map(String::as_str));
    if known.scan(text).is_some() {
        prop_assert!(tree(text).is_ok(), "the scan vouched for {}", text);
    }
    let (event, expected) = match (json.read(text.as_bytes(), &known), tree(text)) {
        (Ok(event), Ok(expected)) => (event, expected),
        (Err(error), Err(expected)) => {
            prop_assert_eq!(error, expected, "{}", text);
            return Ok(());
        }
        (read, expected) => {
            return Err(TestCaseError::fail(format!(
                "{text}: read {:?}, serde_json {expected:?}",
                read.map(|_| ())
            )))
        }
    };
    prop_assert!(matches!(event, Event::Json(_)), "a JSON event read as fields");
    for pointer in pointers {
        let wanted = expected.pointer(pointer).filter(|v| !v.is_null());
        let value = event.value(pointer);
        prop_assert_eq!(value.as_ref(), wanted, "{} at {:?}", text, pointer);
        let found = event.find(pointer);
        prop_assert_eq!(found.is_some(), wanted.is_some(), "{} at {:?}", text, pointer);
        let (Some(found), Some(wanted)) = (found, wanted) else {
            continue;
        };
        let Source::Written(written) = found.source else {
            return Err(TestCaseError::fail("a JSON event keeps its text"));
        };
        // The same text as the old read took (by pointer in the text).
        prop_assert_eq!(Some(written), raw_at(text, pointer), "{} at {:?}", text, pointer);
        // The text as written denotes the value serde_json built.
        let reread: serde_json::Value = serde_json::from_str(written).unwrap();
        prop_assert_eq!(&reread, wanted, "{} at {:?}", text, pointer);
        prop_assert_eq!(Some(found.leaf), Leaf::of(wanted), "{} at {:?}", text, pointer);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn pointers_find_what_the_tree_holds(
        text in prop_oneof![1 => value_text(), 3 => object_of(value_text())],
        around in (space(), space()),
        pointers in prop::collection::vec(pointer(), 1..8),
    ) {
        same_reading(&format!("{}{text}{}", around.0, around.1), &pointers)?;
    }

    #[test]
    fn broken_texts_are_refused_in_serde_jsons_words(
        text in value_text(),
        cut in any::<prop::sample::Index>(),
        insert in prop::sample::select([&["", "\"", "{", "}", ",", ":", "]", "x", "\\", "\u{0}", " 1"], REFUSED].concat()),
    ) {
        let at = cut.index(text.len() + 1);
        let at = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        same_reading(&format!("{}{insert}", &text[..at]), &["/a".to_owned()])?;
        same_reading(&format!("{}{insert}{}", &text[..at], &text[at..]), &["/a".to_owned()])?;
    }
}

#[test]
fn refusals_keep_serde_jsons_reason() {
    let deep = format!("{}{}", "{\"a\":".repeat(200), "}".repeat(200));
    for text in [
        "",
        " ",
        "[1]",
        "1",
        "\"x\"",
        "null",
        "{",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{\"a\":1} x",
        "{\"a\":1e400}",
        "{\"a\":\"\\ud800\"}",
        "{1:2}",
        "{\"a\":01}",
        &deep,
        "\u{feff}{}",
    ] {
        same_reading(text, &["/a".to_owned()]).unwrap();
    }
    // Bytes that are not UTF-8 inside a string.
    let json = Parser::new(Format::Json, None, None).unwrap();
    let error = json.read(b"{\"a\":\"\xff\"}", &PointerSet::new(["/a"])).unwrap_err();
    let expected = serde_json::from_slice::<serde_json::Value>(b"{\"a\":\"\xff\"}").unwrap_err();
    assert_eq!(error, format!("not JSON: {expected}"));
}

#[test]
fn the_scan_reads_plain_events_itself() {
    let pointers = PointerSet::new([
        "/uuid", "/a/b/1", "/a/b/1/c", "/a/~1k", "", "/missing", "/a/b/01", "nothing",
    ]);
    let text =
        r#" {"uuid": "x", "a": {"b": [1, {"c": -1.5e3}], "/k": [true], "b": [0, {"c": null}]}, "\u0075uid": 7} "#;
    let found = pointers.scan(text).expect("plain JSON");
    let at = |pointer| match pointers.node_of(pointer) {
        crate::scan::Place::Node(node) => found[node],
        _ => None,
    };
    assert_eq!(at("/uuid"), Some("7"));
    assert_eq!(at("/a/b/1"), Some(r#"{"c": null}"#));
    assert_eq!(at("/a/b/1/c"), Some("null"));
    assert_eq!(at("/a/~1k"), Some("[true]"));
    assert_eq!(at(""), Some(text.trim()));
    assert_eq!(at("/missing"), None);
    assert_eq!(at("/a/b/01"), None);
    for unsure in [
        r#"{"a": 1e400}"#,
        r#"{"a": "\ud83d\ude00"}"#,
        "[1]",
        r#"{"a": 01}"#,
        &format!("{{\"a\":{}", "[".repeat(101)),
    ] {
        assert_eq!(pointers.scan(unsure), None, "{unsure}");
    }
}

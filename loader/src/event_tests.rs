//! Property: a text or regex line's fields answer every pointer as the
//! event object serde_json would hold of them (the loader's read before
//! [`super::Fields`]) does: the same value, the same JSON text, the same
//! refusal.

use super::*;
use crate::format::{Format, Parser};
use crate::scan::PointerSet;
use proptest::prelude::*;

/// Generated lines per property.
const CASES: u32 = 2048;

/// Optional captures (one may not take part), and one named `line`.
const PATTERN: &str = r"^(?P<b>[a-z]*)(?:-(?P<a>[^ ]+))?(?: (?P<line>.*))?$";

fn pointer() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec!["line", "a", "b", "c", "", "0", "~", "/", "a/b"]);
    let escaped = prop::collection::vec(token, 0..3).prop_map(|tokens| {
        tokens
            .iter()
            .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
            .collect::<String>()
    });
    prop_oneof![4 => escaped, 1 => Just("line".to_owned())]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn fields_answer_as_the_event_object_did(
        line in prop_oneof![
            "[a-z]{0,4}(-[a-z~/\"\\\\\u{1}é]{1,5})?( [a-z ~/\"\\\\\t\u{1}é]{0,8})?\n?",
            "[ -~\t\u{0}é]{0,12}",
        ],
        regex in any::<bool>(),
        pointers in prop::collection::vec(pointer(), 1..6),
    ) {
        let parser = if regex {
            Parser::new(Format::Regex, Some(PATTERN), Some("p")).unwrap()
        } else {
            Parser::new(Format::Text, None, None).unwrap()
        };
        let set = PointerSet::new(pointers.iter().map(String::as_str));
        let (event, tree) = match (parser.read(line.as_bytes(), &set), parser.event(line.as_bytes())) {
            (Ok(event), Ok(tree)) => (event, tree),
            (Err(error), Err(expected)) => {
                prop_assert_eq!(error, expected);
                return Ok(());
            }
            (read, tree) => return Err(TestCaseError::fail(format!("{line:?}: {:?} vs {tree:?}", read.map(|_| ())))),
        };
        for pointer in &pointers {
            let wanted = crate::pointer::lookup(&tree, pointer).filter(|v| !v.is_null());
            let value = event.value(pointer);
            prop_assert_eq!(value.as_ref(), wanted, "{:?} at {:?}", line, pointer);
            let found = event.find(pointer);
            prop_assert_eq!(found.is_some(), wanted.is_some(), "{:?} at {:?}", line, pointer);
            if let (Some(found), Some(wanted)) = (found, wanted) {
                prop_assert_eq!(Some(found.leaf), Leaf::of(wanted));
                prop_assert_eq!(found.source.json(), wanted.to_string());
            }
        }
    }
}

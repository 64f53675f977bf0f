//! Property: every generated written value of every column type becomes,
//! through [`crate::transform::transform`], exactly the value it denotes,
//! or a reject whose reason says why; never another value. Many cases, no
//! warehouse (the warehouses' own round trips are in [`super::roundtrip`]).

use super::cases::{of_type, Case, Expect, TYPES};
use crate::config::LoaderConfig;
use crate::table::{ColumnSpec, ColumnType, TimeFormat};
use crate::transform::{transform, Loading, Transformed, Value, ZeroSign};
use crate::values::json_text::JsonText;
use bytes::Bytes;
use proptest::prelude::*;
use relay_client::records::ConsumerRecord;

/// Generated values per run of the transform property.
const CASES: u32 = 2048;

/// A loader of one table: an `id` and `v`, a column of `column_type` at `pointer`.
pub fn config(warehouse: &str, columns: &[(String, ColumnType, String)]) -> LoaderConfig {
    let mut config = LoaderConfig::new(vec!["values".into()], "values", warehouse, "v");
    config.dedup_key = "/id".into();
    config.columns = columns
        .iter()
        .map(|(name, column_type, pointer)| ColumnSpec {
            name: name.clone(),
            pointer: pointer.clone(),
            column_type: *column_type,
            nullable: true,
            time_format: TimeFormat::default(),
        })
        .collect();
    config
}

pub fn record(offset: i64, line: String) -> ConsumerRecord {
    ConsumerRecord {
        topic: "values".into(),
        partition: 0,
        offset,
        timestamp_ms: 0,
        key: None,
        value: Some(Bytes::from(line)),
        headers: Vec::new(),
        undecodable: None,
    }
}

/// Decimal digits and exponent of a number's text, `digits × 10^exponent`
/// with no leading or trailing zero, by shifting the point (written apart
/// from [`super::decimal`], which it checks).
fn decimal_value(text: &str) -> (bool, String, i64) {
    let negative = text.starts_with('-');
    let text = text.trim_start_matches(['-', '+']);
    let (mantissa, exponent) = text.split_once(['e', 'E']).unwrap_or((text, "0"));
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut point: i64 = exponent.parse::<i64>().unwrap() - fraction.len() as i64;
    let mut digits: String = format!("{whole}{fraction}").trim_start_matches('0').to_owned();
    while digits.ends_with('0') {
        digits.pop();
        point += 1;
    }
    if digits.is_empty() {
        point = 0;
    }
    (negative, digits, point)
}

/// Checks `value` (or the reject) against what `case` must become in a
/// warehouse that keeps or loses the sign of zero.
pub fn check(case: &Case, zero_sign: ZeroSign, outcome: Result<&Value, &str>) -> Result<(), TestCaseError> {
    let written = &case.written;
    let negative_zero = |text: &str| {
        text.trim_matches('"')
            .parse::<f64>()
            .is_ok_and(|d| d == 0.0 && d.is_sign_negative())
    };
    match (&case.expect, outcome) {
        (Expect::Double(_) | Expect::ExactOrPrecision, Err(error))
            if zero_sign == ZeroSign::Lost && negative_zero(written) =>
        {
            prop_assert!(error.contains("sign of zero"), "{written}: {error}");
        }
        (Expect::Reject(reason), Err(error)) => {
            prop_assert!(
                error.contains(reason),
                "{written}: reason {error:?} does not say {reason:?}"
            );
        }
        (Expect::ExactOrPrecision, Err(error)) => {
            prop_assert!(error.contains("precision"), "{written}: {error}");
            let nearest: f64 = written.parse().unwrap();
            prop_assert_ne!(decimal_value(written), decimal_value(&format!("{nearest:e}")));
        }
        (Expect::ExactOrPrecision, Ok(Value::Double(d))) => {
            prop_assert_eq!(
                decimal_value(written),
                decimal_value(&format!("{d:e}")),
                "{} altered",
                written
            );
        }
        (expect, Ok(value)) => {
            let wanted = match expect {
                Expect::Text(s) => Value::Text(s.clone()),
                Expect::BigInt(n) => Value::BigInt(*n),
                Expect::Double(bits) => Value::Double(f64::from_bits(*bits)),
                Expect::Bool(b) => Value::Bool(*b),
                Expect::Timestamp(micros) => Value::Timestamp(*micros),
                Expect::Uuid(id) => Value::Uuid(*id),
                Expect::Json(text) => Value::Json(JsonText(text.clone())),
                Expect::Null => Value::Null,
                other => {
                    return Err(TestCaseError::fail(format!(
                        "{written}: expected {other:?}, loaded {value:?}"
                    )))
                }
            };
            match (&wanted, value) {
                (Value::Double(a), Value::Double(b)) => prop_assert_eq!(a.to_bits(), b.to_bits(), "{}", written),
                _ => prop_assert_eq!(&wanted, value, "{}", written),
            }
        }
        (expect, Err(error)) => {
            return Err(TestCaseError::fail(format!(
                "{written}: expected {expect:?}, rejected: {error}"
            )));
        }
    }
    Ok(())
}

/// Where the value sits in the event, and how it is laid out around it.
fn layout() -> impl Strategy<Value = (String, &'static str, &'static str)> {
    prop_oneof![
        Just(("/v".to_owned(), "{\"id\":\"x\",\"v\":", "}")),
        Just(("/v".to_owned(), "{ \"v\" :\n", " , \"id\" : 1, \"w\": [\"v\"] }")),
        Just(("/a/v/1".to_owned(), "{\"a\":{\"v\":[{\"v\":0}, ", "]},\"id\":\"x\"}")),
        Just(("/~1v~0".to_owned(), "{\"/v~\":", "}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn written_values_become_equal_cells_or_rejects_with_a_reason(
        case in proptest::sample::select(TYPES.to_vec()).prop_flat_map(|t| of_type(t, false)),
        (pointer, before, after) in layout(),
        warehouse in proptest::sample::select(vec!["sqlite://unused", "postgres://unused"]),
    ) {
        let config = config(warehouse, &[("v".into(), case.column_type, pointer)]);
        let loading = Loading::new(&config).unwrap();
        let line = format!("{before}{}{after}", case.written);
        match transform(&loading, &record(0, line).view()) {
            Transformed::Row(row) => check(&case, loading.zero_sign, Ok(&row.values[0]))?,
            Transformed::Reject(reject) => check(&case, loading.zero_sign, Err(&reject.error))?,
            Transformed::Skipped(why) => return Err(TestCaseError::fail(format!("skipped: {why:?}"))),
        }
    }

    #[test]
    fn numeric_ids_stay_distinct_keys_as_written(id in "-?[1-9][0-9]{15,30}(\\.[0-9]{1,5})?") {
        let config = config("sqlite://unused", &[]);
        let loading = Loading::new(&config).unwrap();
        match transform(&loading, &record(0, format!("{{\"id\": {id} }}")).view()) {
            Transformed::Row(row) => prop_assert_eq!(row.dedup_key, id),
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        }
    }
}

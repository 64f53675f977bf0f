//! Generated written values of every column type, each with what must come
//! out of it: the exact value a warehouse must hold, or the reason it must
//! be rejected with. Shared by the property tests of the transform
//! ([`super::properties`]) and of both warehouses ([`super::roundtrip`]).
//! The expectations are computed here independently of the loader's own
//! conversions (a day count by years, the float parser of `std`).

use crate::table::ColumnType;
use proptest::prelude::*;

/// What a written value must become.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    Text(String),
    BigInt(i64),
    /// The double's IEEE 754 bits (so -0.0 is not 0.0).
    Double(u64),
    Bool(bool),
    /// Microseconds since the epoch.
    Timestamp(i64),
    Uuid(uuid::Uuid),
    /// The written JSON text itself.
    Json(String),
    /// SQL NULL: JSON `null` in a nullable column.
    Null,
    /// Rejected, the reason holding this text.
    Reject(&'static str),
    /// A double column's long decimal: a double if one holds it exactly
    /// (checked by the decimal value read back), else rejected for precision.
    ExactOrPrecision,
}

/// One value as written in an event, and what must become of it.
#[derive(Debug, Clone)]
pub struct Case {
    pub column_type: ColumnType,
    /// JSON text of the value.
    pub written: String,
    pub expect: Expect,
}

pub const TYPES: [ColumnType; 7] = [
    ColumnType::Text,
    ColumnType::Bigint,
    ColumnType::Double,
    ColumnType::Boolean,
    ColumnType::Timestamptz,
    ColumnType::Uuid,
    ColumnType::Json,
];

/// One mebibyte, the long strings' length.
pub const LONG_TEXT_BYTES: usize = 1 << 20;

fn case(column_type: ColumnType, written: impl Into<String>, expect: Expect) -> Case {
    Case {
        column_type,
        written: written.into(),
        expect,
    }
}

/// Values of `column_type`; `long` lets a few strings be 1 MiB.
pub fn of_type(column_type: ColumnType, long: bool) -> BoxedStrategy<Case> {
    match column_type {
        ColumnType::Text => text(long),
        ColumnType::Bigint => bigint(),
        ColumnType::Double => double(),
        ColumnType::Boolean => any::<bool>()
            .prop_map(|b| case(ColumnType::Boolean, b.to_string(), Expect::Bool(b)))
            .boxed(),
        ColumnType::Timestamptz => timestamp(),
        ColumnType::Uuid => uuid(),
        ColumnType::Json => json()
            .prop_map(|j| {
                let expect = if j == "null" {
                    Expect::Null
                } else {
                    Expect::Json(j.clone())
                };
                case(ColumnType::Json, j, expect)
            })
            .boxed(),
    }
}

/// A string as JSON, every non-ASCII character written as `\u` escapes
/// (astral ones as surrogate pairs) when `escaped`.
pub fn json_string(text: &str, escaped: bool) -> String {
    let plain = serde_json::to_string(text).expect("a string serialises");
    if !escaped {
        return plain;
    }
    let mut out = String::with_capacity(plain.len() * 2);
    for c in plain.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

fn text(long: bool) -> BoxedStrategy<Case> {
    let any_text = (any::<String>(), any::<bool>()).prop_map(|(s, escaped)| {
        let expect = if s.contains('\0') {
            Expect::Reject("NUL")
        } else {
            Expect::Text(s.clone())
        };
        case(ColumnType::Text, json_string(&s, escaped), expect)
    });
    let astral =
        "[\u{10000}-\u{10FFFF}a-z]{1,8}".prop_map(|s| case(ColumnType::Text, json_string(&s, false), Expect::Text(s)));
    // Non-strings load as their JSON text, as written.
    let number = "-?(0|[1-9][0-9]{0,25})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,2})?"
        .prop_map(|n| case(ColumnType::Text, n.clone(), Expect::Text(n)));
    let long_text = (0u32..0x800).prop_map(|c| {
        let c = char::from_u32(0x4e00 + c).unwrap_or('x');
        let s: String = std::iter::repeat_n(c, LONG_TEXT_BYTES / c.len_utf8()).collect();
        case(ColumnType::Text, json_string(&s, false), Expect::Text(s))
    });
    if long {
        prop_oneof![8 => any_text, 2 => astral, 2 => number, 1 => long_text].boxed()
    } else {
        prop_oneof![8 => any_text, 2 => astral, 2 => number].boxed()
    }
}

fn bigint() -> BoxedStrategy<Case> {
    let edges = prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just((1i64 << 53) + 1),
        Just(-(1i64 << 53) - 1),
        Just(0)
    ];
    let integer = prop_oneof![any::<i64>(), edges];
    prop_oneof![
        4 => integer.clone().prop_map(|n| case(ColumnType::Bigint, n.to_string(), Expect::BigInt(n))),
        1 => integer.prop_map(|n| case(ColumnType::Bigint, format!("\"{n}\""), Expect::BigInt(n))),
        1 => (i64::MAX as u64 + 1..=u64::MAX)
            .prop_map(|n| case(ColumnType::Bigint, n.to_string(), Expect::Reject("64-bit integer"))),
        1 => "[1-9][0-9]{20,30}".prop_map(|n| case(ColumnType::Bigint, n, Expect::Reject("64-bit integer"))),
        1 => any::<i32>().prop_map(|n| case(ColumnType::Bigint, format!("{n}.0"), Expect::Reject("64-bit integer"))),
    ]
    .boxed()
}

fn double() -> BoxedStrategy<Case> {
    use proptest::num::f64 as f;
    let finite = f::POSITIVE | f::NEGATIVE | f::NORMAL | f::SUBNORMAL | f::ZERO;
    let edges = prop_oneof![
        Just(-0.0),
        Just(1e-7),
        Just(0.1),
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE),
        Just(5e-324),
        Just(9_007_199_254_740_992.0)
    ];
    let double = prop_oneof![finite, edges];
    let fixed = |d: f64| format!("{d:?}");
    let exponent = |d: f64| format!("{d:e}");
    let text = |d: f64| format!("\"{d}\"");
    prop_oneof![
        4 => double.clone().prop_map(move |d| case(ColumnType::Double, fixed(d), Expect::Double(d.to_bits()))),
        2 => double.clone().prop_map(move |d| case(ColumnType::Double, exponent(d), Expect::Double(d.to_bits()))),
        1 => double.prop_map(move |d| case(ColumnType::Double, text(d), Expect::Double(d.to_bits()))),
        1 => Just(case(ColumnType::Double, "9007199254740993", Expect::Reject("precision"))),
        1 => prop_oneof![Just("\"NaN\""), Just("\"inf\""), Just("\"-Infinity\""), Just("\"1,5\"")]
            .prop_map(|s| case(ColumnType::Double, s, Expect::Reject("not a number"))),
        2 => "-?(0|[1-9][0-9]{0,23})\\.[0-9]{1,24}(e-?[0-9]{1,2})?"
            .prop_map(|s| case(ColumnType::Double, s, Expect::ExactOrPrecision)),
    ]
    .boxed()
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn month_days(year: i64, month: i64) -> i64 {
    [
        31,
        if is_leap_year(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ][month as usize - 1]
}

/// Days from 1970-01-01, counted year by year and month by month.
fn days_since_epoch(year: i64, month: i64, day: i64) -> i64 {
    let year_days = |y| if is_leap_year(y) { 366 } else { 365 };
    let mut days: i64 = (1970..year).map(year_days).sum::<i64>() - (year..1970).map(year_days).sum::<i64>();
    days += (1..month).map(|m| month_days(year, m)).sum::<i64>();
    days + day - 1
}

/// Timestamps between years 1 and 9999.
const MICROS_MIN: i64 = -62_135_596_800_000_000;
const MICROS_MAX: i64 = 253_402_300_799_999_999;

#[derive(Debug, Clone)]
struct Clock {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    fraction: String,
    /// Minutes east of UTC; `None`: `Z`.
    offset: Option<i64>,
}

impl Clock {
    fn written(&self, zone: &str) -> String {
        let fraction = if self.fraction.is_empty() {
            String::new()
        } else {
            format!(".{}", self.fraction)
        };
        format!(
            "\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{fraction}{zone}\"",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    fn zone(&self) -> String {
        match self.offset {
            None => "Z".into(),
            Some(minutes) => {
                let sign = if minutes < 0 { '-' } else { '+' };
                format!("{sign}{:02}:{:02}", minutes.abs() / 60, minutes.abs() % 60)
            }
        }
    }

    fn micros(&self) -> i64 {
        let digits: String = self.fraction.chars().chain(std::iter::repeat('0')).take(6).collect();
        let seconds = days_since_epoch(self.year, self.month, self.day) * 86_400
            + self.hour * 3600
            + self.minute * 60
            + self.second
            - self.offset.unwrap_or(0) * 60;
        seconds * 1_000_000 + digits.parse::<i64>().unwrap()
    }
}

fn clock() -> impl Strategy<Value = Clock> {
    let date =
        (1i64..=9999, 1i64..=12).prop_flat_map(|(year, month)| (Just(year), Just(month), 1..=month_days(year, month)));
    let leap_day = (0i64..2500).prop_map(|n| {
        let year = 4 * n + 4;
        (if is_leap_year(year) { year } else { 2000 }, 2, 29)
    });
    let offset = prop_oneof![
        Just(None),
        (-23 * 60 - 59i64..=23 * 60 + 59).prop_map(Some),
        Just(Some(330))
    ];
    (
        prop_oneof![4 => date, 1 => leap_day],
        (0i64..24, 0i64..60, 0i64..60),
        "([0-9]{1,12})?",
        offset,
    )
        .prop_map(|((year, month, day), (hour, minute, second), fraction, offset)| Clock {
            year,
            month,
            day,
            hour,
            minute,
            second,
            fraction,
            offset,
        })
}

fn timestamp() -> BoxedStrategy<Case> {
    let valid = clock().prop_map(|clock| {
        let micros = clock.micros();
        let expect = if (MICROS_MIN..=MICROS_MAX).contains(&micros) {
            Expect::Timestamp(micros)
        } else {
            Expect::Reject("between years 1 and 9999")
        };
        case(ColumnType::Timestamptz, clock.written(&clock.zone()), expect)
    });
    let invalid = (clock(), 0..6).prop_map(|(mut clock, fault)| {
        let reason = match fault {
            0 => {
                clock.day = month_days(clock.year, clock.month) + 1;
                "is not in"
            }
            1 => {
                clock.hour = 24;
                "hour 24"
            }
            2 => {
                clock.second = 60;
                "leap second"
            }
            3 => {
                clock.minute = 60;
                "minute 60"
            }
            4 => {
                return case(
                    ColumnType::Timestamptz,
                    clock.written(""),
                    Expect::Reject("no UTC offset"),
                )
            }
            _ => {
                return case(
                    ColumnType::Timestamptz,
                    clock.written("+0530"),
                    Expect::Reject("not Z or"),
                )
            }
        };
        case(
            ColumnType::Timestamptz,
            clock.written(&clock.zone()),
            Expect::Reject(reason),
        )
    });
    let millis = (MICROS_MIN / 1000..=MICROS_MAX / 1000)
        .prop_map(|ms| case(ColumnType::Timestamptz, ms.to_string(), Expect::Timestamp(ms * 1000)));
    prop_oneof![6 => valid, 3 => invalid, 1 => millis].boxed()
}

fn uuid() -> BoxedStrategy<Case> {
    let forms = (any::<u128>(), 0..5).prop_map(|(n, form)| {
        let id = uuid::Uuid::from_u128(n);
        let written = match form {
            0 => id.hyphenated().to_string(),
            1 => id.hyphenated().to_string().to_uppercase(),
            2 => id.simple().to_string(),
            3 => id.braced().to_string(),
            _ => id.urn().to_string(),
        };
        case(ColumnType::Uuid, format!("\"{written}\""), Expect::Uuid(id))
    });
    let not_uuid = "[a-z0-9-]{0,40}".prop_filter_map("not a UUID", |s| {
        uuid::Uuid::parse_str(&s)
            .is_err()
            .then(|| case(ColumnType::Uuid, format!("\"{s}\""), Expect::Reject("not a UUID")))
    });
    prop_oneof![4 => forms, 1 => not_uuid].boxed()
}

/// Space JSON allows between tokens.
fn space() -> impl Strategy<Value = &'static str> {
    prop_oneof![4 => Just(""), 1 => Just(" "), 1 => Just("\n\t ")]
}

/// JSON texts with numbers no double holds, repeated layouts, escapes,
/// unicode, `\u0000` and nesting.
pub fn json() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        "-?(0|[1-9][0-9]{0,30})",
        "-?(0|[1-9][0-9]{0,5})\\.[0-9]{1,25}",
        "-?[1-9](\\.[0-9]{1,17})?[eE][+-]?[0-9]{1,2}",
        Just("-0".to_owned()),
        Just("-0.0".to_owned()),
        Just("9007199254740993".to_owned()),
        Just("1.50".to_owned()),
        Just("1e-7".to_owned()),
    ];
    let string = (any::<String>(), any::<bool>()).prop_map(|(s, escaped)| json_string(&s, escaped));
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        number,
        string.clone(),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        let element = (space(), inner.clone(), space()).prop_map(|(a, v, b)| format!("{a}{v}{b}"));
        let member = (string.clone(), space(), inner, space()).prop_map(|(k, a, v, b)| format!("{k}{a}:{b}{v}"));
        prop_oneof![
            prop::collection::vec(element, 0..6).prop_map(|items| format!("[{}]", items.join(","))),
            prop::collection::vec(member, 0..6).prop_map(|members| format!("{{{}}}", members.join(","))),
        ]
    })
}

//! Generated values for `tests/values_roundtrip.rs`: lines of random values
//! of every column type, each with what the warehouse must hold, computed
//! apart from the loader (timestamps written from a random instant with a
//! random offset and nanosecond digits, doubles from random bits, strings of
//! code points from every plane, json with numbers no double holds). One
//! seed makes one set: `RELAY_VALUES_SEED` replays a failure.

use relay_client::time::format_rfc3339_micros;

/// Timestamps between years 1 and 9999, as both warehouses hold them.
const MICROS_MIN: i64 = -62_135_596_800_000_000;
const MICROS_MAX: i64 = 253_402_300_799_999_999;
/// The largest UTC offset RFC 3339 writes, in minutes (23:59).
const OFFSET_MINUTES_MAX: i64 = 23 * 60 + 59;

/// xorshift64*: the same values for the same seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn between(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low + 1) as u64) as i64
    }
}

/// The seed of this run: `RELAY_VALUES_SEED`, or a fixed one.
pub fn seed() -> u64 {
    std::env::var("RELAY_VALUES_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x05ee_d0f7_a1e5_u64)
}

/// One generated line's field: (column, the value as written, what must
/// be stored as `stored` prints it, or the text of the reject reason).
pub type Generated = (&'static str, String, Result<String, &'static str>);

pub fn value(rng: &mut Rng, postgres: bool) -> Generated {
    match rng.below(6) {
        0 => timestamp(rng),
        1 => {
            let n = rng.next() as i64;
            ("n", n.to_string(), Ok(n.to_string()))
        }
        2 => double(rng, postgres),
        3 => {
            let text = string(rng);
            let expected = if text.contains('\0') {
                Err("NUL")
            } else {
                Ok(text.clone())
            };
            ("s", written_string(rng, &text), expected)
        }
        4 => {
            let json = json(rng, 3);
            // JSON null is SQL NULL.
            let expected = match json.as_str() {
                "null" => Ok("NULL".to_owned()),
                _ if postgres && json.contains("\\u0000") => Err("22P05"),
                _ => Ok(json.clone()),
            };
            ("j", json, expected)
        }
        _ => {
            let id = format!("{:032x}", u128::from(rng.next()) << 64 | u128::from(rng.next()));
            let hyphenated = format!(
                "{}-{}-{}-{}-{}",
                &id[..8],
                &id[8..12],
                &id[12..16],
                &id[16..20],
                &id[20..]
            );
            let written = if rng.below(2) == 0 {
                hyphenated.to_uppercase()
            } else {
                hyphenated.clone()
            };
            ("u", format!("\"{written}\""), Ok(hyphenated))
        }
    }
}

/// An instant written in local time with a random offset, sometimes with
/// nanoseconds (truncated to microseconds when stored).
fn timestamp(rng: &mut Rng) -> Generated {
    let micros = rng.between(MICROS_MIN, MICROS_MAX);
    let offset = rng.between(-OFFSET_MINUTES_MAX, OFFSET_MINUTES_MAX);
    let local = micros + offset * 60_000_000;
    let (local, offset) = if (MICROS_MIN..=MICROS_MAX).contains(&local) {
        (local, offset)
    } else {
        (micros, 0)
    };
    let zone = if offset == 0 && rng.below(2) == 0 {
        "Z".to_owned()
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        format!("{sign}{:02}:{:02}", offset.abs() / 60, offset.abs() % 60)
    };
    let nanos = if rng.below(3) == 0 {
        format!("{:03}", rng.below(1000))
    } else {
        String::new()
    };
    let written = format_rfc3339_micros(local).replace('Z', &format!("{nanos}{zone}"));
    ("ts", format!("\"{written}\""), Ok(format_rfc3339_micros(micros)))
}

fn double(rng: &mut Rng, postgres: bool) -> Generated {
    let mut value = f64::from_bits(rng.next());
    while !value.is_finite() {
        value = f64::from_bits(rng.next());
    }
    if rng.below(10) == 0 {
        value = -0.0;
    }
    let expected = if value == 0.0 && value.is_sign_negative() && !postgres {
        Err("sign of zero")
    } else {
        Ok(format!("{:016x}", value.to_bits()))
    };
    let written = if rng.below(2) == 0 {
        format!("{value:?}")
    } else {
        format!("{value:e}")
    };
    ("x", written, expected)
}

/// Code points from every plane: ASCII, controls, Latin, line separators,
/// CJK, private use, astral, and now and then NUL.
fn string(rng: &mut Rng) -> String {
    const RANGES: [(u32, u32); 9] = [
        (0x20, 0x7e),
        (0x01, 0x1f),
        (0x80, 0x24f),
        (0x2028, 0x2029),
        (0xfeff, 0xfeff),
        (0x4e00, 0x9fff),
        (0xe000, 0xf8ff),
        (0x1_0000, 0x10_ffff),
        (0x00, 0x00),
    ];
    let length = rng.below(40);
    (0..length)
        .map(|_| {
            // NUL is rare: one string in a few dozen.
            let ranges = if rng.below(10) == 0 { 9 } else { 8 };
            let (low, high) = RANGES[rng.below(ranges) as usize];
            let code = low + rng.below(u64::from(high - low + 1)) as u32;
            char::from_u32(code).unwrap_or('?')
        })
        .collect()
}

/// A JSON string for `text`: as serde_json writes it, or every non-ASCII
/// character as `\u` escapes (astral ones as surrogate pairs).
fn written_string(rng: &mut Rng, text: &str) -> String {
    let plain = serde_json::to_string(text).unwrap();
    if rng.below(2) == 0 {
        return plain;
    }
    plain
        .chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                let mut units = [0u16; 2];
                c.encode_utf16(&mut units)
                    .iter()
                    .map(|u| format!("\\u{u:04x}"))
                    .collect()
            }
        })
        .collect()
}

fn digits(rng: &mut Rng, count: u64) -> String {
    (0..count).map(|_| char::from(b'0' + rng.below(10) as u8)).collect()
}

/// JSON text with big integers, decimals with trailing zeros, exponents,
/// strings of every plane, nesting and uneven spacing.
fn json(rng: &mut Rng, depth: u32) -> String {
    let space = |rng: &mut Rng| [" ", "", "\t", ""][rng.below(4) as usize];
    match rng.below(if depth == 0 { 6 } else { 8 }) {
        0 => ["null", "true", "false"][rng.below(3) as usize].to_owned(),
        1 => {
            let (sign, first, count) = (["", "-"][rng.below(2) as usize], 1 + rng.below(9), rng.below(30));
            format!("{sign}{first}{}", digits(rng, count))
        }
        2 => {
            let (whole, count) = (rng.below(1000), 1 + rng.below(20));
            format!("{whole}.{}0", digits(rng, count))
        }
        3 => format!(
            "{}e{}{}",
            1 + rng.below(9),
            ["", "-", "+"][rng.below(3) as usize],
            rng.below(300)
        ),
        4 | 5 => {
            let text = string(rng);
            written_string(rng, &text)
        }
        6 => {
            let items: Vec<String> = (0..rng.below(5)).map(|_| json(rng, depth - 1)).collect();
            format!("[{}]", items.join(&format!(",{}", space(rng))))
        }
        _ => {
            let members: Vec<String> = (0..rng.below(5))
                .map(|_| {
                    let key = string(rng);
                    let key = written_string(rng, &key);
                    format!("{key}{}:{}{}", space(rng), space(rng), json(rng, depth - 1))
                })
                .collect();
            format!("{{{}}}", members.join(","))
        }
    }
}

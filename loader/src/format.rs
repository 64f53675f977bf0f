//! What a record's value is, turned into one JSON object that routes and
//! columns read by pointer: `json` (the default: the value is a JSON
//! object), `text` (any line: `{"line": "…"}`), or `regex` (the named
//! captures of a pattern: `{"remote_addr": "…", "status": "200", …}`; a
//! capture that did not take part is absent). A line that does not parse
//! is rejected with the reason and, for a pattern, the pattern's name.
//! The loader reads a JSON event as its checked text ([`Parser::read`],
//! [`crate::document`]), never as a tree.

use crate::document::check;
use crate::event::{Event, Fields};
use crate::scan::PointerSet;
use crate::values::timestamp::{days_from_civil, days_in_month};
use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The key of a `text` event's line.
pub const TEXT_LINE_KEY: &str = "line";
/// Longest pattern accepted (bounds the compiled program's size too).
pub const PATTERN_BYTES_MAX: usize = 4096;
/// Compiled size limit of a pattern, in bytes (the regex crate's limit).
const PATTERN_COMPILED_BYTES_MAX: usize = 1 << 20;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Json,
    Text,
    Regex,
}

/// A record's value into an event object.
#[derive(Debug, Clone)]
pub struct Parser {
    format: Format,
    pattern: Option<(Regex, String)>,
}

impl Parser {
    /// `pattern` (and its name, for rejects) is required with `Format::Regex`
    /// and refused otherwise; the error says why.
    pub fn new(format: Format, pattern: Option<&str>, name: Option<&str>) -> Result<Parser, String> {
        let pattern = match (format, pattern) {
            (Format::Regex, Some(pattern)) => {
                if pattern.len() > PATTERN_BYTES_MAX {
                    return Err(format!("regex: longer than {PATTERN_BYTES_MAX} bytes"));
                }
                let regex = regex::RegexBuilder::new(pattern)
                    .size_limit(PATTERN_COMPILED_BYTES_MAX)
                    .build()
                    .map_err(|e| format!("regex: {e}"))?;
                if regex.capture_names().flatten().next().is_none() {
                    return Err("regex: the pattern has no named capture (?P<name>…) to fill columns from".into());
                }
                Some((regex, name.unwrap_or("regex").to_owned()))
            }
            (Format::Regex, None) => return Err("format = \"regex\" needs regex = \"…\" with named captures".into()),
            (_, Some(_)) => return Err("regex is only used with format = \"regex\"".into()),
            (_, None) => None,
        };
        Ok(Parser { format, pattern })
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The event of `bytes`, or why there is none (the same reason as
    /// [`Parser::event`] gives): JSON stays text.
    /// `pointers` are the ones the loader reads.
    pub fn read<'a>(&'a self, bytes: &'a [u8], pointers: &'a PointerSet) -> Result<Event<'a>, String> {
        match self.format {
            Format::Json => check(bytes, pointers).map(Event::Json),
            Format::Text => Ok(Event::Fields(Fields::new(vec![(TEXT_LINE_KEY, text(bytes)?)]))),
            Format::Regex => {
                let (regex, name) = self.pattern.as_ref().expect("a regex parser has its pattern");
                let line = text(bytes)?;
                let captures = regex
                    .captures(line)
                    .ok_or_else(|| format!("does not match pattern {name}"))?;
                let fields = regex
                    .capture_names()
                    .flatten()
                    .filter_map(|field| Some((field, captures.name(field)?.as_str())))
                    .collect();
                Ok(Event::Fields(Fields::new(fields)))
            }
        }
    }

    /// The event object of `bytes` as a tree, or why there is none (for
    /// tests and tools: the loader reads with [`Parser::read`]).
    pub fn event(&self, bytes: &[u8]) -> Result<Value, String> {
        match self.format {
            Format::Json => {
                let event: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
                if event.is_object() {
                    Ok(event)
                } else {
                    Err("not a JSON object".into())
                }
            }
            Format::Text => {
                let line = text(bytes)?;
                Ok(Value::Object(Map::from_iter([(
                    TEXT_LINE_KEY.to_owned(),
                    Value::String(line.to_owned()),
                )])))
            }
            Format::Regex => {
                let (regex, name) = self.pattern.as_ref().expect("a regex parser has its pattern");
                let line = text(bytes)?;
                let captures = regex
                    .captures(line)
                    .ok_or_else(|| format!("does not match pattern {name}"))?;
                let mut event = Map::new();
                for field in regex.capture_names().flatten() {
                    if let Some(found) = captures.name(field) {
                        event.insert(field.to_owned(), Value::String(found.as_str().to_owned()));
                    }
                }
                Ok(Value::Object(event))
            }
        }
    }
}

/// A line as text: UTF-8, without the NUL a text column cannot hold.
fn text(bytes: &[u8]) -> Result<&str, String> {
    let line = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))?;
    if line.contains('\0') {
        return Err("text contains a NUL character".into());
    }
    Ok(line.strip_suffix('\n').unwrap_or(line))
}

/// Microseconds since the epoch of a Common Log Format time, as nginx and
/// Apache write it: `10/Oct/2000:13:55:36 -0700`.
pub fn parse_clf_time(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not a Common Log Format time (10/Oct/2000:13:55:36 -0700)");
    let (stamp, zone) = text.trim().split_once(' ').ok_or_else(bad)?;
    let mut parts = stamp.splitn(4, [':', '/']);
    let mut next = || parts.next().ok_or_else(bad);
    let day: i64 = next()?.parse().map_err(|_| bad())?;
    let month = next()?;
    let year: i64 = next()?.parse().map_err(|_| bad())?;
    let clock = next()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month).ok_or_else(bad)? as i64 + 1;
    let fields: Vec<i64> = clock
        .split(':')
        .map(|f| f.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [hour, minute, second] = fields[..] else {
        return Err(bad());
    };
    if !(1..=9999).contains(&year)
        || !(0..24).contains(&hour)
        || !(0..60).contains(&minute)
        || !(0..60).contains(&second)
    {
        return Err(bad());
    }
    if !(1..=days_in_month(year, month)).contains(&day) {
        return Err(format!("{text:?}: day {day} is not in {year:04}-{month:02}"));
    }
    let sign = match zone.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(bad()),
    };
    let zone_digits: i64 = zone[1..].parse().map_err(|_| bad())?;
    if zone.len() != 5 || zone_digits < 0 || zone_digits % 100 > 59 {
        return Err(bad());
    }
    let offset_seconds = sign * ((zone_digits / 100) * 3600 + (zone_digits % 100) * 60);
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Ok(seconds * 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NGINX: &str = r#"^(?P<remote_addr>\S+) \S+ (?P<remote_user>\S+) \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+|-) "(?P<referer>[^"]*)" "(?P<user_agent>[^"]*)"$"#;

    #[test]
    fn nginx_combined_lines_become_fields() {
        let parser = Parser::new(Format::Regex, Some(NGINX), Some("nginx_combined")).unwrap();
        let line =
            br#"203.0.113.9 - alice [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326 "http://x/" "curl/8""#;
        let event = parser.event(line).unwrap();
        assert_eq!(event["remote_addr"], "203.0.113.9");
        assert_eq!(event["status"], "200");
        assert_eq!(event["request"], "GET /a.gif HTTP/1.0");
        let refused = parser.event(b"garbage").unwrap_err();
        assert_eq!(refused, "does not match pattern nginx_combined");
    }

    #[test]
    fn text_lines_and_json_objects() {
        let text = Parser::new(Format::Text, None, None).unwrap();
        assert_eq!(text.event(b"plain words").unwrap()["line"], "plain words");
        assert!(text.event(b"\xff").unwrap_err().contains("UTF-8"));
        let json = Parser::new(Format::Json, None, None).unwrap();
        assert!(json.event(b"[1]").unwrap_err().contains("not a JSON object"));
        assert!(Parser::new(Format::Regex, None, None).is_err());
        assert!(Parser::new(Format::Regex, Some("(\\d+)"), None)
            .unwrap_err()
            .contains("no named capture"));
        assert!(Parser::new(Format::Json, Some("(?P<a>.)"), None).is_err());
    }

    #[test]
    fn clf_times_are_utc_microseconds() {
        // 2000-10-10 20:55:36 UTC
        assert_eq!(
            parse_clf_time("10/Oct/2000:13:55:36 -0700").unwrap(),
            971_211_336_000_000
        );
        assert_eq!(parse_clf_time("01/Jan/1970:00:00:00 +0000").unwrap(), 0);
        assert_eq!(
            parse_clf_time("29/Feb/2024:23:59:59 +0100").unwrap(),
            1_709_247_599_000_000
        );
        for bad in [
            "30/Feb/2024:00:00:00 +0000",
            "29/Feb/2023:00:00:00 +0000",
            "31/Dec/2016:23:59:60 +0000",
            "10/Foo/2000:13:55:36 -0700",
            "10/Oct/2000:13:55 -0700",
            "10/Oct/2000:13:55:36",
            "x",
        ] {
            assert!(parse_clf_time(bad).is_err(), "{bad}");
        }
    }
}

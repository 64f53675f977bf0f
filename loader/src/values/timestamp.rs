//! RFC 3339 date-times into microseconds since the Unix epoch, exactly:
//! `2026-12-07T09:28:04.004729Z`, `2026-12-07T14:58:04.004729+05:30`.
//!
//! Grammar (RFC 3339 section 5.6, with its note's `t`/`z` and space
//! separator): `YYYY-MM-DD(T|t| )hh:mm:ss[.fraction](Z|z|±hh:mm)`. Every
//! field has its exact digit count. A fraction may have any number of
//! digits: digits past the sixth (nanoseconds and finer) are truncated,
//! because neither warehouse holds a finer time than a microsecond
//! (PostgreSQL `timestamptz`, Relay's SQLite text); truncation never moves
//! a time into a later second, day or year. Rejected with the reason,
//! never guessed at: a day the month does not have (Feb 30, Feb 29 outside
//! leap years), hour 24, a leap second (`:60`: no warehouse type holds it),
//! a missing offset (a local time names no instant).

/// Digits of a fraction that a microsecond holds.
const FRACTION_DIGITS_KEPT: usize = 6;

/// Microseconds since the epoch of an RFC 3339 date-time, or why it is not one.
pub fn parse_rfc3339_micros(text: &str) -> Result<i64, String> {
    let bad = |why: &str| format!("{text:?} is not an RFC 3339 time like 2026-12-07T09:28:04.004729Z: {why}");
    let bytes = text.as_bytes();
    if bytes.len() < 19 {
        return Err(bad("too short"));
    }
    let digits = |at: usize, count: usize, what: &str| -> Result<i64, String> {
        let field = &bytes[at..at + count];
        if !field.iter().all(u8::is_ascii_digit) {
            return Err(bad(&format!("the {what} is not {count} digits")));
        }
        Ok(field.iter().fold(0, |n, digit| n * 10 + i64::from(digit - b'0')))
    };
    let separator = |at: usize, allowed: &[u8], what: &str| {
        if allowed.contains(&bytes[at]) {
            Ok(())
        } else {
            Err(bad(&format!("expected {what} at byte {at}")))
        }
    };
    let year = digits(0, 4, "year")?;
    separator(4, b"-", "'-'")?;
    let month = digits(5, 2, "month")?;
    separator(7, b"-", "'-'")?;
    let day = digits(8, 2, "day")?;
    separator(10, b"Tt ", "'T'")?;
    let hour = digits(11, 2, "hour")?;
    separator(13, b":", "':'")?;
    let minute = digits(14, 2, "minute")?;
    separator(16, b":", "':'")?;
    let second = digits(17, 2, "second")?;
    if !(1..=12).contains(&month) {
        return Err(bad(&format!("month {month} does not exist")));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(bad(&format!("day {day} is not in {year:04}-{month:02}")));
    }
    if hour > 23 {
        return Err(bad(&format!("hour {hour} is past 23")));
    }
    if minute > 59 {
        return Err(bad(&format!("minute {minute} is past 59")));
    }
    if second == 60 {
        return Err(bad("second 60 is a leap second, which no warehouse type holds"));
    }
    if second > 59 {
        return Err(bad(&format!("second {second} is past 59")));
    }
    let (micros, zone) = fraction(&text[19..]).map_err(|why| bad(&why))?;
    let offset_minutes = offset(zone).map_err(|why| bad(&why))?;
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Ok(seconds * 1_000_000 + micros)
}

/// The microseconds of an optional `.fraction` (digits past the sixth
/// truncated), and the rest of the text.
fn fraction(rest: &str) -> Result<(i64, &str), String> {
    let Some(after_dot) = rest.strip_prefix('.') else {
        return Ok((0, rest));
    };
    let count = after_dot.bytes().take_while(u8::is_ascii_digit).count();
    if count == 0 {
        return Err("the fraction after '.' has no digits".into());
    }
    let kept = &after_dot.as_bytes()[..count.min(FRACTION_DIGITS_KEPT)];
    let mut micros = kept.iter().fold(0, |n, digit| n * 10 + i64::from(digit - b'0'));
    for _ in kept.len()..FRACTION_DIGITS_KEPT {
        micros *= 10;
    }
    Ok((micros, &after_dot[count..]))
}

/// Minutes east of UTC of `Z` or `±hh:mm`.
fn offset(zone: &str) -> Result<i64, String> {
    match zone.as_bytes() {
        [b'Z' | b'z'] => Ok(0),
        [] => Err("no UTC offset (Z or ±hh:mm): a local time names no instant".into()),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] if [h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit()) => {
            let hours = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
            let minutes = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            if hours > 23 || minutes > 59 {
                return Err(format!("offset {zone} is out of range"));
            }
            let sign = if *sign == b'-' { -1 } else { 1 };
            Ok(sign * (hours * 60 + minutes))
        }
        _ => Err(format!("offset {zone:?} is not Z or ±hh:mm")),
    }
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1–12) of `year`, leap years by the Gregorian rule.
pub fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use relay_client::time::format_rfc3339_micros;

    #[test]
    fn microseconds_and_offsets_are_exact() {
        let cases = [
            ("2026-12-07T09:28:04.004729Z", "2026-12-07T09:28:04.004729Z"),
            ("2026-12-07T14:58:04.004729+05:30", "2026-12-07T09:28:04.004729Z"),
            ("2026-12-07T09:28:04.123456789Z", "2026-12-07T09:28:04.123456Z"),
            ("2026-12-07t09:28:04.5z", "2026-12-07T09:28:04.500000Z"),
            ("2024-02-29T00:00:00-00:01", "2024-02-29T00:01:00.000000Z"),
            ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000000Z"),
            ("1969-12-31T23:59:59.999999Z", "1969-12-31T23:59:59.999999Z"),
        ];
        for (written, utc) in cases {
            assert_eq!(
                parse_rfc3339_micros(written).map(format_rfc3339_micros),
                Ok(utc.to_owned()),
                "{written}"
            );
        }
    }

    #[test]
    fn impossible_times_are_refused_with_the_reason() {
        for (written, reason) in [
            ("2026-02-30T00:00:00Z", "day 30"),
            ("2023-02-29T00:00:00Z", "day 29"),
            ("2026-04-31T00:00:00Z", "day 31"),
            ("2026-12-07T24:00:00Z", "hour 24"),
            ("2026-12-07T09:60:00Z", "minute 60"),
            ("2016-12-31T23:59:60Z", "leap second"),
            ("2026-12-07T09:28:04.004729", "no UTC offset"),
            ("2026-12-07T09:28:04+0530", "not Z or"),
            ("2026-12-07T09:28:04+24:00", "out of range"),
            ("2026-12-07T09:28:04.Z", "no digits"),
            ("2026-1-07T09:28:04.000Z", "not 2 digits"),
            ("yesterday", "too short"),
            ("2026-12-07T09:28:04Z junk", "not Z or"),
            ("2026-13-07T09:28:04Z", "month 13"),
        ] {
            let error = parse_rfc3339_micros(written).unwrap_err();
            assert!(error.contains(reason), "{written}: {error}");
        }
    }
}

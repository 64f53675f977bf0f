//! RFC 3339 timestamps (`2026-11-22T04:16:00Z`, `2026-11-22T05:16:00.250+01:00`)
//! to milliseconds since the Unix epoch, for `--from time:...` and offset
//! resets. No time-zone database: only `Z` and numeric offsets.

/// Days from 1970-01-01 to the given civil date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn number(text: &str, what: &str, range: std::ops::RangeInclusive<i64>) -> Result<i64, String> {
    let value: i64 = text.parse().map_err(|_| format!("{what} {text:?} is not a number"))?;
    if !range.contains(&value) {
        return Err(format!("{what} {value} is out of range"));
    }
    Ok(value)
}

/// Parses an RFC 3339 date-time into Unix milliseconds.
pub fn parse_rfc3339_ms(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not an RFC 3339 time like 2026-11-22T04:16:00Z");
    if text.len() < 20 || !text.is_char_boundary(10) || !matches!(&text[10..11], "T" | "t" | " ") {
        return Err(bad());
    }
    let (date, rest) = text.split_at(10);
    let rest = &rest[1..];
    let mut date_parts = date.split('-');
    let (Some(y), Some(mo), Some(d), None) = (
        date_parts.next(),
        date_parts.next(),
        date_parts.next(),
        date_parts.next(),
    ) else {
        return Err(bad());
    };
    let (year, month, day) = (
        number(y, "year", 0..=9999)?,
        number(mo, "month", 1..=12)?,
        number(d, "day", 1..=31)?,
    );
    let zone_at = rest.find(['Z', 'z', '+', '-']).ok_or_else(bad)?;
    let (clock, zone) = rest.split_at(zone_at);
    let (clock, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut clock_parts = clock.split(':');
    let (Some(h), Some(mi), Some(s), None) = (
        clock_parts.next(),
        clock_parts.next(),
        clock_parts.next(),
        clock_parts.next(),
    ) else {
        return Err(bad());
    };
    let (hour, minute, second) = (
        number(h, "hour", 0..=23)?,
        number(mi, "minute", 0..=59)?,
        number(s, "second", 0..=60)?,
    );
    let millis = if fraction.is_empty() {
        0
    } else {
        if !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let padded = format!("{fraction:0<3}");
        padded[..3].parse::<i64>().map_err(|_| bad())?
    };
    let offset_minutes = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (zh, zm) = zone[1..].split_once(':').ok_or_else(bad)?;
            sign * (number(zh, "zone hour", 0..=23)? * 60 + number(zm, "zone minute", 0..=59)?)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Ok(seconds * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_parse_to_unix_milliseconds() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339_ms("2026-01-01T00:00:00Z"), Ok(1_767_225_600_000));
        assert_eq!(parse_rfc3339_ms("2026-01-01T01:00:00.250+01:00"), Ok(1_767_225_600_250));
        assert_eq!(parse_rfc3339_ms("2000-02-29T12:30:15.5-02:30"), Ok(951_836_415_500));
        for bad in [
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T25:00:00Z",
            "2026-01-01T00:00:00.x1Z",
        ] {
            assert!(parse_rfc3339_ms(bad).is_err(), "{bad}");
        }
    }
}

/// Unix microseconds as RFC 3339 UTC with microseconds (`2026-01-01T00:00:00.000000Z`).
pub fn format_rfc3339_micros(micros: i64) -> String {
    let (days, rest) = (micros.div_euclid(86_400_000_000), micros.rem_euclid(86_400_000_000));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let seconds = rest / 1_000_000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        rest % 1_000_000
    )
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn formatting_inverts_parsing() {
        for ms in [0i64, 1_767_225_600_250, 951_836_415_500, 4_102_444_799_999] {
            let text = format_rfc3339_micros(ms * 1000);
            assert_eq!(parse_rfc3339_ms(&text), Ok(ms), "{text}");
        }
        assert_eq!(
            format_rfc3339_micros(1_767_225_600_000_001),
            "2026-01-01T00:00:00.000001Z"
        );
    }
}

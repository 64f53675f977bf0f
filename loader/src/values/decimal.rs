//! Decimal numbers as written, compared by exact value: what a `double`
//! column may hold ([`exact_double`]) and how json numbers compare
//! ([`Decimal::canonical`]).
//!
//! A double column holds a written number when the double nearest to it
//! (correctly rounded) prints, in its shortest form, as the same decimal
//! value: `0.1`, `1e-7`, `-0.0`, `0.30000000000000004`, `2^53` do;
//! `9007199254740993` (2^53 + 1), `3.14159265358979323846` and `1e-400`
//! would load as another number and are rejected with the reason instead.

/// Exponents beyond this are out of every warehouse number's range anyway
/// (a double's decimal exponent spans -324..=308).
const EXPONENT_DIGITS_MAX: usize = 9;

/// `digits × 10^exponent`, with no leading or trailing zero in `digits`
/// (zero: no digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal {
    pub negative: bool,
    pub digits: String,
    pub exponent: i64,
}

impl Decimal {
    /// A number as JSON writes it, also with a leading `+` or a bare `.5`
    /// or `5.` as text holding a number may; `None` if not a number.
    pub fn parse(text: &str) -> Option<Decimal> {
        let (negative, unsigned) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
            Some(at) => {
                let written = &unsigned[at + 1..];
                let digits = written.strip_prefix(['+', '-']).unwrap_or(written);
                if digits.is_empty()
                    || digits.len() > EXPONENT_DIGITS_MAX
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return None;
                }
                (&unsigned[..at], written.parse::<i64>().ok()?)
            }
            None => (unsigned, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if whole.len() + fraction.len() == 0 || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let all = format!("{whole}{fraction}");
        let significant = all.trim_start_matches('0');
        let trimmed = significant.trim_end_matches('0');
        let exponent = exponent - fraction.len() as i64 + (significant.len() - trimmed.len()) as i64;
        Some(Decimal {
            negative,
            digits: trimmed.to_owned(),
            exponent: if trimmed.is_empty() { 0 } else { exponent },
        })
    }

    /// One text per value, the sign of zero dropped (JSON numbers are
    /// decimals, and `numeric` has no negative zero): `-12e3`, `0`.
    pub fn canonical(&self) -> String {
        if self.digits.is_empty() {
            return "0".into();
        }
        format!(
            "{}{}e{}",
            if self.negative { "-" } else { "" },
            self.digits,
            self.exponent
        )
    }
}

/// The double a written number is, when a double holds it exactly as
/// written (see the module header); otherwise why not.
pub fn exact_double(written: &str) -> Result<f64, String> {
    let decimal = Decimal::parse(written).ok_or_else(|| format!("{written} is not a number"))?;
    let double: f64 = written.parse().map_err(|_| format!("{written} is not a number"))?;
    if !double.is_finite() {
        return Err(format!("{written} is beyond a double's range"));
    }
    let held = Decimal::parse(&format!("{double:e}")).expect("a double prints as a number");
    if held != decimal {
        return Err(format!(
            "{written} needs more precision than a double holds (it would load as {double:e}); \
             load it into a bigint, text or json column"
        ));
    }
    Ok(double)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_a_double_holds_load_and_the_others_are_refused() {
        for (written, double) in [
            ("0.1", 0.1),
            ("1e-7", 1e-7),
            ("-0.0", -0.0),
            ("0.30000000000000004", 0.30000000000000004),
            ("9007199254740992", 9_007_199_254_740_992.0),
            ("1.7976931348623157e308", f64::MAX),
            ("5e-324", 5e-324),
            ("+2.50", 2.5),
            ("100E-2", 1.0),
        ] {
            let held = exact_double(written).unwrap();
            assert_eq!(held.to_bits(), f64::to_bits(double), "{written}");
        }
        for (written, reason) in [
            ("9007199254740993", "precision"),
            ("3.14159265358979323846", "precision"),
            ("1e-400", "precision"),
            ("1e400", "range"),
            ("NaN", "not a number"),
            ("inf", "not a number"),
            ("1e", "not a number"),
            ("", "not a number"),
            (".", "not a number"),
        ] {
            let error = exact_double(written).unwrap_err();
            assert!(error.contains(reason), "{written}: {error}");
        }
    }

    #[test]
    fn decimals_compare_by_value() {
        let canonical = |text| Decimal::parse(text).unwrap().canonical();
        assert_eq!(canonical("1.50"), canonical("15e-1"));
        assert_eq!(canonical("-0.000"), "0");
        assert_eq!(canonical("0012300"), "123e2");
        assert_ne!(
            canonical("12345678901234567890123"),
            canonical("12345678901234567890124")
        );
    }
}

//! Pure functions for the numbers a user types and sees.

use std::fmt;

/// Why a typed value was refused. Each renders as the message shown
/// beside the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberError {
    /// Letters, `NaN`, `inf`, `1,5`, `0x10`, a lone `-` or `e`, …
    NotANumber,
    /// Syntactically a number, but beyond what a float can hold (`1e309`).
    TooLarge,
}

impl fmt::Display for NumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotANumber => "Enter a number, such as 10 or 4.54.",
            Self::TooLarge => "That number is too large.",
        })
    }
}

/// A weight as a field may hold it: a finite number, never NaN or
/// infinite, and never -0. Made once, where text becomes a number
/// ([`parse_number`]), so what holds one has nothing left to check.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Weight(f64);

impl Weight {
    /// `None` for NaN and the infinities.
    pub fn new(value: f64) -> Option<Self> {
        // -0.0 would show as "-0.00"; a weight of minus nothing is nothing.
        value.is_finite().then_some(Self(value + 0.0))
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

/// The longest text we try to read as a number. Anything longer is not
/// something a person typed into a weight field.
pub const MAX_INPUT_LEN: usize = 400;

/// Parses what a user typed into a field.
///
/// `Ok(None)` means the field was empty, which commits the widget's
/// default, as in Streamlit. Surrounding spaces, a leading `+` and
/// exponents are accepted; everything Rust's float parser accepts beyond
/// plain decimal notation (`inf`, `NaN`, `infinity`) is not.
pub fn parse_number(text: &str) -> Result<Option<Weight>, NumberError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_INPUT_LEN {
        return Err(NumberError::NotANumber);
    }
    let text = ascii_digits(text);
    if !is_decimal(&text) {
        return Err(NumberError::NotANumber);
    }
    let value: f64 = text.parse().map_err(|_| NumberError::NotANumber)?;
    // Plain decimals never read as NaN: what is not finite is too large.
    Weight::new(value).map(Some).ok_or(NumberError::TooLarge)
}

/// The zero of each run of ten decimal digits (Unicode's `Nd`) in the
/// scripts people are likely to type in: Arabic-Indic, the scripts of
/// India (Devanagari `०`–`९` first among them) and of Southeast Asia,
/// and fullwidth forms.
const DIGIT_ZEROS: [u32; 22] = [
    0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66, 0x0DE6,
    0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x17E0, 0x1810, 0x1946, 0x19D0, 0xFF10,
];

/// `text` with every digit of [`DIGIT_ZEROS`] as its ASCII digit, so
/// `२.५` reads as `2.5`; anything else is left as it is.
pub fn ascii_digits(text: &str) -> std::borrow::Cow<'_, str> {
    let digit = |c: char| {
        let c = c as u32;
        DIGIT_ZEROS.iter().find(|&&zero| (zero..zero + 10).contains(&c)).map(|zero| c - zero)
    };
    if text.is_ascii() {
        return text.into();
    }
    text.chars()
        .map(|c| digit(c).and_then(|d| char::from_digit(d, 10)).unwrap_or(c))
        .collect::<String>()
        .into()
}

/// `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?`
fn is_decimal(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < bytes.len() && bytes[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let mut mantissa = digits(&mut i);
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        mantissa += digits(&mut i);
    }
    if mantissa == 0 {
        return false;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == bytes.len()
}

/// Rounds to two decimals, as Streamlit's number input does after − / +.
pub fn round2(value: f64) -> f64 {
    let hundredths = value * 100.0;
    // Past 2^53 a float has no hundredths to round, and past ~1.8e306
    // scaling would overflow: such values are already "rounded".
    if hundredths.abs() >= 9_007_199_254_740_992.0 || !hundredths.is_finite() {
        return value + 0.0;
    }
    hundredths.round() / 100.0 + 0.0
}

/// What a field shows: two decimals, like Streamlit's `%0.2f`. Written
/// straight into the page, with no string of its own.
#[derive(Debug, Clone, Copy)]
pub struct TwoDecimals(pub f64);

impl fmt::Display for TwoDecimals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", self.0 + 0.0)
    }
}

/// The full-precision form used in the state dump and JSON: the shortest
/// text that reads back as the same float, always with a decimal point or
/// exponent so it reads as a float (`0.0`, `4.5359237`, `1e+300`).
#[derive(Debug, Clone, Copy)]
pub struct FullPrecision(pub f64);

impl fmt::Display for FullPrecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::Number::from_f64(self.0) {
            Some(number) => fmt::Display::fmt(&number, f),
            None => f.write_str("null"),
        }
    }
}

/// A value as stored outside this process (Redis fields, change notices):
/// the shortest digits that read back as the same float, in exponent form
/// so that huge and tiny values stay short (`4.5359237e0`, `1e300`).
pub fn format_stored(value: f64) -> String {
    format!("{value:e}")
}

/// Reads [`format_stored`]'s output back; anything that is not a finite
/// number is refused, so a damaged store cannot put NaN into a session.
pub fn parse_stored(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_people_type() {
        for (text, want) in [
            ("10", 10.0),
            (" 10 ", 10.0),
            ("+2.5", 2.5),
            ("-3", -3.0),
            ("1e3", 1000.0),
            ("1E-2", 0.01),
            (".5", 0.5),
            ("5.", 5.0),
            ("-0", 0.0),
        ] {
            assert_eq!(parse_number(text), Ok(Weight::new(want)), "{text:?}");
        }
        assert!(parse_number("-0").unwrap().unwrap().get().is_sign_positive());
    }

    #[test]
    fn empty_means_default() {
        assert_eq!(parse_number(""), Ok(None));
        assert_eq!(parse_number("   "), Ok(None));
    }

    #[test]
    fn reads_the_digits_of_other_scripts() {
        for (text, want) in [
            ("१०", 10.0),
            ("२.५", 2.5),
            (" -१२३.४५ ", -123.45),
            ("१e३", 1000.0),
            ("٣", 3.0),
            ("۴۵", 45.0),
            ("১০", 10.0),
            ("௧௦", 10.0),
            ("๑๐", 10.0),
            ("１０", 10.0),
        ] {
            assert_eq!(parse_number(text), Ok(Weight::new(want)), "{text:?}");
        }
        assert_eq!(parse_number(&"९".repeat(MAX_INPUT_LEN)), Err(NumberError::NotANumber), "bytes count");
    }

    #[test]
    fn each_digit_run_is_ten_decimal_digits() {
        for zero in DIGIT_ZEROS {
            let run: Vec<char> = (zero..zero + 10).filter_map(char::from_u32).collect();
            assert!(run.len() == 10 && run.iter().all(|c| c.is_numeric()), "{zero:#x}");
            let before = char::from_u32(zero - 1).unwrap();
            let after = char::from_u32(zero + 10).unwrap();
            assert!(!before.is_numeric() || !after.is_numeric(), "{zero:#x} is the start of its run");
        }
    }

    #[test]
    fn refuses_what_is_not_a_finite_decimal() {
        for text in [
            "abc", "NaN", "nan", "inf", "-inf", "infinity", "1,5", "0x10", "-", "+", "e", "1e", "1e+", ".",
            "1..2", "1 2", "--1", "1_000", "१x", "x१", "१,५", "१..२", "१e", "Ⅻ", "½", "¹",
        ] {
            assert_eq!(parse_number(text), Err(NumberError::NotANumber), "{text:?}");
        }
        assert_eq!(parse_number("1e309"), Err(NumberError::TooLarge));
        assert_eq!(parse_number("-1e309"), Err(NumberError::TooLarge));
        assert_eq!(parse_number(&"9".repeat(MAX_INPUT_LEN + 1)), Err(NumberError::NotANumber));
    }

    #[test]
    fn rounds_and_displays_like_streamlit() {
        assert_eq!(round2(4.5359 + 0.01), 4.55);
        assert_eq!(round2(-0.001), 0.0);
        assert_eq!(round2(1e307), 1e307);
        assert_eq!(round2(f64::MAX), f64::MAX);
        assert!(round2(-0.001).is_sign_positive());
        assert_eq!(TwoDecimals(10.0).to_string(), "10.00");
        assert_eq!(TwoDecimals(4.5359237).to_string(), "4.54");
        assert_eq!(TwoDecimals(-0.0).to_string(), "0.00");
    }

    #[test]
    fn full_precision_round_trips() {
        assert_eq!(FullPrecision(0.0).to_string(), "0.0");
        assert_eq!(FullPrecision(4.5359237).to_string(), "4.5359237");
        assert_eq!(FullPrecision(10.0).to_string(), "10.0");
        assert_eq!(FullPrecision(1e300).to_string(), "1e+300");
        assert_eq!(FullPrecision(f64::NAN).to_string(), "null");
    }

    #[test]
    fn stored_form_round_trips_exactly() {
        for value in [0.0, -0.0, 4.5359237, 1e300, -1e-300, f64::MAX, f64::MIN_POSITIVE, 2.2046226218487757] {
            let text = format_stored(value);
            assert_eq!(parse_stored(&text).map(f64::to_bits), Some(value.to_bits()), "{text}");
        }
        assert_eq!(format_stored(4.5359237), "4.5359237e0");
        for bad in ["NaN", "inf", "-inf", "1e309", "", "x"] {
            assert_eq!(parse_stored(bad), None, "{bad}");
        }
    }
}

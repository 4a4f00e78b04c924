//! Whatever is typed into a field: `parse_number` never panics, accepts
//! only finite plain decimals, reads them as Rust's own float parser
//! does, and everything it accepts survives each way it is shown and stored.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weight_converter::session::number::{
    FullPrecision, MAX_INPUT_LEN, NumberError, TwoDecimals, Weight, ascii_digits, format_stored,
    parse_number, parse_stored, round2,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Digits of other scripts read as ASCII ones: that mapping changes
    // nothing but digits, each into an ASCII digit.
    let mapped = ascii_digits(text);
    assert_eq!(text.chars().count(), mapped.chars().count(), "{text:?}");
    for (typed, read) in text.chars().zip(mapped.chars()) {
        assert!(typed == read || (typed.is_numeric() && read.is_ascii_digit()), "{typed:?} read as {read:?}");
    }
    let trimmed = mapped.trim();
    let plain = text.trim().len() <= MAX_INPUT_LEN
        && trimmed.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
    let rust = trimmed.parse::<f64>();
    match parse_number(text) {
        Ok(None) => assert!(trimmed.is_empty()),
        Ok(Some(weight)) => {
            let value = weight.get();
            assert!(value.is_finite(), "{text:?} gave {value}");
            assert!(value != 0.0 || value.is_sign_positive(), "{text:?} gave -0");
            assert!(plain, "{text:?} is not a plain decimal, yet was accepted");
            assert_eq!(rust, Ok(value), "{text:?}");
            shown_and_stored(value);
        }
        Err(NumberError::TooLarge) => {
            assert!(plain && rust.is_ok_and(f64::is_infinite), "{text:?}");
        }
        Err(NumberError::NotANumber) => {
            // Rust reads more than people type (`inf`, `NaN`); we refuse
            // those, but nothing plain that Rust reads.
            assert!(!(plain && rust.is_ok()), "{text:?} refused, yet Rust reads it as {rust:?}");
        }
    }
});

fn shown_and_stored(value: f64) {
    assert_eq!(parse_stored(&format_stored(value)).map(f64::to_bits), Some(value.to_bits()));
    assert_eq!(parse_number(&FullPrecision(value).to_string()).map(|w| w.map(Weight::get)), Ok(Some(value)));
    let shown = TwoDecimals(value).to_string();
    assert!(matches!(parse_number(&shown), Ok(Some(_))), "{value} shows as {shown:?}");
    assert!(round2(value).is_finite());
}

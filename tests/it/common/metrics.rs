//! Samples read out of Prometheus text, as `/metrics` serves it.

use std::fmt::Display;
use std::iter::Sum;
use std::str::FromStr;

/// The sum of the samples in `text` that `series` selects: a metric's name
/// (`weight_converter_changes_total`), with labels as Prometheus prints
/// them that each sample must have, whatever other labels it has
/// (`weight_converter_request_duration_seconds_count{route="/"}`). `None`
/// when no sample matches; panics on a value that is not a `T`.
pub fn sample<T>(text: &str, series: &str) -> Option<T>
where
    T: FromStr + Sum,
    T::Err: Display,
{
    let (name, wanted, rest) = split(series).unwrap_or_else(|| panic!("not a series: {series:?}"));
    assert!(rest.is_empty(), "not a series: {series:?}");
    let values: Vec<T> = text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (named, labels, value) = split(line).unwrap_or_else(|| panic!("not a sample: {line:?}"));
            let selected = named == name && wanted.iter().all(|label| labels.contains(label));
            selected.then(|| value.trim().parse().unwrap_or_else(|e| panic!("sample {line:?}: {e}")))
        })
        .collect();
    (!values.is_empty()).then(|| values.into_iter().sum())
}

/// Splits `name{key="value",…} rest` into the name, its labels (each
/// `key="value"` as printed) and the rest; `None` if the labels are not
/// closed. A label's value may hold braces, commas and escaped quotes.
fn split(text: &str) -> Option<(&str, Vec<&str>, &str)> {
    let (name, rest) = text.split_at(text.find(['{', ' ']).unwrap_or(text.len()));
    let Some(mut rest) = rest.strip_prefix('{') else {
        return Some((name, Vec::new(), rest));
    };
    let mut labels = Vec::new();
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if let Some(after) = rest.strip_prefix('}') {
            return Some((name, labels, after));
        }
        let open = rest.find("=\"")? + 2;
        let mut escaped = false;
        let close = open
            + rest[open..].find(|c| {
                let closes = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                closes
            })?;
        labels.push(&rest[..=close]);
        rest = &rest[close + 1..];
    }
}

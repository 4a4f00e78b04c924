//! The lists `Accept-Encoding` and `Accept-Language` send: items with an
//! optional weight, `gzip;q=0.8, br` or `hi-IN,hi;q=0.9,en;q=0.8`.

/// An item's weight, HTTP's "quality value", in thousandths: `q=0.8` is
/// 800, no `q` is 1000, and `0` means "not this one". (Named apart from
/// the converter's `Weight`.)
pub type Quality = u16;

/// Each item of a weighted list: its name, trimmed, and its weight. A
/// malformed weight counts as 0, so a garbled item is never chosen.
pub fn weighted(value: &str) -> impl Iterator<Item = (&str, Quality)> {
    value.split(',').map(|item| {
        let mut parts = item.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let q = parts.find_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")));
        (name, q.map_or(1000, |q| quality(q.trim()).unwrap_or(0)))
    })
}

/// A `q` value (`0`, `0.8`, `1.000`) in thousandths; `None` if malformed.
fn quality(text: &str) -> Option<Quality> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<Quality>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_items_and_their_weights() {
        let items: Vec<_> = weighted(" hi-IN , hi;q=0.9,en ; Q=0.8;x=1, ,br;level=1").collect();
        assert_eq!(items, [("hi-IN", 1000), ("hi", 900), ("en", 800), ("", 1000), ("br", 1000)]);
    }

    #[test]
    fn malformed_weights_count_as_refusals() {
        let items: Vec<_> =
            weighted("a;q=1.000, b;q=0.001, c;q=2, d;q=abc, e;q=0.1234, f;q=1.5, g;q=").collect();
        assert_eq!(items, [("a", 1000), ("b", 1), ("c", 0), ("d", 0), ("e", 0), ("f", 0), ("g", 0)]);
    }
}

//! The lists `Accept-Encoding` and `Accept-Language` send: items with an
//! optional weight, `gzip;q=0.8, br` or `hi-IN,hi;q=0.9,en;q=0.8`.

/// Each item of a weighted list: its name, trimmed, and the text of its
/// `q` parameter if it has one (what a weight means is the caller's).
pub fn weighted(value: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    value.split(',').map(|item| {
        let mut parts = item.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let q = parts.find_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")));
        (name, q.map(str::trim))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_items_and_their_weights() {
        let items: Vec<_> = weighted(" hi-IN , hi;q=0.9,en ; Q=0.8;x=1, ,br;level=1").collect();
        assert_eq!(
            items,
            [("hi-IN", None), ("hi", Some("0.9")), ("en", Some("0.8")), ("", None), ("br", None)]
        );
    }
}

//! The id that ties a request's log lines together and comes back in its
//! `X-Request-Id`: the one a trusted proxy sent, or a new one.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderMap, HeaderValue};
use ipnet::IpNet;

use crate::server::client::is_trusted;

pub const HEADER: &str = "x-request-id";

/// The longest id taken from a proxy.
const MAX_LEN: usize = 64;

/// The proxy's id if `peer` is trusted and the id is plain (letters,
/// digits, `-_.:`), else a new one.
pub fn request_id(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> HeaderValue {
    let forwarded = headers.get(HEADER).filter(|_| peer.is_some_and(|peer| is_trusted(peer, trusted)));
    match forwarded {
        Some(id) if is_plain(id.as_bytes()) => id.clone(),
        _ => generate(),
    }
}

fn is_plain(id: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// 16 hex digits, unique in this process: a counter, spread by an odd
/// multiplier over a random start (so replicas do not repeat each
/// other's ids). Ids need not be secret, only distinct.
fn generate() -> HeaderValue {
    static START: OnceLock<u64> = OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let start = *START.get_or_init(|| getrandom::u64().unwrap_or(0));
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let id = start.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    HeaderValue::try_from(format!("{id:016x}")).expect("hex is a header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(peer: &str, id: &str, trusted: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_str(id).unwrap());
        let trusted: Vec<IpNet> = trusted.iter().map(|n| n.parse().unwrap()).collect();
        request_id(Some(peer.parse().unwrap()), &headers, &trusted).to_str().unwrap().to_owned()
    }

    #[test]
    fn only_a_trusted_proxy_names_the_request() {
        assert_eq!(from("10.0.0.1", "abc-123", &["10.0.0.0/8"]), "abc-123");
        assert_ne!(from("192.0.2.1", "abc-123", &["10.0.0.0/8"]), "abc-123");
        assert_ne!(from("10.0.0.1", "abc-123", &[]), "abc-123");
        for garbage in ["", "a b", "<script>", "\u{7f}", &"x".repeat(MAX_LEN + 1)] {
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_str(garbage) {
                headers.insert(HEADER, value);
            }
            let id =
                request_id(Some("10.0.0.1".parse().unwrap()), &headers, &["10.0.0.0/8".parse().unwrap()]);
            assert_eq!(id.len(), 16, "{garbage:?} is replaced by a new id");
        }
    }

    #[test]
    fn new_ids_are_distinct_hex() {
        let ids: std::collections::HashSet<String> =
            (0..1000).map(|_| generate().to_str().unwrap().to_owned()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())));
    }
}

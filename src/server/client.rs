//! Who a client is, for per-client limits: the TCP peer, or, behind a
//! proxy listed in `TRUSTED_PROXIES`, the address it appended to
//! `X-Forwarded-For`. Nobody else's `X-Forwarded-For` is believed, since
//! any client can send one.

use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;

/// Whether `peer` is one of the proxies whose forwarded headers are believed.
pub fn is_trusted(peer: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&peer))
}

/// The client behind `peer`, given the `X-Forwarded-For` values in the
/// order received. Walks the list from the right, past every trusted
/// proxy; the first address that is not one is the client.
pub fn client_address<'a>(
    peer: IpAddr,
    forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    trusted: &[IpNet],
) -> IpAddr {
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_for.rev().flat_map(|value| value.rsplit(',')) {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            // Garbage: the proxy did not write that; stop at what it did.
            break;
        };
        client = ip;
        if !is_trusted(ip, trusted) {
            break;
        }
    }
    client
}

/// The key per-client limits count under. IPv6 hands a whole /64 to one
/// subscriber, so a v6 client is its /64.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let got = client_address(ip("203.0.113.9"), ["1.2.3.4"].into_iter(), &nets(&["10.0.0.0/8"]));
        assert_eq!(got, ip("203.0.113.9"));
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        // The client forged "6.6.6.6"; the proxy appended the real address.
        let got = client_address(ip("10.0.0.2"), ["6.6.6.6, 198.51.100.7"].into_iter(), &trusted);
        assert_eq!(got, ip("198.51.100.7"));
        // Two proxies, two headers.
        let got = client_address(ip("10.0.0.2"), ["198.51.100.7", "10.0.0.3"].into_iter(), &trusted);
        assert_eq!(got, ip("198.51.100.7"));
        // No header: the proxy itself.
        assert_eq!(client_address(ip("10.0.0.2"), std::iter::empty(), &trusted), ip("10.0.0.2"));
        // Garbage stops the walk at the last good hop.
        let got = client_address(ip("10.0.0.2"), ["nonsense, 10.0.0.5"].into_iter(), &trusted);
        assert_eq!(got, ip("10.0.0.5"));
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        assert_eq!(limit_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(limit_key(ip("192.0.2.1")), ip("192.0.2.1"));
    }
}

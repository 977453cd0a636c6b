//! The client's address when a trusted reverse proxy (nginx, HAProxy, a
//! CDN) connects on its behalf: from `Forwarded` (RFC 7239) or else
//! `X-Forwarded-For`, read from the nearest hop outwards, believing only
//! what trusted proxies added.

use std::net::{IpAddr, SocketAddr};

use super::Cidr;

/// The address to use for `peer`'s request: `peer` itself unless it is a
/// trusted proxy; otherwise the nearest address in the forwarding chain
/// that is not a trusted proxy (or the farthest one, if all are).
pub fn client_addr(
    peer: SocketAddr,
    forwarded: Option<&str>,
    x_forwarded_for: Option<&str>,
    trusted: &[Cidr],
) -> SocketAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer.ip()) {
        return peer;
    }
    let hops: Vec<&str> = match (forwarded, x_forwarded_for) {
        (Some(f), _) => f.split(',').filter_map(forwarded_for).collect(),
        (None, Some(x)) => x.split(',').map(str::trim).collect(),
        (None, None) => return peer,
    };
    let mut client = peer;
    for hop in hops.iter().rev() {
        // "unknown", obfuscated names, garbage: nothing behind it can be believed.
        let Some(addr) = parse_hop(hop) else { break };
        client = addr;
        if !is_trusted(addr.ip()) {
            break;
        }
    }
    client
}

/// The `for=` value of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        key.trim().eq_ignore_ascii_case("for").then(|| value.trim().trim_matches('"'))
    })
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1` or `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<SocketAddr> {
    if let Ok(addr) = hop.parse::<SocketAddr>() {
        return Some(addr);
    }
    let bare = hop.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(hop);
    bare.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies() -> Vec<Cidr> {
        vec!["127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()]
    }

    fn from(peer: &str, forwarded: Option<&str>, xff: Option<&str>) -> String {
        client_addr(peer.parse().unwrap(), forwarded, xff, &proxies()).to_string()
    }

    #[test]
    fn only_trusted_proxies_are_believed() {
        assert_eq!(from("192.0.2.9:5000", None, Some("203.0.113.1")), "192.0.2.9:5000");
        assert_eq!(from("127.0.0.1:5000", None, Some("203.0.113.1")), "203.0.113.1:0");
        assert_eq!(from("127.0.0.1:5000", None, None), "127.0.0.1:5000");
        // The client made up the first entry; the CDN (trusted, 10/8) added the rest.
        assert_eq!(from("127.0.0.1:5000", None, Some("1.1.1.1, 198.51.100.7, 10.1.2.3")), "198.51.100.7:0");
        assert_eq!(from("127.0.0.1:5000", None, Some("10.0.0.1, 10.0.0.2")), "10.0.0.1:0");
        assert_eq!(from("127.0.0.1:5000", None, Some("garbage, 10.0.0.2")), "10.0.0.2:0");
    }

    #[test]
    fn forwarded_header() {
        let f = Some("for=192.0.2.60;proto=http;by=203.0.113.43, for=\"[2001:db8::1]:4711\"");
        assert_eq!(from("127.0.0.1:1", f, Some("198.51.100.1")), "[2001:db8::1]:4711");
        assert_eq!(from("127.0.0.1:1", Some("For=\"_hidden\""), None), "127.0.0.1:1");
        assert_eq!(from("127.0.0.1:1", Some("for=unknown, for=198.51.100.3"), None), "198.51.100.3:0");
    }
}

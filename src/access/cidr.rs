//! Address ranges in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`, or a
//! bare address for one host). IPv4 clients of a dual-stack socket arrive
//! as IPv4-mapped IPv6 addresses and match IPv4 ranges.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

/// The first `bits` bits of `a` and `b` are equal.
fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = (usize::from(bits / 8), bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Cidr, String> {
        let form = "an address or a CIDR range such as \"192.0.2.0/24\" or \"2001:db8::/32\"";
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| format!("{text:?} is not {form}"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {max}"))?,
        };
        // An IPv4-mapped range is the IPv4 range (clients are compared canonically).
        match network.to_canonical() {
            IpAddr::V4(v4) if network.is_ipv6() && prefix >= 96 => Ok(Cidr { network: v4.into(), prefix: prefix - 96 }),
            _ => Ok(Cidr { network, prefix }),
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_contain_their_addresses() {
        assert!(net("192.0.2.0/24").contains(ip("192.0.2.200")));
        assert!(!net("192.0.2.0/24").contains(ip("192.0.3.1")));
        assert!(net("10.0.0.0/9").contains(ip("10.127.255.255")));
        assert!(!net("10.0.0.0/9").contains(ip("10.128.0.0")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(net("127.0.0.2").contains(ip("127.0.0.2")));
        assert!(!net("127.0.0.2").contains(ip("127.0.0.1")));
        assert!(net("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
        assert!(!net("2001:db8::/32").contains(ip("2001:db9::1")));
        // A dual-stack socket's IPv4 client.
        assert!(net("192.0.2.0/24").contains(ip("::ffff:192.0.2.7")));
        assert!(!net("::/0").contains(ip("192.0.2.7")));
    }

    #[test]
    fn bad_ranges_are_refused() {
        for bad in ["", "192.0.2.0/33", "2001:db8::/129", "192.0.2/24", "host.example", "1.2.3.4/x"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert_eq!(net("::ffff:192.0.2.0/120").to_string(), "192.0.2.0/24");
    }
}

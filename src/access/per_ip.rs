//! Connections open per client address, for `max_connections_per_ip`: a
//! slot is claimed when a connection is accepted and given back when the
//! last thing it serves (a listener's stream, say) ends.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::heap::GiveBackRoom;

/// The counts; entries exist only while an address has connections, so
/// the map is bounded by the server's connection cap.
#[derive(Default, Clone)]
pub struct PerIp(Arc<Mutex<HashMap<IpAddr, u32>>>);

/// One connection's claim; dropping it gives the slot back. Held by every
/// listener for hours, so its address is kept in 16 bytes (an IPv4 address
/// mapped), not `IpAddr`'s 17 and the padding after them.
pub struct PerIpSlot {
    counts: PerIp,
    ip: Ipv6Addr,
}

impl PerIp {
    /// Claim a slot for `ip` if it holds fewer than `max` connections.
    pub fn claim(&self, ip: IpAddr, max: usize) -> Option<PerIpSlot> {
        let ip = ip.to_canonical();
        let mut counts = self.0.lock();
        let count = counts.entry(ip).or_insert(0);
        if *count as usize >= max {
            if *count == 0 {
                counts.remove(&ip);
            }
            return None;
        }
        *count += 1;
        let ip = match ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        Some(PerIpSlot { counts: self.clone(), ip })
    }

    /// Connections `ip` holds now.
    pub fn held(&self, ip: IpAddr) -> u32 {
        self.0.lock().get(&ip.to_canonical()).copied().unwrap_or(0)
    }
}

impl Drop for PerIpSlot {
    fn drop(&mut self) {
        let ip = IpAddr::V6(self.ip).to_canonical();
        let mut counts = self.counts.0.lock();
        if let Some(count) = counts.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&ip);
                counts.give_back_room();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_and_returned() {
        let per_ip = PerIp::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = per_ip.claim(ip, 2).unwrap();
        let b = per_ip.claim("::ffff:192.0.2.1".parse().unwrap(), 2).unwrap();
        assert!(per_ip.claim(ip, 2).is_none());
        assert!(per_ip.claim("192.0.2.2".parse().unwrap(), 2).is_some());
        drop(a);
        assert_eq!(per_ip.held(ip), 1);
        drop(b);
        assert_eq!(per_ip.held(ip), 0);
        assert!(per_ip.0.lock().is_empty(), "no entry outlives its connections");
    }
}

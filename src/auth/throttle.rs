//! Throttling of failed logins per address: a few wrong passwords are
//! free, then the address is refused for a while — one second, doubling
//! with every further failure up to five minutes — without its credentials
//! even being checked, so guessing gains nothing. A correct login from an
//! address that is not blocked is never slowed, and clears its record.
//!
//! IPv6 addresses count by their /64 (one host usually holds a whole /64),
//! and the table is bounded: an attacker with many addresses fills it with
//! blocked entries at most, evicting the stalest.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Failures allowed before the first block.
const FREE_FAILURES: u32 = 5;
const FIRST_BLOCK: Duration = Duration::from_secs(1);
const MAX_BLOCK: Duration = Duration::from_secs(300);
/// An address whose last failure is this old starts afresh.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Addresses tracked at most.
const MAX_TRACKED: usize = 16 * 1024;

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last_failure: Instant,
    blocked_until: Option<Instant>,
}

/// The failed-login records, shared by every connection.
#[derive(Debug, Default)]
pub struct Throttle {
    /// Touched once per login attempt; short critical sections.
    records: Mutex<HashMap<IpAddr, Record>>,
}

/// The key an address counts under: itself, or its /64 for IPv6.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

impl Throttle {
    /// How long `ip` is still refused, if it is.
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let records = self.records.lock();
        let until = records.get(&key(ip))?.blocked_until?;
        (until > now).then(|| until - now)
    }

    /// A wrong password from `ip`. Returns the block this failure starts, if
    /// it starts one (the caller logs it).
    pub fn failed(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let mut records = self.records.lock();
        let key = key(ip);
        if !records.contains_key(&key) && records.len() >= MAX_TRACKED {
            evict(&mut records, now);
        }
        let record = records.entry(key).or_insert(Record { failures: 0, last_failure: now, blocked_until: None });
        if now.duration_since(record.last_failure) >= FORGET_AFTER {
            record.failures = 0;
        }
        record.failures += 1;
        record.last_failure = now;
        let over = record.failures.checked_sub(FREE_FAILURES + 1)?;
        let block = FIRST_BLOCK.saturating_mul(1 << over.min(16)).min(MAX_BLOCK);
        record.blocked_until = Some(now + block);
        Some(block)
    }

    /// A correct login from `ip`: its failures are forgotten.
    pub fn succeeded(&self, ip: IpAddr) {
        self.records.lock().remove(&key(ip));
    }
}

/// Make room: drop forgotten records, else the one that failed longest ago.
fn evict(records: &mut HashMap<IpAddr, Record>, now: Instant) {
    records.retain(|_, r| now.duration_since(r.last_failure) < FORGET_AFTER);
    if records.len() >= MAX_TRACKED {
        if let Some(stalest) = records.iter().min_by_key(|(_, r)| r.last_failure).map(|(ip, _)| *ip) {
            records.remove(&stalest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn blocks_grow_after_the_free_failures() {
        let throttle = Throttle::default();
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert_eq!(throttle.failed(A, t0), None);
        }
        assert_eq!(throttle.blocked(A, t0), None, "five wrong passwords are free");
        assert_eq!(throttle.failed(A, t0), Some(Duration::from_secs(1)));
        assert_eq!(throttle.failed(A, t0), Some(Duration::from_secs(2)));
        assert_eq!(throttle.failed(A, t0), Some(Duration::from_secs(4)));
        assert_eq!(throttle.blocked(A, t0 + Duration::from_secs(1)), Some(Duration::from_secs(3)));
        assert_eq!(throttle.blocked(A, t0 + Duration::from_secs(4)), None, "the block ends");
        assert_eq!(throttle.blocked(B, t0), None, "other addresses are not affected");
        for _ in 0..40 {
            throttle.failed(A, t0);
        }
        assert_eq!(throttle.blocked(A, t0), Some(MAX_BLOCK));
    }

    #[test]
    fn success_and_time_forget_failures() {
        let throttle = Throttle::default();
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES {
            throttle.failed(A, t0);
        }
        throttle.succeeded(A);
        assert_eq!(throttle.failed(A, t0), None, "a correct login cleared the record");
        for _ in 0..FREE_FAILURES {
            throttle.failed(B, t0);
        }
        assert_eq!(throttle.failed(B, t0 + FORGET_AFTER), None, "old failures are forgotten");
    }

    #[test]
    fn ipv6_counts_by_prefix_and_the_table_is_bounded() {
        let throttle = Throttle::default();
        let t0 = Instant::now();
        let host = |n: u16| IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, n));
        for n in 0..=FREE_FAILURES as u16 {
            throttle.failed(host(n), t0);
        }
        assert!(throttle.blocked(host(999), t0).is_some(), "one /64, one record");
        for n in 0..(MAX_TRACKED as u32 + 100) {
            throttle.failed(IpAddr::V4(n.into()), t0 + Duration::from_millis(u64::from(n)));
        }
        assert!(throttle.records.lock().len() <= MAX_TRACKED);
    }
}

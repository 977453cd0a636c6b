//! The transcoder's counters, kept by the transcoder per mount name rather
//! than by the mounts: a source mount's decoding (CPU, undecodable packets,
//! failed codec processes) and a rendition's encoding (CPU, delay, whether
//! it runs, failed encoders). `/admin/stats` and `/metrics` read them here;
//! a mount without transcoding has none and shows zeros.
//!
//! They outlive codec sessions and sources (a failure count that reset with
//! each restart would hide a flapping codec) and go with the mount's name:
//! a dynamic mount's when its source leaves, a configured one's when a
//! reload removes it ([`crate::state::Shared::forget_mount`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

/// One mount's transcoding counters; atomics, so codec work never locks for them.
#[derive(Debug, Default)]
pub struct TranscodeStats {
    /// Time spent resampling and encoding this rendition, or decoding this
    /// source, in nanoseconds.
    pub busy_ns: AtomicU64,
    /// Packets the decoder could not decode and skipped (source mounts).
    pub corrupt_packets: AtomicU64,
    /// How long the latest encoded output of a rendition took from the
    /// source's data arriving, and the most it took, in microseconds.
    pub delay_us: AtomicU64,
    pub delay_max_us: AtomicU64,
    /// 1 while a rendition's encoder runs (on-demand ones idle at 0).
    pub encoding: AtomicU64,
    /// Times transcoding failed and its renditions ended: on a source mount,
    /// its codec process (crashed, stalled, refused the stream); on a
    /// rendition, its own encoder.
    pub failures: AtomicU64,
}

impl TranscodeStats {
    /// A rendition's output `delay_us` after its source data arrived.
    pub fn delayed(&self, delay_us: u64) {
        self.delay_us.store(delay_us, Ordering::Relaxed);
        self.delay_max_us.fetch_max(delay_us, Ordering::Relaxed);
    }

    pub fn set_encoding(&self, encoding: bool) {
        self.encoding.store(u64::from(encoding), Ordering::Relaxed);
    }
}

/// Every transcoded mount's counters, by mount name.
#[derive(Debug, Default)]
pub struct Counters(RwLock<HashMap<String, Arc<TranscodeStats>>>);

impl Counters {
    /// `mount`'s counters, made on first use.
    pub fn of(&self, mount: &str) -> Arc<TranscodeStats> {
        if let Some(stats) = self.get(mount) {
            return stats;
        }
        self.0.write().entry(mount.to_string()).or_default().clone()
    }

    /// `mount`'s counters, if it was ever transcoded.
    pub fn get(&self, mount: &str) -> Option<Arc<TranscodeStats>> {
        self.0.read().get(mount).cloned()
    }

    pub fn remove(&self, mount: &str) {
        self.0.write().remove(mount);
    }

    /// A reading of `mount`'s counter `field` (0 for a mount never transcoded).
    pub fn load(&self, mount: &str, field: impl Fn(&TranscodeStats) -> &AtomicU64) -> u64 {
        self.get(mount).map_or(0, |stats| field(&stats).load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_kept_by_name_until_removed() {
        let counters = Counters::default();
        assert_eq!(counters.load("/a", |s| &s.failures), 0);
        counters.of("/a").failures.fetch_add(2, Ordering::Relaxed);
        counters.of("/a").delayed(5);
        counters.of("/a").delayed(3);
        assert_eq!(counters.load("/a", |s| &s.failures), 2, "the same counters on every use");
        assert_eq!((counters.load("/a", |s| &s.delay_us), counters.load("/a", |s| &s.delay_max_us)), (3, 5));
        counters.remove("/a");
        assert!(counters.get("/a").is_none());
    }
}

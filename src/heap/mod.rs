//! Giving freed heap memory back to the system, the room a crowd needed
//! back to the heap, and a region of its own for what listeners keep for
//! hours (`region`), so that it does not pin the heap's holes.
//!
//! Listeners arrive in crowds and stay for hours. Each one, while it
//! connects, allocates its burst (up to `burst_size`, 64 KiB by default)
//! and a task's state, and frees them once it has caught up and parked,
//! between allocations that live as long as the listener. glibc keeps the
//! pages of such holes in its heaps for good; `malloc_trim` hands the whole
//! free pages back. Measured at 10k listeners: about 100 B per listener of
//! resident memory, no CPU to speak of (README, Performance).

mod region;

pub use region::{long_lived, long_lived_bytes, Allocator, LongLived};

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

/// How often freed pages are handed back.
const EVERY: Duration = Duration::from_secs(10);

/// Hand freed pages back every `EVERY`, for the life of the server.
pub async fn give_back_freed_pages() {
    let mut every = tokio::time::interval(EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        // Off the runtime's workers: it walks every heap under its lock.
        let _ = tokio::task::spawn_blocking(trim).await;
    }
}

/// The process's resident memory in bytes (`VmRSS`; 0 where the system
/// does not say).
pub fn process_resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib =
        status.lines().find_map(|line| line.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?.trim().parse().ok());
    kib.unwrap_or(0u64) * 1024
}

/// glibc's free pages, then the long-lived region's empty ones.
fn trim() {
    trim_heaps();
    region::give_back_empty_pages();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code, reason = "one call into glibc, which has no safe wrapper")]
fn trim_heaps() {
    // SAFETY: `malloc_trim` takes no pointers and works on glibc's own heaps
    // under their locks; any thread may call it at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators return memory by themselves, or not at all.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_heaps() {}

/// Below this many slots a collection keeps its room: not worth a
/// reallocation.
const KEPT_SLOTS: usize = 64;

/// A collection that grows with a crowd (listeners of a mount, connections
/// of an address, a delivery set) and keeps its largest size for good
/// unless told otherwise: after 10k listeners have come and gone, their
/// table would hold 10k slots empty.
pub trait GiveBackRoom {
    /// Once at most a quarter full, shrink to twice what is held (so a
    /// steady size never reallocates back and forth); once empty, give it
    /// all back.
    fn give_back_room(&mut self);
}

/// An empty collection keeps nothing: a smaller block made for it now
/// would be placed among the pages its crowd just left, and would keep one
/// of them from going back for as long as the collection lives.
fn room_to_keep(len: usize, capacity: usize) -> Option<usize> {
    (capacity > KEPT_SLOTS && len < capacity / 4).then(|| if len == 0 { 0 } else { (len * 2).max(KEPT_SLOTS) })
}

impl<T> GiveBackRoom for Vec<T> {
    fn give_back_room(&mut self) {
        if let Some(keep) = room_to_keep(self.len(), self.capacity()) {
            self.shrink_to(keep);
        }
    }
}

impl<K: Eq + Hash, V, S: BuildHasher> GiveBackRoom for HashMap<K, V, S> {
    fn give_back_room(&mut self) {
        if let Some(keep) = room_to_keep(self.len(), self.capacity()) {
            self.shrink_to(keep);
        }
    }
}

impl<T: Eq + Hash, S: BuildHasher> GiveBackRoom for HashSet<T, S> {
    fn give_back_room(&mut self) {
        if let Some(keep) = room_to_keep(self.len(), self.capacity()) {
            self.shrink_to(keep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crowds_room_is_given_back_once_it_has_mostly_gone() {
        let mut set: Vec<u64> = (0..10_000).collect();
        set.truncate(3_000);
        set.give_back_room();
        assert!(set.capacity() >= 10_000, "a quarter or more still there: kept");
        set.truncate(100);
        set.give_back_room();
        assert!((100..=256).contains(&set.capacity()), "{}", set.capacity());
        set.truncate(10);
        set.give_back_room();
        assert_eq!(set.capacity(), KEPT_SLOTS);
        set.extend(0..1000);
        set.clear();
        set.give_back_room();
        assert_eq!(set.capacity(), 0, "an empty collection keeps nothing");
        let mut small: Vec<u8> = Vec::with_capacity(KEPT_SLOTS);
        small.give_back_room();
        assert_eq!(small.capacity(), KEPT_SLOTS, "small collections keep their room");

        let mut table: HashMap<u64, u64> = (0..10_000).map(|i| (i, i)).collect();
        table.retain(|&k, _| k < 10);
        table.give_back_room();
        assert!(table.capacity() < 200 && table.len() == 10, "{}", table.capacity());
    }
}

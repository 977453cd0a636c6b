//! A new listener's burst, copied out of the ring into one buffer and kept
//! for the next listener who asks for the same (every listener without ICY
//! metadata that arrives before the ring next grows does): a crowd arriving
//! makes one copy per publish, not one per listener. The copy is at most a
//! burst of audio (`BATCH_BYTES`, or one larger chunk), counted in the
//! mount's `held_bytes`, and dropped as soon as the ring grows (it is stale
//! then) or the stream is released.

use bytes::Bytes;
use parking_lot::Mutex;

use super::ring::Ring;

/// The last burst copied, if any.
#[derive(Debug, Default)]
pub(super) struct LastBurst(Mutex<Option<BurstCopy>>);

#[derive(Debug)]
struct BurstCopy {
    from: u64,
    max_bytes: usize,
    /// The ring's head when copied: with nothing pushed since, the same
    /// request copies the same bytes (chunks never change once pushed, and
    /// sequence numbers are never reused), as long as `from` is still held:
    /// trimming drops chunks from the front without moving the head.
    head: u64,
    next: u64,
    bytes: Bytes,
}

impl LastBurst {
    /// `ring` from `from`, up to about `max_bytes` (`Ring::copy_from`): the
    /// bytes and the next sequence, shared with whoever asked for the same
    /// since the ring last grew.
    pub(super) fn copy(&self, ring: &Ring, from: u64, max_bytes: usize) -> (Bytes, u64) {
        let mut last = self.0.lock();
        let head = ring.head_seq();
        let held = ring.first_seq() <= from;
        let same = |b: &&BurstCopy| held && b.from == from && b.max_bytes == max_bytes && b.head == head;
        if let Some(copy) = last.as_ref().filter(same) {
            return (copy.bytes.clone(), copy.next);
        }
        let (bytes, next) = ring.copy_from(from, max_bytes);
        *last = Some(BurstCopy { from, max_bytes, head, next, bytes: bytes.clone() });
        (bytes, next)
    }

    /// Bytes the copy keeps alive.
    pub(super) fn held(&self) -> usize {
        self.0.lock().as_ref().map_or(0, |copy| copy.bytes.len())
    }

    /// Drop the copy (the ring grew, or the stream is released).
    pub(super) fn forget(&mut self) {
        *self.0.get_mut() = None;
    }

    /// Whether a copy is kept.
    #[cfg(test)]
    pub(super) fn holds_one(&self) -> bool {
        self.0.lock().is_some()
    }
}

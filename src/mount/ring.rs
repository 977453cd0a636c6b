//! The bounded ring of stream chunks a mount fans out to its listeners.
//!
//! Chunks are numbered by sequence; a listener keeps only the sequence of the
//! next chunk it wants (its cursor). The ring owns no listener state: it
//! evicts the oldest chunks once it holds more than its byte capacity, and a
//! listener whose cursor falls off the tail has, by definition, fallen too far
//! behind. The mount also trims it (`trim_before`) to what its slowest
//! listener and a new listener's burst still need, so a mount of fast
//! listeners holds about a burst, not a whole queue.
//!
//! Capacity counts every byte the ring keeps alive, not just the stream's:
//! each chunk's bookkeeping, and the title metadata of a chunk that starts a
//! new title. Otherwise a source that makes every byte a chunk of its own
//! with a fresh 8 KB title (ICY metadata every byte) would pin gigabytes
//! behind a ring that believes it holds half a megabyte.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::metadata::Metadata;

/// One piece of the stream, starting on a frame/page/element boundary.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub data: Bytes,
    /// Byte offset of `data` within the mount's stream (since the mount was created).
    pub start: u64,
    /// Metadata current when this chunk was written: ICY titles follow the audio.
    pub meta: Arc<Metadata>,
    /// A new listener may start playback at this chunk.
    pub sync: bool,
    /// In-band stream headers (a chained Ogg stream): new listeners get the
    /// stored copy instead, so their burst never starts before one of these.
    pub headers: bool,
    /// What keeping this chunk costs, as charged against the capacity.
    cost: u32,
}

/// Bookkeeping per chunk beyond its data: the `Chunk` in the ring and the
/// `Bytes` allocation behind it.
pub const CHUNK_OVERHEAD: usize = 96;

/// Sequence-numbered chunks, oldest first, bounded in bytes.
#[derive(Debug)]
pub struct Ring {
    chunks: VecDeque<Chunk>,
    /// Sequence number of `chunks[0]`.
    first_seq: u64,
    /// Bytes kept alive by `chunks`: data, overhead and titles (see `cost`).
    held: usize,
    /// Bytes the ring may hold before evicting (at least queue_size + burst_size).
    capacity: usize,
    /// Stream offset just past the newest chunk.
    end: u64,
}

impl Ring {
    pub fn new(capacity: usize) -> Ring {
        Ring { chunks: VecDeque::new(), first_seq: 0, held: 0, capacity, end: 0 }
    }

    /// A new byte capacity (a reload changed the queue or burst size);
    /// a smaller one evicts at the next append.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
    }

    /// Append data; evicts the oldest chunks beyond capacity. Returns the new head sequence.
    pub fn push(&mut self, data: Bytes, meta: Arc<Metadata>, sync: bool, headers: bool) -> u64 {
        let len = data.len();
        let new_title = self.chunks.back().is_none_or(|last| !Arc::ptr_eq(&last.meta, &meta));
        let cost = len + CHUNK_OVERHEAD + if new_title { meta.heap_size() } else { 0 };
        let cost = u32::try_from(cost).unwrap_or(u32::MAX);
        self.chunks.push_back(Chunk { data, start: self.end, meta, sync, headers, cost });
        self.end += len as u64;
        self.held += cost as usize;
        while self.held > self.capacity && self.evict_oldest() {}
        self.head_seq()
    }

    /// Bytes kept alive by the ring (data, bookkeeping and titles).
    pub fn held(&self) -> usize {
        self.held
    }

    /// Let go of every chunk (nobody can read them any more); sequence
    /// numbers and stream offsets carry on.
    pub fn clear(&mut self) {
        self.first_seq = self.head_seq();
        self.chunks = VecDeque::new();
        self.held = 0;
    }

    /// Drop the chunks before `seq` (keeping at least the newest one, as
    /// `push` does). Listeners at or after `seq` are unaffected.
    pub fn trim_before(&mut self, seq: u64) {
        while self.first_seq < seq && self.evict_oldest() {}
    }

    /// Drop the oldest chunk unless it is the only one (so a listener at the
    /// head always has a position); false if nothing was dropped.
    fn evict_oldest(&mut self) -> bool {
        if self.chunks.len() <= 1 {
            return false;
        }
        let Some(old) = self.chunks.pop_front() else { return false };
        let mut freed = old.cost;
        // The title's charge moves on to the next chunk that shares it.
        let title = old.cost.saturating_sub((old.data.len() + CHUNK_OVERHEAD) as u32);
        if let Some(next) = self.chunks.front_mut().filter(|next| title > 0 && Arc::ptr_eq(&next.meta, &old.meta)) {
            next.cost += title;
            freed -= title;
        }
        self.held -= freed as usize;
        self.first_seq += 1;
        true
    }

    /// Sequence the next pushed chunk will get.
    pub fn head_seq(&self) -> u64 {
        self.first_seq + self.chunks.len() as u64
    }

    /// Oldest sequence still held.
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// Stream offset just past the newest chunk.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Stream offset of chunk `seq`, or of the live edge when `seq` is the head.
    pub fn offset_of(&self, seq: u64) -> Option<u64> {
        if seq == self.head_seq() {
            return Some(self.end);
        }
        self.get(seq).map(|c| c.start)
    }

    pub fn get(&self, seq: u64) -> Option<&Chunk> {
        let index = seq.checked_sub(self.first_seq)?;
        self.chunks.get(usize::try_from(index).ok()?)
    }

    /// Where a new listener starts: the oldest sync chunk within the last
    /// `burst` bytes, never before the newest in-band header chunk. If no sync
    /// chunk lies within the window (long WebM clusters), the newest sync
    /// chunk before it; if none at all, the live edge.
    pub fn burst_start(&self, burst: usize) -> u64 {
        let window_start = self.end.saturating_sub(burst as u64);
        let mut best_before = None;
        let mut floor = self.first_seq;
        for (i, chunk) in self.chunks.iter().enumerate() {
            if chunk.headers {
                floor = self.first_seq + i as u64 + 1;
                best_before = None;
            }
        }
        for seq in floor..self.head_seq() {
            let Some(chunk) = self.get(seq) else { break };
            if !chunk.sync || chunk.headers {
                continue;
            }
            if chunk.start >= window_start {
                return seq;
            }
            best_before = Some(seq);
        }
        best_before.unwrap_or(self.head_seq())
    }

    /// The newest sync chunk, for a listener that joins at the live edge (a
    /// move between mounts): no burst, but a decodable first byte.
    pub fn live_start(&self) -> u64 {
        self.burst_start(0)
    }

    /// Clone up to `max_bytes` (at least one chunk) starting at `seq`.
    pub fn read_from(&self, seq: u64, max_bytes: usize, out: &mut Vec<Chunk>) -> u64 {
        self.each_from(seq, max_bytes, |chunk| out.push(chunk.clone()))
    }

    /// Like `read_from`, but the bytes are copied into one buffer instead
    /// of a handle per chunk (a new listener's burst is many small chunks,
    /// and each handle is a shared reference count to bump). Sized first,
    /// so it is one allocation, not a doubling series. Returns the bytes and
    /// the next sequence.
    pub fn copy_from(&self, seq: u64, max_bytes: usize) -> (Bytes, u64) {
        let mut len = 0;
        self.each_from(seq, max_bytes, |chunk| len += chunk.data.len());
        let mut out = BytesMut::with_capacity(len);
        let next = self.each_from(seq, max_bytes, |chunk| out.extend_from_slice(&chunk.data));
        (out.freeze(), next)
    }

    /// Visit chunks from `seq` up to about `max_bytes` (at least one); returns the next sequence.
    fn each_from(&self, seq: u64, max_bytes: usize, mut visit: impl FnMut(&Chunk)) -> u64 {
        let mut next = seq;
        let mut taken = 0;
        while let Some(chunk) = self.get(next) {
            if taken > 0 && taken + chunk.data.len() > max_bytes {
                break;
            }
            taken += chunk.data.len();
            visit(chunk);
            next += 1;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Arc<Metadata> {
        Arc::new(Metadata::default())
    }

    fn ring_with(sizes: &[(usize, bool)], capacity: usize) -> Ring {
        let mut ring = Ring::new(capacity);
        let meta = meta();
        for &(len, sync) in sizes {
            ring.push(Bytes::from(vec![0u8; len]), meta.clone(), sync, false);
        }
        ring
    }

    #[test]
    fn evicts_oldest_beyond_capacity() {
        let title = meta().heap_size();
        let ring = ring_with(&[(100, true); 10], 3 * (100 + CHUNK_OVERHEAD) + title + 50);
        assert_eq!(ring.head_seq(), 10);
        assert_eq!(ring.first_seq(), 7);
        assert_eq!(ring.end(), 1000);
        assert!(ring.get(6).is_none());
        assert_eq!(ring.get(7).map(|c| c.start), Some(700));
    }

    #[test]
    fn burst_starts_on_chunk_inside_window() {
        let ring = ring_with(&[(100, true); 10], 10_000);
        // Last 250 bytes: offsets 750..1000, first chunk starting inside is seq 8 (800).
        assert_eq!(ring.burst_start(250), 8);
        // No chunk starts inside an empty window: the newest sync chunk, so the first byte decodes.
        assert_eq!(ring.burst_start(0), 9);
        assert_eq!(ring.burst_start(5000), 0);
    }

    #[test]
    fn burst_falls_back_to_previous_sync_point() {
        let ring = ring_with(&[(100, true), (100, false), (100, false), (100, false)], 10_000);
        assert_eq!(ring.burst_start(150), 0);
    }

    #[test]
    fn burst_never_crosses_in_band_headers() {
        let mut ring = ring_with(&[(100, true); 5], 10_000);
        ring.push(Bytes::from_static(b"HDRS"), meta(), true, true);
        ring.push(Bytes::from(vec![0u8; 100]), meta(), true, false);
        assert_eq!(ring.burst_start(100_000), 6);
    }

    /// A chunk per byte, each with a title of its own: the titles count, so
    /// the ring stays within its capacity in real memory.
    #[test]
    fn titles_and_overhead_count_against_capacity() {
        let mut ring = Ring::new(64 * 1024);
        for i in 0..10_000 {
            let meta = Arc::new(Metadata::from_song(&format!("{i:04}{}", "x".repeat(4000)), None));
            ring.push(Bytes::from_static(b"a"), meta, true, false);
        }
        assert!(ring.held() <= 64 * 1024, "held {}", ring.held());
        let kept = (ring.head_seq() - ring.first_seq()) as usize;
        assert!((5..=8).contains(&kept), "{kept} chunks of ~8 KiB kept");
        // One shared title costs once.
        let mut ring = Ring::new(64 * 1024);
        let meta = Arc::new(Metadata::from_song(&"y".repeat(4000), None));
        for _ in 0..100 {
            ring.push(Bytes::from_static(b"abcd"), meta.clone(), true, false);
        }
        assert_eq!(ring.held(), 100 * (4 + CHUNK_OVERHEAD) + meta.heap_size());
        ring.clear();
        assert_eq!((ring.held(), ring.first_seq(), ring.head_seq(), ring.end()), (0, 100, 100, 400));
    }

    #[test]
    fn read_from_respects_budget_but_takes_one() {
        let ring = ring_with(&[(100, true); 5], 10_000);
        let mut out = Vec::new();
        assert_eq!(ring.read_from(1, 250, &mut out), 3);
        assert_eq!(out.len(), 2);
        out.clear();
        assert_eq!(ring.read_from(4, 10, &mut out), 5);
        assert_eq!(out.len(), 1);
        out.clear();
        assert_eq!(ring.read_from(5, 10, &mut out), 5);
        assert!(out.is_empty());
    }

    /// What a run of operations does to the ring.
    #[derive(Debug, Clone)]
    enum Op {
        Push { len: usize, sync: bool, headers: bool, title: usize },
        Trim(f64),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (0usize..2500, any::<bool>(), proptest::bool::weighted(0.05), 0usize..3)
                .prop_map(|(len, sync, headers, title)| Op::Push { len, sync, headers, title }),
            1 => (0.0f64..1.2).prop_map(Op::Trim),
        ]
    }

    proptest::proptest! {
        /// For any run of pushes and trims: a cursor never reads evicted or
        /// wrong data (a sequence is either its own chunk or gone), the ring
        /// stays within its capacity (but for the newest chunk), trimming
        /// never passes a live listener's position, and a burst always
        /// starts on a sync chunk after the newest in-band headers.
        #[test]
        fn cursors_bursts_and_trims_keep_their_promises(
            capacity in 500usize..20_000,
            ops in proptest::collection::vec(op(), 1..120),
            bursts in proptest::collection::vec(0usize..30_000, 4),
        ) {
            let titles: Vec<Arc<Metadata>> =
                (0..3).map(|i| Arc::new(Metadata::from_song(&format!("T{i}"), None))).collect();
            let mut ring = Ring::new(capacity);
            // Everything ever pushed, by sequence: (bytes, start, sync, headers).
            let mut pushed: Vec<(Vec<u8>, u64, bool, bool)> = Vec::new();
            let mut end = 0u64;
            for op in ops {
                match op {
                    Op::Push { len, sync, headers, title } => {
                        let data: Vec<u8> = (0..len).map(|i| (pushed.len() * 7 + i) as u8).collect();
                        ring.push(Bytes::from(data.clone()), titles[title].clone(), sync, headers);
                        pushed.push((data, end, sync, headers));
                        end += len as u64;
                    }
                    Op::Trim(fraction) => {
                        // A listener at `to` must keep everything from there on.
                        let (first, head) = (ring.first_seq(), ring.head_seq());
                        let to = first + ((head - first) as f64 * fraction) as u64;
                        ring.trim_before(to);
                        let kept_from = to.min(head.saturating_sub(1)).max(first);
                        proptest::prop_assert!(ring.first_seq() <= kept_from.max(first));
                        for seq in kept_from..head {
                            proptest::prop_assert!(ring.get(seq).is_some(), "trim passed a listener at {}", seq);
                        }
                    }
                }
                let (first, head) = (ring.first_seq(), ring.head_seq());
                proptest::prop_assert_eq!(head, pushed.len() as u64);
                proptest::prop_assert_eq!(ring.end(), end);
                for seq in 0..first {
                    proptest::prop_assert!(ring.get(seq).is_none());
                }
                for seq in first..head {
                    let chunk = ring.get(seq).unwrap();
                    let (data, start, _, _) = &pushed[seq as usize];
                    proptest::prop_assert_eq!(&chunk.data[..], &data[..]);
                    proptest::prop_assert_eq!(chunk.start, *start);
                }
                proptest::prop_assert!(ring.held() <= capacity || head - first <= 1, "{} held of {}", ring.held(), capacity);
                for &burst in &bursts {
                    let at = ring.burst_start(burst);
                    proptest::prop_assert!(first <= at && at <= head);
                    if at < head {
                        let (_, _, sync, headers) = pushed[at as usize];
                        proptest::prop_assert!(sync && !headers, "a burst from {} that is not a sync chunk", at);
                    }
                    let newest_headers = (first..head).rev().find(|&s| pushed[s as usize].3);
                    proptest::prop_assert!(newest_headers.is_none_or(|h| at > h), "a burst before in-band headers");
                }
            }
        }
    }
}

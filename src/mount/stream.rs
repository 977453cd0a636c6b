//! A mount's data plane: the ring, the stream headers, the current title and
//! the data held back between wake-ups, all behind the mount's stream lock.
//! Written by the source, read by every listener.

use std::sync::Arc;
use tokio::time::Instant;

use bytes::{Bytes, BytesMut};

use super::burst::LastBurst;
use super::wake::Schedule;
use super::{Metadata, Ring};

/// Most framed data held back between wake-ups before it goes into the ring
/// as a chunk anyway (a source far above its bitrate cannot grow it).
pub(super) const MAX_HELD: usize = 64 * 1024;
/// A title takes effect for at least this much of the stream: a quicker
/// change replaces it where it stands, so a source sending a new title with
/// every few bytes cannot make a chunk (and a title to keep) of each.
/// Listeners with ICY metadata see a title every `metaint` bytes at best.
pub const MIN_TITLE_BYTES: u64 = 4096;

/// The data plane: written by the source, read by every listener.
#[derive(Debug)]
pub(super) struct StreamState {
    pub(super) ring: Ring,
    /// The last burst copied for a new listener, shared by the next ones.
    pub(super) last_burst: LastBurst,
    /// Headers a new listener needs before any chunk (Ogg/WebM); empty otherwise.
    pub(super) headers: Bytes,
    pub(super) meta: Arc<Metadata>,
    /// When each wake group is next due (`delivery_interval` throttling).
    pub(super) schedule: Schedule,
    /// Framed data not yet published (only with a `delivery_interval`).
    pub(super) held: BytesMut,
    /// Whether `held` starts at a sync point.
    pub(super) held_sync: bool,
    /// New listeners' bursts start no earlier than this sequence (set when a
    /// server-fed stream restarts, so nobody is handed the old stream).
    pub(super) burst_floor: u64,
    /// When the ring was last trimmed to what listeners still need.
    pub(super) last_trim: Option<Instant>,
    /// Stream offset at which the current title took effect (`None`: the
    /// stream's first title is still the default).
    pub(super) title_at: Option<u64>,
}

impl StreamState {
    pub(super) fn new(capacity: usize) -> StreamState {
        StreamState {
            ring: Ring::new(capacity),
            last_burst: LastBurst::default(),
            headers: Bytes::new(),
            meta: Arc::new(Metadata::default()),
            schedule: Schedule::default(),
            held: BytesMut::new(),
            held_sync: false,
            burst_floor: 0,
            last_trim: None,
            title_at: None,
        }
    }

    /// Make `meta` the title from the current end of the stream on. A change
    /// less than `MIN_TITLE_BYTES` after the previous one replaces it instead.
    pub(super) fn set_title(&mut self, meta: Arc<Metadata>) {
        let at = self.write_offset();
        if self.title_at.is_none_or(|since| at - since >= MIN_TITLE_BYTES) {
            // Held-back audio was written under the old title: it keeps it.
            self.release_held();
            self.title_at = Some(at);
        }
        self.meta = meta;
    }

    pub(super) fn hold(&mut self, bytes: &[u8], sync: bool) {
        // A sync point (a WebM cluster) must start a chunk, or a new listener
        // could not start there.
        if sync && !self.held_sync && !self.held.is_empty() {
            self.release_held();
        }
        if self.held.is_empty() {
            self.held_sync = sync;
        }
        self.held.extend_from_slice(bytes);
        if self.held.len() >= MAX_HELD {
            self.release_held();
        }
    }

    /// Offset just past everything written, held data included.
    pub(super) fn write_offset(&self) -> u64 {
        self.ring.end() + self.held.len() as u64
    }

    /// Nothing here can be read any more (no source, no listener): let go of
    /// it all.
    pub(super) fn release_all(&mut self) {
        self.release_held();
        // Its buffer too: `held` keeps its room between intervals, not for good.
        self.held = BytesMut::new();
        self.ring.clear();
        self.last_burst.forget();
        self.headers = Bytes::new();
        self.meta = Arc::new(Metadata::default());
        self.title_at = None;
    }

    /// Move held-back data into the ring as one chunk.
    pub(super) fn release_held(&mut self) {
        if !self.held.is_empty() {
            // Copied out at its exact size, not split off: a split chunk
            // shares (and pins) the whole buffer it was split from, and the
            // buffer's next growth copies into a fresh one, so a ring of
            // split chunks keeps up to twice its data alive. `held` keeps
            // its buffer for the next interval. In the long-lived region: a
            // chunk outlives the connections' transients around it (see
            // `heap::long_lived`); owned, so that sharing it later allocates
            // nothing outside the region.
            let data = {
                let _outlives_transients = crate::heap::long_lived();
                Bytes::from_owner(self.held.to_vec())
            };
            self.held.clear();
            let meta = self.meta.clone();
            self.push(data, meta, self.held_sync, false);
        }
    }

    /// Append a chunk to the ring; the last burst copied is stale from here.
    pub(super) fn push(&mut self, data: Bytes, meta: Arc<Metadata>, sync: bool, headers: bool) {
        self.ring.push(data, meta, sync, headers);
        self.last_burst.forget();
    }

    /// Release held data; returns the sequence to publish.
    pub(super) fn publish_point(&mut self) -> u64 {
        self.release_held();
        self.ring.head_seq()
    }
}

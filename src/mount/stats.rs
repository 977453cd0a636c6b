//! A mount's counters, as `/admin/stats` reports them (the transcoder keeps
//! its own: `transcode::Counters`).

use std::sync::atomic::AtomicU64;

/// Counters of one mount; atomics, so the data path never locks for them.
#[derive(Debug, Default)]
pub struct MountStats {
    pub listeners: AtomicU64,
    pub listener_peak: AtomicU64,
    /// Listeners dropped for falling more than `queue_size` behind.
    pub slow_listeners: AtomicU64,
    /// Listeners dropped because a write to them waited `client_timeout`.
    pub stalled_listeners: AtomicU64,
    pub listener_connections: AtomicU64,
    /// Sources that have connected to this mount (reconnects show here).
    pub source_connections: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_sent: AtomicU64,
    /// Source bytes thrown away by the framer (garbage, broken frames).
    pub bytes_skipped: AtomicU64,
    /// Units a tap (a transcoder's or a recording's feed) had no room for:
    /// its reader fell behind.
    pub tap_overruns: AtomicU64,
    /// Bytes the source's framer holds between reads (partial pages,
    /// elements, header captures), as of its last read.
    pub framer_bytes: AtomicU64,
    /// Bytes written to the mount's recording (`dump_file`).
    pub dump_bytes: AtomicU64,
}

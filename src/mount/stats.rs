//! A mount's counters, as `/admin/stats` reports them.

use std::sync::atomic::AtomicU64;

/// Counters of one mount; atomics, so the data path never locks for them.
#[derive(Debug, Default)]
pub struct MountStats {
    pub listeners: AtomicU64,
    pub listener_peak: AtomicU64,
    /// Listeners dropped for falling more than `queue_size` behind.
    pub slow_listeners: AtomicU64,
    pub listener_connections: AtomicU64,
    /// Sources that have connected to this mount (reconnects show here).
    pub source_connections: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_sent: AtomicU64,
    /// Source bytes thrown away by the framer (garbage, broken frames).
    pub bytes_skipped: AtomicU64,
    /// Packets the transcoder could not decode and skipped (source mounts).
    pub corrupt_packets: AtomicU64,
    /// Time spent resampling and encoding this rendition (derived mounts),
    /// or decoding this source (source mounts), in nanoseconds.
    pub transcode_ns: AtomicU64,
    /// Units the transcoder's feed had no room for (it fell behind).
    pub tap_overruns: AtomicU64,
    /// How long the latest encoded output of a rendition took from the
    /// source's data arriving, and the most it took, in microseconds.
    pub transcode_delay_us: AtomicU64,
    pub transcode_delay_max_us: AtomicU64,
    /// 1 while a rendition's encoder runs (on-demand ones idle at 0).
    pub encoding: AtomicU64,
    /// Bytes the source's framer holds between reads (partial pages,
    /// elements, header captures), as of its last read.
    pub framer_bytes: AtomicU64,
    /// Times transcoding failed and its renditions ended: on a source mount,
    /// its codec process (crashed, stalled, refused the stream); on a
    /// rendition, its own encoder.
    pub transcode_failures: AtomicU64,
    /// Bytes written to the mount's recording (`dump_file`).
    pub dump_bytes: AtomicU64,
}

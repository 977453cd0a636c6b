//! `[limits]`: the server's resource caps and timeouts, and what follows
//! from them.

use std::time::Duration;

/// `[limits]`: resource caps and timeouts.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Listeners across all mounts. Default: 10000.
    pub clients: usize,
    /// Concurrent sources. Default: 100.
    pub sources: usize,
    /// Open connections of any kind at once (listeners, sources, requests
    /// still arriving, pages, admin), on every port; one over is closed as
    /// soon as it is accepted. Default (`None`): twice clients and sources,
    /// plus 1024.
    pub connections: Option<usize>,
    /// Bytes a listener may fall behind the live edge before it is dropped. Default: 524288.
    pub queue_size: usize,
    /// Bytes of recent audio a new listener receives at once. Default: 65536.
    pub burst_size: usize,
    /// Time allowed to send a complete request head. Default: 15 s.
    pub header_timeout: Duration,
    /// A source that sends nothing for this long is ended. Default: 10 s.
    pub source_timeout: Duration,
    /// A listener whose socket accepts nothing for this long is dropped. Default: 30 s.
    pub client_timeout: Duration,
    /// Longest request line or header line, in bytes. Default: 8192.
    pub max_header_line: usize,
    /// Largest request head (all lines), in bytes. Default: 16384.
    pub max_header_size: usize,
    /// Most header fields in one request. Default: 64.
    pub max_headers: usize,
    /// Listeners are woken for new audio at most this often (a mount's in
    /// four groups at phases spread over the interval). Each wake-up
    /// costs every listener a send (the dominant CPU cost at scale), so a
    /// longer interval serves more listeners per core and adds up to this
    /// much delay. Zero delivers every chunk as soon as it is framed; 100 ms
    /// is about the cadence Icecast 2.4 sends at (measured: ~11 sends per
    /// listener per second). Default: 250 ms: players hold seconds of audio,
    /// and mpv, ffmpeg and Chromium played 10 minutes through it without a
    /// stop on a clean link and on one with 100 ms delay and 1 % loss
    /// (`scripts/playback-drill`), at 4 sends per listener per second.
    pub delivery_interval: Duration,
    /// Address space each codec process (one per source mount with
    /// renditions) may map, in bytes. A stream crafted to make a decoder
    /// allocate without bound hits this limit and costs that mount's
    /// renditions a restart, not the server its memory. Default: 536870912 (512 MiB).
    pub transcode_memory: u64,
    /// After a binary upgrade hands the sockets to the new process, how long
    /// the old one keeps serving the connections it has before it ends
    /// them (see `upgrade`). Default: 600 s.
    pub upgrade_drain: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            clients: 10000,
            sources: 100,
            connections: None,
            queue_size: 524_288,
            burst_size: 65_536,
            header_timeout: Duration::from_secs(15),
            source_timeout: Duration::from_secs(10),
            client_timeout: Duration::from_secs(30),
            max_header_line: 8192,
            max_header_size: 16384,
            max_headers: 64,
            delivery_interval: Duration::from_millis(250),
            transcode_memory: 512 << 20,
            upgrade_drain: Duration::from_secs(600),
        }
    }
}

/// Connections beyond listeners and sources the default cap allows for:
/// status requests, admin, connections still sending their head.
const PENDING_FACTOR: usize = 2;

impl Limits {
    /// How many connections of any kind may be open at once: `connections`,
    /// or by default twice the listeners and sources, plus 1024.
    pub fn connection_cap(&self) -> usize {
        self.connections.unwrap_or_else(|| (self.clients + self.sources).saturating_mul(PENDING_FACTOR) + 1024)
    }
}

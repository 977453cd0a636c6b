//! Mounts: the unit of streaming. A mount has settings (`Arc<MountConfig>`,
//! replaced whole by a configuration reload), a data plane (the chunk ring, captured stream
//! headers and current metadata), at most one live source, a listener table
//! and counters. `Mounts` is the registry the server looks names up in.

mod burst;
mod delivery;
mod icy;
mod listeners;
mod metadata;
mod registry;
mod request_texts;
mod ring;
mod source_info;
mod stats;
mod stream;
pub mod tap;
mod wake;

pub use delivery::{Parked, Resume, Unparked};
pub use icy::IcyInterleaver;
pub use listeners::{ListenerEntry, Registration};
pub use metadata::{decode_with_charset, encode_icy_block, truncate_on_char_boundary, Metadata, ICY_NO_CHANGE};
pub use registry::{MountChanges, Mounts};
pub use request_texts::RequestTexts;
pub use ring::{Chunk, Ring};
pub use source_info::{SourceInfo, StreamInfo};
pub use stats::MountStats;
pub use stream::MIN_TITLE_BYTES;
pub use tap::{Tap, TapId, Tapped};

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;
// Delivery runs on tokio's clock (the system's, outside tests), so its
// timing is tested exactly under the paused clock.
use tokio::time::Instant;

use crate::config::{Limits, MountConfig};
use crate::events::Event;
use crate::format::{AudioInfo, Unit};
use delivery::DeliverySets;
use listeners::ListenerTable;
use stream::StreamState;
use wake::Groups;
pub(crate) use wake::Heads;

/// How often a mount's ring is trimmed to what its listeners still need.
const TRIM_INTERVAL: Duration = Duration::from_secs(1);
/// What listeners wait on: the next sequence to be written and whether a
/// source is live. Published through a `watch` so no wake-up is ever lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub live: bool,
    /// Bumped each time a source attaches.
    pub generation: u64,
}

/// One mount. Shared through `MountHandle`.
#[derive(Debug)]
pub struct Mount {
    name: String,
    /// Read per request, replaced by a reload.
    config: RwLock<Arc<MountConfig>>,
    /// Created by a source for a name not in the config (or taken out of
    /// it by a reload while live); forgotten when idle.
    dynamic: AtomicBool,
    queue_size: AtomicUsize,
    burst_size: AtomicUsize,
    /// Listeners are woken at most this often (in microseconds); see
    /// `Limits::delivery_interval`.
    delivery_interval_us: AtomicU64,
    /// Read-mostly: many listeners copy out chunk handles, one source appends.
    /// Held only for those copies, never across an await.
    stream: RwLock<StreamState>,
    /// What listeners wait on, one head per wake group.
    heads: Heads,
    /// The caught-up listeners, written to by a walk per publish.
    deliveries: DeliverySets,
    /// The live source, if any. Locked on attach/detach and status reads only.
    source: Mutex<Option<Arc<SourceInfo>>>,
    listeners: ListenerTable,
    /// The transcoders' feeds, while they run: the mount's own, and the
    /// HLS ladders of mounts that fall back to this one while their source
    /// is away. They see data as it is framed, before `delivery_interval`
    /// batching, so renditions add no such delay.
    taps: Mutex<Vec<Tap>>,
    /// Where listeners go when the source leaves; starts as configured,
    /// changed at run time by `/admin/fallbacks`. Read on source loss only.
    fallback: Mutex<Option<String>>,
    pub stats: MountStats,
    /// Where listener, source and title changes are published.
    events: crate::events::Events,
}

/// A cheap, clonable handle to a mount.
#[derive(Debug, Clone)]
pub struct MountHandle(Arc<Mount>);

/// Why a source could not attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountBusy;

/// A new listener's starting point.
#[derive(Debug)]
pub struct Subscription {
    /// Stream headers to send first.
    pub headers: Bytes,
    /// Sequence of the first chunk to send.
    pub cursor: u64,
    /// Bytes from `cursor` to the end of what was written when the
    /// listener joined: its burst.
    pub burst: u64,
    /// The title at the moment of joining.
    pub meta: Arc<Metadata>,
    pub head: watch::Receiver<Head>,
}

/// How far behind the live edge a listener at `cursor` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lag {
    Within,
    /// More than `queue_size` behind, or its chunks were already evicted.
    TooFar,
}

impl MountHandle {
    pub(crate) fn new(
        config: Arc<MountConfig>,
        dynamic: bool,
        limits: &Limits,
        events: crate::events::Events,
    ) -> MountHandle {
        let mount = MountHandle(Arc::new(Mount {
            name: config.name.clone(),
            dynamic: AtomicBool::new(dynamic),
            queue_size: AtomicUsize::new(0),
            burst_size: AtomicUsize::new(0),
            delivery_interval_us: AtomicU64::new(0),
            stream: RwLock::new(StreamState::new(0)),
            heads: Heads::new(),
            deliveries: DeliverySets::default(),
            source: Mutex::new(None),
            listeners: ListenerTable::default(),
            fallback: Mutex::new(config.fallback_mount.clone()),
            taps: Mutex::new(Vec::new()),
            stats: MountStats::default(),
            events,
            config: RwLock::new(config.clone()),
        }));
        mount.tune(&config, limits);
        mount
    }

    /// Size the ring and the listener queues for `config` and `limits`.
    fn tune(&self, config: &MountConfig, limits: &Limits) {
        let queue_size = config.queue_size.unwrap_or(limits.queue_size);
        let burst_size = config.burst_size.unwrap_or(limits.burst_size);
        // Room for the slowest tolerated listener plus a full burst behind it,
        // and for the chunks' bookkeeping and titles (see `Ring`).
        let capacity = queue_size + burst_size + ((queue_size + burst_size) / 8).max(16 * 1024);
        let interval = u64::try_from(limits.delivery_interval.as_micros()).unwrap_or(u64::MAX);
        self.0.queue_size.store(queue_size, Ordering::Relaxed);
        self.0.burst_size.store(burst_size, Ordering::Relaxed);
        self.0.delivery_interval_us.store(interval, Ordering::Relaxed);
        let mut stream = self.0.stream.write();
        stream.ring.set_capacity(capacity);
        if interval == 0 {
            // Units go straight into the ring from now on: what was held
            // back for the next wake-up goes first, not after them.
            stream.release_held();
        }
    }

    /// Take new settings (a configuration reload): limits, sizes and the
    /// configured fallback apply from now on; the source and listeners stay.
    /// `dynamic` marks a mount the new configuration no longer names (it is
    /// forgotten once its source leaves). A fallback set at run time by
    /// `/admin/fallbacks` survives unless the configured one changed.
    pub fn reconfigure(&self, config: Arc<MountConfig>, limits: &Limits, dynamic: bool) {
        let old = std::mem::replace(&mut *self.0.config.write(), config.clone());
        if old.fallback_mount != config.fallback_mount {
            self.set_fallback(config.fallback_mount.clone());
        }
        self.0.dynamic.store(dynamic, Ordering::Relaxed);
        self.tune(&config, limits);
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The settings in force.
    pub fn config(&self) -> Arc<MountConfig> {
        self.0.config.read().clone()
    }

    /// The current fallback mount name.
    pub fn fallback(&self) -> Option<String> {
        self.0.fallback.lock().clone()
    }

    pub fn set_fallback(&self, fallback: Option<String>) {
        *self.0.fallback.lock() = fallback;
    }

    pub fn is_dynamic(&self) -> bool {
        self.0.dynamic.load(Ordering::Relaxed)
    }

    fn delivery_interval(&self) -> Duration {
        Duration::from_micros(self.0.delivery_interval_us.load(Ordering::Relaxed))
    }

    fn burst_size(&self) -> usize {
        self.0.burst_size.load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> &MountStats {
        &self.0.stats
    }

    pub fn same(&self, other: &MountHandle) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The live source, if one is connected.
    pub fn source(&self) -> Option<Arc<SourceInfo>> {
        self.0.source.lock().clone()
    }

    pub fn is_live(&self) -> bool {
        self.0.heads.current().live
    }

    pub fn head(&self) -> Head {
        self.0.heads.current()
    }

    /// A receiver that sees the source come and go (for a fallback's home).
    pub fn watch_head(&self) -> watch::Receiver<Head> {
        self.0.heads.subscribe(0)
    }

    /// Listeners parked in this mount's delivery sets.
    #[cfg(test)]
    pub(crate) fn parked(&self) -> usize {
        self.0.deliveries.parked()
    }

    /// The head as listener `id`'s wake group sees it (as `subscribe` gives it).
    pub fn watch_group_of(&self, id: u64) -> watch::Receiver<Head> {
        self.0.heads.subscribe(Heads::group_of(id))
    }

    /// The stream headers new listeners get first (Ogg/WebM header pages).
    pub fn stream_headers(&self) -> Bytes {
        self.0.stream.read().headers.clone()
    }

    pub fn metadata(&self) -> Arc<Metadata> {
        self.0.stream.read().meta.clone()
    }

    /// Title changes take effect at the current end of the stream: chunks
    /// written from now on carry them. A change less than `MIN_TITLE_BYTES`
    /// after the previous one replaces it instead.
    pub fn set_metadata(&self, meta: Metadata) {
        let meta = Arc::new(meta);
        self.0.events.publish(|| Event::Title { mount: self.name().to_string(), title: meta.song.clone() });
        self.0.stream.write().set_title(meta.clone());
        for tap in self.0.taps.lock().iter() {
            tap.offer(Tapped::Title(meta.clone()));
        }
    }

    /// Attach a source; fails while another is live.
    pub fn attach_source(&self, info: Arc<SourceInfo>) -> Result<(), MountBusy> {
        let mut source = self.0.source.lock();
        if source.is_some() {
            return Err(MountBusy);
        }
        self.0.events.publish(|| Event::SourceConnected {
            mount: self.name().to_string(),
            content_type: info.content_type.clone(),
            ip: info.peer.ip().to_string(),
        });
        *source = Some(info);
        {
            let mut stream = self.0.stream.write();
            stream.headers = Bytes::new();
            stream.meta = Arc::new(Metadata::default());
            stream.title_at = None;
            // New listeners get nothing of an earlier source's stream.
            stream.burst_floor = stream.publish_point();
        }
        self.0.heads.modify_all(|h| {
            h.live = true;
            h.generation += 1;
        });
        Ok(())
    }

    /// The stream starts afresh while its source stays attached (an
    /// on-demand rendition whose encoder stopped): listeners joining from now
    /// get neither the old stream headers nor old audio, only what follows.
    pub fn restart_stream(&self) {
        let seq = {
            let mut stream = self.0.stream.write();
            let seq = stream.publish_point();
            stream.headers = Bytes::new();
            stream.burst_floor = seq;
            seq
        };
        self.publish(Groups::ALL, seq);
    }

    /// Detach the source `info` (no-op if another one is attached now).
    pub fn detach_source(&self, info: &Arc<SourceInfo>) {
        let mut source = self.0.source.lock();
        if source.as_ref().is_some_and(|s| Arc::ptr_eq(s, info)) {
            *source = None;
            self.0.events.publish(|| Event::SourceLeft { mount: self.name().to_string() });
            let seq = {
                let mut stream = self.0.stream.write();
                let seq = stream.publish_point();
                if self.0.listeners.len() == 0 {
                    stream.release_all();
                }
                seq
            };
            self.0.heads.modify_all(|h| {
                h.live = false;
                h.seq = seq;
            });
            // Parked listeners go back to their tasks, which send what is
            // left and follow the fallback.
            self.0.deliveries.unpark_where(|_| true);
        }
    }

    /// Append what the framer produced and wake the listener groups that are
    /// due (each at most once per `delivery_interval`). Held-back data waits
    /// in one pending buffer and enters the ring as one chunk when a group is
    /// published (`publish_due` tells the source when), so each listener
    /// handles a few chunks per wake-up, not one per source write.
    pub fn push_units(&self, units: &mut Vec<Unit>) {
        if units.is_empty() {
            return;
        }
        let now = Instant::now();
        let interval = self.delivery_interval();
        let wake = {
            let mut stream = self.0.stream.write();
            // Under the stream lock, as in `set_tap`: a tap set meanwhile
            // gets these units either here or as the stored headers, never
            // neither (a transcoder that missed the Ogg headers decoded
            // nothing until the next chain link).
            self.tap(units, now.into_std());
            for unit in units.drain(..) {
                match unit {
                    Unit::Data { bytes, sync } => stream.hold(&bytes, sync),
                    // Headers also go into the ring, even at the start of a
                    // stream: a listener may already be waiting there (it
                    // joined before they arrived, or came back from a
                    // fallback). New joiners get the stored copy instead.
                    Unit::Headers { bytes, .. } => {
                        stream.release_held();
                        stream.headers = bytes.clone();
                        let meta = stream.meta.clone();
                        stream.push(bytes, meta, true, true);
                    }
                }
            }
            if interval.is_zero() {
                // Framers hand out one unit per frame or page; without a
                // delivery interval a push's frames still make one chunk.
                stream.release_held();
            }
            self.due_groups(&mut stream, now)
        };
        if let Some((groups, seq)) = wake {
            self.publish(groups, seq);
        }
    }

    /// Wake `groups` for data before `seq`: their waiting listeners through
    /// the heads, their parked ones by a walk each (in a task of its own, so
    /// the groups of a large mount are written by all worker threads).
    fn publish(&self, groups: Groups, seq: u64) {
        self.0.heads.wake(groups, seq);
        for group in 0..wake::GROUPS {
            if groups.contains(group) && self.0.deliveries.needs_walk(group) {
                let mount = self.clone();
                tokio::spawn(async move { mount.walk(group) });
            }
        }
    }

    /// The groups due now and the sequence to wake them for (trimming the
    /// ring on the way), or `None` if none is due.
    fn due_groups(&self, stream: &mut StreamState, now: Instant) -> Option<(Groups, u64)> {
        let groups = stream.schedule.take_due(now, self.delivery_interval());
        if groups.is_empty() {
            return None;
        }
        self.trim(stream, now);
        Some((groups, stream.publish_point()))
    }

    /// When a group with data to be woken for is due, if there is one.
    pub fn publish_due(&self) -> Option<Instant> {
        let stream = self.0.stream.read();
        let pending = if stream.held.is_empty() { self.0.heads.behind(stream.ring.head_seq()) } else { Groups::ALL };
        stream.schedule.next_due(pending, Instant::now())
    }

    /// Publish to the groups that are due (the source's timer, when it sent
    /// nothing new).
    pub fn publish_scheduled(&self) {
        let wake = self.due_groups(&mut self.0.stream.write(), Instant::now());
        if let Some((groups, seq)) = wake {
            self.publish(groups, seq);
        }
    }

    /// Publish everything appended so far to every listener at once (the
    /// stream ends or is about to change hands).
    pub fn publish_now(&self) {
        let now = Instant::now();
        let seq = {
            let mut stream = self.0.stream.write();
            self.trim(&mut stream, now);
            stream.publish_point()
        };
        self.publish(Groups::ALL, seq);
    }

    /// Let go of the chunks no listener needs any more: those before the
    /// slowest listener's cursor and before a new listener's burst. Without
    /// this every mount would keep a full `queue_size` ring however fast its
    /// listeners are. At most once per `TRIM_INTERVAL`, with the stream
    /// locked: a listener subscribing concurrently is either already in the
    /// table (at cursor 0, which holds the trim) or subscribes to the
    /// trimmed ring.
    fn trim(&self, stream: &mut StreamState, now: Instant) {
        if stream.last_trim.is_some_and(|last| now.duration_since(last) < TRIM_INTERVAL) {
            return;
        }
        stream.last_trim = Some(now);
        let burst = stream.ring.burst_start(self.burst_size()).max(stream.burst_floor);
        let keep = self.0.listeners.slowest_cursor().map_or(burst, |slowest| slowest.min(burst));
        stream.ring.trim_before(keep);
    }

    /// Record stream parameters the framer found.
    pub fn set_audio_info(&self, audio: Option<AudioInfo>) {
        if let (Some(audio), Some(source)) = (audio, self.source()) {
            *source.audio.lock() = Some(audio);
        }
    }

    /// Start point for listener `id`: headers, then `burst_size` of recent
    /// audio (or the live edge when `burst` is false, for moved listeners),
    /// and the head of its wake group.
    pub fn subscribe(&self, id: u64, burst: bool) -> Subscription {
        let head = self.0.heads.subscribe(Heads::group_of(id));
        let stream = self.0.stream.read();
        let cursor = if burst {
            stream.ring.burst_start(self.burst_size()).max(stream.burst_floor)
        } else {
            stream.ring.live_start()
        };
        let start = stream.ring.offset_of(cursor).unwrap_or(stream.ring.end());
        let burst = stream.write_offset().saturating_sub(start);
        Subscription { headers: stream.headers.clone(), cursor, burst, meta: stream.meta.clone(), head }
    }

    /// Copy chunk handles from `cursor` (up to about `max_bytes`), checking
    /// the listener's lag first. Returns the new cursor.
    pub fn read(&self, cursor: u64, max_bytes: usize, out: &mut Vec<Chunk>) -> Result<u64, Lag> {
        let stream = self.0.stream.read();
        self.check_lag(&stream.ring, cursor)?;
        Ok(stream.ring.read_from(cursor, max_bytes, out))
    }

    /// `read`, as one buffer of the bytes (see `Ring::copy_from`), shared
    /// with whoever asked for the same since the ring last grew. Returns the
    /// bytes and the new cursor.
    pub fn read_copy(&self, cursor: u64, max_bytes: usize) -> Result<(Bytes, u64), Lag> {
        let stream = self.0.stream.read();
        self.check_lag(&stream.ring, cursor)?;
        Ok(stream.last_burst.copy(&stream.ring, cursor, max_bytes))
    }

    /// Is a listener whose next byte is at stream offset `position` too far behind?
    pub fn lag_at(&self, position: u64) -> Lag {
        let stream = self.0.stream.read();
        if stream.ring.end().saturating_sub(position) > self.queue_size() as u64 {
            Lag::TooFar
        } else {
            Lag::Within
        }
    }

    fn check_lag(&self, ring: &Ring, cursor: u64) -> Result<(), Lag> {
        if cursor < ring.first_seq() {
            return Err(Lag::TooFar);
        }
        match ring.offset_of(cursor) {
            Some(offset) if ring.end() - offset <= self.queue_size() as u64 => Ok(()),
            Some(_) => Err(Lag::TooFar),
            // A cursor past the head cannot happen; treat it as at the head.
            None => Ok(()),
        }
    }

    /// Add a listener, enforcing `max_listeners` unless `forced` (moves).
    pub fn register(&self, entry: Arc<ListenerEntry>, forced: bool) -> Option<Registration> {
        if !forced {
            if let Some(max) = self.0.config.read().max_listeners {
                if self.0.listeners.len() >= max {
                    return None;
                }
            }
        }
        let count = self.0.listeners.insert(entry.clone()) as u64;
        self.0.events.publish(|| Event::ListenerAdded {
            mount: self.name().to_string(),
            id: entry.id,
            ip: entry.ip.to_string(),
            user_agent: entry.request.user_agent().map(str::to_string),
        });
        let stats = &self.0.stats;
        stats.listeners.store(count, Ordering::Relaxed);
        stats.listener_peak.fetch_max(count, Ordering::Relaxed);
        stats.listener_connections.fetch_add(1, Ordering::Relaxed);
        Some(Registration { mount: self.clone(), entry })
    }

    fn unregister(&self, entry: &ListenerEntry) {
        let count = self.0.listeners.remove(entry.id);
        self.0.events.publish(|| Event::ListenerRemoved {
            mount: self.name().to_string(),
            id: entry.id,
            seconds: entry.connected().elapsed().as_secs(),
        });
        self.0.stats.listeners.store(count as u64, Ordering::Relaxed);
        if count == 0 && !self.is_live() {
            // The last listener draining an ended stream is gone.
            let _source = self.0.source.lock();
            if !self.is_live() {
                self.0.stream.write().release_all();
            }
        }
    }

    /// Bytes the mount keeps for its listeners (ring data, bookkeeping,
    /// titles, stream headers, data held back for the next wake-up, the
    /// last burst copied) and in
    /// its source's framer: everything its source can make it hold.
    pub fn held_bytes(&self) -> usize {
        let framer = self.0.stats.framer_bytes.load(Ordering::Relaxed) as usize;
        let stream = self.0.stream.read();
        stream.ring.held() + stream.held.len() + stream.headers.len() + stream.last_burst.held() + framer
    }

    pub fn listeners(&self) -> Vec<Arc<ListenerEntry>> {
        self.0.listeners.snapshot()
    }

    pub fn listener(&self, id: u64) -> Option<Arc<ListenerEntry>> {
        self.0.listeners.get(id)
    }

    pub fn listener_count(&self) -> usize {
        self.0.listeners.len()
    }

    pub fn queue_size(&self) -> usize {
        self.0.queue_size.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;

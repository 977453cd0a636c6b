//! Adaptive HTTP streaming: every mount also as HLS, Low-Latency HLS and
//! DASH, from one set of CMAF segments.
//!
//! The mount's codec process encodes the ladder's variants on one 48 kHz
//! timeline and sends their coded frames; the supervisor hands them to the
//! mount's [`HlsStream`], whose [`window::Window`] cuts them into parts and
//! segments ([`cmaf`] writes the boxes, [`id3`] the titles in them). HTTP
//! requests read the window: playlists and manifests are rendered from it on
//! request, blocking ones wait for the part they ask for.

pub mod cmaf;
pub mod id3;
pub mod mpd;
pub mod playlist;
pub mod rendered;
pub mod serve;
pub mod window;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::config::{HlsConfig, HlsMode};
use rendered::{Document, DocumentKey, Rendered};
use window::Window;

/// One mount's adaptive stream: its settings, its window, and a wake-up for
/// requests waiting on the next part.
#[derive(Debug)]
pub struct HlsStream {
    pub config: HlsConfig,
    /// The window; locked briefly to add a part or render a playlist.
    window: Mutex<Window>,
    /// Counts publications: blocking requests wait for it to move.
    published: watch::Sender<u64>,
    /// When an HLS or DASH request last came (on-demand ladders run while recent).
    last_request: Mutex<Option<Instant>>,
    /// Playlists rendered since the last publication.
    rendered: Mutex<Rendered>,
    /// The writer whose parts the window takes (see [`HlsWriter`]); read
    /// and changed under the window's lock.
    owner: AtomicU64,
}

impl HlsStream {
    pub fn new(config: &HlsConfig) -> HlsStream {
        HlsStream {
            config: config.clone(),
            window: Mutex::new(Window::new(config)),
            published: watch::channel(0).0,
            last_request: Mutex::new(None),
            rendered: Mutex::new(Rendered::default()),
            owner: AtomicU64::new(0),
        }
    }

    /// A listener asked for this stream.
    pub fn touch(&self) {
        *self.last_request.lock() = Some(Instant::now());
    }

    /// Did a listener ask for this stream within `window`?
    pub fn requested_within(&self, window: std::time::Duration) -> bool {
        self.last_request.lock().is_some_and(|at| at.elapsed() < window)
    }

    /// Should the ladder be encoding now?
    pub fn wanted(&self, now: Instant) -> bool {
        match self.config.mode {
            HlsMode::Off => false,
            HlsMode::Always => true,
            HlsMode::OnDemand => self.last_request.lock().is_some_and(|at| now.duration_since(at) < self.config.idle),
        }
    }

    /// Read the window (briefly: it is locked meanwhile).
    pub fn read<R>(&self, f: impl FnOnce(&Window) -> R) -> R {
        f(&self.window.lock())
    }

    /// A playlist as it stands: rendered by `render` unless it already was
    /// since the window last changed.
    pub fn document(&self, key: DocumentKey, render: impl FnOnce(&Window) -> String) -> Arc<Document> {
        let version = *self.published.borrow();
        if let Some(document) = self.rendered.lock().get(version, key) {
            return document;
        }
        // Rendered outside the cache's lock; should the window move on
        // meanwhile, the next request sees a newer version and renders again.
        let document = Arc::new(Document::new(self.read(render)));
        self.rendered.lock().put(version, key, document.clone());
        document
    }

    /// Become the stream's writer: the codec session that feeds it from now
    /// on (a source's ladder, or the ladder following its fallback while it
    /// is away). Whatever an earlier writer left open ends here, and its
    /// calls are ignored from now on.
    pub fn writer(self: &Arc<Self>) -> HlsWriter {
        let mut window = self.window.lock();
        let id = self.owner.load(Ordering::Relaxed) + 1;
        self.owner.store(id, Ordering::Relaxed);
        window.end();
        drop(window);
        self.wake();
        HlsWriter { stream: self.clone(), id }
    }

    /// Change the window if `writer` still owns it; whether it did, and
    /// whether a part was published.
    fn write_as(&self, writer: u64, f: impl FnOnce(&mut Window) -> bool) -> bool {
        let mut window = self.window.lock();
        self.owner.load(Ordering::Relaxed) == writer && f(&mut window)
    }

    fn wake(&self) {
        self.published.send_modify(|n| *n += 1);
    }

    /// Wait (at most `limit`) until `ready` holds for the window; whether it does.
    pub async fn wait_until(&self, limit: Duration, ready: impl Fn(&Window) -> bool) -> bool {
        let mut published = self.published.subscribe();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.read(&ready) {
                return true;
            }
            match tokio::time::timeout_at(deadline, published.changed()).await {
                Ok(Ok(())) => {}
                _ => return self.read(&ready),
            }
        }
    }

    /// Bytes the window holds.
    pub fn held_bytes(&self) -> usize {
        self.read(Window::bytes)
    }

    /// Seconds of audio the window holds.
    pub fn held_seconds(&self) -> f64 {
        self.read(|w| w.span() as f64 / f64::from(cmaf::TIMESCALE))
    }
}

/// The right to feed a stream's window, held by one codec session at a
/// time; the latest to claim it wins.
#[derive(Debug)]
pub struct HlsWriter {
    stream: Arc<HlsStream>,
    id: u64,
}

impl HlsWriter {
    pub fn stream(&self) -> &HlsStream {
        &self.stream
    }

    /// The codec process starts encoding the ladder.
    pub fn begin(&self) {
        self.publish(|w| {
            w.begin(SystemTime::now());
            true
        });
    }

    /// The ladder stopped (codec process ended, or nobody asks any more).
    pub fn end(&self) {
        self.publish(|w| {
            w.end();
            true
        });
    }

    /// A variant's encoder started.
    pub fn started(&self, variant: usize, channels: u8, pre_skip: u16) {
        self.publish(|w| {
            w.started(variant, channels, pre_skip);
            true
        });
    }

    /// Coded frames of a variant.
    pub fn frames(&self, variant: usize, frames: Vec<Bytes>) {
        self.publish(|w| w.frames(variant, frames, SystemTime::now()));
    }

    pub fn title(&self, title: String, artist: Option<String>) {
        self.publish(|w| {
            w.title(title, artist, SystemTime::now());
            true
        });
    }

    /// Apply `f` and wake waiting requests if it changed what they see.
    fn publish(&self, f: impl FnOnce(&mut Window) -> bool) {
        if self.stream.write_as(self.id, f) {
            self.stream.wake();
        }
    }
}

/// Every mount's adaptive stream, by mount name. A configured mount keeps
/// its window across source reconnects (listeners may still seek back in
/// it); a dynamic mount's goes with the mount.
#[derive(Debug, Clone, Default)]
pub struct HlsStreams(Arc<RwLock<HashMap<String, Arc<HlsStream>>>>);

impl HlsStreams {
    pub fn get(&self, mount: &str) -> Option<Arc<HlsStream>> {
        self.0.read().get(mount).cloned()
    }

    pub fn get_or_create(&self, mount: &str, config: &HlsConfig) -> Arc<HlsStream> {
        if let Some(stream) = self.get(mount) {
            return stream;
        }
        self.0.write().entry(mount.to_string()).or_insert_with(|| Arc::new(HlsStream::new(config))).clone()
    }

    pub fn remove(&self, mount: &str) {
        self.0.write().remove(mount);
    }

    /// Bytes held by every window.
    pub fn held_bytes(&self) -> usize {
        self.0.read().values().map(|s| s.held_bytes()).sum()
    }
}

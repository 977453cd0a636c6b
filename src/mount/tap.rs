//! A mount's tap: the feed of everything the mount frames (and its title
//! changes, in place) to the mount's transcoder. It is bounded in bytes as
//! well as in messages, so a transcoder that falls behind holds at most
//! `max_bytes` of the source, and a tap that is full loses data (counted by
//! the mount) rather than slowing the source down.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::Metadata;
use super::MountHandle;
use crate::format::Unit;

/// Messages in flight at most, whatever their size.
const MAX_MESSAGES: usize = 4096;

/// What a mount hands its tap: every unit as it is framed, with the time it
/// arrived, and title changes at their place in the stream.
#[derive(Debug)]
pub enum Tapped {
    Data(Bytes, Instant),
    /// Stream headers (Ogg, WebM): at the start and where a new chain begins.
    Headers(Bytes, Instant),
    Title(Arc<Metadata>),
}

impl Tapped {
    /// The stream bytes it carries (none for a title).
    fn data_len(&self) -> usize {
        match self {
            Tapped::Data(bytes, _) | Tapped::Headers(bytes, _) => bytes.len(),
            Tapped::Title(_) => 0,
        }
    }
}

/// The sending side, held by the mount.
#[derive(Debug)]
pub struct Tap {
    tx: mpsc::Sender<Tapped>,
    /// Data bytes sent and not yet received.
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// The receiving side, held by the transcoder.
#[derive(Debug)]
pub struct TapReceiver {
    rx: mpsc::Receiver<Tapped>,
    queued: Arc<AtomicUsize>,
}

/// Which tap a mount holds, so a transcoder removes only its own.
#[derive(Debug, Clone)]
pub struct TapId(Arc<AtomicUsize>);

/// A tap holding at most `max_bytes` of data in flight.
pub fn channel(max_bytes: usize) -> (Tap, TapReceiver) {
    let (tx, rx) = mpsc::channel(MAX_MESSAGES);
    let queued = Arc::new(AtomicUsize::new(0));
    (Tap { tx, queued: queued.clone(), max_bytes }, TapReceiver { rx, queued })
}

impl Tap {
    pub fn id(&self) -> TapId {
        TapId(self.queued.clone())
    }

    pub fn is(&self, id: &TapId) -> bool {
        Arc::ptr_eq(&self.queued, &id.0)
    }

    /// Send without waiting; false if the tap is full (or closed).
    pub fn offer(&self, message: Tapped) -> bool {
        let len = message.data_len();
        if self.queued.load(Ordering::Relaxed) + len > self.max_bytes {
            return false;
        }
        self.queued.fetch_add(len, Ordering::Relaxed);
        if self.tx.try_send(message).is_err() {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            return false;
        }
        true
    }
}

impl TapReceiver {
    /// The next message; `None` once the mount has dropped the tap.
    pub async fn recv(&mut self) -> Option<Tapped> {
        let message = self.rx.recv().await?;
        self.queued.fetch_sub(message.data_len(), Ordering::Relaxed);
        Some(message)
    }

    /// The next message if one is waiting.
    pub fn try_recv(&mut self) -> Option<Tapped> {
        let message = self.rx.try_recv().ok()?;
        self.queued.fetch_sub(message.data_len(), Ordering::Relaxed);
        Some(message)
    }
}

/// How a mount feeds its taps.
impl MountHandle {
    /// Give the tap a copy of every unit (handles, not bytes). A tap that
    /// cannot keep up loses data rather than slowing the source: the
    /// transcoder's decoder resyncs.
    pub(super) fn tap(&self, units: &[Unit], now: Instant) {
        let taps = self.0.taps.lock();
        for tap in taps.iter() {
            for unit in units {
                let message = match unit {
                    Unit::Data { bytes, .. } => Tapped::Data(bytes.clone(), now),
                    Unit::Headers { bytes, .. } => Tapped::Headers(bytes.clone(), now),
                };
                if !tap.offer(message) {
                    self.0.stats.tap_overruns.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Start feeding a transcoder: the current stream headers first, then
    /// everything framed from now on.
    pub fn set_tap(&self, tap: Tap) {
        // The stream lock is held until the tap is in place, so a push
        // cannot fall between the stored headers and the tap (see `push_units`).
        let stream = self.0.stream.read();
        if !stream.headers.is_empty() {
            tap.offer(Tapped::Headers(stream.headers.clone(), Instant::now()));
        }
        self.0.taps.lock().push(tap);
    }

    /// Stop feeding the transcoder that holds `id` (its receiver sees the
    /// end); other taps stay.
    pub fn clear_tap(&self, id: &TapId) {
        self.0.taps.lock().retain(|t| !t.is(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_in_bytes_and_freed_as_received() {
        let (tap, mut rx) = channel(10);
        let data = |n: usize| Tapped::Data(Bytes::from(vec![0u8; n]), Instant::now());
        assert!(tap.offer(data(6)));
        assert!(!tap.offer(data(6)), "over the byte budget");
        assert!(tap.offer(Tapped::Title(Arc::default())), "titles are small");
        assert!(tap.offer(data(4)));
        assert!(matches!(rx.recv().await, Some(Tapped::Data(b, _)) if b.len() == 6));
        assert!(tap.offer(data(6)), "room again once received");
        assert!(matches!(rx.try_recv(), Some(Tapped::Title(_))));
        assert!(matches!(rx.try_recv(), Some(Tapped::Data(b, _)) if b.len() == 4));
        assert!(matches!(rx.try_recv(), Some(Tapped::Data(b, _)) if b.len() == 6));
        assert!(rx.try_recv().is_none());
        assert!(tap.offer(data(10)), "all of it received");
        assert!(tap.is(&tap.id()));
        let (other, _) = channel(1);
        assert!(!tap.is(&other.id()));
    }
}

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

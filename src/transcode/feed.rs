//! From the source mount to the codec thread: the mount's tap (a bounded
//! channel fed as units are framed) read through a blocking `Read` the
//! decoder pulls from. Title changes travel in the same channel at their
//! place in the audio and are handed over when the decoder reads past them.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::mount::{Metadata, Tapped};

/// The latest title change the decoder has read past, for the codec thread.
#[derive(Clone, Default)]
pub struct Titles(Arc<Mutex<Option<Arc<Metadata>>>>);

impl Titles {
    pub fn take(&self) -> Option<Arc<Metadata>> {
        self.0.lock().take()
    }
}

/// Timing the codec thread reads: how long it waited for the source, and
/// when the data it is decoding arrived.
#[derive(Clone)]
pub struct Clock {
    base: Instant,
    waited_ns: Arc<AtomicU64>,
    /// Arrival of the newest data handed to the decoder, as nanoseconds since `base`.
    arrived_ns: Arc<AtomicU64>,
}

impl Clock {
    pub fn waited_ns(&self) -> u64 {
        self.waited_ns.load(Ordering::Relaxed)
    }

    /// How long ago the newest decoded data arrived from the source.
    pub fn since_arrival(&self) -> std::time::Duration {
        let arrived = self.base + std::time::Duration::from_nanos(self.arrived_ns.load(Ordering::Relaxed));
        arrived.elapsed()
    }
}

/// A blocking reader over the tap: EOF when the tap is dropped.
pub struct FeedReader {
    rx: mpsc::Receiver<Tapped>,
    current: Bytes,
    titles: Titles,
    clock: Clock,
}

impl FeedReader {
    pub fn new(rx: mpsc::Receiver<Tapped>) -> FeedReader {
        let clock = Clock { base: Instant::now(), waited_ns: Arc::default(), arrived_ns: Arc::default() };
        FeedReader { rx, current: Bytes::new(), titles: Titles::default(), clock }
    }

    pub fn titles(&self) -> Titles {
        self.titles.clone()
    }

    pub fn clock(&self) -> Clock {
        self.clock.clone()
    }
}

impl Read for FeedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            let waiting = Instant::now();
            let next = self.rx.blocking_recv();
            self.clock.waited_ns.fetch_add(waiting.elapsed().as_nanos() as u64, Ordering::Relaxed);
            match next {
                Some(Tapped::Data(data, arrived)) => {
                    let since = arrived.saturating_duration_since(self.clock.base).as_nanos() as u64;
                    self.clock.arrived_ns.store(since, Ordering::Relaxed);
                    self.current = data;
                }
                Some(Tapped::Title(meta)) => *self.titles.0.lock() = Some(meta),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

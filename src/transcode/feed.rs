//! The codec process's input: framed messages from the server on stdin,
//! each data message one frame or page the source mount cut, which the
//! decoder pulls one at a time ([`Frames`]). Title changes and on-demand
//! switches travel in the same pipe at their place in the stream, and are
//! handed to the encoding loop ([`Pending`]) once the decoder has read past
//! them.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;

use super::decode::Frames;
use super::wire::{self, Target, Title, ToCodec};

/// What the decoder has read past and the encoding loop has not seen yet.
#[derive(Debug, Default)]
pub struct Pending {
    /// The latest title change (a quicker one replaces an earlier one).
    pub title: Option<Title>,
    /// On-demand switches, in order.
    pub wants: Vec<(Target, bool)>,
    /// Arrival time (µs into the session) of the newest source data read.
    pub arrived_us: u64,
    /// Time spent waiting for the server, in nanoseconds.
    pub waited_ns: u64,
}

/// [`Pending`], shared between the reader (inside the decoder) and the loop.
#[derive(Clone, Default)]
pub struct Shared(Arc<Mutex<Pending>>);

impl Shared {
    /// Take the title and switches, leaving the clock readings.
    pub fn take(&self) -> (Option<Title>, Vec<(Target, bool)>, u64) {
        let mut pending = self.0.lock();
        (pending.title.take(), std::mem::take(&mut pending.wants), pending.arrived_us)
    }

    pub fn waited_ns(&self) -> u64 {
        self.0.lock().waited_ns
    }

    pub fn arrived_us(&self) -> u64 {
        self.0.lock().arrived_us
    }
}

/// A blocking reader of the frames in the server's messages; it ends when
/// the server closes the pipe (the source ended).
pub struct FeedReader<R> {
    input: R,
    pending: Shared,
    /// Called after every message read: lets the server know we are alive.
    heartbeat: Box<dyn FnMut() + Send>,
}

impl<R: Read> FeedReader<R> {
    pub fn new(input: R, pending: Shared, heartbeat: Box<dyn FnMut() + Send>) -> FeedReader<R> {
        FeedReader { input, pending, heartbeat }
    }
}

impl<R: Read + Send + 'static> Frames for FeedReader<R> {
    fn next_frame(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            let waiting = Instant::now();
            let frame = wire::read_frame(&mut self.input);
            let mut pending = self.pending.0.lock();
            pending.waited_ns += waiting.elapsed().as_nanos() as u64;
            let message = match frame {
                Ok(None) => return Ok(None),
                Ok(Some((tag, payload))) => ToCodec::decode(tag, payload),
                Err(error) => Err(error),
            };
            let data = match message {
                Ok(ToCodec::Data { arrived_us, bytes }) => {
                    pending.arrived_us = arrived_us;
                    Some(bytes)
                }
                Ok(ToCodec::Title(title)) => {
                    pending.title = Some(title);
                    None
                }
                Ok(ToCodec::Want { target, wanted }) => {
                    pending.wants.push((target, wanted));
                    None
                }
                Ok(ToCodec::Job(_)) => return Err(io::Error::new(io::ErrorKind::InvalidData, "a second job")),
                Err(error) => return Err(io::Error::new(io::ErrorKind::InvalidData, error.to_string())),
            };
            drop(pending);
            (self.heartbeat)();
            if let Some(bytes) = data.filter(|b| !b.is_empty()) {
                return Ok(Some(bytes));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_frames_and_collects_what_travels_with_it() {
        let mut wire = Vec::new();
        ToCodec::Data { arrived_us: 5, bytes: Bytes::from_static(b"abc") }.encode(&mut wire);
        ToCodec::Title(Title { song: "S".into(), ..Title::default() }).encode(&mut wire);
        ToCodec::Want { target: Target::Rendition(1), wanted: false }.encode(&mut wire);
        ToCodec::Data { arrived_us: 9, bytes: Bytes::from_static(b"de") }.encode(&mut wire);
        let pending = Shared::default();
        let beats = Arc::new(Mutex::new(0));
        let counter = beats.clone();
        let mut reader =
            FeedReader::new(io::Cursor::new(wire), pending.clone(), Box::new(move || *counter.lock() += 1));
        let mut frames = Vec::new();
        while let Some(frame) = reader.next_frame().expect("reads") {
            frames.push(frame);
        }
        assert_eq!(frames, [&b"abc"[..], &b"de"[..]]);
        let (title, wants, arrived) = pending.take();
        assert_eq!(title.map(|t| t.song).as_deref(), Some("S"));
        assert_eq!(wants, vec![(Target::Rendition(1), false)]);
        assert_eq!(arrived, 9);
        assert_eq!(*beats.lock(), 4);
    }

    #[test]
    fn garbage_from_the_server_is_an_error() {
        let mut reader =
            FeedReader::new(io::Cursor::new(vec![3u8, 0, 0, 0, 99, 1, 2]), Shared::default(), Box::new(|| {}));
        assert!(reader.next_frame().is_err());
    }
}

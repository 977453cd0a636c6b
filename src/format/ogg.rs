//! Ogg framing: page parsing with CRC check and resync, and capture of the
//! BOS + header pages a new listener needs before any data page.
//!
//! A "group" is the set of logical streams whose BOS pages come in a row
//! (multiplexed streams); chaining starts a new group after data pages. The
//! header pages of a group go out as one `Unit::Headers` (never as data);
//! every later page is `Data { sync: true }`. Pages of a stream whose headers
//! were never seen (the source joined mid-stream) are relayed as data anyway:
//! a player that already has the headers, or tolerates their absence, copes,
//! and dropping them would silence such a source for good.

use bytes::{Buf, Bytes, BytesMut};

use self::codec::identify;
use self::page::{complete_packets, ends_open, garbage_len, parse_page, segment_table, Page, Parse};
use super::{AudioInfo, Framer, Unit};

mod codec;
mod page;

pub use codec::{codec, first_packet, Codec, CodecKind};
pub use page::{pages_of, PageRef, FLAG_BOS, FLAG_CONTINUED, FLAG_EOS};

#[cfg(test)]
mod tests;

/// Header captures larger than this are given up (cover art has limits too).
const MAX_HEADER_BYTES: usize = 1 << 20;
/// Logical streams one group may multiplex (audio, video, skeleton and a few
/// more); a flood of BOS pages beyond it is dropped, so following a group
/// costs a bounded amount of work per page.
const MAX_GROUP_STREAMS: usize = 16;

/// Frames an Ogg byte stream on page boundaries and captures its headers.
pub struct OggFramer {
    buf: BytesMut,
    /// Data pages framed during the current push, each its own unit: the
    /// transcoder reads them as they are, without finding pages again.
    pending: Vec<Bytes>,
    /// Header capture of the current group, until its headers are complete.
    capture: Option<Capture>,
    /// Whether any unit went out yet (later headers are then in-band).
    emitted: bool,
    skipped: u64,
    info: Option<AudioInfo>,
    /// While the page at the head is incomplete: where to look next for a
    /// complete, CRC-valid page that would prove the head a false sync.
    probe: usize,
}

/// Header pages collected for a group of logical streams.
struct Capture {
    pages: BytesMut,
    streams: Vec<Stream>,
    /// Still reading the group's BOS pages (they all come first).
    bos_run: bool,
    /// An audio stream of this group already set the audio info.
    has_audio: bool,
}

/// Header progress of one logical stream.
struct Stream {
    serial: u32,
    /// Header packets of its codec; `None` when unknown, in which case the
    /// pages with granule position 0 after the BOS are the headers.
    needed: Option<u32>,
    packets: u32,
    /// The last header page ended inside a packet.
    open_packet: bool,
    /// Unknown codec: a page with a real granule position was seen.
    done: bool,
}

impl OggFramer {
    /// A framer at the start of a stream.
    pub fn new() -> Self {
        OggFramer {
            buf: BytesMut::new(),
            pending: Vec::new(),
            capture: None,
            emitted: false,
            skipped: 0,
            info: None,
            probe: 0,
        }
    }

    /// One page or one resync decision; false when more input is needed.
    fn step(&mut self, out: &mut Vec<Unit>) -> bool {
        let garbage = garbage_len(&self.buf);
        if garbage > 0 {
            self.drop_bytes(garbage);
            return true;
        }
        match parse_page(&self.buf) {
            Parse::NeedMore => self.probe_false_sync(),
            Parse::Invalid => {
                // Skip the capture pattern so the scan finds the next page.
                self.drop_bytes(1);
                true
            }
            Parse::Page(page) => {
                let bytes = self.buf.split_to(page.len);
                self.probe = 0;
                self.handle_page(page, bytes, out);
                true
            }
        }
    }

    /// A capture pattern in garbage can announce a page of up to 64 KiB
    /// whose CRC can only be checked once it is all here; rather than stall
    /// the stream that long, a complete valid page found inside it proves
    /// the head false.
    fn probe_false_sync(&mut self) -> bool {
        loop {
            let from = self.probe.max(1);
            let rest = self.buf.get(from..).unwrap_or(&[]);
            let Some(at) = rest.windows(4).position(|w| w == b"OggS") else {
                self.probe = self.buf.len().saturating_sub(3);
                return false;
            };
            let at = from + at;
            match parse_page(self.buf.get(at..).unwrap_or(&[])) {
                Parse::NeedMore => {
                    self.probe = at;
                    return false;
                }
                Parse::Invalid => self.probe = at + 1,
                Parse::Page(_) => {
                    self.drop_bytes(at);
                    return true;
                }
            }
        }
    }

    fn handle_page(&mut self, page: Page, bytes: BytesMut, out: &mut Vec<Unit>) {
        if page.flags & FLAG_BOS != 0 {
            self.bos_page(&page, bytes);
        } else if let Some(capture) = &mut self.capture {
            if capture.takes(&page, &bytes) {
                capture.pages.unsplit(bytes);
                if capture.complete() {
                    self.finish_capture(out);
                }
            } else {
                // Data (or an unrelated stream) begins: the headers are over.
                self.finish_capture(out);
                self.data_page(bytes);
            }
        } else {
            self.data_page(bytes);
        }
        if self.capture.as_ref().is_some_and(|c| c.pages.len() > MAX_HEADER_BYTES) {
            self.abandon_capture();
        }
    }

    fn bos_page(&mut self, page: &Page, bytes: BytesMut) {
        if !self.capture.as_ref().is_some_and(|c| c.bos_run) {
            // A new group (chained stream); an unfinished one is dropped.
            self.abandon_capture();
        }
        if self.capture.as_ref().is_some_and(|c| c.streams.len() >= MAX_GROUP_STREAMS) {
            self.abandon_capture();
            self.skipped += bytes.len() as u64;
            return;
        }
        let capture = self.capture.get_or_insert_with(|| Capture {
            pages: BytesMut::new(),
            streams: Vec::new(),
            bos_run: true,
            has_audio: false,
        });
        let (codec, packets) = identify(page, &bytes);
        if let (Some(info), false) = (codec.info, capture.has_audio) {
            self.info = Some(info);
            capture.has_audio = true;
        }
        capture.streams.push(Stream {
            serial: page.serial,
            needed: codec.headers,
            packets,
            open_packet: ends_open(segment_table(page, &bytes)),
            done: false,
        });
        capture.pages.unsplit(bytes);
    }

    fn data_page(&mut self, bytes: BytesMut) {
        self.pending.push(bytes.freeze());
        self.emitted = true;
    }

    fn finish_capture(&mut self, out: &mut Vec<Unit>) {
        let Some(capture) = self.capture.take() else {
            return;
        };
        self.flush(out);
        out.push(Unit::Headers { bytes: capture.pages.freeze(), in_band: self.emitted });
        self.emitted = true;
    }

    fn abandon_capture(&mut self) {
        if let Some(capture) = self.capture.take() {
            self.skipped += capture.pages.len() as u64;
        }
    }

    fn flush(&mut self, out: &mut Vec<Unit>) {
        out.extend(self.pending.drain(..).map(|bytes| Unit::Data { bytes, sync: true }));
    }

    fn drop_bytes(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.advance(n);
        self.skipped += n as u64;
        self.probe = 0;
    }
}

impl Default for OggFramer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framer for OggFramer {
    fn push(&mut self, input: &[u8], out: &mut Vec<Unit>) {
        self.buf.extend_from_slice(input);
        while self.step(out) {}
        self.flush(out);
    }

    fn buffered(&self) -> usize {
        self.buf.len() + self.capture.as_ref().map_or(0, |c| c.pages.len())
    }

    fn skipped_bytes(&self) -> u64 {
        self.skipped
    }

    fn audio_info(&self) -> Option<AudioInfo> {
        self.info
    }
}

impl Capture {
    /// Whether a non-BOS page is a header page of this group (and count it).
    fn takes(&mut self, page: &Page, bytes: &[u8]) -> bool {
        self.bos_run = false;
        let Some(stream) = self.streams.iter_mut().find(|s| s.serial == page.serial) else {
            return false;
        };
        let table = segment_table(page, bytes);
        match stream.needed {
            Some(needed) if stream.packets < needed => {}
            Some(_) => return false,
            // Granule -1 means "no packet ends here": a header continuing.
            None if page.granule == 0 || (stream.open_packet && page.granule == u64::MAX) => {}
            None => {
                stream.done = true;
                return false;
            }
        }
        stream.packets += complete_packets(table);
        stream.open_packet = ends_open(table);
        true
    }

    fn complete(&self) -> bool {
        self.streams.iter().all(|s| s.needed.map_or(s.done, |n| s.packets >= n))
    }
}

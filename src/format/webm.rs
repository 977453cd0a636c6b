//! WebM/Matroska framing: EBML element parsing, capture of the stream
//! headers (EBML header, Segment start, top-level elements before the first
//! Cluster), and emission of Clusters as complete child elements.
//!
//! Live muxers write the Segment (and often Clusters) with an "unknown" size,
//! so structure is followed element by element: an unknown-size Cluster ends
//! where a top-level ID appears in place of a child. Clusters are not
//! buffered whole (live ones last seconds): each complete child goes out as
//! soon as it is read, the Cluster start together with its first child as the
//! only sync points.

use bytes::{Buf, BytesMut};

use self::ebml::{audio_info, cluster_start, read_head, Head, Parse};
use super::{AudioInfo, Framer, Unit};

mod ebml;
#[cfg(test)]
mod tests;

const EBML: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const CLUSTER: u32 = 0x1F43_B675;
const TRACKS: u32 = 0x1654_AE6B;
const VOID: u32 = 0xEC;
const CRC32: u32 = 0xBF;
const TIMECODE: u32 = 0xE7;
/// Segment children other than Cluster: SeekHead, Info, Tracks, Tags, Cues,
/// Chapters, Attachments.
const TOP_LEVEL: [u32; 7] = [0x114D_9B74, 0x1549_A966, TRACKS, 0x1254_C367, 0x1C53_BB6B, 0x1043_A770, 0x1941_A469];
/// Cluster children: Timecode, SimpleBlock, BlockGroup, Position, PrevSize,
/// SilentTracks, EncryptedBlock (plus Void and CRC-32, allowed anywhere).
const CLUSTER_CHILDREN: [u32; 9] = [TIMECODE, 0xA3, 0xA0, 0xA7, 0xAB, 0x5854, 0xAF, VOID, CRC32];
/// Larger elements are taken for garbage: elements are buffered whole, and
/// an audio frame is a few hundred bytes, a video keyframe well below this.
const MAX_ELEMENT: u64 = 2 << 20;
/// Stream headers (EBML header, Info, Tracks, Tags…) captured at most.
const MAX_HEADERS: usize = 1 << 20;
/// EBML headers are a few dozen bytes.
const MAX_EBML_HEADER: u64 = 4096;

/// Where in the element tree the next element is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Lost: looking for an EBML header or a Cluster ID.
    Scan,
    /// An EBML header is expected.
    Ebml,
    /// The Segment start is expected (after the EBML header).
    Segment,
    /// Inside the Segment: top-level elements.
    Top,
    /// Inside a Cluster with `left` bytes to go (`None`: unknown size).
    Cluster { left: Option<u64>, first: bool },
}

/// Frames a WebM byte stream on element boundaries and captures its headers.
pub struct WebmFramer {
    buf: BytesMut,
    level: Level,
    /// Header elements collected until the first Cluster.
    capture: Option<BytesMut>,
    /// Output assembled during the current push.
    pending: BytesMut,
    pending_sync: bool,
    /// `pending` holds a Cluster start whose first child is not complete yet.
    cluster_open: bool,
    /// Whether any unit went out yet (later headers are then in-band).
    emitted: bool,
    skipped: u64,
    info: Option<AudioInfo>,
    /// While the element at the head is incomplete: where to look next for
    /// a Cluster start that would prove the head garbage.
    probe: usize,
}

impl WebmFramer {
    /// A framer at the start of a stream.
    pub fn new() -> Self {
        WebmFramer {
            buf: BytesMut::new(),
            level: Level::Scan,
            capture: None,
            pending: BytesMut::new(),
            pending_sync: false,
            cluster_open: false,
            emitted: false,
            skipped: 0,
            info: None,
            probe: 0,
        }
    }

    /// One element or decision; false when more input is needed.
    fn step(&mut self, out: &mut Vec<Unit>) -> bool {
        if self.level == Level::Scan {
            return self.scan();
        }
        if let Level::Cluster { left: Some(0), .. } = self.level {
            self.close_cluster();
            return true;
        }
        match read_head(&self.buf) {
            Parse::NeedMore => false,
            Parse::Invalid => self.garbage(),
            Parse::Element(head) => match self.level {
                Level::Ebml => self.ebml_header(head),
                Level::Segment => self.segment_start(head),
                Level::Top => self.top_level(head, out),
                Level::Cluster { left, first } => self.cluster_child(head, left, first),
                // Handled above.
                Level::Scan => false,
            },
        }
    }

    /// Drop bytes up to the next EBML header or Cluster ID.
    fn scan(&mut self) -> bool {
        let found = self.buf.windows(4).position(|w| {
            let id = u32::from_be_bytes([w[0], w[1], w[2], w[3]]);
            id == EBML || id == CLUSTER
        });
        let Some(at) = found else {
            let keep = self.buf.len().min(3);
            let n = self.buf.len() - keep;
            self.drop_bytes(n);
            return n > 0;
        };
        self.drop_bytes(at);
        let is_ebml = self.buf.starts_with(&EBML.to_be_bytes());
        self.level = if is_ebml { Level::Ebml } else { Level::Top };
        true
    }

    fn ebml_header(&mut self, head: Head) -> bool {
        if head.id != EBML || head.size.is_none_or(|s| s > MAX_EBML_HEADER) {
            return self.garbage();
        }
        let Some(element) = self.take_element(head) else {
            return self.probe_false_element();
        };
        // A new EBML header replaces any unfinished capture.
        if let Some(old) = self.capture.replace(element) {
            self.skipped += old.len() as u64;
        }
        self.level = Level::Segment;
        true
    }

    fn segment_start(&mut self, head: Head) -> bool {
        if head.id == VOID && head.size.is_some_and(|s| s <= MAX_EBML_HEADER) {
            // Padding between the EBML header and the Segment is legal.
            let Some(element) = self.take_element(head) else {
                return self.probe_false_element();
            };
            self.capture_bytes(element);
            return true;
        }
        if head.id != SEGMENT {
            return self.garbage();
        }
        let start = self.take(head.len);
        self.capture_bytes(start);
        self.level = Level::Top;
        true
    }

    fn top_level(&mut self, head: Head, out: &mut Vec<Unit>) -> bool {
        match head.id {
            CLUSTER => {
                self.finish_capture(out);
                self.flush(out);
                let start = self.take(head.len);
                self.pending.unsplit(start);
                self.pending_sync = true;
                self.cluster_open = true;
                self.level = Level::Cluster { left: head.size, first: true };
                true
            }
            EBML => {
                self.level = Level::Ebml;
                true
            }
            id if TOP_LEVEL.contains(&id) || id == VOID || id == CRC32 => {
                if head.size.is_none_or(|s| s > MAX_ELEMENT) {
                    return self.garbage();
                }
                let Some(element) = self.take_element(head) else {
                    return self.probe_false_element();
                };
                if id == TRACKS {
                    self.info = audio_info(element.get(head.len..).unwrap_or(&[])).or(self.info);
                }
                if self.capture.is_some() {
                    self.capture_bytes(element);
                } else {
                    // Cues or Tags between Clusters: keep them in the stream.
                    self.pending.unsplit(element);
                }
                true
            }
            _ => self.garbage(),
        }
    }

    fn cluster_child(&mut self, head: Head, left: Option<u64>, first: bool) -> bool {
        if head.id == CLUSTER || head.id == EBML || TOP_LEVEL.contains(&head.id) {
            // The next top-level element ends an unknown-size Cluster (or a
            // Cluster whose stated size was wrong).
            self.close_cluster();
            return true;
        }
        let total = head.size.map(|s| s + head.len as u64);
        let fits = total.is_some_and(|t| left.is_none_or(|l| t <= l));
        // A real Cluster starts with its Timecode (or a CRC-32 over it): this
        // weeds out Cluster IDs found by chance while scanning garbage.
        let allowed = if first { head.id == TIMECODE || head.id == CRC32 } else { CLUSTER_CHILDREN.contains(&head.id) };
        let sane = head.id != TIMECODE || head.size.is_some_and(|s| s <= 8);
        if !fits || !allowed || !sane || head.size.is_none_or(|s| s > MAX_ELEMENT) {
            return self.garbage();
        }
        let Some(element) = self.take_element(head) else {
            return self.probe_false_element();
        };
        let used = element.len() as u64;
        self.pending.unsplit(element);
        self.cluster_open = false;
        self.level = Level::Cluster { left: left.map(|l| l.saturating_sub(used)), first: false };
        true
    }

    /// The whole element at the head of the buffer, once it is all here.
    fn take_element(&mut self, head: Head) -> Option<BytesMut> {
        let total = usize::try_from(head.size? + head.len as u64).ok()?;
        (self.buf.len() >= total).then(|| self.take(total))
    }

    fn take(&mut self, n: usize) -> BytesMut {
        self.probe = 0;
        self.buf.split_to(n.min(self.buf.len()))
    }

    /// A garbage byte that looks like an element ID can announce up to
    /// `MAX_ELEMENT` bytes; rather than stall the stream until they are all
    /// here, a well-formed Cluster start inside them proves the head false.
    fn probe_false_element(&mut self) -> bool {
        let pattern = CLUSTER.to_be_bytes();
        loop {
            let from = self.probe.max(1);
            let rest = self.buf.get(from..).unwrap_or(&[]);
            let Some(at) = rest.windows(4).position(|w| w == pattern) else {
                self.probe = self.buf.len().saturating_sub(3);
                return false;
            };
            let at = from + at;
            match cluster_start(self.buf.get(at..).unwrap_or(&[])) {
                None => {
                    self.probe = at;
                    return false;
                }
                Some(false) => self.probe = at + 1,
                Some(true) => {
                    if matches!(self.level, Level::Cluster { .. }) {
                        self.close_cluster();
                    }
                    self.drop_bytes(at);
                    self.level = Level::Top;
                    return true;
                }
            }
        }
    }

    fn close_cluster(&mut self) {
        if self.cluster_open {
            // A Cluster without children: nothing a player could start on.
            self.skipped += self.pending.len() as u64;
            self.pending.clear();
            self.cluster_open = false;
        }
        self.level = Level::Top;
    }

    /// Not a valid element where one was expected: resync.
    fn garbage(&mut self) -> bool {
        if matches!(self.level, Level::Cluster { .. }) {
            self.close_cluster();
        }
        self.drop_bytes(1);
        self.level = Level::Scan;
        true
    }

    fn capture_bytes(&mut self, bytes: BytesMut) {
        let capture = self.capture.get_or_insert_with(BytesMut::new);
        capture.unsplit(bytes);
        if capture.len() > MAX_HEADERS {
            self.skipped += capture.len() as u64;
            self.capture = None;
        }
    }

    fn finish_capture(&mut self, out: &mut Vec<Unit>) {
        let Some(capture) = self.capture.take() else {
            return;
        };
        self.flush(out);
        out.push(Unit::Headers { bytes: capture.freeze(), in_band: self.emitted });
        self.emitted = true;
    }

    fn flush(&mut self, out: &mut Vec<Unit>) {
        if !self.pending.is_empty() {
            let bytes = self.pending.split().freeze();
            out.push(Unit::Data { bytes, sync: self.pending_sync });
            self.emitted = true;
        }
        self.pending_sync = false;
    }

    fn drop_bytes(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.advance(n);
        self.skipped += n as u64;
        self.probe = 0;
    }
}

impl Default for WebmFramer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framer for WebmFramer {
    fn push(&mut self, input: &[u8], out: &mut Vec<Unit>) {
        self.buf.extend_from_slice(input);
        while self.step(out) {}
        // A lone Cluster start waits for its first child: sync units must
        // carry the Cluster's Timecode.
        if !self.cluster_open {
            self.flush(out);
        }
    }

    fn skipped_bytes(&self) -> u64 {
        self.skipped
    }

    fn buffered(&self) -> usize {
        self.buf.len() + self.pending.len() + self.capture.as_ref().map_or(0, BytesMut::len)
    }

    fn audio_info(&self) -> Option<AudioInfo> {
        self.info
    }
}

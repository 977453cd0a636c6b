//! Shared engine for formats made of self-delimiting frames behind a sync
//! word (MP3, AAC ADTS): the format only parses one header; this module owns
//! the lock/resync logic, tag skipping and output batching.
//!
//! Sync words like `0xFFF` occur by chance in garbage (and in ID3 cover art),
//! so while not locked a candidate header is only believed when the next
//! frame's header follows at the computed offset and describes the same
//! stream. Once locked, each next header only has to be valid where expected.

use std::marker::PhantomData;

use bytes::{Buf, Bytes, BytesMut};

use super::{AudioInfo, Framer, Unit};

/// What a frame header tells the engine.
pub(super) struct FrameHeader {
    /// Whole frame length, header included.
    pub len: usize,
    /// Fields that stay constant between consecutive frames of one stream
    /// (version, layer, sample rate...): two headers agree when keys match.
    pub key: u32,
    /// Audio parameters stated by this header.
    pub info: AudioInfo,
}

/// A non-audio block at the current position that must be dropped.
pub(super) enum Tag {
    /// No tag here.
    None,
    /// Could be a tag: more bytes are needed to decide.
    NeedMore,
    /// A tag of this many bytes (never 0) starts here.
    Skip(u64),
}

/// The per-format part of a sync-word framer.
pub(super) trait FrameSyntax {
    /// Bytes needed to parse a header.
    const HEADER_LEN: usize;
    /// Parse the header at the start of `head` (exactly `HEADER_LEN` bytes).
    fn parse(head: &[u8]) -> Option<FrameHeader>;
    /// Whether `byte` may begin a frame header or a tag (scanning shortcut).
    fn may_start(byte: u8) -> bool;
    /// Recognise a tag to drop at the start of `buf`.
    fn tag(_buf: &[u8]) -> Tag {
        Tag::None
    }
}

/// Sync-word framer state, generic over the header syntax.
pub(super) struct SyncFramer<S> {
    /// Input not yet framed.
    buf: BytesMut,
    /// Complete frames framed during the current push, each its own unit:
    /// the transcoder decodes them as they are, without framing them again.
    pending: Vec<Bytes>,
    /// Key of the stream we are locked on; `None` while scanning.
    key: Option<u32>,
    /// Bytes of a tag still to be dropped (tags can be larger than a read).
    tag_left: u64,
    skipped: u64,
    info: Option<AudioInfo>,
    syntax: PhantomData<fn() -> S>,
}

impl<S: FrameSyntax> Framer for SyncFramer<S> {
    /// Frame `input`; every frame completed by it goes out as a `Data` unit.
    fn push(&mut self, input: &[u8], out: &mut Vec<Unit>) {
        self.buf.extend_from_slice(input);
        while self.step() {}
        out.extend(self.pending.drain(..).map(|bytes| Unit::Data { bytes, sync: true }));
    }

    /// Bytes dropped so far (garbage and tags).
    fn skipped_bytes(&self) -> u64 {
        self.skipped
    }

    fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Parameters of the last frame framed.
    fn audio_info(&self) -> Option<AudioInfo> {
        self.info
    }
}

impl<S: FrameSyntax> SyncFramer<S> {
    /// A framer that starts unlocked.
    pub(super) fn new() -> Self {
        SyncFramer {
            buf: BytesMut::new(),
            pending: Vec::new(),
            key: None,
            tag_left: 0,
            skipped: 0,
            info: None,
            syntax: PhantomData,
        }
    }

    /// One decision at the head of the buffer; false when more input is needed.
    fn step(&mut self) -> bool {
        if self.tag_left > 0 {
            return self.drop_tag_bytes();
        }
        match S::tag(&self.buf) {
            Tag::NeedMore => return false,
            Tag::Skip(len) => {
                self.tag_left = len;
                return true;
            }
            Tag::None => {}
        }
        let Some(header) = self.buf.get(..S::HEADER_LEN).and_then(S::parse) else {
            return self.not_a_frame();
        };
        match self.key {
            Some(key) if key == header.key => self.take_if_complete(header),
            Some(_) => self.lose_lock(),
            None => self.try_lock(header),
        }
    }

    /// Locked: take the frame once it is complete and what follows it is the
    /// next frame (or a tag). A frame followed by garbage was cut short by the
    /// source, so it is dropped rather than relayed. Waiting for the next
    /// header's few bytes costs almost no latency: sources write in pieces
    /// that rarely end right at a frame boundary.
    fn take_if_complete(&mut self, header: FrameHeader) -> bool {
        let Some(after) = self.buf.get(header.len..) else {
            return false;
        };
        let follows = match S::tag(after) {
            Tag::Skip(_) => true,
            Tag::NeedMore => return false,
            Tag::None => match after.get(..S::HEADER_LEN) {
                None => return false,
                Some(next) => S::parse(next).is_some_and(|next| next.key == header.key),
            },
        };
        if follows {
            self.take(header);
            true
        } else {
            self.lose_lock()
        }
    }

    /// Unlocked: only lock when the next header confirms this one.
    fn try_lock(&mut self, header: FrameHeader) -> bool {
        let Some(next) = self.buf.get(header.len..header.len + S::HEADER_LEN) else {
            return false;
        };
        match S::parse(next) {
            Some(next) if next.key == header.key => {
                self.key = Some(header.key);
                self.take(header);
            }
            _ => self.scan(),
        }
        true
    }

    fn not_a_frame(&mut self) -> bool {
        if self.buf.len() < S::HEADER_LEN {
            return false;
        }
        if self.key.is_some() {
            return self.lose_lock();
        }
        self.scan();
        true
    }

    /// The expected header is missing: rescan from this very position.
    fn lose_lock(&mut self) -> bool {
        self.key = None;
        true
    }

    fn take(&mut self, header: FrameHeader) {
        self.info = Some(header.info);
        self.pending.push(self.buf.split_to(header.len).freeze());
    }

    /// Drop garbage up to the next byte that could start a header or tag.
    fn scan(&mut self) {
        let next = self.buf.iter().skip(1).position(|&b| S::may_start(b));
        let n = next.map_or(self.buf.len(), |p| p + 1);
        self.drop_bytes(n);
    }

    fn drop_tag_bytes(&mut self) -> bool {
        let n = usize::try_from(self.tag_left).map_or(self.buf.len(), |t| t.min(self.buf.len()));
        if n == 0 {
            return false;
        }
        self.tag_left -= n as u64;
        self.drop_bytes(n);
        true
    }

    fn drop_bytes(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.advance(n);
        self.skipped += n as u64;
    }
}

/// Helpers shared by the framers' unit tests.
#[cfg(test)]
pub(super) mod testing {
    use super::super::{Framer, Unit};

    pub use crate::testutil::Rng;

    /// Feed `data` in pieces of the sizes `piece` returns; collect the units.
    pub fn feed_with(framer: &mut dyn Framer, data: &[u8], mut piece: impl FnMut() -> usize) -> Vec<Unit> {
        let mut out = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let n = piece().clamp(1, rest.len());
            let (now, later) = rest.split_at(n);
            framer.push(now, &mut out);
            rest = later;
        }
        out
    }

    /// Feed `data` in one push.
    pub fn feed_all(framer: &mut dyn Framer, data: &[u8]) -> Vec<Unit> {
        let mut out = Vec::new();
        framer.push(data, &mut out);
        out
    }

    /// Feed one byte per push.
    pub fn feed_bytewise(framer: &mut dyn Framer, data: &[u8]) -> Vec<Unit> {
        feed_with(framer, data, || 1)
    }

    /// Feed in random pieces of 1..=max bytes.
    pub fn feed_random(framer: &mut dyn Framer, data: &[u8], seed: u64, max: usize) -> Vec<Unit> {
        let mut rng = Rng(seed | 1);
        feed_with(framer, data, || 1 + rng.below(max))
    }

    /// Compare byte strings without dumping them whole on failure.
    #[track_caller]
    pub fn assert_same(got: &[u8], expected: &[u8]) {
        let diff = got.iter().zip(expected).position(|(a, b)| a != b);
        assert!(
            diff.is_none() && got.len() == expected.len(),
            "got {} bytes, expected {}, first difference at {:?}",
            got.len(),
            expected.len(),
            diff
        );
    }

    /// All bytes the units carry, in order.
    pub fn concat(units: &[Unit]) -> Vec<u8> {
        let mut all = Vec::new();
        for unit in units {
            match unit {
                Unit::Data { bytes, .. } | Unit::Headers { bytes, .. } => all.extend_from_slice(bytes),
            }
        }
        all
    }
}

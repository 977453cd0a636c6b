//! Codec identification from the first packet of a BOS page: how many
//! header packets the stream has, and its audio parameters.

use super::super::AudioInfo;
use super::page::{complete_packets, segment_table, Page, HEADER_LEN};

/// The codecs Floe tells apart by a stream's first packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecKind {
    Vorbis,
    Opus,
    Flac,
    Theora,
    Speex,
}

/// What the first packet of a BOS page says about its logical stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    /// `None`: a codec Floe does not know.
    pub kind: Option<CodecKind>,
    /// Header packets of the stream, BOS packet included (`None`: unknown).
    pub headers: Option<u32>,
    /// Audio parameters, for audio codecs.
    pub info: Option<AudioInfo>,
}

/// Identify the codec of a BOS page; also count the packets it ends.
pub(super) fn identify(page: &Page, bytes: &[u8]) -> (Codec, u32) {
    let table = segment_table(page, bytes);
    let body = bytes.get(HEADER_LEN + page.segments..).unwrap_or(&[]);
    (codec(first_packet(table, body)), complete_packets(table))
}

/// The first packet starting on a page (what of it the page holds): the
/// packet a BOS page opens its stream with.
pub fn first_packet<'a>(table: &[u8], body: &'a [u8]) -> &'a [u8] {
    let end = table.iter().position(|&l| l < 255).map_or(table.len(), |p| p + 1);
    let len: usize = table.iter().take(end).map(|&l| usize::from(l)).sum();
    body.get(..len).unwrap_or(body)
}

/// What a stream's first packet says: its codec, header count and audio
/// parameters (the framer captures that many header packets; the
/// transcoder's Ogg mappings expect them).
pub fn codec(p: &[u8]) -> Codec {
    let le32 = |at: usize| p.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let audio = |sample_rate: u32, channels: u8| AudioInfo { sample_rate, channels, bitrate: 0 };
    let known = |kind, headers, info| Codec { kind: Some(kind), headers, info };
    if p.starts_with(b"\x01vorbis") {
        let info = p.get(11).zip(le32(12)).map(|(&ch, rate)| audio(rate, ch));
        known(CodecKind::Vorbis, Some(3), info)
    } else if p.starts_with(b"OpusHead") {
        // Opus always decodes at 48 kHz; the header's rate is informative.
        known(CodecKind::Opus, Some(2), p.get(9).map(|&ch| audio(48000, ch)))
    } else if p.starts_with(b"\x7fFLAC") {
        flac(p)
    } else if p.starts_with(b"\x80theora") {
        known(CodecKind::Theora, Some(3), None)
    } else if p.starts_with(b"Speex   ") {
        // Extra headers are rare; an absurd count would stall the capture.
        let extra = le32(68).unwrap_or(0).min(8);
        let channels = le32(48).and_then(|c| u8::try_from(c).ok());
        let info = le32(36).zip(channels).map(|(rate, ch)| audio(rate, ch));
        known(CodecKind::Speex, Some(2 + extra), info)
    } else {
        Codec { kind: None, headers: None, info: None }
    }
}

/// FLAC-in-Ogg: "\x7fFLAC", version, header packet count (16 bit BE, not
/// counting this one; 0 = unknown), "fLaC", then the STREAMINFO block.
fn flac(p: &[u8]) -> Codec {
    let count = p.get(7..9).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    // STREAMINFO body starts at 17; the sample rate is 20 bits at byte 10,
    // followed by 3 bits of channel count minus one.
    let info = p.get(27..30).map(|b| AudioInfo {
        sample_rate: u32::from(b[0]) << 12 | u32::from(b[1]) << 4 | u32::from(b[2] >> 4),
        channels: (b[2] >> 1 & 7) + 1,
        bitrate: 0,
    });
    Codec { kind: Some(CodecKind::Flac), headers: (count > 0).then_some(1 + u32::from(count)), info }
}

//! Codec identification from the first packet of a BOS page: how many
//! header packets the stream has, and its audio parameters.

use super::super::AudioInfo;
use super::page::{complete_packets, segment_table, Page, HEADER_LEN};

/// What the first packet of a BOS page says about its logical stream.
pub(super) struct Codec {
    /// Header packets of the stream, BOS packet included (`None`: unknown).
    pub headers: Option<u32>,
    /// Audio parameters, for audio codecs.
    pub info: Option<AudioInfo>,
}

/// Identify the codec of a BOS page; also count the packets it ends.
pub(super) fn identify(page: &Page, bytes: &[u8]) -> (Codec, u32) {
    let table = segment_table(page, bytes);
    let first_end = table.iter().position(|&l| l < 255).map_or(table.len(), |p| p + 1);
    let first_len: usize = table.iter().take(first_end).map(|&l| usize::from(l)).sum();
    let body_start = HEADER_LEN + page.segments;
    let packet = bytes.get(body_start..body_start + first_len).unwrap_or(&[]);
    (codec(packet), complete_packets(table))
}

fn codec(p: &[u8]) -> Codec {
    let le32 = |at: usize| p.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let audio = |sample_rate: u32, channels: u8| AudioInfo { sample_rate, channels, bitrate: 0 };
    if p.starts_with(b"\x01vorbis") {
        let info = p.get(11).zip(le32(12)).map(|(&ch, rate)| audio(rate, ch));
        Codec { headers: Some(3), info }
    } else if p.starts_with(b"OpusHead") {
        // Opus always decodes at 48 kHz; the header's rate is informative.
        Codec { headers: Some(2), info: p.get(9).map(|&ch| audio(48000, ch)) }
    } else if p.starts_with(b"\x7fFLAC") {
        flac(p)
    } else if p.starts_with(b"\x80theora") {
        Codec { headers: Some(3), info: None }
    } else if p.starts_with(b"Speex   ") {
        // Extra headers are rare; an absurd count would stall the capture.
        let extra = le32(68).unwrap_or(0).min(8);
        let channels = le32(48).and_then(|c| u8::try_from(c).ok());
        let info = le32(36).zip(channels).map(|(rate, ch)| audio(rate, ch));
        Codec { headers: Some(2 + extra), info }
    } else {
        Codec { headers: None, info: None }
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
    Codec { headers: (count > 0).then_some(1 + u32::from(count)), info }
}

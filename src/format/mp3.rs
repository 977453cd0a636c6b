//! MPEG audio framing (MPEG-1/2/2.5, Layers I, II and III): frame header
//! parsing and ID3 tag dropping. Lock/resync lives in `sync`.
//!
//! Free-format streams (bitrate index 0) have no computable frame length and
//! are treated as garbage; nobody streams them.

use super::sync::{FrameHeader, FrameSyntax, SyncFramer, Tag};
use super::AudioInfo;

/// Frames an MP3 (or MP2/MP1) byte stream on frame boundaries.
pub(super) type Mp3Framer = SyncFramer<Mp3Syntax>;

/// Bitrates in kbit/s by bitrate index (1..=14), per version/layer family.
const BITRATES: [[u16; 14]; 5] = [
    // MPEG-1 Layer I
    [32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
    // MPEG-1 Layer II
    [32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
    // MPEG-1 Layer III
    [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
    // MPEG-2/2.5 Layer I
    [32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
    // MPEG-2/2.5 Layers II and III
    [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
];

/// MPEG-1 sample rates; MPEG-2 halves them, MPEG-2.5 quarters them.
const SAMPLE_RATES: [u32; 3] = [44100, 48000, 32000];

/// The 4-byte MPEG audio frame header syntax.
pub(super) struct Mp3Syntax;

impl FrameSyntax for Mp3Syntax {
    const HEADER_LEN: usize = 4;

    fn parse(head: &[u8]) -> Option<FrameHeader> {
        let &[b0, b1, b2, b3] = head else { return None };
        if b0 != 0xFF || b1 & 0xE0 != 0xE0 {
            return None;
        }
        // Version bits: 0 = MPEG-2.5, 1 = reserved, 2 = MPEG-2, 3 = MPEG-1.
        let version = (b1 >> 3) & 3;
        // Layer bits: 1 = III, 2 = II, 3 = I, 0 = reserved.
        let layer_bits = (b1 >> 1) & 3;
        let bitrate_index = usize::from(b2 >> 4);
        let rate_index = usize::from((b2 >> 2) & 3);
        // Emphasis 2 is reserved: rejecting it weeds out more false syncs.
        if version == 1 || layer_bits == 0 || b3 & 3 == 2 {
            return None;
        }
        let layer = 4 - layer_bits;
        let family = match (version == 3, layer) {
            (true, l) => usize::from(l - 1),
            (false, 1) => 3,
            (false, _) => 4,
        };
        let kbps = u32::from(*BITRATES[family].get(bitrate_index.checked_sub(1)?)?);
        let shift = match version {
            3 => 0,
            2 => 1,
            _ => 2,
        };
        let sample_rate = SAMPLE_RATES.get(rate_index)? >> shift;
        let padding = u32::from((b2 >> 1) & 1);
        let bps = kbps * 1000;
        let len = match layer {
            1 => (12 * bps / sample_rate + padding) * 4,
            // MPEG-2/2.5 Layer III frames carry half the samples of MPEG-1.
            3 if version != 3 => 72 * bps / sample_rate + padding,
            _ => 144 * bps / sample_rate + padding,
        };
        let channels = if b3 >> 6 == 3 { 1 } else { 2 };
        Some(FrameHeader {
            len: len as usize,
            key: u32::from(version) << 8 | u32::from(layer) << 4 | rate_index as u32,
            info: AudioInfo { sample_rate, channels, bitrate: kbps },
        })
    }

    fn may_start(byte: u8) -> bool {
        matches!(byte, 0xFF | b'I' | b'T')
    }

    fn tag(buf: &[u8]) -> Tag {
        match id3v2(buf) {
            Tag::None => id3v1(buf),
            found => found,
        }
    }
}

/// Whether `buf` starts with (a prefix of) `magic`.
fn starts_like(buf: &[u8], magic: &[u8]) -> bool {
    let n = buf.len().min(magic.len());
    buf.get(..n) == magic.get(..n)
}

/// An ID3v2 tag: "ID3", version, revision, flags, 4-byte syncsafe size that
/// excludes the 10-byte header and the optional 10-byte footer.
fn id3v2(buf: &[u8]) -> Tag {
    if !starts_like(buf, b"ID3") {
        return Tag::None;
    }
    let Some(&[_, _, _, major, minor, flags, s0, s1, s2, s3]) = buf.get(..10) else {
        return Tag::NeedMore;
    };
    let syncsafe = [s0, s1, s2, s3].iter().all(|b| b & 0x80 == 0);
    if !(2..=4).contains(&major) || minor == 0xFF || !syncsafe {
        return Tag::None;
    }
    let size = [s0, s1, s2, s3].iter().fold(0u64, |acc, &b| acc << 7 | u64::from(b));
    let footer = if major == 4 && flags & 0x10 != 0 { 10 } else { 0 };
    Tag::Skip(10 + size + footer)
}

/// An ID3v1 tag: "TAG" and 125 bytes of fixed fields (128 in all).
fn id3v1(buf: &[u8]) -> Tag {
    if !starts_like(buf, b"TAG") {
        Tag::None
    } else if buf.len() < 128 {
        Tag::NeedMore
    } else {
        Tag::Skip(128)
    }
}

#[cfg(test)]
mod tests {
    use super::super::sync::testing::*;
    use super::super::{Framer, Unit};
    use super::*;

    /// A 128 kbit/s 44.1 kHz stereo MPEG-1 Layer III frame (417/418 bytes).
    fn frame(padding: bool, fill: u8) -> Vec<u8> {
        let len = if padding { 418 } else { 417 };
        let mut f = vec![fill; len];
        f[..4].copy_from_slice(&[0xFF, 0xFB, 0x90 | u8::from(padding) << 1, 0x64]);
        f
    }

    fn stream(n: usize) -> Vec<u8> {
        (0..n).flat_map(|i| frame(i % 3 == 1, i as u8)).collect()
    }

    fn id3v2_tag(body: usize) -> Vec<u8> {
        let mut t = b"ID3\x04\x00\x00".to_vec();
        t.extend((0..4).rev().map(|i| ((body >> (7 * i)) & 0x7F) as u8));
        t.extend(std::iter::repeat_n(0xFF, body));
        t
    }

    #[test]
    fn header_lengths() {
        let len = |h: [u8; 4]| Mp3Syntax::parse(&h).map(|h| h.len);
        assert_eq!(len([0xFF, 0xFB, 0x90, 0x64]), Some(417));
        assert_eq!(len([0xFF, 0xFB, 0x92, 0x64]), Some(418));
        // MPEG-2 Layer III 64 kbit/s 22.05 kHz: 72 * 64000 / 22050 = 208.
        assert_eq!(len([0xFF, 0xF3, 0x80, 0x00]), Some(208));
        // MPEG-1 Layer II 192 kbit/s 48 kHz: 144 * 192000 / 48000 = 576.
        assert_eq!(len([0xFF, 0xFD, 0xA4, 0x00]), Some(576));
        // MPEG-1 Layer I 32 kbit/s 32 kHz: 12 * 32000 / 32000 * 4 = 48.
        assert_eq!(len([0xFF, 0xFF, 0x18, 0x00]), Some(48));
        // Free format, bad bitrate, bad rate, reserved version/layer/emphasis.
        for bad in [[0xFF, 0xFB, 0x00, 0], [0xFF, 0xFB, 0xF0, 0], [0xFF, 0xFB, 0x9C, 0]] {
            assert_eq!(len(bad), None);
        }
        for bad in [[0xFF, 0xEB, 0x90, 0], [0xFF, 0xF9, 0x90, 0], [0xFF, 0xFB, 0x90, 2]] {
            assert_eq!(len(bad), None);
        }
    }

    #[test]
    fn valid_stream_round_trips_any_split() {
        let data = stream(20);
        // A frame is only released once the next header confirms it, so feed
        // the first bytes of one more frame.
        let mut input = data.clone();
        input.extend_from_slice(&frame(false, 99)[..4]);
        let mut whole = Mp3Framer::new();
        let units = feed_all(&mut whole, &input);
        // One unit per frame: the transcoder decodes them as they are.
        assert_eq!(units.len(), 20);
        assert_eq!(concat(&units), data);
        for seed in 1..20 {
            let mut f = Mp3Framer::new();
            assert_same(&concat(&feed_random(&mut f, &input, seed, 900)), &data);
            assert_eq!(f.skipped_bytes(), 0);
        }
        let mut f = Mp3Framer::new();
        let units = feed_bytewise(&mut f, &input);
        assert_eq!(concat(&units), data);
        assert!(units.iter().all(|u| matches!(u, Unit::Data { sync: true, .. })));
        let info = f.audio_info().unwrap();
        assert_eq!((info.sample_rate, info.channels, info.bitrate), (44100, 2, 128));
    }

    #[test]
    fn units_start_on_frame_boundaries() {
        let data = stream(10);
        let mut f = Mp3Framer::new();
        let units = feed_random(&mut f, &data, 7, 700);
        for unit in &units {
            let Unit::Data { bytes, .. } = unit else { panic!("no headers in mp3") };
            assert_eq!(&bytes[..2], &[0xFF, 0xFB]);
        }
    }

    #[test]
    fn truncated_last_frame_is_held() {
        let data = stream(5);
        let mut f = Mp3Framer::new();
        let units = feed_all(&mut f, &data[..data.len() - 10]);
        assert_eq!(concat(&units), data[..4 * 417 + 1]);
    }

    #[test]
    fn garbage_is_skipped_and_counted() {
        let mut rng = Rng(99);
        // Garbage full of false syncs: 0xFF followed by plausible headers.
        let mut garbage = rng.bytes(3000);
        for i in (5..2990).step_by(97) {
            garbage[i..i + 4].copy_from_slice(&[0xFF, 0xFB, 0x90, 0x64]);
        }
        let good = stream(6);
        let mut data = garbage.clone();
        data.extend_from_slice(&good);
        data.extend_from_slice(&garbage);
        data.extend_from_slice(&good);
        // The frame just before garbage cannot be confirmed and is dropped;
        // the final frame waits for a next header that never comes.
        let kept = &good[..good.len() - 417];
        let mut expected = kept.to_vec();
        expected.extend_from_slice(kept);
        for seed in [3, 5, 8] {
            let mut f = Mp3Framer::new();
            let units = feed_random(&mut f, &data, seed, 500);
            assert_same(&concat(&units), &expected);
            assert_eq!(f.skipped_bytes(), 6000 + 417);
            for unit in &units {
                let Unit::Data { bytes, .. } = unit else { panic!() };
                assert_eq!(&bytes[..2], &[0xFF, 0xFB]);
            }
        }
    }

    #[test]
    fn lone_false_sync_does_not_pass() {
        let mut data = vec![0u8; 2000];
        data[10..14].copy_from_slice(&[0xFF, 0xFB, 0x90, 0x64]);
        let mut f = Mp3Framer::new();
        assert!(feed_all(&mut f, &data).is_empty());
        assert_eq!(f.skipped_bytes(), 2000);
    }

    #[test]
    fn id3_tags_are_dropped() {
        let mut data = id3v2_tag(3000);
        let a = stream(4);
        data.extend_from_slice(&a);
        data.extend_from_slice(&id3v2_tag(200));
        data.extend_from_slice(&a);
        let mut v1 = b"TAG".to_vec();
        v1.resize(128, b' ');
        data.extend_from_slice(&v1);
        data.extend_from_slice(&a);
        // Frames followed by a tag are confirmed; the very last one is held.
        let mut expected = a.clone();
        expected.extend_from_slice(&a);
        expected.extend_from_slice(&a[..a.len() - 417]);
        for seed in [1, 2] {
            let mut f = Mp3Framer::new();
            let got = concat(&feed_random(&mut f, &data, seed, 300));
            assert_eq!(got, expected);
            assert_eq!(f.skipped_bytes(), 3010 + 210 + 128);
        }
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = Rng(12345);
        for round in 0..50 {
            let mut data = rng.bytes(4000);
            if round % 2 == 0 {
                let at = rng.below(3000);
                let s = stream(3);
                let end = (at + s.len()).min(data.len());
                data[at..end].copy_from_slice(&s[..end - at]);
            }
            let mut f = Mp3Framer::new();
            let got = concat(&feed_random(&mut f, &data, round + 1, 200));
            assert!(got.len() as u64 + f.skipped_bytes() <= data.len() as u64);
        }
    }
}

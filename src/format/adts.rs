//! AAC ADTS framing: header parsing only; lock/resync lives in `sync`. The
//! transcoder's decoder reads each frame's header with the same parser.
//!
//! An ADTS header is 7 bytes (9 with CRC) and states the whole frame length,
//! so frames delimit themselves. The sync word 0xFFF is shared with MPEG
//! audio; the layer bits (always 0 in ADTS) tell them apart.

use super::sync::{FrameHeader, FrameSyntax, SyncFramer};
use super::AudioInfo;

/// Frames an AAC ADTS byte stream on frame boundaries.
pub(super) type AdtsFramer = SyncFramer<AdtsSyntax>;

/// Sampling frequencies by index; 13 and 14 are reserved and 15 ("explicit
/// rate") cannot be expressed in ADTS.
const SAMPLE_RATES: [u32; 13] =
    [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

/// An ADTS frame header (the fixed and variable parts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdtsHeader {
    /// The ID bit: MPEG-2 rather than MPEG-4.
    pub mpeg2: bool,
    /// `profile_ObjectType`: 0 Main, 1 LC, 2 SSR.
    pub profile: u8,
    /// Index into the sampling frequency table.
    pub rate_index: u8,
    pub sample_rate: u32,
    /// 1 mono, 2 stereo, ... 7 is 7.1; 0 means "see the in-band PCE".
    pub channel_config: u8,
    /// 7 bytes, or 9 with a CRC.
    pub header_len: usize,
    /// The whole frame, header included (at least `header_len`).
    pub frame_len: usize,
    /// Raw data blocks in the frame, 1 to 4.
    pub raw_blocks: u8,
}

impl AdtsHeader {
    /// The header at the start of `b` (7 bytes are enough), if it is one.
    pub fn parse(b: &[u8]) -> Option<AdtsHeader> {
        let &[b0, b1, b2, b3, b4, b5, b6, ..] = b else {
            return None;
        };
        if b0 != 0xFF || b1 & 0xF6 != 0xF0 {
            // Sync 0xFFF and layer 00; other bits of b1 are ID and CRC flag.
            return None;
        }
        let rate_index = (b2 >> 2) & 0x0F;
        let header_len = if b1 & 1 == 1 { 7 } else { 9 };
        let frame_len = usize::from(b3 & 3) << 11 | usize::from(b4) << 3 | usize::from(b5 >> 5);
        if frame_len < header_len {
            return None;
        }
        Some(AdtsHeader {
            mpeg2: (b1 >> 3) & 1 == 1,
            profile: b2 >> 6,
            rate_index,
            sample_rate: *SAMPLE_RATES.get(usize::from(rate_index))?,
            channel_config: (b2 & 1) << 2 | b3 >> 6,
            header_len,
            frame_len,
            raw_blocks: (b6 & 0x03) + 1,
        })
    }
}

/// The ADTS fixed + variable header syntax.
pub(super) struct AdtsSyntax;

impl FrameSyntax for AdtsSyntax {
    const HEADER_LEN: usize = 7;

    fn parse(head: &[u8]) -> Option<FrameHeader> {
        let h = AdtsHeader::parse(head)?;
        // Channel configuration 7 is 7.1 (8 channels); 0 means "see the PCE".
        let channels = if h.channel_config == 7 { 8 } else { h.channel_config };
        Some(FrameHeader {
            len: h.frame_len,
            key: u32::from(h.mpeg2) << 8 | u32::from(h.profile) << 4 | u32::from(h.rate_index),
            info: AudioInfo { sample_rate: h.sample_rate, channels, bitrate: 0 },
        })
    }

    fn may_start(byte: u8) -> bool {
        byte == 0xFF
    }
}

#[cfg(test)]
mod tests {
    use super::super::sync::testing::*;
    use super::super::{Framer, Unit};
    use super::*;

    /// An AAC-LC 44.1 kHz stereo ADTS frame without CRC of `len` bytes.
    fn frame(len: usize, fill: u8) -> Vec<u8> {
        let mut f = vec![fill; len];
        f[..7].copy_from_slice(&[
            0xFF,
            0xF1,
            0x50,
            0x80 | (len >> 11) as u8,
            (len >> 3) as u8,
            (len << 5) as u8 | 0x1F,
            0xFC,
        ]);
        f
    }

    fn stream(n: usize) -> Vec<u8> {
        (0..n).flat_map(|i| frame(200 + (i * 37) % 300, i as u8)).collect()
    }

    #[test]
    fn header_fields() {
        let h = AdtsSyntax::parse(&frame(371, 0)[..7]).unwrap();
        assert_eq!(h.len, 371);
        assert_eq!((h.info.sample_rate, h.info.channels, h.info.bitrate), (44100, 2, 0));
        let mut bad_rate = frame(300, 0);
        bad_rate[2] = 0x50 | 13 << 2;
        assert!(AdtsSyntax::parse(&bad_rate[..7]).is_none());
        let mut layer = frame(300, 0);
        layer[1] = 0xF3;
        assert!(AdtsSyntax::parse(&layer[..7]).is_none());
        // Shorter than its own header (9 bytes with CRC).
        let mut short = frame(8, 0);
        short[1] = 0xF0;
        assert!(AdtsSyntax::parse(&short[..7]).is_none());
    }

    #[test]
    fn valid_stream_round_trips_any_split() {
        let data = stream(30);
        // A frame is released once the next header confirms it.
        let mut input = data.clone();
        input.extend_from_slice(&frame(300, 0)[..7]);
        let mut f = AdtsFramer::new();
        let units = feed_all(&mut f, &input);
        // One unit per frame: the transcoder decodes them as they are.
        assert_eq!(units.len(), 30);
        assert_eq!(concat(&units), data);
        let mut f = AdtsFramer::new();
        assert_eq!(concat(&feed_bytewise(&mut f, &input)), data);
        for seed in 1..20 {
            let mut f = AdtsFramer::new();
            let units = feed_random(&mut f, &input, seed, 700);
            assert_eq!(concat(&units), data);
            assert_eq!(f.skipped_bytes(), 0);
            for unit in &units {
                let Unit::Data { bytes, sync: true } = unit else { panic!("{unit:?}") };
                assert_eq!(&bytes[..2], &[0xFF, 0xF1]);
            }
        }
        assert_eq!(f.audio_info().map(|i| i.sample_rate), Some(44100));
    }

    #[test]
    fn truncated_last_frame_is_held() {
        let data = stream(4);
        let mut f = AdtsFramer::new();
        let got = concat(&feed_all(&mut f, &data[..data.len() - 1]));
        let last = frame(200 + 111, 3).len();
        assert_eq!(got, data[..data.len() - last]);
    }

    #[test]
    fn garbage_with_false_syncs_is_skipped() {
        let mut rng = Rng(4242);
        let mut garbage = rng.bytes(2500);
        for i in (3..2400).step_by(61) {
            garbage[i..i + 7].copy_from_slice(&frame(300, 0)[..7]);
        }
        let good = stream(8);
        let mut data = garbage.clone();
        data.extend_from_slice(&good);
        data.extend_from_slice(&garbage[..1000]);
        data.extend_from_slice(&good);
        // The frame before garbage is unconfirmed and dropped; the last is held.
        // The eighth frame of `stream` is 200 + (7 * 37) % 300 = 459 bytes.
        let last = 459;
        let kept = &good[..good.len() - last];
        let mut expected = kept.to_vec();
        expected.extend_from_slice(kept);
        for seed in [11, 12, 13] {
            let mut f = AdtsFramer::new();
            let units = feed_random(&mut f, &data, seed, 400);
            assert_same(&concat(&units), &expected);
            assert_eq!(f.skipped_bytes(), 3500 + last as u64);
            for unit in &units {
                let Unit::Data { bytes, .. } = unit else { panic!() };
                assert_eq!(&bytes[..2], &[0xFF, 0xF1]);
            }
        }
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = Rng(777);
        for round in 0..50 {
            let data = rng.bytes(5000);
            let mut f = AdtsFramer::new();
            let got = concat(&feed_random(&mut f, &data, round + 1, 300));
            assert!(got.len() as u64 + f.skipped_bytes() <= data.len() as u64);
        }
    }
}

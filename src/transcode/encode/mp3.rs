//! MP3 encoding with LAME (`mp3lame-encoder`): CBR, no Xing/LAME tag, no ID3.
//!
//! Output is a plain sequence of MPEG audio frames, suitable for an Icecast
//! `audio/mpeg` mount; titles travel as ICY metadata, so
//! [`Encoder::set_title`](super::Encoder::set_title) is a no-op here.

use mp3lame_encoder::{Bitrate, Builder, FlushGap, InterleavedPcm, Mode, MonoPcm, Quality, VbrMode};
use std::num::NonZeroU32;

use super::{check_pcm, EncodeError, Encoder, EncoderSpec};

/// MPEG-1 sample rates (1152 samples per frame).
const MPEG1_RATES: [u32; 3] = [32_000, 44_100, 48_000];
/// MPEG-2 (LSF) sample rates (576 samples per frame).
const MPEG2_RATES: [u32; 3] = [16_000, 22_050, 24_000];
/// MPEG-1 Layer III bitrates that `mp3lame-encoder`'s `Bitrate` enum can
/// express (56 kbit/s is a valid MPEG-1 rate but the crate has no variant).
const MPEG1_KBPS: [u32; 13] = [32, 40, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
/// MPEG-2 Layer III bitrates expressible with the crate (56 and 144 missing).
const MPEG2_KBPS: [u32; 12] = [8, 16, 24, 32, 40, 48, 64, 80, 96, 112, 128, 160];

/// Check rate/bitrate against the MPEG tables. LAME itself would silently
/// round an invalid bitrate to the nearest legal one, so this is the only
/// place a bad config is caught.
pub(super) fn validate(spec: &EncoderSpec) -> Result<(), String> {
    let table: &[u32] = if MPEG1_RATES.contains(&spec.sample_rate) {
        &MPEG1_KBPS
    } else if MPEG2_RATES.contains(&spec.sample_rate) {
        &MPEG2_KBPS
    } else {
        return Err(format!(
            "MP3 sample rate {} Hz is not supported (use 32000, 44100 or 48000; 16000, 22050 or 24000 for low bitrates)",
            spec.sample_rate
        ));
    };
    if !table.contains(&spec.bitrate_kbps) {
        return Err(format!(
            "MP3 bitrate {} kbit/s is not valid at {} Hz (valid: {})",
            spec.bitrate_kbps,
            spec.sample_rate,
            table.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(())
}

fn lame_bitrate(kbps: u32) -> Option<Bitrate> {
    Some(match kbps {
        8 => Bitrate::Kbps8,
        16 => Bitrate::Kbps16,
        24 => Bitrate::Kbps24,
        32 => Bitrate::Kbps32,
        40 => Bitrate::Kbps40,
        48 => Bitrate::Kbps48,
        64 => Bitrate::Kbps64,
        80 => Bitrate::Kbps80,
        96 => Bitrate::Kbps96,
        112 => Bitrate::Kbps112,
        128 => Bitrate::Kbps128,
        160 => Bitrate::Kbps160,
        192 => Bitrate::Kbps192,
        224 => Bitrate::Kbps224,
        256 => Bitrate::Kbps256,
        320 => Bitrate::Kbps320,
        _ => return None,
    })
}

fn init_err(what: &str, e: impl std::fmt::Display) -> EncodeError {
    EncodeError::Init(format!("LAME {what}: {e}"))
}

/// LAME CBR encoder producing raw MP3 frames.
pub(super) struct Mp3Encoder {
    lame: mp3lame_encoder::Encoder,
    channels: usize,
    frame_samples: usize,
    finished: bool,
}

impl Mp3Encoder {
    /// Configure LAME for `spec` (already validated).
    pub(super) fn new(spec: &EncoderSpec) -> Result<Self, EncodeError> {
        let brate = lame_bitrate(spec.bitrate_kbps)
            .ok_or_else(|| EncodeError::Unsupported(format!("MP3 bitrate {} kbit/s", spec.bitrate_kbps)))?;
        let mut b = Builder::new().ok_or_else(|| EncodeError::Init("LAME: out of memory".into()))?;
        b.set_num_channels(spec.channels).map_err(|e| init_err("channels", e))?;
        b.set_sample_rate(spec.sample_rate).map_err(|e| init_err("sample rate", e))?;
        // Pin the output rate: left at 0, LAME picks a "better" (lower) rate
        // for low bitrates and resamples behind our back.
        b.set_output_sample_rate(NonZeroU32::new(spec.sample_rate)).map_err(|e| init_err("output rate", e))?;
        b.set_mode(if spec.channels == 1 { Mode::Mono } else { Mode::JointStereo }).map_err(|e| init_err("mode", e))?;
        b.set_vbr_mode(VbrMode::Off).map_err(|e| init_err("CBR mode", e))?;
        b.set_brate(brate).map_err(|e| init_err("bitrate", e))?;
        // LAME's own default algorithm quality (-q 3): good quality, ~2-3 % of a core.
        b.set_quality(Quality::VeryNice).map_err(|e| init_err("quality", e))?;
        // The Xing/"Info" tag is a placeholder frame meant to be rewritten at
        // the start of a *file*; a live stream can't go back, so never emit it.
        b.set_to_write_vbr_tag(false).map_err(|e| init_err("VBR tag", e))?;
        // No ID3 tag is configured, so LAME writes neither ID3v2 nor ID3v1.
        let lame = b.build().map_err(|e| init_err("init", e))?;
        let frame_samples = if spec.sample_rate >= 32_000 { 1152 } else { 576 };
        Ok(Self { lame, channels: usize::from(spec.channels), frame_samples, finished: false })
    }
}

impl Encoder for Mp3Encoder {
    fn encode(&mut self, pcm: &[f32], out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.finished {
            return Err(EncodeError::Finished);
        }
        let frames = check_pcm(pcm, self.channels)?;
        if frames == 0 {
            return Ok(());
        }
        // LAME writes straight into the Vec's spare capacity; this is its
        // documented worst case (1.25 × samples + 7200).
        out.reserve(mp3lame_encoder::max_required_buffer_size(frames));
        let res = if self.channels == 2 {
            self.lame.encode_to_vec(InterleavedPcm(pcm), out)
        } else {
            self.lame.encode_to_vec(MonoPcm(pcm), out)
        };
        res.map(drop).map_err(|e| EncodeError::Codec(format!("LAME: {e}")))
    }

    fn set_title(&mut self, _artist: Option<&str>, _title: &str, _out: &mut Vec<u8>) -> Result<(), EncodeError> {
        // MP3 mounts carry titles as ICY metadata, not in-band.
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        // `lame_encode_flush` pads with silence until every buffered sample is
        // out. (The "nogap" variant keeps the tail for a following track and
        // drops the last ~1100 samples here.) It would append an ID3v1 tag
        // only if tags had been configured, which they never are.
        out.reserve(7200);
        self.lame.flush_to_vec::<FlushGap>(out).map(drop).map_err(|e| EncodeError::Codec(format!("LAME flush: {e}")))
    }

    fn frame_samples(&self) -> usize {
        self.frame_samples
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{sine, spec};
    use super::super::{new_encoder, Codec};

    /// Parsed fields of an MPEG audio Layer III frame header.
    #[derive(Debug)]
    struct Header {
        mpeg1: bool,
        kbps: u32,
        rate: u32,
        mono: bool,
        len: usize,
    }

    fn parse_header(b: &[u8]) -> Option<Header> {
        if b.len() < 4 || b[0] != 0xFF || b[1] & 0xE0 != 0xE0 {
            return None;
        }
        let version = (b[1] >> 3) & 3; // 3 = MPEG-1, 2 = MPEG-2
        let layer = (b[1] >> 1) & 3; // 1 = Layer III
        if layer != 1 || !(version == 3 || version == 2) {
            return None;
        }
        let mpeg1 = version == 3;
        const V1: [u32; 15] = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
        const V2: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
        let bi = usize::from(b[2] >> 4);
        let kbps = *(if mpeg1 { &V1 } else { &V2 }).get(bi)?;
        let base = [44_100, 48_000, 32_000].get(usize::from((b[2] >> 2) & 3)).copied()?;
        let rate = if mpeg1 { base } else { base / 2 };
        let pad = usize::from((b[2] >> 1) & 1);
        let coef = if mpeg1 { 144 } else { 72 };
        let len = (coef * kbps * 1000 / rate) as usize + pad;
        Some(Header { mpeg1, kbps, rate, mono: b[3] >> 6 == 3, len })
    }

    fn check_stream(bytes: &[u8], kbps: u32, rate: u32, mono: bool) -> usize {
        let mut pos = 0;
        let mut frames = 0;
        while pos < bytes.len() {
            let h = parse_header(&bytes[pos..]).unwrap_or_else(|| panic!("bad frame header at byte {pos}"));
            assert_eq!((h.kbps, h.rate, h.mono), (kbps, rate, mono), "frame {frames}: {h:?}");
            assert_eq!(h.mpeg1, rate >= 32_000);
            pos += h.len;
            frames += 1;
        }
        assert_eq!(pos, bytes.len(), "trailing partial frame");
        frames
    }

    #[test]
    fn stereo_44k_128_is_back_to_back_frames() {
        let s = spec(Codec::Mp3, 128, 44_100, 2);
        let mut enc = new_encoder(&s).expect("encoder");
        assert_eq!(enc.frame_samples(), 1152);
        let pcm = sine(44_100, 2, 2.0);
        let mut out = Vec::new();
        // Odd chunk sizes exercise LAME's internal buffering.
        for chunk in pcm.chunks(2 * 777) {
            enc.encode(chunk, &mut out).expect("encode");
        }
        enc.set_title(Some("A"), "T", &mut out).expect("title no-op");
        enc.finish(&mut out).expect("finish");
        enc.finish(&mut out).expect("second finish is a no-op");
        let frames = check_stream(&out, 128, 44_100, false);
        // 2 s = 76.6 frames, plus encoder delay/flush.
        assert!((77..=82).contains(&frames), "{frames} frames");
        assert!(enc.encode(&pcm[..2], &mut out).is_err());
    }

    #[test]
    fn mono_mpeg2_low_bitrate() {
        let s = spec(Codec::Mp3, 32, 22_050, 1);
        let mut enc = new_encoder(&s).expect("encoder");
        assert_eq!(enc.frame_samples(), 576);
        let mut out = Vec::new();
        enc.encode(&sine(22_050, 1, 2.0), &mut out).expect("encode");
        enc.finish(&mut out).expect("finish");
        let frames = check_stream(&out, 32, 22_050, true);
        assert!(frames >= 76, "{frames} frames");
    }
}

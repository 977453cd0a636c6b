//! AAC encoding with Fraunhofer FDK (`fdk-aac`): AAC-LC or HE-AAC v1, CBR, ADTS.
//!
//! Output is a sequence of ADTS frames (`audio/aac`). Titles travel as ICY
//! metadata, so `set_title` is a no-op. Everything that touches the FDK crate
//! sits behind the `fdk-aac` cargo feature; without it the constructor and
//! [`validate`] explain that the encoder was not built in.

use super::{Codec, EncodeError, Encoder, EncoderSpec};

/// ADTS `sampling_frequency_index` table (ISO/IEC 14496-3, 1.6.3.4).
const AAC_RATES: [u32; 12] =
    [96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000];

const NO_FDK: &str = "the AAC encoder was built without the `fdk-aac` feature";

/// Check rate/bitrate/channels. FDK silently clamps out-of-range bitrates,
/// so the limits are enforced here instead.
pub(super) fn validate(spec: &EncoderSpec) -> Result<(), String> {
    if !cfg!(feature = "fdk-aac") {
        return Err(NO_FDK.to_owned());
    }
    let ch = u32::from(spec.channels);
    let kbps = spec.bitrate_kbps;
    if spec.codec == Codec::HeAac {
        // SBR runs the AAC core at half the output rate; FDK's SBR tuning
        // tables cover 16/22.05/24 kHz cores, i.e. these output rates.
        if ![32_000, 44_100, 48_000].contains(&spec.sample_rate) {
            return Err(format!(
                "HE-AAC sample rate {} Hz is not supported (use 32000, 44100 or 48000)",
                spec.sample_rate
            ));
        }
        let (lo, hi) = if ch == 1 { (12, 64) } else { (16, 128) };
        if !(lo..=hi).contains(&kbps) {
            return Err(format!("HE-AAC bitrate {kbps} kbit/s is out of range for {ch} channel(s) ({lo}–{hi})"));
        }
        return Ok(());
    }
    if !AAC_RATES.contains(&spec.sample_rate) {
        return Err(format!(
            "AAC sample rate {} Hz is not supported (use one of {})",
            spec.sample_rate,
            AAC_RATES.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
        ));
    }
    // An AAC-LC channel element holds at most 6144 bits per 1024-sample
    // frame, i.e. 6 bit/sample; below ~8 kbit/s per channel FDK gives up.
    let hi = (spec.sample_rate * 6 / 1000 * ch).min(320);
    let lo = 8 * ch;
    if !(lo..=hi).contains(&kbps) {
        return Err(format!(
            "AAC bitrate {kbps} kbit/s is out of range at {} Hz with {ch} channel(s) ({lo}–{hi})",
            spec.sample_rate
        ));
    }
    Ok(())
}

/// Build the AAC encoder (or explain that it is compiled out).
pub(super) fn new_encoder(spec: &EncoderSpec) -> Result<Box<dyn Encoder>, EncodeError> {
    #[cfg(feature = "fdk-aac")]
    {
        Ok(Box::new(fdk::AacEncoder::new(spec)?))
    }
    #[cfg(not(feature = "fdk-aac"))]
    {
        let _ = spec;
        Err(EncodeError::Unsupported(NO_FDK.to_owned()))
    }
}

#[cfg(feature = "fdk-aac")]
mod fdk {
    use fdk_aac::enc::{AudioObjectType, BitRate, ChannelMode, EncoderParams, Transport};

    use super::super::{check_pcm, Codec, Container, EncodeError, Encoder, EncoderSpec};

    /// FDK AAC encoder emitting ADTS frames.
    pub(in super::super) struct AacEncoder {
        fdk: fdk_aac::enc::Encoder,
        channels: usize,
        /// Input samples per channel per AAC frame (1024 LC, 2048 HE-AAC).
        frame_len: usize,
        /// Encoder delay in samples per channel (what `finish` must push out).
        delay: usize,
        /// Samples per channel fed so far, modulo `frame_len`.
        fill: usize,
        /// Reused i16 conversion buffer: the crate only takes 16-bit PCM.
        pcm16: Vec<i16>,
        /// Reused output buffer, sized to FDK's `maxOutBufBytes`.
        outbuf: Vec<u8>,
        /// ADTS header bytes before each access unit (0 for raw transport).
        header: usize,
        /// Access units kept for `take_frames`, when asked to.
        frames: Option<Vec<bytes::Bytes>>,
        finished: bool,
    }

    fn err(what: &str, e: &fdk_aac::enc::EncoderError) -> String {
        format!("FDK AAC {what}: {e}")
    }

    impl AacEncoder {
        pub(in super::super) fn new(spec: &EncoderSpec) -> Result<Self, EncodeError> {
            let params = EncoderParams {
                bit_rate: BitRate::Cbr(spec.bitrate_kbps * 1000),
                sample_rate: spec.sample_rate,
                // ADTS: self-synchronising, what Icecast `audio/aac` players
                // expect; bare access units for CMAF.
                transport: if spec.container == Container::Frames { Transport::Raw } else { Transport::Adts },
                channels: if spec.channels == 1 { ChannelMode::Mono } else { ChannelMode::Stereo },
                audio_object_type: if spec.codec == Codec::HeAac {
                    // ADTS cannot signal SBR explicitly: FDK uses implicit
                    // signalling (headers show LC at the half-rate core).
                    AudioObjectType::Mpeg4HeAac
                } else {
                    AudioObjectType::Mpeg4LowComplexity
                },
            };
            let fdk = fdk_aac::enc::Encoder::new(params).map_err(|e| EncodeError::Init(err("init", &e)))?;
            let info = fdk.info().map_err(|e| EncodeError::Init(err("info", &e)))?;
            let frame_len = info.frameLength as usize;
            if frame_len == 0 {
                return Err(EncodeError::Init("FDK AAC reported a zero frame length".into()));
            }
            Ok(Self {
                fdk,
                channels: usize::from(spec.channels),
                frame_len,
                delay: info.nDelay as usize,
                fill: 0,
                pcm16: Vec::new(),
                outbuf: vec![0; (info.maxOutBufBytes as usize).max(8192)],
                header: if spec.container == Container::Frames { 0 } else { 7 },
                frames: None,
                finished: false,
            })
        }

        /// Feed `self.pcm16` to FDK. Each `aacEncEncode` call copies at most
        /// one frame of input and emits at most one access unit, so loop
        /// until all input is consumed.
        fn feed(&mut self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
            let mut pos = 0;
            while pos < self.pcm16.len() {
                let info = self
                    .fdk
                    .encode(&self.pcm16[pos..], &mut self.outbuf)
                    .map_err(|e| EncodeError::Codec(err("encode", &e)))?;
                let unit = &self.outbuf[..info.output_size.min(self.outbuf.len())];
                out.extend_from_slice(unit);
                if let (Some(frames), Some(payload)) = (&mut self.frames, unit.get(self.header..)) {
                    if !payload.is_empty() {
                        frames.push(bytes::Bytes::copy_from_slice(payload));
                    }
                }
                if info.input_consumed == 0 && info.output_size == 0 {
                    return Err(EncodeError::Codec("FDK AAC stopped consuming input".into()));
                }
                pos += info.input_consumed;
            }
            let frames = self.pcm16.len() / self.channels;
            self.fill = (self.fill + frames) % self.frame_len;
            Ok(())
        }
    }

    impl Encoder for AacEncoder {
        fn encode(&mut self, pcm: &[f32], out: &mut Vec<u8>) -> Result<(), EncodeError> {
            if self.finished {
                return Err(EncodeError::Finished);
            }
            check_pcm(pcm, self.channels)?;
            self.pcm16.clear();
            // Saturate instead of wrapping on hot (> 0 dBFS) input.
            self.pcm16.extend(pcm.iter().map(|&s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16));
            self.feed(out)
        }

        fn set_title(&mut self, _artist: Option<&str>, _title: &str, _out: &mut Vec<u8>) -> Result<(), EncodeError> {
            // AAC mounts carry titles as ICY metadata, not in-band.
            Ok(())
        }

        fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
            if self.finished {
                return Ok(());
            }
            self.finished = true;
            // The crate cannot pass FDK's flush signal (numInSamples = -1),
            // so push the buffered partial frame and the codec delay out with
            // silence, rounded up to whole frames.
            let need = self.fill + self.delay;
            let zeros = need.div_ceil(self.frame_len) * self.frame_len - self.fill;
            self.pcm16.clear();
            self.pcm16.resize(zeros * self.channels, 0);
            self.feed(out)
        }

        fn frame_samples(&self) -> usize {
            self.frame_len
        }

        fn keep_frames(&mut self) -> bool {
            self.frames.get_or_insert_with(Vec::new);
            true
        }

        fn take_frames(&mut self, out: &mut Vec<bytes::Bytes>) {
            if let Some(frames) = &mut self.frames {
                out.append(frames);
            }
        }
    }
}

#[cfg(all(test, feature = "fdk-aac"))]
mod tests {
    use super::super::test_util::{encode_sine, spec};
    use super::super::{new_encoder, validate, Codec};
    use super::AAC_RATES;

    /// Walk ADTS frames back to back; per frame return (sampling index, channel config, profile).
    fn walk_adts(bytes: &[u8]) -> Vec<(u8, u8, u8)> {
        let mut pos = 0;
        let mut frames = Vec::new();
        while pos < bytes.len() {
            let h = &bytes[pos..];
            assert!(h.len() >= 7, "truncated ADTS header at {pos}");
            assert_eq!((h[0], h[1] & 0xF6), (0xFF, 0xF0), "bad ADTS sync at {pos}");
            let profile = h[2] >> 6; // audio object type - 1
            let sf_index = (h[2] >> 2) & 0x0F;
            let ch_cfg = ((h[2] & 1) << 2) | (h[3] >> 6);
            let len = (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
            assert!(len >= 7 && pos + len <= bytes.len(), "bad ADTS length {len} at {pos}");
            frames.push((sf_index, ch_cfg, profile));
            pos += len;
        }
        frames
    }

    fn run(codec: Codec, kbps: u32, rate: u32, ch: u8) -> (Vec<u8>, usize) {
        let spec = spec(codec, kbps, rate, ch);
        let mut enc = new_encoder(&spec).expect("encoder");
        let out = encode_sine(enc.as_mut(), &spec, 2.0, 1000);
        (out, enc.frame_samples())
    }

    #[test]
    fn lc_stereo_44k_adts() {
        let (out, frame) = run(Codec::Aac, 128, 44_100, 2);
        assert_eq!(frame, 1024);
        let frames = walk_adts(&out);
        assert!(frames.iter().all(|&f| f == (4, 2, 1)), "{:?}", &frames[..3]);
        // 2 s = 86.1 frames plus delay flush.
        assert!((87..=92).contains(&frames.len()), "{} frames", frames.len());
        // Roughly CBR: 128 kbit/s over ~2.1 s.
        assert!((25_000..45_000).contains(&out.len()), "{} bytes", out.len());
    }

    #[test]
    fn lc_mono_48k_adts() {
        let (out, _) = run(Codec::Aac, 64, 48_000, 1);
        let idx = AAC_RATES.iter().position(|&r| r == 48_000).expect("rate") as u8;
        assert!(walk_adts(&out).iter().all(|&f| f == (idx, 1, 1)));
    }

    #[test]
    fn he_aac_uses_half_rate_core() {
        let (out, frame) = run(Codec::HeAac, 48, 44_100, 2);
        assert_eq!(frame, 2048);
        // Implicit SBR signalling: the ADTS header shows LC at 22.05 kHz.
        let frames = walk_adts(&out);
        assert!(frames.iter().all(|&f| f == (7, 2, 1)), "{:?}", &frames[..3]);
    }

    #[test]
    fn validate_limits() {
        assert!(validate(&spec(Codec::Aac, 128, 44_100, 2)).is_ok());
        assert!(validate(&spec(Codec::Aac, 4, 44_100, 2)).is_err());
        assert!(validate(&spec(Codec::Aac, 128, 44_000, 2)).is_err());
        assert!(validate(&spec(Codec::HeAac, 48, 44_100, 2)).is_ok());
        assert!(validate(&spec(Codec::HeAac, 48, 22_050, 2)).is_err());
    }
}

#[cfg(all(test, not(feature = "fdk-aac")))]
mod tests {
    use super::super::test_util::spec;
    use super::super::{new_encoder, validate, Codec};

    #[test]
    fn aac_without_feature_is_explained() {
        let s = spec(Codec::Aac, 128, 44_100, 2);
        assert!(validate(&s).expect_err("no fdk").contains("fdk-aac"));
        assert!(new_encoder(&s).err().expect("no fdk").to_string().contains("fdk-aac"));
    }
}

//! MP3 decoding with symphonia's decoder, and the helpers the Ogg mappings use for its Vorbis
//! and FLAC decoders.
//!
//! Symphonia 0.6 behaviour this module works around (checked against the 0.6.1 sources):
//! * MP3 frames go to `MpaDecoder` without symphonia's `MpaReader`: the mount has cut them
//!   already. The decoder cannot follow a change of sample rate or channel count (it rejects
//!   every later packet), so it is rebuilt whenever a frame's parameters change. A new version,
//!   layer or rate only gets through once the mount's framer has locked onto two agreeing
//!   frames; mono and stereo may alternate frame by frame (concatenated files do).
//! * The MP3 decoder is built with `gapless = false`: a Xing/LAME tag's frame count describes
//!   one file, and a live stream (or a stream made of concatenated files) goes on past it. The
//!   tag frames themselves are dropped, as `MpaReader` drops them. (Ogg trims by granule
//!   positions instead, see `ogg.rs`.)

use symphonia::core::codecs::audio::well_known::CODEC_ID_MP3;
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia::core::packet::Packet;
use symphonia::core::units::{Duration, Timestamp};

use super::{emit, DecodeError, DecodeStats, ErrorStreak, Frames, Pcm};

/// Makes a symphonia decoder, mapping failure to [`DecodeError::Unsupported`]. With `gapless`,
/// the decoder honours the packets' trim (encoder delay/padding) information.
pub(super) fn make_decoder(params: &AudioCodecParameters, gapless: bool) -> Result<Box<dyn AudioDecoder>, DecodeError> {
    symphonia::default::get_codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default().gapless(gapless))
        .map_err(|e| DecodeError::Unsupported(e.to_string()))
}

/// Decodes one packet with a symphonia decoder; returns whether it decoded.
pub(super) fn decode_packet(decoder: &mut dyn AudioDecoder, packet: &Packet, on_pcm: &mut dyn FnMut(Pcm)) -> bool {
    match decoder.decode(packet) {
        Ok(buf) => {
            emit(&buf, on_pcm);
            true
        }
        Err(_) => false,
    }
}

/// The parameters of an MPEG audio frame that require a new decoder when they change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MpaSpec(u32);

impl MpaSpec {
    /// Extracts version, layer, sample-rate index and mono/stereo from a frame header.
    ///
    /// Stereo, joint stereo and dual channel all decode to two channels and may alternate frame
    /// by frame, so only "mono or not" is part of the spec.
    fn of(frame: &[u8]) -> Option<Self> {
        let header = u32::from_be_bytes(frame.get(..4)?.try_into().ok()?);
        let mono = u32::from((header >> 6) & 0b11 == 0b11);
        Some(Self((header & 0x001e_0c00) | mono))
    }

    fn is_layer3(self) -> bool {
        (self.0 >> 17) & 0b11 == 0b01
    }

    fn is_mpeg1(self) -> bool {
        (self.0 >> 19) & 0b11 == 0b11
    }

    fn is_mono(self) -> bool {
        self.0 & 1 == 1
    }

    /// Samples per channel in one layer III frame.
    fn frame_samples(self) -> u64 {
        if self.is_mpeg1() {
            1152
        } else {
            576
        }
    }
}

/// Whether a layer III frame is a Xing/Info or VBRI tag rather than audio: the tag's name right
/// after the (all-zero) side information, or at the fixed VBRI offset.
fn is_tag_frame(frame: &[u8], spec: MpaSpec) -> bool {
    let side_info = match (spec.is_mpeg1(), spec.is_mono()) {
        (true, false) => 32,
        (true, true) | (false, false) => 17,
        (false, true) => 9,
    };
    let crc = if frame.get(1).is_some_and(|b| b & 1 == 0) { 2 } else { 0 };
    let at = 4 + side_info;
    let xing = matches!(frame.get(at..at + 4), Some(b"Xing" | b"Info"))
        && frame.get(4 + crc..at).is_some_and(|side| side.iter().all(|&b| b == 0));
    xing || frame.get(36..40) == Some(b"VBRI")
}

/// Decodes the MP3 frames the mount cut.
pub(super) fn run_mp3(
    mut frames: impl Frames,
    stats: &mut DecodeStats,
    on_pcm: &mut dyn FnMut(Pcm),
) -> Result<(), DecodeError> {
    let mut params = AudioCodecParameters::new();
    params.for_codec(CODEC_ID_MP3);
    let mut current: Option<(MpaSpec, Box<dyn AudioDecoder>)> = None;
    let mut streak = ErrorStreak::default();
    let mut ts: i64 = 0;

    while let Some(frame) = frames.next_frame()? {
        stats.packets += 1;
        let Some(spec) = MpaSpec::of(&frame) else {
            stats.corrupt_packets += 1;
            streak.fail()?;
            continue;
        };
        if !spec.is_layer3() {
            if current.is_none() {
                return Err(DecodeError::Unsupported("MPEG audio layer I/II (only layer III is enabled)".into()));
            }
            stats.corrupt_packets += 1;
            streak.fail()?;
            continue;
        }
        if is_tag_frame(&frame, spec) {
            continue;
        }
        let decoder = match &mut current {
            Some((cur, decoder)) if *cur == spec => decoder,
            slot => {
                if slot.is_some() {
                    stats.resets += 1;
                    tracing::debug!(?spec, "MPEG audio parameters changed, decoder rebuilt");
                }
                &mut slot.insert((spec, make_decoder(&params, false)?)).1
            }
        };
        let duration = spec.frame_samples();
        let packet = Packet::new(0, Timestamp::new(ts), Duration::new(duration), &frame[..]);
        ts = ts.saturating_add(duration as i64);
        if decode_packet(&mut **decoder, &packet, on_pcm) {
            streak.ok();
        } else {
            stats.corrupt_packets += 1;
            streak.fail()?;
        }
    }
    Ok(())
}

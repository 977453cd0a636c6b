//! Sans-IO audio encoders for transcoded mounts.
//!
//! This module owns the codec side of transcoding: it turns interleaved `f32`
//! PCM (one source decoded once) into container bytes for a derived mount —
//! MP3 frames, AAC in ADTS, or Opus/Vorbis in (chained) Ogg. It performs no
//! I/O: every call appends bytes to a caller-supplied `Vec<u8>`, which the
//! caller frames and fans out to listeners.
//!
//! Per-codec details live in `mp3`, `aac`, `opus` and `vorbis`; Ogg serials,
//! comment packets and the page writer used by the Opus path live in
//! `ogg_mux`, the WebM writer Opus can use instead in `webm_mux`.

use std::fmt;

mod aac;
mod mp3;
mod ogg_mux;
mod opus;
mod vorbis;
mod webm_mux;

/// What to produce: codec, target bitrate, PCM layout and container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncoderSpec {
    /// Output codec.
    pub codec: Codec,
    /// Target bitrate in kbit/s (CBR for MP3/AAC, average for Opus/Vorbis).
    pub bitrate_kbps: u32,
    /// Sample rate of the PCM handed to [`Encoder::encode`] (and of the output).
    pub sample_rate: u32,
    /// Channel count of the PCM handed to [`Encoder::encode`] (1 or 2).
    pub channels: u8,
    /// Container the codec frames are wrapped in.
    pub container: Container,
}

/// Output codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// MPEG-1/2 Layer III (LAME).
    Mp3,
    /// AAC-LC (Fraunhofer FDK), needs the `fdk-aac` feature.
    Aac,
    /// HE-AAC v1 (AAC-LC + SBR, FDK), needs the `fdk-aac` feature. Meant for
    /// low bitrates (≈ 16–64 kbit/s).
    HeAac,
    /// Opus (libopus), 48 kHz only.
    Opus,
    /// Vorbis (libvorbis, aoTuV).
    Vorbis,
}

/// Container the encoded frames are wrapped in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Container {
    /// Bare codec frames: MP3 frames, or AAC frames with ADTS headers.
    Raw,
    /// Ogg pages (Opus, Vorbis), chained on title changes.
    Ogg,
    /// WebM (Opus only): one live segment of short clusters, for browsers
    /// without Ogg. Titles do not travel in-band.
    WebM,
    /// No container (AAC and Opus): only the coded frames, which the caller
    /// takes with [`Encoder::take_frames`] (CMAF variants).
    Frames,
}

/// Why encoding (or building an encoder) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// The spec is not supported; the message says which part and why.
    Unsupported(String),
    /// The codec library refused to initialise.
    Init(String),
    /// The codec library failed while encoding.
    Codec(String),
    /// The PCM handed in does not fit the spec (e.g. not a whole number of frames).
    InvalidInput(String),
    /// [`Encoder::encode`] or [`Encoder::set_title`] was called after [`Encoder::finish`].
    Finished,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsupported(m) => write!(f, "unsupported encoder settings: {m}"),
            Self::Init(m) => write!(f, "encoder initialisation failed: {m}"),
            Self::Codec(m) => write!(f, "encoding failed: {m}"),
            Self::InvalidInput(m) => write!(f, "invalid PCM input: {m}"),
            Self::Finished => f.write_str("encoder already finished"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// A running encoder for one derived mount. Not `Send`: encoders live on
/// the codec process's one thread (libvorbis' state cannot move).
pub trait Encoder {
    /// Encode interleaved f32 samples (len = frames × channels) at the spec's
    /// rate/channels; append container bytes to `out`. Partial codec frames are
    /// buffered internally, so any chunk size works.
    fn encode(&mut self, pcm: &[f32], out: &mut Vec<u8>) -> Result<(), EncodeError>;
    /// A new title: for Ogg, end the current logical stream and start a new
    /// chained one whose comment header carries `TITLE=`/`ARTIST=` (the bytes
    /// go to `out`); a no-op for MP3/AAC (titles travel as ICY metadata there).
    fn set_title(&mut self, artist: Option<&str>, title: &str, out: &mut Vec<u8>) -> Result<(), EncodeError>;
    /// Flush buffered audio (end of stream). Further `finish` calls are no-ops.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), EncodeError>;
    /// Samples per channel per codec frame (1152 MP3 / 576 for MPEG-2 rates,
    /// 1024 AAC-LC, 2048 HE-AAC, 960 Opus, Vorbis long block size), for
    /// latency accounting.
    fn frame_samples(&self) -> usize;
    /// From now on, keep every coded frame (without container) for
    /// `take_frames`; false if this codec cannot (MP3, Vorbis).
    fn keep_frames(&mut self) -> bool {
        false
    }
    /// The coded frames kept since the last call, in order.
    fn take_frames(&mut self, _out: &mut Vec<bytes::Bytes>) {}
    /// Samples the decoder must drop at the start (Opus pre-skip).
    fn pre_skip(&self) -> u16 {
        0
    }
}

/// Build an encoder for `spec` (validated first).
#[cfg(test)]
pub fn new_encoder(spec: &EncoderSpec) -> Result<Box<dyn Encoder>, EncodeError> {
    new_encoder_titled(spec, None, "")
}

/// Build an encoder for `spec` whose first Ogg stream already carries a
/// title (a rendition starting mid-song); MP3/AAC ignore it.
pub fn new_encoder_titled(
    spec: &EncoderSpec,
    artist: Option<&str>,
    title: &str,
) -> Result<Box<dyn Encoder>, EncodeError> {
    validate(spec).map_err(EncodeError::Unsupported)?;
    let tags = title_comments(artist, title);
    Ok(match spec.codec {
        Codec::Mp3 => Box::new(mp3::Mp3Encoder::new(spec)?),
        Codec::Aac | Codec::HeAac => aac::new_encoder(spec)?,
        Codec::Opus => Box::new(opus::OpusEncoder::new(spec, &tags)?),
        Codec::Vorbis => Box::new(vorbis::VorbisEncoder::new(spec, tags)?),
    })
}

/// Check a spec at config-load time: bitrate, sample rate, channel count and
/// container must be a combination the codec supports. The error is a
/// human-readable sentence suitable for a config error.
pub fn validate(spec: &EncoderSpec) -> Result<(), String> {
    if !(1..=2).contains(&spec.channels) {
        return Err(format!("{} channels requested; only mono (1) and stereo (2) are supported", spec.channels));
    }
    let allowed: &[Container] = match spec.codec {
        Codec::Mp3 => &[Container::Raw],
        Codec::Aac | Codec::HeAac => &[Container::Raw, Container::Frames],
        Codec::Opus => &[Container::Ogg, Container::WebM, Container::Frames],
        // Safari, the reason for WebM, does not decode Vorbis at all.
        Codec::Vorbis => &[Container::Ogg],
    };
    if !allowed.contains(&spec.container) {
        return Err(format!(
            "{:?} cannot be served in the {:?} container (use {allowed:?})",
            spec.codec, spec.container
        ));
    }
    match spec.codec {
        Codec::Mp3 => mp3::validate(spec),
        Codec::Aac | Codec::HeAac => aac::validate(spec),
        Codec::Opus => opus::validate(spec),
        Codec::Vorbis => vorbis::validate(spec),
    }
}

/// The HTTP `Content-Type` for a codec/container pair.
pub fn content_type(codec: Codec, container: Container) -> &'static str {
    match (codec, container) {
        (Codec::Mp3, _) => "audio/mpeg",
        (Codec::Aac | Codec::HeAac, _) => "audio/aac",
        (Codec::Opus, Container::WebM) => "audio/webm",
        (_, Container::Frames) => "audio/mp4",
        (Codec::Opus | Codec::Vorbis, _) => "audio/ogg",
    }
}

/// Check that `pcm` holds whole frames of `channels` samples.
fn check_pcm(pcm: &[f32], channels: usize) -> Result<usize, EncodeError> {
    if !pcm.len().is_multiple_of(channels) {
        return Err(EncodeError::InvalidInput(format!(
            "{} samples is not a multiple of {channels} channels",
            pcm.len()
        )));
    }
    Ok(pcm.len() / channels)
}

/// The `KEY=value` comments carried by an Ogg comment header for a title.
fn title_comments(artist: Option<&str>, title: &str) -> Vec<(&'static str, String)> {
    let mut tags = Vec::with_capacity(2);
    if let Some(artist) = artist.filter(|a| !a.is_empty()) {
        tags.push(("ARTIST", artist.to_owned()));
    }
    if !title.is_empty() {
        tags.push(("TITLE", title.to_owned()));
    }
    tags
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Shared helpers for the codec tests.

    use super::{Codec, Container, Encoder, EncoderSpec};

    /// Encode `secs` of a 440 Hz sine in chunks of `chunk_frames` (sizes
    /// that do not align with codec frames exercise the buffering), then finish.
    pub(crate) fn encode_sine(enc: &mut dyn Encoder, spec: &EncoderSpec, secs: f32, chunk_frames: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in sine(spec.sample_rate, spec.channels, secs).chunks(usize::from(spec.channels) * chunk_frames) {
            enc.encode(chunk, &mut out).expect("encode");
        }
        enc.finish(&mut out).expect("finish");
        out
    }

    /// Interleaved 440 Hz sine at -6 dBFS, `secs` seconds long.
    pub(crate) fn sine(rate: u32, channels: u8, secs: f32) -> Vec<f32> {
        let frames = (rate as f32 * secs) as usize;
        let mut pcm = Vec::with_capacity(frames * channels as usize);
        for i in 0..frames {
            let s = 0.5 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin();
            pcm.extend(std::iter::repeat_n(s, channels as usize));
        }
        pcm
    }

    /// Build a spec with the codec's natural container.
    pub(crate) fn spec(codec: Codec, bitrate_kbps: u32, sample_rate: u32, channels: u8) -> EncoderSpec {
        let container = match codec {
            Codec::Opus | Codec::Vorbis => Container::Ogg,
            _ => Container::Raw,
        };
        EncoderSpec { codec, bitrate_kbps, sample_rate, channels, container }
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::spec;
    use super::*;

    #[test]
    fn validate_accepts_common_specs() {
        for s in [
            spec(Codec::Mp3, 128, 44_100, 2),
            spec(Codec::Mp3, 64, 22_050, 1),
            spec(Codec::Opus, 96, 48_000, 2),
            spec(Codec::Vorbis, 128, 44_100, 2),
            spec(Codec::Vorbis, 64, 48_000, 1),
        ] {
            assert_eq!(validate(&s), Ok(()), "{s:?}");
        }
    }

    #[test]
    fn validate_rejects_bad_specs() {
        let bad = [
            spec(Codec::Opus, 96, 44_100, 2),
            spec(Codec::Mp3, 7, 44_100, 2),
            spec(Codec::Mp3, 128, 44_100, 3),
            spec(Codec::Mp3, 16, 44_100, 2), // MPEG-1 has no 16 kbit/s
            spec(Codec::Mp3, 128, 96_000, 2),
            spec(Codec::Opus, 2, 48_000, 2),
            spec(Codec::Vorbis, 128, 44_100, 0),
            spec(Codec::Vorbis, 5, 44_100, 2),
            EncoderSpec { container: Container::Ogg, ..spec(Codec::Mp3, 128, 44_100, 2) },
            EncoderSpec { container: Container::WebM, ..spec(Codec::Vorbis, 128, 44_100, 2) },
        ];
        for s in bad {
            let err = validate(&s).expect_err("should be rejected");
            assert!(!err.is_empty());
            assert!(new_encoder(&s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type(Codec::Mp3, Container::Raw), "audio/mpeg");
        assert_eq!(content_type(Codec::Aac, Container::Raw), "audio/aac");
        assert_eq!(content_type(Codec::Opus, Container::Ogg), "audio/ogg");
        assert_eq!(content_type(Codec::Vorbis, Container::Ogg), "audio/ogg");
        assert_eq!(content_type(Codec::Opus, Container::WebM), "audio/webm");
    }

    #[test]
    fn odd_sample_count_is_rejected() {
        let mut enc = new_encoder(&spec(Codec::Mp3, 128, 44_100, 2)).expect("encoder");
        let mut out = Vec::new();
        assert!(matches!(enc.encode(&[0.0; 3], &mut out), Err(EncodeError::InvalidInput(_))));
    }
}

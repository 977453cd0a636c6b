//! Source decoding for the transcoder: compressed source bytes in, PCM blocks out.
//!
//! One source mount is decoded once (on a dedicated OS thread, everything here is blocking) and
//! the PCM is re-encoded into the derived mounts. [`run_decoder`] reads the source's frames until
//! they end and hands every decoded block to a callback; [`Resampler`] converts those blocks to the
//! rate and channel count an encoder wants.
//!
//! The input is what the source mount has already framed: one whole MP3 frame, ADTS frame or Ogg
//! page at a time ([`Frames`]), each checked by the mount's framer (sync confirmed, CRC valid,
//! junk and ID3 tags gone). Nothing here looks for frame boundaries again.
//!
//! Supported inputs:
//! * MP3 — each frame straight into symphonia's `MpaDecoder`;
//! * AAC in ADTS — each frame's payload into symphonia's `AacDecoder` (see `adts.rs` for why
//!   the header is read here);
//! * Ogg — packets assembled from the mount's pages and mapped here (`ogg.rs`: headers, chains,
//!   end trim) into symphonia's Vorbis and FLAC decoders, and libopus (through the `opus` crate)
//!   for Opus. Vorbis setup headers are checked before the decoder sees them (`vorbis_setup.rs`).
//!
//! The decoder is built for live input: nothing is ever seeked, corrupt or truncated packets
//! are skipped and counted, and parameter changes mid-stream (chained Ogg streams, an MP3 or ADTS
//! stream switching sample rate or channel count) rebuild the decoder, so the [`Pcm`] blocks
//! simply carry the new format from then on.

use std::io;

use ::symphonia::core::audio::GenericAudioBufferRef;
use bytes::Bytes;

mod adts;
mod ogg;
mod opus;
pub mod resample;
mod symphonia;
#[cfg(test)]
mod tests;
mod vorbis_setup;

pub use self::resample::Resampler;

/// The kind of source stream to decode (mirrors the formats Floe frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Input {
    /// MPEG-1/2/2.5 audio layer III.
    Mp3,
    /// AAC-LC in an ADTS stream.
    Aac,
    /// An Ogg stream carrying Vorbis, FLAC or Opus (chains allowed).
    Ogg,
}

impl Input {
    /// The mount format whose frames or pages this decodes (tests and
    /// fuzzing frame their input with it, as the mount does).
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn format(self) -> crate::format::Format {
        use crate::format::Format;
        match self {
            Input::Mp3 => Format::Mp3,
            Input::Aac => Format::Aac,
            Input::Ogg => Format::Ogg,
        }
    }
}

/// A block of decoded audio.
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Number of interleaved channels.
    pub channels: u8,
    /// Interleaved samples, nominally in `-1.0..=1.0`.
    pub samples: Vec<f32>,
}

impl Pcm {
    /// Number of frames (samples per channel) in the block.
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }
}

/// Counters for status pages.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DecodeStats {
    /// Compressed packets (frames) read from the container.
    pub packets: u64,
    /// Packets that failed to decode, plus junk skipped while resynchronising.
    pub corrupt_packets: u64,
    /// Times the decoder was rebuilt for new stream parameters (chained Ogg, rate switches).
    pub resets: u64,
}

/// Why decoding stopped before the end of the input.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Reading the source failed (anything but a clean EOF).
    #[error("reading the source failed: {0}")]
    Io(#[from] io::Error),
    /// The stream uses a codec or codec feature we cannot decode.
    #[error("unsupported stream: {0}")]
    Unsupported(String),
    /// Nothing decodable was found for a long run of consecutive packets.
    #[error("gave up after {0} consecutive undecodable packets")]
    Stalled(u64),
}

/// The decoder's input: the frames (MP3, ADTS) or pages (Ogg) the source mount cut, in order,
/// each whole. `Ok(None)` when the source has ended; it may block until the next one arrives.
pub trait Frames: Send + 'static {
    fn next_frame(&mut self) -> io::Result<Option<Bytes>>;
}

/// Frames already at hand (tests, fuzzing).
impl Frames for std::vec::IntoIter<Bytes> {
    fn next_frame(&mut self) -> io::Result<Option<Bytes>> {
        Ok(self.next())
    }
}

/// Decodes every frame `frames` yields until it ends, calling `on_pcm` for each decoded block.
///
/// For Ogg the first pages must be the beginning-of-stream and header pages. Undecodable frames
/// are skipped and counted in `stats`; only I/O errors, unsupported codecs and hopeless streams
/// end decoding early.
pub fn run_decoder(
    input: Input,
    frames: impl Frames,
    stats: &mut DecodeStats,
    on_pcm: &mut dyn FnMut(Pcm),
) -> Result<(), DecodeError> {
    match input {
        Input::Aac => adts::run(frames, stats, on_pcm),
        Input::Mp3 => self::symphonia::run_mp3(frames, stats, on_pcm),
        Input::Ogg => ogg::run(frames, stats, on_pcm),
    }
}

/// Counts consecutive failures so that a stream that never decodes ends instead of spinning.
#[derive(Default)]
struct ErrorStreak(u64);

impl ErrorStreak {
    /// Generous: each failure consumes input, so this is megabytes of undecodable data.
    const LIMIT: u64 = 10_000;

    fn fail(&mut self) -> Result<(), DecodeError> {
        self.0 += 1;
        if self.0 >= Self::LIMIT {
            return Err(DecodeError::Stalled(self.0));
        }
        Ok(())
    }

    fn ok(&mut self) {
        self.0 = 0;
    }
}

/// Make decoded samples safe for any encoder: NaN and ±infinity become
/// silence, everything else is clipped to full scale. A crafted stream (an
/// MP3 frame with a huge global gain, say) decodes to values far outside
/// `-1.0..=1.0`, on which LAME aborts the process and other encoders lose
/// their bitrate or their signal.
pub fn sanitize(samples: &mut [f32]) {
    for s in samples {
        *s = if s.is_finite() { s.clamp(-1.0, 1.0) } else { 0.0 };
    }
}

/// Copies a symphonia buffer into a [`Pcm`] block (sanitised) and hands it
/// on; empty buffers are dropped.
fn emit(buf: &GenericAudioBufferRef<'_>, on_pcm: &mut dyn FnMut(Pcm)) {
    if buf.frames() == 0 {
        return;
    }
    let spec = buf.spec();
    let Ok(channels) = u8::try_from(spec.channels().count()) else {
        return;
    };
    let mut samples = Vec::with_capacity(buf.samples_interleaved());
    buf.copy_to_vec_interleaved(&mut samples);
    sanitize(&mut samples);
    on_pcm(Pcm { sample_rate: spec.rate(), channels, samples });
}

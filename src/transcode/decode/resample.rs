//! Sample-rate and channel conversion of decoded PCM for the encoders.
//!
//! Channels are mapped first (stereo→mono averages, mono→stereo duplicates), then the rate is
//! converted with rubato's FFT-based synchronous resampler, which suits the fixed rational
//! ratios between broadcast rates (44.1k↔48k is 147:160). rubato works in fixed-size chunks, so
//! input arriving in arbitrary block sizes is buffered until a chunk is complete; the
//! resampler's start-up delay is trimmed so output stays aligned with input.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler as _};

/// Input frames per rubato chunk: ~23 ms at 44.1 kHz, a fine latency/efficiency trade-off.
const CHUNK_FRAMES: usize = 1024;

/// The resampler could not be set up (zero rate or channel count).
#[derive(Debug, thiserror::Error)]
#[error("cannot build resampler: {0}")]
pub struct ResamplerError(String);

/// Converts interleaved PCM from one rate/channel count to another, streaming.
pub struct Resampler {
    channels_in: usize,
    channels_out: usize,
    /// Channel-mapped input not yet resampled (interleaved, `channels_out` channels).
    pending: Vec<f32>,
    /// `None` when the rates are equal: only the channel mapping applies.
    engine: Option<Engine>,
}

/// The rate-conversion state.
struct Engine {
    fft: Fft<f32>,
    /// Scratch output of one chunk.
    chunk_out: Vec<f32>,
    /// Output frames still to drop to compensate rubato's delay.
    delay_left: usize,
    in_rate: u64,
    out_rate: u64,
    /// Input frames fed so far and output frames produced so far (after the delay trim).
    frames_in: u64,
    frames_out: u64,
}

impl Resampler {
    /// Creates a resampler from `in_rate`/`channels_in` to `out_rate`/`channels_out`.
    pub fn new(in_rate: u32, out_rate: u32, channels_in: u8, channels_out: u8) -> Result<Self, ResamplerError> {
        if in_rate == 0 || out_rate == 0 || channels_in == 0 || channels_out == 0 {
            return Err(ResamplerError(format!("{in_rate} Hz/{channels_in} ch -> {out_rate} Hz/{channels_out} ch")));
        }
        let channels_out = usize::from(channels_out);
        let engine = if in_rate == out_rate {
            None
        } else {
            let fft =
                Fft::<f32>::new(in_rate as usize, out_rate as usize, CHUNK_FRAMES, channels_out, FixedSync::Input)
                    .map_err(|e| ResamplerError(e.to_string()))?;
            Some(Engine {
                chunk_out: vec![0.0; fft.output_frames_max() * channels_out],
                delay_left: fft.output_delay(),
                fft,
                in_rate: u64::from(in_rate),
                out_rate: u64::from(out_rate),
                frames_in: 0,
                frames_out: 0,
            })
        };
        Ok(Self { channels_in: usize::from(channels_in), channels_out, pending: Vec::new(), engine })
    }

    /// Converts `pcm` (interleaved, `channels_in` channels; any number of frames) and appends
    /// the result (interleaved, `channels_out` channels) to `out`. Up to one chunk of input may
    /// be held back until more arrives; see [`Resampler::flush`].
    pub fn process(&mut self, pcm: &[f32], out: &mut Vec<f32>) {
        match &mut self.engine {
            None => map_channels(pcm, self.channels_in, self.channels_out, out),
            Some(engine) => {
                map_channels(pcm, self.channels_in, self.channels_out, &mut self.pending);
                engine.frames_in += (pcm.len() / self.channels_in) as u64;
                let consumed = engine.run(&self.pending, self.channels_out, false, out);
                self.pending.drain(..consumed * self.channels_out);
            }
        }
    }

    /// Emits the held-back input and the filter tail, so that the total output length matches
    /// the total input length at the new rate. Call at the end of a stream (e.g. before
    /// replacing the resampler after a format change); the resampler starts over afterwards.
    pub fn flush(&mut self, out: &mut Vec<f32>) {
        if let Some(engine) = &mut self.engine {
            engine.run(&self.pending, self.channels_out, true, out);
            self.pending.clear();
            engine.fft.reset();
            engine.delay_left = engine.fft.output_delay();
            engine.frames_in = 0;
            engine.frames_out = 0;
        }
    }
}

impl Engine {
    /// Resamples whole chunks of `input` into `out`, returning the frames consumed. With
    /// `flush`, also the final partial chunk, padded with silence until the expected output
    /// length is reached.
    fn run(&mut self, input: &[f32], channels: usize, flush: bool, out: &mut Vec<f32>) -> usize {
        let frames = input.len() / channels;
        let expected = (self.frames_in * self.out_rate).div_ceil(self.in_rate);
        let mut consumed = 0;
        loop {
            let need = self.fft.input_frames_next();
            let left = frames - consumed;
            if left < need && (!flush || (left == 0 && self.frames_out >= expected)) {
                return consumed;
            }
            let take = left.min(need);
            let indexing = Indexing::new().input_offset(consumed).partial_len(take);
            let out_frames = self.fft.output_frames_next();
            self.chunk_out.resize(out_frames * channels, 0.0);
            // Both adapters are sized from the resampler's own figures, so neither this nor
            // `process_into_buffer` can fail; bail out rather than loop if they ever do.
            let (Ok(src), Ok(mut dst)) = (
                InterleavedSlice::new(input, channels, frames),
                InterleavedSlice::new_mut(&mut self.chunk_out[..], channels, out_frames),
            ) else {
                return frames;
            };
            let Ok((_, produced)) = self.fft.process_into_buffer(&src, &mut dst, Some(&indexing)) else {
                return frames;
            };
            consumed += take;
            let skip = self.delay_left.min(produced);
            self.delay_left -= skip;
            let mut keep = produced - skip;
            if flush && consumed == frames {
                // Past the real input: only keep what completes the expected length.
                keep = keep.min(expected.saturating_sub(self.frames_out) as usize);
            }
            out.extend_from_slice(&self.chunk_out[skip * channels..(skip + keep) * channels]);
            self.frames_out += keep as u64;
        }
    }
}

/// Appends `pcm` mapped from `ch_in` to `ch_out` interleaved channels to `out`.
///
/// To mono: the average of all channels. From mono: the channel duplicated. Otherwise the first
/// `ch_out` channels are kept (symphonia's canonical order starts front-left, front-right) and
/// missing ones are silent.
fn map_channels(pcm: &[f32], ch_in: usize, ch_out: usize, out: &mut Vec<f32>) {
    let frames = pcm.chunks_exact(ch_in);
    out.reserve(frames.len() * ch_out);
    if ch_in == ch_out {
        out.extend_from_slice(&pcm[..frames.len() * ch_in]);
    } else if ch_out == 1 {
        let scale = 1.0 / ch_in as f32;
        out.extend(frames.map(|f| f.iter().sum::<f32>() * scale));
    } else if ch_in == 1 {
        for f in frames {
            out.extend(std::iter::repeat_n(f[0], ch_out));
        }
    } else {
        for f in frames {
            out.extend((0..ch_out).map(|c| f.get(c).copied().unwrap_or(0.0)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{sine, tone_hz};
    use super::*;

    #[test]
    fn maps_channels() {
        let mut out = Vec::new();
        map_channels(&[0.5, 0.3, -1.0, 1.0], 2, 1, &mut out);
        assert_eq!(out, [0.4, 0.0]);
        out.clear();
        map_channels(&[0.25, -0.5], 1, 2, &mut out);
        assert_eq!(out, [0.25, 0.25, -0.5, -0.5]);
        out.clear();
        map_channels(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3, 2, &mut out);
        assert_eq!(out, [1.0, 2.0, 4.0, 5.0]);
    }

    #[test]
    fn same_rate_passes_through() {
        let mut r = Resampler::new(48000, 48000, 2, 1).expect("resampler");
        let mut out = Vec::new();
        r.process(&[0.5, 0.3, 0.1, 0.1], &mut out);
        assert_eq!(out, [0.4, 0.1]);
        assert!(Resampler::new(0, 48000, 2, 2).is_err());
    }

    /// Feeds `input` in irregular block sizes, then flushes.
    fn run(r: &mut Resampler, input: &[f32], channels: usize) -> Vec<f32> {
        let mut out = Vec::new();
        let mut pos = 0;
        for size in [1, 100, 7, 2000, 333, 4096, 64].iter().cycle() {
            if pos >= input.len() {
                break;
            }
            let end = (pos + size * channels).min(input.len());
            r.process(&input[pos..end], &mut out);
            pos = end;
        }
        r.flush(&mut out);
        out
    }

    #[test]
    fn resamples_44k1_to_48k_keeping_pitch() {
        let input = sine(440.0, 44100, 44100);
        let mut r = Resampler::new(44100, 48000, 1, 1).expect("resampler");
        let out = run(&mut r, &input, 1);
        assert_eq!(out.len(), 48000);
        let hz = tone_hz(&out, 48000, 1);
        assert!((hz - 440.0).abs() < 2.0, "{hz} Hz");
        // The start-up delay (160 frames here) was trimmed: the tone starts right away.
        assert!(out[20..120].iter().any(|s| *s > 0.3));
        // The resampler is reusable after a flush.
        let again = run(&mut r, &input, 1);
        assert_eq!(again.len(), 48000);
    }

    #[test]
    fn resamples_stereo_48k_to_mono_22k05() {
        let mono = sine(440.0, 48000, 24000);
        let stereo: Vec<f32> = mono.iter().flat_map(|s| [*s, *s * 0.5]).collect();
        let mut r = Resampler::new(48000, 22050, 2, 1).expect("resampler");
        let out = run(&mut r, &stereo, 2);
        assert_eq!(out.len(), 11025);
        let hz = tone_hz(&out, 22050, 1);
        assert!((hz - 440.0).abs() < 2.0, "{hz} Hz");
        let peak = out.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!((peak - 0.375).abs() < 0.03, "average of 0.5 and 0.25 amplitude, got {peak}");
    }

    #[test]
    fn upmixes_mono_to_stereo_while_resampling() {
        let input = sine(440.0, 22050, 11025);
        let mut r = Resampler::new(22050, 44100, 1, 2).expect("resampler");
        let out = run(&mut r, &input, 1);
        assert_eq!(out.len(), 44100);
        assert!(out.chunks_exact(2).all(|f| f[0] == f[1]));
        let hz = tone_hz(&out, 44100, 2);
        assert!((hz - 440.0).abs() < 2.0, "{hz} Hz");
    }
}

//! One rendition inside the codec process: its resampler and encoder, fed
//! the decoded source. Everything it makes leaves as messages to the server
//! ([`Sink`]), which frames the bytes into the rendition's mount.
//!
//! PCM is sanitised twice: once where it is decoded (a hostile stream can
//! decode to values far beyond full scale, NaN or infinity) and again after
//! resampling (which rings past ±1 on clipped input), so every encoder gets
//! finite samples in `-1.0..=1.0`. LAME asserts and aborts on wild input;
//! Vorbis and Opus lose their bitrate or their signal.

use std::time::Instant;

use bytes::Bytes;

use super::decode::{sanitize, Pcm, Resampler};
use super::encode::{self, Codec, Container, Encoder, EncoderSpec};
use super::wire::{FromCodec, RenditionJob, Target, Title};
use crate::config::{HlsVariant, TranscodeCodec, TranscodeConfig, TranscodeContainer};

/// Where a chain's messages go (the pipe to the server; a `Vec` in tests).
pub trait Sink {
    fn send(&mut self, msg: FromCodec);
}

impl Sink for Vec<FromCodec> {
    fn send(&mut self, msg: FromCodec) {
        self.push(msg);
    }
}

pub(super) fn codec_of(config: &TranscodeConfig) -> (Codec, Container) {
    let codec = match config.codec {
        TranscodeCodec::Mp3 => Codec::Mp3,
        TranscodeCodec::Aac => Codec::Aac,
        TranscodeCodec::HeAac => Codec::HeAac,
        TranscodeCodec::Opus => Codec::Opus,
        TranscodeCodec::Vorbis => Codec::Vorbis,
    };
    let container = match config.container {
        None => Container::Raw,
        Some(TranscodeContainer::Ogg) => Container::Ogg,
        Some(TranscodeContainer::WebM) => Container::WebM,
    };
    (codec, container)
}

/// Rates LAME encodes as MPEG-1 Layer III.
const MPEG1_RATES: [u32; 3] = [32000, 44100, 48000];
const AAC_RATES: [u32; 12] = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000];

/// The output rate: configured, else the input's when the codec takes it.
fn output_rate(config: &TranscodeConfig, input: u32) -> u32 {
    if let Some(rate) = config.sample_rate {
        return rate;
    }
    match config.codec {
        TranscodeCodec::Opus => 48000,
        // Below 32 kbit/s MP3 must be MPEG-2 (half rates).
        TranscodeCodec::Mp3 if config.bitrate < 32 => 22050,
        TranscodeCodec::Mp3 | TranscodeCodec::HeAac if MPEG1_RATES.contains(&input) => input,
        TranscodeCodec::Mp3 | TranscodeCodec::HeAac => 44100,
        TranscodeCodec::Aac if AAC_RATES.contains(&input) => input,
        TranscodeCodec::Aac => 44100,
        TranscodeCodec::Vorbis => input,
    }
}

/// What the encoder is asked for, given the input's rate and channels.
fn encoder_spec(config: &TranscodeConfig, input_rate: u32, input_channels: u8) -> EncoderSpec {
    let (codec, container) = codec_of(config);
    EncoderSpec {
        codec,
        bitrate_kbps: config.bitrate,
        sample_rate: output_rate(config, input_rate),
        channels: config.channels.unwrap_or(input_channels.clamp(1, 2)),
        container,
    }
}

/// Would the encoder accept `config`? Asked at config load time, for a
/// typical 44.1 kHz stereo source unless the rendition fixes rate or channels.
fn check(config: &TranscodeConfig) -> Result<(), String> {
    encode::validate(&encoder_spec(config, 44100, 2))
}

/// The encoder settings of a CMAF variant with an encoder of its own: 48 kHz,
/// no container (only its frames are used).
pub(super) fn variant_spec(variant: &HlsVariant, input_channels: u8) -> EncoderSpec {
    let (codec, _) = codec_of(&TranscodeConfig::for_variant(variant));
    EncoderSpec {
        codec,
        bitrate_kbps: variant.bitrate,
        sample_rate: 48_000,
        channels: variant.channels.unwrap_or(input_channels.clamp(1, 2)),
        container: Container::Frames,
    }
}

/// Would the encoder accept `variant`? Asked at config load time, for a
/// stereo source unless the variant fixes its channels.
fn check_variant(variant: &HlsVariant) -> Result<(), String> {
    encode::validate(&variant_spec(variant, 2))
}

/// The encoders' rules, for the config loader: the one the binary passes
/// when it loads (and reloads) the configuration.
pub struct Encoders;

/// The rules of the encoders this build has.
pub const ENCODERS: Encoders = Encoders;

impl crate::config::EncoderRules for Encoders {
    fn rendition(&self, rendition: &TranscodeConfig) -> Result<(), String> {
        check(rendition)
    }

    fn variant(&self, variant: &HlsVariant) -> Result<(), String> {
        check_variant(variant)
    }
}

/// What a chain encodes: a rendition's settings, or a CMAF variant's.
enum Recipe {
    Rendition(TranscodeConfig),
    Variant(HlsVariant),
}

impl Recipe {
    fn spec(&self, input_rate: u32, input_channels: u8) -> EncoderSpec {
        match self {
            Recipe::Rendition(config) => encoder_spec(config, input_rate, input_channels),
            Recipe::Variant(variant) => variant_spec(variant, input_channels),
        }
    }

    fn name(&self) -> &str {
        match self {
            Recipe::Rendition(config) => &config.name,
            Recipe::Variant(variant) => &variant.id,
        }
    }

    /// Does a title change start a new chained Ogg stream?
    fn chains_titles(&self) -> bool {
        matches!(self, Recipe::Rendition(c) if c.container == Some(TranscodeContainer::Ogg) && c.ogg_metadata)
    }
}

/// One encoder in the codec process, with its resampler, feeding a
/// rendition's mount (`Output`), a CMAF variant (`Frames`), or both when a
/// variant shares a rendition's encoder.
pub struct EncoderChain {
    recipe: Recipe,
    /// The rendition it feeds, and whether that rendition wants encoding
    /// (on-demand ones only while they have listeners).
    rendition: Option<(u8, bool)>,
    /// The ladder variant it feeds, and whether the ladder wants encoding.
    variant: Option<(u8, bool)>,
    /// Made on the first decoded block while wanted, when the input's rate is known.
    encoder: Option<Box<dyn Encoder>>,
    /// Output rate and channels, fixed while the encoder runs so listeners never see them change.
    target: Option<(u32, u8)>,
    /// Keyed on the input's rate and channels; remade when the source changes them.
    resampler: Option<((u32, u8), Resampler)>,
    resampled: Vec<f32>,
    encoded: Vec<u8>,
    frames: Vec<Bytes>,
    failed: bool,
    /// The title playing now: a new encoder's first Ogg stream carries it.
    title: Title,
    /// Time spent since the last output was sent, in nanoseconds.
    busy_ns: u64,
}

impl EncoderChain {
    fn new(recipe: Recipe, title: &Title) -> EncoderChain {
        EncoderChain {
            recipe,
            rendition: None,
            variant: None,
            encoder: None,
            target: None,
            resampler: None,
            resampled: Vec::new(),
            encoded: Vec::new(),
            frames: Vec::new(),
            failed: false,
            title: title.clone(),
            busy_ns: 0,
        }
    }

    /// The chain of rendition `index`.
    pub fn rendition(index: u8, job: RenditionJob, title: &Title) -> EncoderChain {
        let mut chain = EncoderChain::new(Recipe::Rendition(job.config), title);
        chain.rendition = Some((index, job.wanted));
        chain
    }

    /// The chain of variant `index`, with an encoder of its own.
    pub fn variant(index: u8, variant: HlsVariant, wanted: bool, title: &Title) -> EncoderChain {
        let mut chain = EncoderChain::new(Recipe::Variant(variant), title);
        chain.variant = Some((index, wanted));
        chain
    }

    /// Variant `index` shares this rendition's encoder.
    pub fn also_variant(&mut self, index: u8, wanted: bool) {
        self.variant = Some((index, wanted));
    }

    fn wanted(&self) -> bool {
        self.rendition.is_some_and(|(_, w)| w) || self.variant.is_some_and(|(_, w)| w)
    }

    /// Encode one decoded block; `arrived_us` is when its source data arrived.
    pub fn feed(&mut self, pcm: &Pcm, arrived_us: u64, out: &mut impl Sink) {
        if self.failed || !self.wanted() || pcm.frames() == 0 {
            return;
        }
        let started = Instant::now();
        if let Some((rate, channels)) = self.ensure_encoder(pcm, out) {
            if self.ensure_resampler(pcm, rate, channels, out) {
                self.resampled.clear();
                if let Some((_, resampler)) = &mut self.resampler {
                    resampler.process(&pcm.samples, &mut self.resampled);
                }
                self.encode_resampled(out);
            }
        }
        self.busy_ns += started.elapsed().as_nanos() as u64;
        self.send_encoded(arrived_us, out);
    }

    fn ensure_encoder(&mut self, pcm: &Pcm, out: &mut impl Sink) -> Option<(u32, u8)> {
        if let Some(target) = self.target {
            return Some(target);
        }
        let spec = self.recipe.spec(pcm.sample_rate, pcm.channels);
        let title = self.title.title.as_deref().unwrap_or(&self.title.song);
        let mut encoder = match encode::new_encoder_titled(&spec, self.title.artist.as_deref(), title) {
            Ok(encoder) => encoder,
            Err(error) => {
                self.fail(format!("cannot create the encoder: {error}"), out);
                return None;
            }
        };
        let (sample_rate, channels) = (spec.sample_rate, spec.channels);
        tracing::debug!(encoder = self.recipe.name(), frame = encoder.frame_samples(), "encoder started");
        if let Some((rendition, _)) = self.rendition {
            out.send(FromCodec::Started { rendition, sample_rate, channels });
        }
        if let Some((variant, _)) = self.variant {
            if !encoder.keep_frames() {
                self.fail(format!("{} cannot feed an HLS variant", self.recipe.name()), out);
                return None;
            }
            out.send(FromCodec::VariantStarted { variant, channels, pre_skip: encoder.pre_skip() });
        }
        self.encoder = Some(encoder);
        self.target = Some((sample_rate, channels));
        Some((sample_rate, channels))
    }

    /// A resampler for the block's format; false if none can be made.
    fn ensure_resampler(&mut self, pcm: &Pcm, rate: u32, channels: u8, out: &mut impl Sink) -> bool {
        let key = (pcm.sample_rate, pcm.channels);
        if self.resampler.as_ref().is_some_and(|(k, _)| *k == key) {
            return true;
        }
        // The source changed format: what the old resampler still holds goes
        // out first, so nothing is lost at the switch.
        if let Some((_, mut old)) = self.resampler.take() {
            self.resampled.clear();
            old.flush(&mut self.resampled);
            self.encode_resampled(out);
        }
        match Resampler::new(pcm.sample_rate, rate, pcm.channels, channels) {
            Ok(resampler) => {
                self.resampler = Some((key, resampler));
                true
            }
            Err(error) => {
                self.fail(format!("cannot resample: {error}"), out);
                false
            }
        }
    }

    /// Encode `resampled` after clipping what resampling made of full-scale input.
    fn encode_resampled(&mut self, out: &mut impl Sink) {
        sanitize(&mut self.resampled);
        let Some(encoder) = &mut self.encoder else { return };
        if let Err(error) = encoder.encode(&self.resampled, &mut self.encoded) {
            self.fail(format!("encoding failed: {error}"), out);
        }
    }

    /// Send what the encoder made: container bytes to the rendition, coded
    /// frames to the variant.
    fn send_encoded(&mut self, arrived_us: u64, out: &mut impl Sink) {
        if let (Some((variant, _)), Some(encoder)) = (self.variant, &mut self.encoder) {
            encoder.take_frames(&mut self.frames);
            if !self.frames.is_empty() {
                out.send(FromCodec::Frames { variant, arrived_us, frames: std::mem::take(&mut self.frames) });
            }
        }
        if self.encoded.is_empty() {
            return;
        }
        let bytes = std::mem::take(&mut self.encoded).into();
        if let Some((rendition, _)) = self.rendition {
            out.send(FromCodec::Output { rendition, arrived_us, busy_ns: self.busy_ns, bytes });
        }
        self.busy_ns = 0;
    }

    fn fail(&mut self, error: String, out: &mut impl Sink) {
        self.failed = true;
        self.encoder = None;
        match self.rendition {
            Some((rendition, _)) => out.send(FromCodec::Failed { rendition, error }),
            None => tracing::error!(variant = self.recipe.name(), error, "HLS variant failed and stopped"),
        }
    }

    /// The source's title changed: Ogg renditions start a new chained stream
    /// with new comments (unless turned off); others carry titles out of band.
    pub fn set_title(&mut self, title: &Title, arrived_us: u64, out: &mut impl Sink) {
        self.title = title.clone();
        if !self.recipe.chains_titles() {
            return;
        }
        if let Some(encoder) = &mut self.encoder {
            let name = title.title.as_deref().unwrap_or(&title.song);
            if let Err(error) = encoder.set_title(title.artist.as_deref(), name, &mut self.encoded) {
                tracing::warn!(encoder = self.recipe.name(), %error, "cannot chain a new Ogg stream for the title");
            }
            self.send_encoded(arrived_us, out);
        }
    }

    /// Start or stop encoding for what `target` names (an on-demand
    /// rendition, the ladder). With nothing left wanting it, the encoder
    /// ends its stream: the server restarts a rendition's stream on `Idle`,
    /// so the next listener gets one of its own from its first byte.
    pub fn want(&mut self, target: Target, wanted: bool, arrived_us: u64, out: &mut impl Sink) {
        match (target, &mut self.rendition, &mut self.variant) {
            (Target::Rendition(index), Some((mine, flag)), _) if *mine == index => *flag = wanted,
            (Target::Ladder, _, Some((_, flag))) => *flag = wanted,
            _ => return,
        }
        if !self.wanted() && self.encoder.is_some() {
            self.finish(arrived_us, out);
            self.encoder = None;
            self.resampler = None;
            self.target = None;
            if let Some((rendition, _)) = self.rendition {
                out.send(FromCodec::Idle { rendition });
            }
        }
    }

    /// Encode what the resampler and encoder still hold and end the stream
    /// (Ogg: its EOS page).
    pub fn finish(&mut self, arrived_us: u64, out: &mut impl Sink) {
        if let Some((_, resampler)) = &mut self.resampler {
            self.resampled.clear();
            resampler.flush(&mut self.resampled);
            self.encode_resampled(out);
        }
        if let Some(encoder) = &mut self.encoder {
            let _ = encoder.finish(&mut self.encoded);
        }
        self.send_encoded(arrived_us, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(codec: TranscodeCodec, bitrate: u32) -> TranscodeConfig {
        TranscodeConfig {
            name: "/r".into(),
            codec,
            bitrate,
            sample_rate: None,
            channels: None,
            container: matches!(codec, TranscodeCodec::Opus | TranscodeCodec::Vorbis)
                .then_some(TranscodeContainer::Ogg),
            ogg_metadata: true,
            on_demand: false,
            max_listeners: None,
            fallback_mount: None,
            fallback_override: false,
        }
    }

    fn output_bytes(msgs: &[FromCodec]) -> usize {
        msgs.iter().map(|m| if let FromCodec::Output { bytes, .. } = m { bytes.len() } else { 0 }).sum()
    }

    /// Wild samples (huge, infinite, NaN) reach no encoder: every codec
    /// keeps running and keeps close to its bitrate on ten seconds of them.
    #[test]
    fn wild_input_keeps_every_encoder_sane() {
        let codecs = [
            (TranscodeCodec::Mp3, 128),
            (TranscodeCodec::Opus, 96),
            (TranscodeCodec::Vorbis, 96),
            #[cfg(feature = "fdk-aac")]
            (TranscodeCodec::Aac, 64),
        ];
        for (codec, kbps) in codecs {
            let mut chain = EncoderChain::rendition(
                0,
                RenditionJob { config: config(codec, kbps), wanted: true },
                &Title::default(),
            );
            let mut out = Vec::new();
            let mut seed = 1u32;
            for _ in 0..500 {
                // 20 ms of stereo "noise" scaled far past full scale, with specials.
                let mut samples: Vec<f32> = (0..1764)
                    .map(|_| {
                        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        (seed >> 8) as f32 / (1 << 23) as f32 * 2.0 - 1.0
                    })
                    .map(|s| s * 1.0e30)
                    .collect();
                samples[7] = f32::NAN;
                samples[8] = f32::INFINITY;
                samples[9] = f32::NEG_INFINITY;
                sanitize(&mut samples);
                chain.feed(&Pcm { sample_rate: 44100, channels: 2, samples }, 0, &mut out);
            }
            chain.finish(0, &mut out);
            assert!(!out.iter().any(|m| matches!(m, FromCodec::Failed { .. })), "{codec:?}: {out:?}");
            let kbps_out = output_bytes(&out) as f64 * 8.0 / 10.0 / 1000.0;
            assert!(kbps_out < f64::from(kbps) * 2.0, "{codec:?} made {kbps_out:.0} kbit/s for {kbps}");
            assert!(kbps_out > f64::from(kbps) * 0.3, "{codec:?} made only {kbps_out:.0} kbit/s for {kbps}");
        }
    }

    #[test]
    fn on_demand_chain_idles_and_restarts() {
        let job = RenditionJob { config: config(TranscodeCodec::Mp3, 64), wanted: false };
        let mut chain = EncoderChain::rendition(2, job, &Title::default());
        let block = Pcm { sample_rate: 44100, channels: 2, samples: vec![0.1; 8820] };
        let mut out = Vec::new();
        chain.feed(&block, 0, &mut out);
        assert!(out.is_empty(), "nothing encoded while unwanted");
        chain.want(Target::Rendition(2), true, 0, &mut out);
        chain.feed(&block, 0, &mut out);
        assert!(matches!(out[0], FromCodec::Started { rendition: 2, sample_rate: 44100, channels: 2 }));
        chain.want(Target::Rendition(2), false, 0, &mut out);
        assert!(matches!(out.last(), Some(FromCodec::Idle { rendition: 2 })));
        assert!(output_bytes(&out) > 0);
    }

    /// A variant gets coded frames (no container) on a 48 kHz grid: 20 ms
    /// Opus packets, 1024-sample AAC access units.
    #[test]
    fn variants_get_bare_frames() {
        for (codec, frame) in [(TranscodeCodec::Opus, 960), (TranscodeCodec::Aac, 1024)] {
            if codec == TranscodeCodec::Aac && !cfg!(feature = "fdk-aac") {
                continue;
            }
            let variant = HlsVariant::encoded(codec, 64);
            let mut chain = EncoderChain::variant(1, variant, true, &Title::default());
            let mut out = Vec::new();
            let block = Pcm { sample_rate: 44100, channels: 2, samples: vec![0.1; 44100 * 2] };
            chain.feed(&block, 0, &mut out);
            assert!(matches!(out[0], FromCodec::VariantStarted { variant: 1, channels: 2, .. }), "{out:?}");
            let frames: usize =
                out.iter().map(|m| if let FromCodec::Frames { frames, .. } = m { frames.len() } else { 0 }).sum();
            // A second at 48 kHz, less what the encoder still holds.
            assert!((48_000 / frame - 5..=48_000 / frame + 1).contains(&frames), "{codec:?}: {frames} frames");
            assert!(!out.iter().any(|m| matches!(m, FromCodec::Output { .. })), "no container bytes for a variant");
        }
    }
}

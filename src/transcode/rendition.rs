//! One rendition: the derived mount it feeds (attached as that mount's
//! source), its resampler and encoder, and the framer that turns encoder
//! output into chunks exactly as if a source had sent it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::decode::{Pcm, Resampler};
use super::encode::{self, Codec, Container, Encoder, EncoderSpec};
use crate::config::{TranscodeCodec, TranscodeConfig, TranscodeContainer};
use crate::format::{AudioInfo, Framer, Unit};
use crate::mount::{Metadata, MountHandle, SourceInfo, StreamInfo};

/// How long an on-demand rendition keeps encoding after its last listener
/// leaves: players reconnect (and browsers probe before they play).
const ON_DEMAND_LINGER: Duration = Duration::from_secs(5);

pub struct Rendition {
    config: Arc<TranscodeConfig>,
    mount: MountHandle,
    source: Arc<SourceInfo>,
    container: Container,
    /// Made on the first decoded block, when the input's rate is known.
    encoder: Option<Box<dyn Encoder>>,
    /// Output rate and channels, fixed for the session so listeners never see them change.
    target: Option<(u32, u8)>,
    /// Keyed on the input's rate and channels; remade when the source changes them.
    resampler: Option<((u32, u8), Resampler)>,
    framer: Box<dyn Framer>,
    resampled: Vec<f32>,
    encoded: Vec<u8>,
    units: Vec<Unit>,
    failed: bool,
    /// On-demand: when the last listener left while the encoder ran.
    idle_since: Option<Instant>,
    /// Time spent resampling and encoding this session, in nanoseconds.
    pub busy_ns: u64,
}

fn codec_of(config: &TranscodeConfig) -> (Codec, Container) {
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
pub fn check(config: &TranscodeConfig) -> Result<(), String> {
    encode::validate(&encoder_spec(config, 44100, 2))
}

impl Rendition {
    /// Claim `mount` as this rendition's output.
    pub fn attach(config: Arc<TranscodeConfig>, mount: MountHandle, parent: &StreamInfo) -> Result<Rendition, String> {
        let (codec, container) = codec_of(&config);
        let mut info = parent.clone();
        info.bitrate = Some(config.bitrate);
        info.audio_info = None;
        let content_type = encode::content_type(codec, container).to_string();
        let source =
            Arc::new(SourceInfo::new(content_type, info, super::internal_peer(), Some("Floe transcoder".into())));
        mount.attach_source(source.clone()).map_err(|_| format!("{} already has a source", mount.name()))?;
        Ok(Rendition {
            framer: source.format.framer(),
            config,
            mount,
            source,
            container,
            encoder: None,
            target: None,
            resampler: None,
            resampled: Vec::new(),
            encoded: Vec::new(),
            units: Vec::new(),
            failed: false,
            idle_since: None,
            busy_ns: 0,
        })
    }

    pub fn mount(&self) -> &MountHandle {
        &self.mount
    }

    /// Encode one decoded block.
    pub fn feed(&mut self, pcm: &Pcm, clock: &super::feed::Clock) {
        if self.failed || pcm.frames() == 0 || !self.wanted() {
            return;
        }
        let started = Instant::now();
        let Some((rate, channels)) = self.ensure_encoder(pcm) else { return };
        let key = (pcm.sample_rate, pcm.channels);
        if self.resampler.as_ref().is_none_or(|(k, _)| *k != key) {
            // The source changed format: what the old resampler still holds
            // goes out first, so nothing is lost at the switch.
            if let (Some((_, old)), Some(encoder)) = (&mut self.resampler, &mut self.encoder) {
                self.resampled.clear();
                old.flush(&mut self.resampled);
                let _ = encoder.encode(&self.resampled, &mut self.encoded);
            }
            match Resampler::new(pcm.sample_rate, rate, pcm.channels, channels) {
                Ok(resampler) => self.resampler = Some((key, resampler)),
                Err(error) => {
                    tracing::warn!(mount = self.mount.name(), %error, "cannot resample; rendition stopped");
                    self.failed = true;
                    return;
                }
            }
        }
        self.resampled.clear();
        if let Some((_, resampler)) = &mut self.resampler {
            resampler.process(&pcm.samples, &mut self.resampled);
        }
        if let Some(encoder) = &mut self.encoder {
            if let Err(error) = encoder.encode(&self.resampled, &mut self.encoded) {
                tracing::warn!(mount = self.mount.name(), %error, "encoding failed; rendition stopped");
                self.failed = true;
            }
        }
        if self.push_encoded() {
            // Time from the source's data arriving to its encoding being
            // published here (the codec's own frame buffering aside).
            let delay = clock.since_arrival().as_micros() as u64;
            let stats = self.mount.stats();
            stats.transcode_delay_us.store(delay, Ordering::Relaxed);
            stats.transcode_delay_max_us.fetch_max(delay, Ordering::Relaxed);
        }
        let spent = started.elapsed().as_nanos() as u64;
        self.busy_ns += spent;
        self.mount.stats().transcode_ns.fetch_add(spent, Ordering::Relaxed);
    }

    /// Whether to encode now. Always, unless `on_demand`: then while the
    /// mount has listeners, and for `ON_DEMAND_LINGER` after the last one
    /// leaves, so a player that reconnects finds it running.
    fn wanted(&mut self) -> bool {
        if !self.config.on_demand || self.mount.listener_count() > 0 {
            self.idle_since = None;
            return true;
        }
        if self.encoder.is_none() {
            return false;
        }
        let since = *self.idle_since.get_or_insert_with(Instant::now);
        if since.elapsed() < ON_DEMAND_LINGER {
            return true;
        }
        self.go_idle();
        false
    }

    /// Stop encoding until listeners return: end the stream, drop the
    /// encoder and resampler, and restart the mount's stream so the next
    /// listener gets one of its own from its first byte.
    fn go_idle(&mut self) {
        self.flush_encoder();
        self.encoder = None;
        self.resampler = None;
        self.target = None;
        self.idle_since = None;
        self.framer = self.source.format.framer();
        self.mount.restart_stream();
        tracing::info!(mount = self.mount.name(), "rendition idle: no listeners");
    }

    fn ensure_encoder(&mut self, pcm: &Pcm) -> Option<(u32, u8)> {
        if let Some(target) = self.target {
            return Some(target);
        }
        let spec = encoder_spec(&self.config, pcm.sample_rate, pcm.channels);
        let (rate, channels) = (spec.sample_rate, spec.channels);
        // Ogg comments of the first stream carry the title already playing.
        let meta = self.mount.metadata();
        let title = meta.title.as_deref().unwrap_or(&meta.song);
        match encode::new_encoder_titled(&spec, meta.artist.as_deref(), title) {
            Ok(encoder) => {
                let frame = encoder.frame_samples();
                self.encoder = Some(encoder);
                self.mount.stats().encoding.store(1, Ordering::Relaxed);
                // What the encoder makes, not what the framer reads back: an
                // HE-AAC header states the half-rate core.
                let info = AudioInfo { sample_rate: rate, channels, bitrate: self.config.bitrate };
                self.mount.set_audio_info(Some(info));
                self.target = Some((rate, channels));
                tracing::info!(
                    mount = self.mount.name(),
                    rate,
                    channels,
                    bitrate = self.config.bitrate,
                    frame,
                    "rendition encoding"
                );
                Some((rate, channels))
            }
            Err(error) => {
                tracing::warn!(mount = self.mount.name(), %error, "cannot create the encoder");
                self.failed = true;
                None
            }
        }
    }

    /// The source's title changed: ICY titles follow at once; Ogg renditions
    /// start a new chained stream with new comments (unless turned off).
    pub fn set_title(&mut self, meta: &Arc<Metadata>) {
        self.mount.set_metadata((**meta).clone());
        if self.container != Container::Ogg || !self.config.ogg_metadata {
            return;
        }
        if let Some(encoder) = &mut self.encoder {
            let title = meta.title.as_deref().unwrap_or(&meta.song);
            if let Err(error) = encoder.set_title(meta.artist.as_deref(), title, &mut self.encoded) {
                tracing::warn!(mount = self.mount.name(), %error, "cannot chain a new Ogg stream for the title");
            }
            self.push_encoded();
        }
    }

    /// Frame and publish what the encoder produced; true if anything was.
    fn push_encoded(&mut self) -> bool {
        if self.encoded.is_empty() {
            return false;
        }
        self.framer.push(&self.encoded, &mut self.units);
        self.encoded.clear();
        let any = !self.units.is_empty();
        self.mount.push_units(&mut self.units);
        any
    }

    /// Encode what the resampler and encoder still hold, end the stream
    /// (Ogg: its EOS page) and publish it.
    fn flush_encoder(&mut self) {
        if let (Some((_, resampler)), Some(encoder)) = (&mut self.resampler, &mut self.encoder) {
            self.resampled.clear();
            resampler.flush(&mut self.resampled);
            let _ = encoder.encode(&self.resampled, &mut self.encoded);
        }
        if let Some(encoder) = &mut self.encoder {
            let _ = encoder.finish(&mut self.encoded);
        }
        self.push_encoded();
        self.mount.publish_now();
        self.mount.stats().encoding.store(0, Ordering::Relaxed);
    }

    /// The source is gone: flush the encoder and release the mount.
    pub fn finish(&mut self) {
        self.flush_encoder();
        self.mount.detach_source(&self.source);
    }
}

//! One rendition on the server's side: the derived mount it feeds (attached
//! as that mount's source while a codec process runs for it), and the framer
//! that turns what the codec process makes into chunks exactly as if a source
//! had sent it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::chain::codec_of;
use super::counters::TranscodeStats;
use super::encode;
use crate::config::TranscodeConfig;
use crate::format::{AudioInfo, Framer, Unit};
use crate::mount::{Metadata, MountBusy, MountHandle, SourceInfo, StreamInfo};

/// How long an on-demand rendition keeps encoding after its last listener
/// leaves: players reconnect (and browsers probe before they play).
const ON_DEMAND_LINGER: Duration = Duration::from_secs(5);

pub struct RenditionOutput {
    config: Arc<TranscodeConfig>,
    mount: MountHandle,
    stats: Arc<TranscodeStats>,
    /// Set while attached: the source the mount knows this rendition as.
    source: Option<Arc<SourceInfo>>,
    framer: Box<dyn Framer>,
    units: Vec<Unit>,
    /// Whether the codec process is told to encode (on-demand renditions).
    wanted: bool,
    /// On-demand: when the last listener left while encoding.
    idle_since: Option<Instant>,
}

impl RenditionOutput {
    pub fn new(config: Arc<TranscodeConfig>, mount: MountHandle, stats: Arc<TranscodeStats>) -> RenditionOutput {
        let (codec, container) = codec_of(&config);
        let format = crate::format::Format::from_content_type(encode::content_type(codec, container));
        RenditionOutput {
            config,
            mount,
            stats,
            source: None,
            framer: format.framer(),
            units: Vec::new(),
            wanted: false,
            idle_since: None,
        }
    }

    pub fn config(&self) -> &TranscodeConfig {
        &self.config
    }

    pub fn name(&self) -> &str {
        self.mount.name()
    }

    pub fn is_attached(&self) -> bool {
        self.source.is_some()
    }

    /// Claim the mount for a new codec process, with the parent's stream
    /// information; the stream starts afresh (a new framer).
    pub fn attach(&mut self, parent: &StreamInfo) -> Result<(), MountBusy> {
        let (codec, container) = codec_of(&self.config);
        let mut info = parent.clone();
        info.bitrate = Some(self.config.bitrate);
        info.audio_info = None;
        let content_type = encode::content_type(codec, container).to_string();
        let source =
            Arc::new(SourceInfo::new(content_type, info, super::internal_peer(), Some("Floe transcoder".into())));
        self.mount.attach_source(source.clone())?;
        self.framer = source.format.framer();
        self.source = Some(source);
        self.wanted = !self.config.on_demand || self.mount.listener_count() > 0;
        self.idle_since = None;
        Ok(())
    }

    /// Release the mount: what it holds goes out, then its listeners follow
    /// its fallback or end, as when any source leaves.
    pub fn detach(&mut self) {
        let Some(source) = self.source.take() else { return };
        self.mount.publish_now();
        self.stats.set_encoding(false);
        self.mount.detach_source(&source);
    }

    /// Is the codec process told to encode this rendition?
    pub fn wanted(&self) -> bool {
        self.wanted
    }

    /// Does this rendition want encoding now: always, or (on demand) while
    /// it has listeners.
    pub fn demanded(&self) -> bool {
        self.is_attached() && (!self.config.on_demand || self.mount.listener_count() > 0)
    }

    /// A session starts: encode what is demanded now.
    pub fn refresh_wanted(&mut self) {
        self.wanted = self.demanded();
        self.idle_since = None;
    }

    /// The encoder started with this rate and channels.
    pub fn started(&self, sample_rate: u32, channels: u8) {
        if !self.is_attached() {
            return;
        }
        self.stats.set_encoding(true);
        // What the encoder makes, not what the framer reads back: an HE-AAC
        // header states the half-rate core.
        self.mount.set_audio_info(Some(AudioInfo { sample_rate, channels, bitrate: self.config.bitrate }));
        tracing::info!(mount = self.name(), sample_rate, channels, bitrate = self.config.bitrate, "rendition encoding");
    }

    /// Frame and publish encoded bytes; `delay` is how long ago the newest
    /// source data in them arrived, `busy_ns` the codec time they cost.
    pub fn push(&mut self, bytes: &[u8], delay: Duration, busy_ns: u64) {
        if !self.is_attached() {
            return;
        }
        self.framer.push(bytes, &mut self.units);
        let any = !self.units.is_empty();
        self.mount.push_units(&mut self.units);
        self.stats.busy_ns.fetch_add(busy_ns, Ordering::Relaxed);
        if any {
            self.stats.delayed(delay.as_micros() as u64);
        }
    }

    /// An on-demand rendition stopped encoding: the next listener gets a
    /// stream of its own from its first byte.
    pub fn idle(&mut self) {
        if let Some(source) = &self.source {
            self.mount.publish_now();
            self.stats.set_encoding(false);
            self.framer = source.format.framer();
            self.mount.restart_stream();
            tracing::info!(mount = self.name(), "rendition idle: no listeners");
        }
    }

    /// This rendition's encoder failed: it ends visibly, the others go on.
    pub fn failed(&mut self, error: &str) {
        tracing::error!(mount = self.name(), error, "rendition failed and stopped");
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        self.detach();
    }

    /// The title changed at this point of the stream.
    pub fn set_title(&self, meta: Metadata) {
        if self.is_attached() {
            self.mount.set_metadata(meta);
        }
    }

    /// Publish held-back data when the mount's next wake group is due (the
    /// ingest loop's timer, for this server-fed mount).
    pub fn publish_if_due(&self, now: Instant) {
        if self.is_attached() && self.mount.publish_due().is_some_and(|due| due.into_std() <= now) {
            self.mount.publish_scheduled();
        }
    }

    /// Should an on-demand rendition encode now? While it has listeners, and
    /// for `ON_DEMAND_LINGER` after the last one leaves. `Some` when that
    /// changed.
    pub fn want_now(&mut self, now: Instant) -> Option<bool> {
        if !self.config.on_demand || !self.is_attached() {
            return None;
        }
        let wanted = if self.mount.listener_count() > 0 {
            self.idle_since = None;
            true
        } else if self.wanted {
            now.duration_since(*self.idle_since.get_or_insert(now)) < ON_DEMAND_LINGER
        } else {
            false
        };
        if wanted == self.wanted {
            return None;
        }
        self.wanted = wanted;
        self.idle_since = None;
        Some(wanted)
    }
}

//! Supervision of one source mount's codec work, for as long as the source
//! is connected: a codec process runs while something wants it (a rendition
//! that always encodes, an on-demand rendition with listeners, the HLS/DASH
//! ladder while it is asked for) and not otherwise; a process that fails is
//! replaced (`session.rs` runs one).
//!
//! Whatever fails in a codec process — a C library aborting on hostile
//! audio, a panic, the memory limit, a stall, a runaway loop — only this
//! mount's renditions notice: they end visibly (their listeners follow the
//! rendition's fallback or are closed, status pages stop listing them), the
//! failure is logged and counted (`transcode_failures`), and after a backoff
//! a new process starts from the source's current position and the
//! renditions come back. The ladder's timeline carries on with a
//! discontinuity.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::counters::TranscodeStats;
use super::decode::Input;
use super::output::RenditionOutput;
use crate::hls::HlsWriter;
use crate::mount::tap::TapReceiver;
use crate::mount::{MountHandle, TapId};
use crate::state::ServerStats;

/// How long to wait for a rendition mount still held by a previous session.
const ATTACH_WAIT: Duration = Duration::from_secs(5);
/// Restart delays: doubling from the first to the last; a process that ran
/// `STABLE` before failing starts again from the first.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const STABLE: Duration = Duration::from_secs(60);
/// While nothing wants codec work, how often to look whether something does
/// (a listener at an on-demand rendition, a first HLS request).
const IDLE_POLL: Duration = Duration::from_millis(100);

/// Everything one source mount's transcoding needs.
pub struct Supervisor {
    pub mount: MountHandle,
    pub input: Input,
    pub outputs: Vec<RenditionOutput>,
    /// The mount's adaptive stream, if it is offered as HLS and DASH.
    pub hls: Option<HlsWriter>,
    /// Flips to true when the source leaves.
    pub stop: watch::Receiver<bool>,
    /// The source mount's transcoding counters.
    pub stats: Arc<TranscodeStats>,
    pub server_stats: Arc<ServerStats>,
    pub delivery_interval: Duration,
    pub memory_limit: u64,
    /// The tap set when transcoding started, before the source's first
    /// byte, for the first codec process: what a source sends while the
    /// process starts is not lost to it (a source may send its whole
    /// buffer at once). Later processes tap the stream from their start.
    pub first_feed: Option<(TapReceiver, TapId)>,
}

/// How a codec process's session ended.
pub(super) enum SessionEnd {
    /// The source left and the process finished (or was told to).
    Stopped,
    /// Nothing wanted codec work any more; the process finished.
    Idle,
    Failed(String),
}

impl Supervisor {
    /// Run codec sessions while wanted until the source leaves, restarting
    /// after failures.
    pub async fn run(mut self) {
        let mut backoff = BACKOFF_FIRST;
        let mut attached = self.attach_outputs().await;
        while attached && self.until_wanted().await {
            let started = Instant::now();
            let end = self.session().await;
            if let Some(hls) = &self.hls {
                hls.end();
            }
            match end {
                SessionEnd::Stopped => break,
                SessionEnd::Idle => {
                    for output in &mut self.outputs {
                        output.idle();
                    }
                    tracing::info!(mount = self.mount.name(), "codec work idle: nothing wants it");
                }
                SessionEnd::Failed(reason) => {
                    for output in &mut self.outputs {
                        output.detach();
                    }
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    self.server_stats.transcode_failures.fetch_add(1, Ordering::Relaxed);
                    if started.elapsed() >= STABLE {
                        backoff = BACKOFF_FIRST;
                    }
                    tracing::error!(
                        mount = self.mount.name(),
                        reason = reason.as_str(),
                        restart_in_s = backoff.as_secs(),
                        "transcoding failed; its renditions ended"
                    );
                    if self.stopped_within(backoff).await {
                        break;
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    attached = self.attach_outputs().await;
                }
            }
        }
        if let Some((_, id)) = self.first_feed.take() {
            self.mount.clear_tap(&id);
        }
        for output in &mut self.outputs {
            output.detach();
        }
        tracing::info!(mount = self.mount.name(), "transcoding ended");
    }

    /// Wait `time` unless the source leaves first; true if it did.
    pub(super) async fn stopped_within(&mut self, time: Duration) -> bool {
        if *self.stop.borrow() {
            return true;
        }
        tokio::time::timeout(time, self.stop.wait_for(|&stop| stop)).await.is_ok()
    }

    /// Wait until something wants codec work; false if the source left first.
    async fn until_wanted(&mut self) -> bool {
        loop {
            let now = Instant::now();
            let renditions = self.outputs.iter().any(RenditionOutput::demanded);
            if renditions || self.hls.as_ref().is_some_and(|h| h.stream().wanted(now)) {
                return true;
            }
            // Nobody wants codec work yet: stop buffering the source for it.
            if let Some((_, id)) = self.first_feed.take() {
                self.mount.clear_tap(&id);
            }
            if self.stopped_within(IDLE_POLL).await {
                return false;
            }
        }
    }

    /// Claim every rendition mount (waiting a little for one a previous
    /// session still holds); false if the source left meanwhile.
    async fn attach_outputs(&mut self) -> bool {
        let Some(parent) = self.mount.source() else { return false };
        let deadline = Instant::now() + ATTACH_WAIT;
        loop {
            for output in self.outputs.iter_mut().filter(|o| !o.is_attached()) {
                let _ = output.attach(&parent.info);
            }
            if self.outputs.iter().all(RenditionOutput::is_attached) || Instant::now() >= deadline {
                break;
            }
            if self.stopped_within(Duration::from_millis(100)).await {
                return false;
            }
        }
        for output in self.outputs.iter().filter(|o| !o.is_attached()) {
            tracing::warn!(mount = output.name(), "rendition not started: its mount has another source");
        }
        !*self.stop.borrow()
    }
}

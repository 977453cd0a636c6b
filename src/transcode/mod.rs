//! Transcoding: one source mount decoded once and re-encoded into any number
//! of renditions (MP3, AAC, Opus, Vorbis), each served as an ordinary mount.
//!
//! Data flows one way: the source mount's tap hands every framed unit (and
//! title changes, in place) to a codec thread as it arrives; the thread decodes (`decode`), resamples per rendition, encodes (`encode`),
//! frames the result with the rendition's own framer and appends it to the
//! rendition's mount. Codec work never runs on the async runtime.

mod decode;
mod encode;
mod feed;
mod rendition;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::format::Format;
use crate::mount::MountHandle;
use crate::state::AppState;
use feed::FeedReader;
pub use rendition::check;
use rendition::Rendition;

/// Units in flight between the source and the codec thread (several seconds
/// of audio; the thread runs far faster than real time).
const FEED_DEPTH: usize = 512;

/// The renditions of one source session; dropping it closes the tap, and the
/// codec thread finishes what it has and releases the rendition mounts.
pub struct Ladder {
    mount: MountHandle,
}

impl Drop for Ladder {
    fn drop(&mut self) {
        self.mount.set_tap(None);
    }
}

/// Start the renditions of `mount`, whose source just attached. `None` when
/// the mount has none, or the source's format cannot be decoded.
pub fn start(state: &AppState, mount: &MountHandle) -> Option<Ladder> {
    let configs = mount.config().transcode.clone();
    if configs.is_empty() {
        return None;
    }
    let source = mount.source()?;
    let input = match source.format {
        Format::Mp3 => decode::Input::Mp3,
        Format::Aac => decode::Input::Aac,
        Format::Ogg => decode::Input::Ogg,
        Format::WebM | Format::Opaque => {
            tracing::warn!(mount = mount.name(), content_type = %source.content_type, "cannot transcode this format");
            return None;
        }
    };
    let mut renditions = Vec::new();
    for config in configs {
        let Some(target) = state.mounts.get(&config.name) else { continue };
        match Rendition::attach(config, target, &source.info) {
            Ok(r) => renditions.push(r),
            Err(error) => tracing::warn!(mount = mount.name(), %error, "rendition not started"),
        }
    }
    if renditions.is_empty() {
        return None;
    }
    let outputs: Vec<MountHandle> = renditions.iter().map(|r| r.mount().clone()).collect();
    let (tx, rx) = mpsc::channel(FEED_DEPTH);
    mount.set_tap(Some(tx));
    let name = mount.name().to_string();
    let source_mount = mount.clone();
    let spawned = std::thread::Builder::new().name(format!("transcode {name}")).spawn(move || {
        codec_thread(input, FeedReader::new(rx), renditions, source_mount);
    });
    if let Err(error) = spawned {
        tracing::error!(mount = %name, %error, "cannot start the transcoder thread");
        mount.set_tap(None);
        return None;
    }
    tracing::info!(mount = %name, "transcoding started");
    tokio::spawn(publish_held(outputs, state.config.limits.delivery_interval));
    Some(Ladder { mount: mount.clone() })
}

/// Decode the source once, feed every rendition, until the feed ends.
fn codec_thread(input: decode::Input, reader: FeedReader, mut renditions: Vec<Rendition>, source: MountHandle) {
    let titles = reader.titles();
    let clock = reader.clock();
    let mut stats = decode::DecodeStats::default();
    let started = Instant::now();
    // Decode time = time not spent waiting for the source nor encoding.
    let mut decode_ns = 0u64;
    let result = decode::run_decoder(input, reader, &mut stats, &mut |pcm| {
        if let Some(meta) = titles.take() {
            for r in &mut renditions {
                r.set_title(&meta);
            }
        }
        for r in &mut renditions {
            r.feed(&pcm, &clock);
        }
        let busy: u64 = renditions.iter().map(|r| r.busy_ns).sum();
        let total = (started.elapsed().as_nanos() as u64).saturating_sub(clock.waited_ns() + busy);
        source.stats().transcode_ns.fetch_add(total.saturating_sub(decode_ns), Ordering::Relaxed);
        decode_ns = decode_ns.max(total);
    });
    for r in &mut renditions {
        r.finish();
    }
    source.stats().corrupt_packets.fetch_add(stats.corrupt_packets, Ordering::Relaxed);
    let secs = started.elapsed().as_secs();
    match result {
        Ok(()) => tracing::info!(
            mount = source.name(),
            corrupt = stats.corrupt_packets,
            resets = stats.resets,
            secs,
            "transcoding ended"
        ),
        Err(error) => tracing::warn!(mount = source.name(), %error, "transcoding stopped"),
    }
}

/// Renditions are appended to from the codec thread, which has no timers:
/// this task publishes data held back by `delivery_interval` when it is due,
/// as the ingest loop does for ordinary sources. It ends with the renditions.
async fn publish_held(mounts: Vec<MountHandle>, interval: std::time::Duration) {
    // Fine enough for the wake groups' phases, a quarter interval apart.
    let tick = interval.max(std::time::Duration::from_millis(20)) / 8;
    // Renditions go live when their encoder starts; wait for that first.
    let mut seen_live = false;
    loop {
        tokio::time::sleep(tick).await;
        let live = mounts.iter().any(MountHandle::is_live);
        if !live && seen_live {
            return;
        }
        seen_live |= live;
        let now = Instant::now();
        for mount in &mounts {
            if mount.publish_due().is_some_and(|due| due <= now) {
                mount.publish_scheduled();
            }
        }
    }
}

/// The address shown as the "source" of a rendition.
fn internal_peer() -> SocketAddr {
    ([127, 0, 0, 1], 0).into()
}

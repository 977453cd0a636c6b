//! Transcoding: one source mount decoded once and re-encoded into any number
//! of renditions (MP3, AAC, Opus, Vorbis), each served as an ordinary mount.
//!
//! Codec work runs in a separate process per source mount (`floe
//! codec-worker`, [`codec_process`]), never in the server: a codec library
//! that aborts, panics, exhausts its memory limit or loops on hostile audio
//! takes only that mount's renditions down, and the [`supervisor`] restarts
//! them. Data flows one way: the source mount's tap hands every framed unit
//! (and title changes, in place) to the supervisor, which pipes it to the
//! process ([`wire`]); the process decodes (`decode`), resamples and encodes
//! each rendition (`chain`, `encode`) and pipes the bytes back; the
//! supervisor frames them into the rendition mounts (`output`).

mod chain;
pub mod codec_process;
mod decode;
mod encode;
mod feed;
mod output;
mod session;
mod supervisor;
mod watchdog;
mod wire;

use std::net::SocketAddr;

use tokio::sync::watch;

use crate::config::HlsMode;
use crate::format::Format;
use crate::mount::MountHandle;
use crate::state::AppState;
pub use chain::{check, check_variant};
use output::RenditionOutput;
use supervisor::Supervisor;

/// The renditions of one source session; dropping it tells the supervisor
/// the source left: the codec process finishes what it has and the rendition
/// mounts are released.
pub struct Ladder {
    stop: watch::Sender<bool>,
}

impl Drop for Ladder {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Start the codec work of `mount`, whose source just attached: its
/// renditions, and its HLS/DASH ladder. `None` when it has neither, or the
/// source's format cannot be decoded.
pub fn start(state: &AppState, mount: &MountHandle) -> Option<Ladder> {
    let config = mount.config();
    let ladder = config.hls.mode != HlsMode::Off && !config.hls.variants.is_empty();
    if config.transcode.is_empty() && !ladder {
        return None;
    }
    let source = mount.source()?;
    let input = match source.format {
        Format::Mp3 => decode::Input::Mp3,
        Format::Aac => decode::Input::Aac,
        Format::Ogg => decode::Input::Ogg,
        Format::WebM | Format::Opaque => {
            if !config.transcode.is_empty() {
                let content_type = source.content_type.as_str();
                tracing::warn!(mount = mount.name(), content_type, "cannot transcode this format");
            }
            return None;
        }
    };
    let outputs: Vec<RenditionOutput> = (config.transcode.iter())
        .filter_map(|config| state.mounts.get(&config.name).map(|m| RenditionOutput::new(config.clone(), m)))
        .collect();
    let hls = ladder.then(|| state.hls.get_or_create(mount.name(), &config.hls));
    let (stop, stop_rx) = watch::channel(false);
    let supervisor = Supervisor {
        mount: mount.clone(),
        input,
        outputs,
        hls,
        stop: stop_rx,
        server_stats: state.stats.clone(),
        delivery_interval: state.config.limits.delivery_interval,
        memory_limit: state.config.limits.transcode_memory,
    };
    tokio::spawn(supervisor.run());
    Some(Ladder { stop })
}

/// The address shown as the "source" of a rendition.
fn internal_peer() -> SocketAddr {
    ([127, 0, 0, 1], 0).into()
}

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
mod counters;
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
pub use chain::{Encoders, ENCODERS};
pub use counters::{Counters, TranscodeStats};
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
    let input = decodable(mount, !config.transcode.is_empty())?;
    let outputs: Vec<RenditionOutput> = (config.transcode.iter())
        .filter_map(|config| {
            let mount = state.mounts.get(&config.name)?;
            Some(RenditionOutput::new(config.clone(), mount, state.transcoding.of(&config.name)))
        })
        .collect();
    let hls = ladder.then(|| state.hls.get_or_create(mount.name(), &config.hls).writer());
    Some(supervise(state, mount, input, outputs, hls))
}

/// While `home`'s source is away and its listeners are on `fallback`, keep
/// `home`'s HLS and DASH stream going with `fallback`'s audio: `home`'s
/// ladder, fed from `fallback`'s source, until `home`'s source returns (its
/// own ladder then takes the stream over) or `fallback`'s leaves. Segment
/// numbers follow the clock throughout; each switch is a discontinuity.
pub async fn follow_fallback(state: AppState, home: MountHandle, fallback: MountHandle) {
    let Some(stream) = state.hls.get(home.name()) else { return };
    let Some(input) = decodable(&fallback, false) else { return };
    let mut home_head = home.watch_head();
    let mut fallback_head = fallback.watch_head();
    let mut shutdown = state.shutdown.clone();
    tracing::info!(mount = home.name(), fallback = fallback.name(), "HLS follows the fallback");
    let _ladder = supervise(&state, &fallback, input, Vec::new(), Some(stream.writer()));
    tokio::select! {
        _ = home_head.wait_for(|h| h.live) => {}
        _ = fallback_head.wait_for(|h| !h.live) => {}
        _ = shutdown.wait_for(|&down| down) => {}
    }
    tracing::info!(mount = home.name(), fallback = fallback.name(), "HLS stops following the fallback");
}

/// How the codec process reads `mount`'s source, if it can.
fn decodable(mount: &MountHandle, warn: bool) -> Option<decode::Input> {
    let source = mount.source()?;
    match source.format {
        Format::Mp3 => Some(decode::Input::Mp3),
        Format::Aac => Some(decode::Input::Aac),
        Format::Ogg => Some(decode::Input::Ogg),
        Format::WebM | Format::Opaque => {
            if warn {
                let content_type = source.content_type.as_str();
                tracing::warn!(mount = mount.name(), content_type, "cannot transcode this format");
            }
            None
        }
    }
}

/// Run codec work fed from `input_mount`'s tap until the `Ladder` is dropped.
fn supervise(
    state: &AppState,
    input_mount: &MountHandle,
    input: decode::Input,
    outputs: Vec<RenditionOutput>,
    hls: Option<crate::hls::HlsWriter>,
) -> Ladder {
    let (stop, stop_rx) = watch::channel(false);
    let supervisor = Supervisor {
        mount: input_mount.clone(),
        input,
        outputs,
        hls,
        stop: stop_rx,
        stats: state.transcoding.of(input_mount.name()),
        server_stats: state.stats.clone(),
        delivery_interval: state.config.get().limits.delivery_interval,
        memory_limit: state.config.get().limits.transcode_memory,
        first_feed: Some(session::tap_feed(input_mount)),
    };
    tokio::spawn(supervisor.run());
    Ladder { stop }
}

/// The address shown as the "source" of a rendition.
fn internal_peer() -> SocketAddr {
    ([127, 0, 0, 1], 0).into()
}

/// The fuzz target's way in: `data` (after a first byte choosing the
/// format) framed by the mount's framer and decoded as the codec process
/// decodes a source of that format, and what decodes fed to every kind of
/// rendition (MP3, AAC-LC, HE-AAC, Ogg Opus, WebM Opus, Ogg Vorbis) through
/// the encoder chains the codec process runs (resampling and sanitising
/// included). At most a second of audio is encoded per input: encoding
/// dominates otherwise.
#[cfg(feature = "fuzzing")]
pub fn fuzz_codecs(data: &[u8]) {
    use std::sync::OnceLock;

    use decode::{run_decoder, DecodeStats, Input, Pcm};
    use wire::{RenditionJob, Title};

    static LADDER: OnceLock<Vec<std::sync::Arc<crate::config::TranscodeConfig>>> = OnceLock::new();
    let ladder = LADDER.get_or_init(|| {
        let config = crate::config::parse_str(
            "[[mount]]\nname = \"/src\"\n\
             [[mount.transcode]]\nname = \"/r.mp3\"\ncodec = \"mp3\"\nbitrate = 64\n\
             [[mount.transcode]]\nname = \"/r.aac\"\ncodec = \"aac\"\nbitrate = 64\n\
             [[mount.transcode]]\nname = \"/r-he.aac\"\ncodec = \"he-aac\"\nbitrate = 48\n\
             [[mount.transcode]]\nname = \"/r.opus\"\ncodec = \"opus\"\nbitrate = 48\n\
             [[mount.transcode]]\nname = \"/r.webm\"\ncodec = \"opus\"\nbitrate = 48\ncontainer = \"webm\"\n\
             [[mount.transcode]]\nname = \"/r.ogg\"\ncodec = \"vorbis\"\nbitrate = 96\n",
            "fuzz.toml",
            &ENCODERS,
        )
        .expect("the fuzz ladder parses");
        config.mount("/src").transcode.clone()
    });
    let input = match data.first().map(|b| b % 3) {
        Some(0) => Input::Mp3,
        Some(1) => Input::Aac,
        _ => Input::Ogg,
    };
    // What the codec process is handed: the frames or pages the mount's framer cut.
    let mut units = Vec::new();
    input.format().framer().push(data.get(1..).unwrap_or(&[]), &mut units);
    let frames: Vec<bytes::Bytes> = units.into_iter().map(crate::format::Unit::into_bytes).collect();
    let mut blocks: Vec<Pcm> = Vec::new();
    let mut frames_decoded = 0usize;
    let _ = run_decoder(input, frames.into_iter(), &mut DecodeStats::default(), &mut |pcm| {
        if frames_decoded < 48_000 {
            frames_decoded += pcm.frames();
            blocks.push(pcm);
        }
    });
    let title = Title::default();
    for (index, config) in ladder.iter().enumerate() {
        let job = RenditionJob { config: (**config).clone(), wanted: true };
        let mut chain = chain::EncoderChain::rendition(index as u8, job, &title);
        let mut out: Vec<wire::FromCodec> = Vec::new();
        for pcm in &blocks {
            chain.feed(pcm, 0, &mut out);
        }
        chain.finish(0, &mut out);
    }
}

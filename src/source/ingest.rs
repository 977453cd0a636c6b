//! The source read loop shared by every ingest protocol: read the socket,
//! decode the transfer encoding, strip inline ICY metadata, frame the audio
//! and append it to the mount, until the source ends, stalls for
//! `source_timeout`, is killed by admin, or the server shuts down.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::icy_strip::IcyStripper;
use super::SourceError;
use crate::format::{Framer, Unit};
use crate::http::chunked::{ChunkedDecoder, Progress};
use crate::mount::{Metadata, MountHandle, SourceInfo, MIN_TITLE_BYTES};
use crate::state::AppState;

/// How the request body is delimited.
pub enum Body {
    /// Raw bytes until the connection closes.
    Identity,
    Chunked(ChunkedDecoder),
}

/// A source attached to its mount; detaches (and forgets an idle dynamic
/// mount) when dropped, whatever way the connection ends.
pub struct Attached {
    pub mount: MountHandle,
    pub info: Arc<SourceInfo>,
    state: AppState,
    _permit: crate::slots::Slot,
    /// The mount's renditions, if it has any; they stop with the source.
    _ladder: Option<crate::transcode::Ladder>,
    /// The mount's recording (`dump_file`), likewise.
    _recording: Option<crate::dump::Recording>,
}

/// Claim a source slot and the mount. Nothing is created on failure.
pub fn attach(state: &AppState, name: &str, info: SourceInfo) -> Result<Attached, SourceError> {
    let config = state.config.get().mount(name);
    if config.derived_from.is_some() {
        return Err(SourceError::Derived);
    }
    // The server's rules again for SHOUTcast v1 sources, which skip the HTTP gate.
    for rules in [&state.config.get().access.rules, &config.access] {
        rules.check(info.peer.ip(), info.user_agent.as_deref()).map_err(SourceError::Refused)?;
    }
    if let Some(live) = state.mounts.get(name).and_then(|m| m.source()) {
        return Err(if live.handover && !info.handover { SourceError::HeldByFeed } else { SourceError::MountInUse });
    }
    let permit = state.sources.try_claim().ok_or(SourceError::Limit)?;
    let mount = state.mounts.get_or_create(name);
    let info = Arc::new(info);
    mount.attach_source(info.clone()).map_err(|_| SourceError::MountInUse)?;
    state.stats.source_client_connections.fetch_add(1, Ordering::Relaxed);
    state.stats.source_total_connections.fetch_add(1, Ordering::Relaxed);
    mount.stats().source_connections.fetch_add(1, Ordering::Relaxed);
    tracing::info!(mount = name, peer = %info.peer, content_type = info.content_type.as_str(), "source connected");
    let ladder = crate::transcode::start(state, &mount);
    // The previous process's feed during an upgrade: that process still
    // records the mount and has told the auth backend.
    let recording = if info.handover { None } else { crate::dump::start(&mount) };
    if !info.handover {
        crate::auth::url::tell_mount(state, name, true);
    }
    Ok(Attached { mount, info, state: state.clone(), _permit: permit, _ladder: ladder, _recording: recording })
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.mount.stats().framer_bytes.store(0, Ordering::Relaxed);
        self.mount.detach_source(&self.info);
        if !self.info.handover {
            crate::auth::url::tell_mount(&self.state, self.mount.name(), false);
        }
        self.state.mounts.forget_if_idle(&self.mount);
        // A dynamic mount's HLS window and counters go with it; a
        // configured mount's stay (listeners still seek back in the window).
        if self.mount.is_dynamic() {
            self.state.forget_mount(self.mount.name());
        } else if let Some(fallback) = self.state.mounts.live_fallback(&self.mount) {
            if self.state.hls.get(self.mount.name()).is_some() {
                let task = crate::transcode::follow_fallback(self.state.clone(), self.mount.clone(), fallback);
                tokio::spawn(task);
            }
        }
        tracing::info!(mount = self.mount.name(), "source disconnected");
    }
}

/// Why the ingest loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestEnd {
    Eof,
    Timeout,
    Killed,
    Shutdown,
    ReadError,
    BadBody,
}

/// Per-source pipeline from socket bytes to mount chunks.
struct Pipeline {
    body: Body,
    strip: Option<IcyStripper>,
    framer: Box<dyn Framer>,
    decoded: BytesMut,
    audio: BytesMut,
    units: Vec<Unit>,
}

impl Pipeline {
    /// Push raw body bytes through; false when the body is malformed or ended.
    fn process(&mut self, raw: &[u8], mount: &MountHandle) -> Result<bool, IngestEnd> {
        let mut more = true;
        let input: &[u8] = match &mut self.body {
            Body::Identity => raw,
            Body::Chunked(decoder) => {
                self.decoded.clear();
                match decoder.decode(raw, &mut self.decoded) {
                    Ok(Progress::Continue) => {}
                    Ok(Progress::Done) => more = false,
                    Err(_) => return Err(IngestEnd::BadBody),
                }
                &self.decoded
            }
        };
        match &mut self.strip {
            None => {
                self.framer.push(input, &mut self.units);
                mount.push_units(&mut self.units);
            }
            Some(strip) => {
                let base = strip.audio_emitted();
                self.audio.clear();
                let mut updates = strip.push(input, &mut self.audio);
                // A title the next one replaces within a few KB would never
                // be seen: keep only the last of such a run (the mount does
                // the same across reads).
                let next_offsets: Vec<u64> = updates.iter().skip(1).map(|u| u.audio_offset).collect();
                let mut next = next_offsets.into_iter();
                updates.retain(|u| next.next().is_none_or(|n| n - u.audio_offset >= MIN_TITLE_BYTES));
                let mut done = 0usize;
                for update in updates {
                    // Frame the audio before the change under the old title.
                    let at = (update.audio_offset.saturating_sub(base) as usize).clamp(done, self.audio.len());
                    self.framer.push(&self.audio[done..at], &mut self.units);
                    mount.push_units(&mut self.units);
                    done = at;
                    if let Some(title) = update.title {
                        mount.set_metadata(Metadata::from_song(&title, update.url.as_deref()));
                    }
                }
                self.framer.push(&self.audio[done..], &mut self.units);
                mount.push_units(&mut self.units);
            }
        }
        mount.set_audio_info(self.framer.audio_info());
        mount.stats().bytes_skipped.store(self.framer.skipped_bytes(), Ordering::Relaxed);
        mount.stats().framer_bytes.store(self.framer.buffered() as u64, Ordering::Relaxed);
        Ok(more)
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline).await;
    }
}

/// Run the loop. `leftover` holds body bytes read together with the head.
pub async fn run<R: AsyncRead + Unpin>(
    reader: &mut R,
    leftover: BytesMut,
    body: Body,
    metaint: Option<usize>,
    source: &Attached,
    state: &AppState,
) -> IngestEnd {
    let mount = &source.mount;
    let mut pipeline = Pipeline {
        body,
        strip: metaint.filter(|&m| m > 0).map(IcyStripper::new),
        framer: source.info.format.framer(),
        decoded: BytesMut::new(),
        audio: BytesMut::new(),
        units: Vec::new(),
    };
    match pipeline.process(&leftover, mount) {
        Ok(true) => {}
        Ok(false) => return IngestEnd::Eof,
        Err(end) => return end,
    }
    let mut shutdown = state.shutdown.clone();
    let timeout = state.config.get().limits.source_timeout;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let publish_due = mount.publish_due();
        let read = tokio::select! {
            read = tokio::time::timeout(timeout, reader.read(&mut buf)) => read,
            _ = source.info.killed() => return IngestEnd::Killed,
            _ = shutdown.wait_for(|&down| down) => return IngestEnd::Shutdown,
            // Framed data held back by `delivery_interval` goes out on time
            // even if the source sends nothing more.
            _ = sleep_until(publish_due), if publish_due.is_some() => {
                mount.publish_scheduled();
                continue;
            }
        };
        let n = match read {
            Err(_) => return IngestEnd::Timeout,
            Ok(Ok(0)) => return IngestEnd::Eof,
            Ok(Ok(n)) => n,
            // ffmpeg ends a SOURCE with a TCP reset: that is a normal end.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => return IngestEnd::Eof,
            Ok(Err(_)) => return IngestEnd::ReadError,
        };
        mount.stats().bytes_read.fetch_add(n as u64, Ordering::Relaxed);
        match pipeline.process(&buf[..n], mount) {
            Ok(true) => {}
            Ok(false) => return IngestEnd::Eof,
            Err(end) => return end,
        }
    }
}

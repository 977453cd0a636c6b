//! Supervision of one source mount's codec process: start it, feed it the
//! source, publish what it makes into the rendition mounts, and restart it
//! when it fails.
//!
//! Whatever fails in there — a C library aborting on hostile audio, a panic,
//! the memory limit, a stall, a runaway loop — only this mount's renditions
//! notice: they end visibly (their listeners follow the rendition's fallback
//! or are closed, status pages stop listing them), the failure is logged and
//! counted (`transcode_failures`), and after a backoff a new process starts
//! from the source's current position and the renditions come back.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{mpsc, watch};

use super::decode::Input;
use super::output::RenditionOutput;
use super::watchdog::{CpuWatch, Stall};
use super::wire::{self, FromCodec, Job, RenditionJob, Title, ToCodec};
use crate::mount::tap::{self, TapReceiver};
use crate::mount::{MountHandle, TapId, Tapped};
use crate::state::ServerStats;

/// Source bytes the feed may hold for a codec process that falls behind
/// (tens of seconds of audio; the process runs far faster than real time).
const FEED_BYTES: usize = 1 << 20;
/// A process that leaves input unanswered this long is stalled.
const STALL_AFTER: Duration = Duration::from_secs(10);
/// A process that uses this many cores on average over `CPU_WINDOW` runs away.
const RUNAWAY_CORES: f64 = 0.9;
const CPU_WINDOW: Duration = Duration::from_secs(10);
/// How long a process may take to finish once its source has ended.
const DRAIN: Duration = Duration::from_secs(3);
/// How long to wait for a rendition mount still held by a previous session.
const ATTACH_WAIT: Duration = Duration::from_secs(5);
/// Restart delays: doubling from the first to the last; a process that ran
/// `STABLE` before failing starts again from the first.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const STABLE: Duration = Duration::from_secs(60);

/// Everything one source mount's transcoding needs.
pub struct Supervisor {
    pub mount: MountHandle,
    pub input: Input,
    pub outputs: Vec<RenditionOutput>,
    /// Flips to true when the source leaves.
    pub stop: watch::Receiver<bool>,
    pub server_stats: Arc<ServerStats>,
    pub delivery_interval: Duration,
    pub memory_limit: u64,
}

/// How a codec process's session ended.
enum SessionEnd {
    /// The source left and the process finished (or was told to).
    Stopped,
    Failed(String),
}

impl Supervisor {
    /// Run sessions until the source leaves, restarting after failures.
    pub async fn run(mut self) {
        let mut backoff = BACKOFF_FIRST;
        loop {
            let started = Instant::now();
            let end = self.session().await;
            for output in &mut self.outputs {
                output.detach();
            }
            let SessionEnd::Failed(reason) = end else { break };
            self.mount.stats().transcode_failures.fetch_add(1, Ordering::Relaxed);
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
        }
        tracing::info!(mount = self.mount.name(), "transcoding ended");
    }

    /// Wait `time` unless the source leaves first; true if it did.
    async fn stopped_within(&mut self, time: Duration) -> bool {
        if *self.stop.borrow() {
            return true;
        }
        tokio::time::timeout(time, self.stop.wait_for(|&stop| stop)).await.is_ok()
    }

    /// One codec process, from start to end.
    async fn session(&mut self) -> SessionEnd {
        if !self.attach_outputs().await {
            return SessionEnd::Stopped;
        }
        let mut child = match spawn_codec_process(self.mount.name()) {
            Ok(child) => child,
            Err(error) => return SessionEnd::Failed(format!("cannot start a codec process: {error}")),
        };
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return SessionEnd::Failed("codec process without pipes".into());
        };
        let session = Session::new();
        let (tap, feed) = tap::channel(FEED_BYTES);
        let tap_id = tap.id();
        self.mount.set_tap(tap);
        let (control, control_rx) = mpsc::channel(64);
        let writer = tokio::spawn(feed_codec(stdin, self.job(), feed, control_rx, session.clone()));
        let end = self.pump(stdout, &mut child, &session, &tap_id, control).await;
        self.mount.clear_tap(&tap_id);
        writer.abort();
        let _ = child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
        end
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

    fn job(&self) -> Job {
        let renditions = self
            .outputs
            .iter()
            .map(|o| RenditionJob { config: o.config().clone(), wanted: o.is_attached() && o.wanted() })
            .collect();
        Job {
            mount: self.mount.name().to_string(),
            input: self.input,
            renditions,
            memory_limit: self.memory_limit,
            server_pid: std::process::id(),
            title: Title::of(&self.mount.metadata()),
        }
    }

    /// Read the process's output and keep it in check until it ends.
    async fn pump(
        &mut self,
        mut stdout: ChildStdout,
        child: &mut Child,
        session: &Arc<Session>,
        tap_id: &TapId,
        control: mpsc::Sender<ToCodec>,
    ) -> SessionEnd {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let mut tick = tokio::time::interval(self.delivery_interval.max(Duration::from_millis(20)) / 8);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cpu = child.id().map(|pid| CpuWatch::new(pid, CPU_WINDOW));
        let mut progress = Progress::default();
        let mut done: Option<Option<String>> = None;
        let mut draining: Option<tokio::time::Instant> = None;
        let mut stop = self.stop.clone();
        loop {
            tokio::select! {
                read = stdout.read_buf(&mut buf) => {
                    if !matches!(read, Ok(n) if n > 0) {
                        break;
                    }
                    session.stall.heard();
                    loop {
                        match wire::split_frame(&mut buf).and_then(|f| f.map(|(t, p)| FromCodec::decode(t, p)).transpose()) {
                            Ok(Some(FromCodec::Done { error })) => done = Some(error),
                            Ok(Some(msg)) => self.apply(msg, session, &mut progress),
                            Ok(None) => break,
                            Err(error) => return SessionEnd::Failed(format!("codec process sent garbage: {error}")),
                        }
                    }
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    for (index, output) in (0u8..).zip(self.outputs.iter_mut()) {
                        output.publish_if_due(now);
                        if let Some(wanted) = output.want_now(now) {
                            let _ = control.try_send(ToCodec::Want { rendition: index, wanted });
                        }
                    }
                    if draining.is_none() {
                        if let Some(reason) = self.misbehaving(session, cpu.as_mut(), now) {
                            return SessionEnd::Failed(reason);
                        }
                    }
                }
                _ = stop.wait_for(|&stop| stop), if draining.is_none() => {
                    // The source left: the process gets the end of its input
                    // and finishes what it holds.
                    self.mount.clear_tap(tap_id);
                    draining = Some(tokio::time::Instant::now() + DRAIN);
                }
                _ = tokio::time::sleep_until(draining.unwrap_or_else(tokio::time::Instant::now)), if draining.is_some() => {
                    tracing::warn!(mount = self.mount.name(), "codec process did not finish in time; killed");
                    return SessionEnd::Stopped;
                }
            }
        }
        let status = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
        let exit = match status {
            Ok(Ok(status)) => describe_exit(status),
            _ => "closed its output and did not exit".to_string(),
        };
        self.ended(done, draining.is_some(), exit)
    }

    /// How a session whose process closed its output ended: `done` is what
    /// its `Done` message said (if it sent one), `draining` whether the
    /// source had left, `exit` how the process exited.
    fn ended(&self, done: Option<Option<String>>, draining: bool, exit: String) -> SessionEnd {
        match (done, draining) {
            (Some(_), true) => SessionEnd::Stopped,
            (None, true) => {
                tracing::warn!(
                    mount = self.mount.name(),
                    reason = exit.as_str(),
                    "codec process failed while finishing"
                );
                SessionEnd::Stopped
            }
            (Some(Some(error)), false) => SessionEnd::Failed(format!("decoding stopped: {error}")),
            (Some(None), false) => SessionEnd::Failed("codec process ended before its source".into()),
            (None, false) => SessionEnd::Failed(format!("codec process {exit}")),
        }
    }

    /// A stall or a runaway, if the process shows one.
    fn misbehaving(&self, session: &Session, cpu: Option<&mut CpuWatch>, now: Instant) -> Option<String> {
        let waiting = session.stall.waiting();
        if waiting >= STALL_AFTER {
            return Some(format!("codec process stalled: no answer for {} s while it had input", waiting.as_secs()));
        }
        let cores = cpu?.sample(now)?;
        (cores >= RUNAWAY_CORES)
            .then(|| format!("codec process ran away: {cores:.2} cores for {} s", CPU_WINDOW.as_secs()))
    }

    /// Act on one message from the process.
    fn apply(&mut self, msg: FromCodec, session: &Session, progress: &mut Progress) {
        match msg {
            FromCodec::Started { rendition, sample_rate, channels } => {
                if let Some(o) = self.outputs.get_mut(usize::from(rendition)) {
                    o.started(sample_rate, channels);
                }
            }
            FromCodec::Output { rendition, arrived_us, busy_ns, bytes } => {
                let delay = session.since_start().saturating_sub(Duration::from_micros(arrived_us));
                if let Some(o) = self.outputs.get_mut(usize::from(rendition)) {
                    o.push(&bytes, delay, busy_ns);
                }
            }
            FromCodec::Idle { rendition } => {
                if let Some(o) = self.outputs.get_mut(usize::from(rendition)) {
                    o.idle();
                }
            }
            FromCodec::Failed { rendition, error } => {
                if let Some(o) = self.outputs.get_mut(usize::from(rendition)) {
                    o.failed(&error);
                }
            }
            FromCodec::Title(title) => {
                let meta = title.to_metadata();
                for o in &self.outputs {
                    o.set_title(meta.clone());
                }
            }
            FromCodec::Progress { decode_ns, corrupt_packets } => {
                let stats = self.mount.stats();
                stats.transcode_ns.fetch_add(decode_ns.saturating_sub(progress.decode_ns), Ordering::Relaxed);
                stats.corrupt_packets.fetch_add(corrupt_packets.saturating_sub(progress.corrupt), Ordering::Relaxed);
                progress.decode_ns = progress.decode_ns.max(decode_ns);
                progress.corrupt = progress.corrupt.max(corrupt_packets);
            }
            FromCodec::Done { .. } => {}
        }
    }
}

/// Cumulative figures a process reported so far.
#[derive(Default)]
struct Progress {
    decode_ns: u64,
    corrupt: u64,
}

/// What the feeding task and the reading loop of one session share.
struct Session {
    started: Instant,
    stall: Stall,
}

impl Session {
    fn new() -> Arc<Session> {
        Arc::new(Session { started: Instant::now(), stall: Stall::new() })
    }

    fn since_start(&self) -> Duration {
        self.started.elapsed()
    }

    /// Microseconds into the session at which `at` happened (0 if before).
    fn micros(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.started).as_micros() as u64
    }
}

/// Start `floe codec-worker <mount>`: this very binary, by the path that
/// still works after the file on disk has been replaced by an upgrade.
fn spawn_codec_process(mount: &str) -> std::io::Result<Child> {
    let proc_exe = std::path::Path::new("/proc/self/exe");
    let exe = if proc_exe.exists() { proc_exe.to_path_buf() } else { std::env::current_exe()? };
    tokio::process::Command::new(exe)
        .arg0("floe")
        .arg("codec-worker")
        .arg(mount)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
}

/// Write the job, then the source (and control messages) to the process,
/// until the mount drops the tap; closing stdin tells the process to finish.
async fn feed_codec(
    mut stdin: ChildStdin,
    job: Job,
    mut feed: TapReceiver,
    mut control: mpsc::Receiver<ToCodec>,
    session: Arc<Session>,
) {
    let mut frame = Vec::new();
    ToCodec::Job(Box::new(job)).encode(&mut frame);
    if stdin.write_all(&frame).await.is_err() {
        return;
    }
    loop {
        let msg = tokio::select! {
            biased;
            Some(msg) = control.recv() => msg,
            tapped = feed.recv() => match tapped {
                Some(Tapped::Data(bytes, arrived)) => ToCodec::Data { arrived_us: session.micros(arrived), bytes },
                Some(Tapped::Title(meta)) => ToCodec::Title(Title::of(&meta)),
                None => break,
            },
        };
        frame.clear();
        msg.encode(&mut frame);
        session.stall.sent();
        if stdin.write_all(&frame).await.is_err() {
            break;
        }
    }
}

/// "exited with status 101", "was killed by signal 6 (SIGABRT)".
fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}{}", signal_name(signal)),
        _ => format!("ended ({status})"),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        6 => " (SIGABRT: a C library's assertion or an allocation failure)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

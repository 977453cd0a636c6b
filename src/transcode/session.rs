//! One codec process, from start to end: spawn it, write it the job and the
//! source, read what it makes into the rendition mounts and the HLS window,
//! switch renditions and the ladder on and off as they are wanted, and keep
//! it in check (a stall, a runaway, a crash, garbage on the pipe end it).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::mpsc;

use super::output::RenditionOutput;
use super::supervisor::{SessionEnd, Supervisor};
use super::watchdog::{CpuWatch, Stall};
use super::wire::{self, FromCodec, Job, RenditionJob, Target, Title, ToCodec, VariantJob};
use crate::mount::tap::{self, TapReceiver};
use crate::mount::{MountHandle, TapId, Tapped};

/// Source bytes the feed may hold for a codec process that falls behind
/// (tens of seconds of audio; the process runs far faster than real time).
const FEED_BYTES: usize = 1 << 20;
/// Most bytes of waiting messages written to the process at once.
const WRITE_BATCH: usize = 64 * 1024;
/// A process that leaves input unanswered this long is stalled.
const STALL_AFTER: Duration = Duration::from_secs(10);
/// A process that uses this many cores on average over `CPU_WINDOW` runs away.
const RUNAWAY_CORES: f64 = 0.9;
const CPU_WINDOW: Duration = Duration::from_secs(10);
/// How long a process may take to finish once its input has ended.
const DRAIN: Duration = Duration::from_secs(3);

/// Why the process's input was ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The source left.
    Stop,
    /// Nothing wants codec work any more.
    Idle,
}

impl Supervisor {
    /// One codec process, from start to end.
    pub(super) async fn session(&mut self) -> SessionEnd {
        let mut child = match spawn_codec_process(self.mount.name()) {
            Ok(child) => child,
            Err(error) => return SessionEnd::Failed(format!("cannot start a codec process: {error}")),
        };
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return SessionEnd::Failed("codec process without pipes".into());
        };
        for output in &mut self.outputs {
            output.refresh_wanted();
        }
        let ladder = self.hls.as_ref().is_some_and(|h| h.stream().wanted(Instant::now()));
        if let (true, Some(hls)) = (ladder, &self.hls) {
            hls.begin();
        }
        let session = Session::new();
        let (feed, tap_id) = match self.first_feed.take() {
            Some(first) => first,
            None => tap_feed(&self.mount),
        };
        let (control, control_rx) = mpsc::channel(64);
        let writer = tokio::spawn(feed_codec(stdin, self.job(ladder), feed, control_rx, session.clone()));
        let end = self.pump(stdout, &mut child, &session, &tap_id, control, ladder).await;
        self.mount.clear_tap(&tap_id);
        writer.abort();
        let _ = child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
        end
    }

    fn job(&self, ladder_wanted: bool) -> Job {
        let renditions = self
            .outputs
            .iter()
            .map(|o| RenditionJob { config: o.config().clone(), wanted: o.is_attached() && o.wanted() })
            .collect();
        let variants = self.hls.as_ref().map_or(Vec::new(), |hls| {
            let rendition_of = |name: &str| self.outputs.iter().position(|o| o.config().name == name);
            (hls.stream().config.variants.iter())
                .map(|v| VariantJob {
                    variant: v.clone(),
                    rendition: v.rendition.as_deref().and_then(rendition_of).map(|i| i as u8),
                })
                .collect()
        });
        Job {
            mount: self.mount.name().to_string(),
            input: self.input,
            renditions,
            variants,
            ladder_wanted,
            memory_limit: self.memory_limit,
            server_pid: std::process::id(),
            title: Title::of(&self.mount.metadata()),
        }
    }

    /// Read the process's output and keep it in check until it ends; switch
    /// renditions and the ladder on and off meanwhile.
    async fn pump(
        &mut self,
        mut stdout: ChildStdout,
        child: &mut Child,
        session: &Arc<Session>,
        tap_id: &TapId,
        control: mpsc::Sender<ToCodec>,
        mut ladder: bool,
    ) -> SessionEnd {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let mut tick = tokio::time::interval(self.delivery_interval.max(Duration::from_millis(20)) / 8);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cpu = child.id().map(|pid| CpuWatch::new(pid, CPU_WINDOW));
        let mut progress = Progress::default();
        let mut done: Option<Option<String>> = None;
        let mut ending: Option<(tokio::time::Instant, Ending)> = None;
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
                    self.switch_wants(now, &control, &mut ladder);
                    if ending.is_none() {
                        if let Some(reason) = misbehaving(session, cpu.as_mut(), now) {
                            return SessionEnd::Failed(reason);
                        }
                        if !ladder && !self.outputs.iter().any(RenditionOutput::wanted) {
                            // Nothing wants it: the process finishes what it holds.
                            self.mount.clear_tap(tap_id);
                            ending = Some((tokio::time::Instant::now() + DRAIN, Ending::Idle));
                        }
                    }
                }
                _ = stop.wait_for(|&stop| stop), if ending.is_none() => {
                    // The source left: the process gets the end of its input
                    // and finishes what it holds.
                    self.mount.clear_tap(tap_id);
                    ending = Some((tokio::time::Instant::now() + DRAIN, Ending::Stop));
                }
                _ = tokio::time::sleep_until(ending.map_or_else(tokio::time::Instant::now, |e| e.0)), if ending.is_some() => {
                    tracing::warn!(mount = self.mount.name(), "codec process did not finish in time; killed");
                    return if ending.is_some_and(|e| e.1 == Ending::Idle) { SessionEnd::Idle } else { SessionEnd::Stopped };
                }
            }
        }
        let status = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
        let exit = match status {
            Ok(Ok(status)) => describe_exit(status),
            _ => "closed its output and did not exit".to_string(),
        };
        self.ended(done, ending.map(|e| e.1), exit)
    }

    /// Tell the process which renditions and whether the ladder are wanted
    /// now (on-demand ones follow their listeners, the ladder its requests).
    fn switch_wants(&mut self, now: Instant, control: &mpsc::Sender<ToCodec>, ladder: &mut bool) {
        for (index, output) in (0u8..).zip(self.outputs.iter_mut()) {
            output.publish_if_due(now);
            if let Some(wanted) = output.want_now(now) {
                let _ = control.try_send(ToCodec::Want { target: Target::Rendition(index), wanted });
            }
        }
        let Some(hls) = &self.hls else { return };
        let wanted = hls.stream().wanted(now);
        if wanted != *ladder && control.try_send(ToCodec::Want { target: Target::Ladder, wanted }).is_ok() {
            *ladder = wanted;
            if wanted {
                hls.begin();
            } else {
                hls.end();
            }
        }
    }

    /// How a session whose process closed its output ended: `done` is what
    /// its `Done` message said (if it sent one), `ending` why its input was
    /// ended (if it was), `exit` how the process exited.
    fn ended(&self, done: Option<Option<String>>, ending: Option<Ending>, exit: String) -> SessionEnd {
        match (done, ending) {
            (done, Some(ending)) => {
                if done.is_none() {
                    tracing::warn!(
                        mount = self.mount.name(),
                        reason = exit.as_str(),
                        "codec process failed while finishing"
                    );
                }
                if ending == Ending::Idle {
                    SessionEnd::Idle
                } else {
                    SessionEnd::Stopped
                }
            }
            (Some(Some(error)), None) => SessionEnd::Failed(format!("decoding stopped: {error}")),
            (Some(None), None) => SessionEnd::Failed("codec process ended before its source".into()),
            (None, None) => SessionEnd::Failed(format!("codec process {exit}")),
        }
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
            FromCodec::VariantStarted { variant, channels, pre_skip } => {
                if let Some(hls) = &self.hls {
                    hls.started(usize::from(variant), channels, pre_skip);
                }
            }
            FromCodec::Frames { variant, frames, .. } => {
                if let Some(hls) = &self.hls {
                    hls.frames(usize::from(variant), frames);
                }
            }
            FromCodec::Title(title) => {
                let meta = title.to_metadata();
                if let Some(hls) = &self.hls {
                    hls.title(meta.title.clone().unwrap_or_else(|| meta.song.clone()), meta.artist.clone());
                }
                for o in &self.outputs {
                    o.set_title(meta.clone());
                }
            }
            FromCodec::Progress { decode_ns, corrupt_packets } => {
                let stats = &self.stats;
                stats.busy_ns.fetch_add(decode_ns.saturating_sub(progress.decode_ns), Ordering::Relaxed);
                stats.corrupt_packets.fetch_add(corrupt_packets.saturating_sub(progress.corrupt), Ordering::Relaxed);
                progress.decode_ns = progress.decode_ns.max(decode_ns);
                progress.corrupt = progress.corrupt.max(corrupt_packets);
            }
            FromCodec::Done { .. } => {}
        }
    }
}

/// A stall or a runaway, if the process shows one.
fn misbehaving(session: &Session, cpu: Option<&mut CpuWatch>, now: Instant) -> Option<String> {
    let waiting = session.stall.waiting();
    if waiting >= STALL_AFTER {
        return Some(format!("codec process stalled: no answer for {} s while it had input", waiting.as_secs()));
    }
    let cores = cpu?.sample(now)?;
    (cores >= RUNAWAY_CORES).then(|| format!("codec process ran away: {cores:.2} cores for {} s", CPU_WINDOW.as_secs()))
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

/// Tap `mount` for a codec process from now on.
pub(super) fn tap_feed(mount: &MountHandle) -> (TapReceiver, TapId) {
    let (tap, feed) = tap::channel(FEED_BYTES);
    let id = tap.id();
    mount.set_tap(tap);
    (feed, id)
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
    let to_codec = |tapped| match tapped {
        Tapped::Data(bytes, arrived) | Tapped::Headers(bytes, arrived) => {
            ToCodec::Data { arrived_us: session.micros(arrived), bytes }
        }
        Tapped::Title(meta) => ToCodec::Title(Title::of(&meta)),
    };
    loop {
        let msg = tokio::select! {
            biased;
            Some(msg) = control.recv() => msg,
            tapped = feed.recv() => match tapped {
                Some(tapped) => to_codec(tapped),
                None => break,
            },
        };
        frame.clear();
        msg.encode(&mut frame);
        // Each frame of the source is a message: those already waiting go
        // in the same write.
        while frame.len() < WRITE_BATCH {
            let Some(tapped) = feed.try_recv() else { break };
            to_codec(tapped).encode(&mut frame);
        }
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

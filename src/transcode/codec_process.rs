//! The codec process (`floe codec-worker`): the server starts one per source
//! mount with renditions and feeds it the source over stdin; it decodes once,
//! encodes every rendition and writes what it makes to stdout.
//!
//! It exists so that nothing a hostile source can do to a codec library — a
//! C assertion (LAME aborts on wild input), a panic, an allocation failure, a
//! loop — can take the server down: the process dies alone and the server
//! restarts it. It confines itself before decoding anything: it dies with
//! the server, yields the CPU to the server's threads, and may map at most
//! the job's memory limit.

use std::io::{self, BufReader, BufWriter, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::chain::{EncoderChain, Sink};
use super::decode::{self, DecodeStats};
use super::feed::{FeedReader, Shared};
use super::wire::{self, FromCodec, Job, ToCodec};

/// Niceness of codec work: listeners' threads win any contention for the CPU.
const NICENESS: i32 = 10;
/// How often progress (decode time) is reported while input flows; also
/// the longest silence towards the server while reading input (its watchdog
/// waits far longer before it calls the process stalled).
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Run the codec process; the exit code is non-zero only when the job could
/// not be read. Decoding errors are reported to the server in `Done`.
pub fn run() -> ExitCode {
    let mut input = BufReader::new(io::stdin());
    let job = match read_job(&mut input) {
        Ok(job) => job,
        Err(error) => {
            tracing::error!(%error, "codec process: no job");
            return ExitCode::from(2);
        }
    };
    let _span = tracing::info_span!("codec", mount = %job.mount).entered();
    confine(&job);
    let out = Arc::new(Mutex::new(Pipe::new(io::stdout())));
    let pending = Shared::default();
    let heartbeat = {
        let out = out.clone();
        Box::new(move || out.lock().progress_if_due())
    };
    let reader = FeedReader::new(input, pending.clone(), heartbeat);
    let mut chains: Vec<EncoderChain> = (0u8..)
        .zip(job.renditions)
        .map(|(index, rendition)| EncoderChain::rendition(index, rendition, &job.title))
        .collect();
    // Variants share a rendition's chain, or get one of their own.
    for (index, variant) in (0u8..).zip(job.variants) {
        match variant.rendition.and_then(|r| chains.get_mut(usize::from(r))) {
            Some(chain) => chain.also_variant(index, job.ladder_wanted),
            None => chains.push(EncoderChain::variant(index, variant.variant, job.ladder_wanted, &job.title)),
        }
    }
    let mut stats = DecodeStats::default();
    let started = Instant::now();
    let mut encode_ns = 0u64;
    let result = decode::run_decoder(job.input, reader, &mut stats, &mut |pcm| {
        let encoding = Instant::now();
        let (title, wants, arrived_us) = pending.take();
        let mut out = out.lock();
        for (target, wanted) in wants {
            for chain in &mut chains {
                chain.want(target, wanted, arrived_us, &mut *out);
            }
        }
        if let Some(title) = title {
            out.send(FromCodec::Title(title.clone()));
            for chain in &mut chains {
                chain.set_title(&title, arrived_us, &mut *out);
            }
        }
        for chain in &mut chains {
            chain.feed(&pcm, arrived_us, &mut *out);
        }
        encode_ns += encoding.elapsed().as_nanos() as u64;
        // Decode time = time neither waiting for the server nor encoding.
        let elapsed = started.elapsed().as_nanos() as u64;
        out.decode_ns = elapsed.saturating_sub(pending.waited_ns() + encode_ns);
        out.progress_if_due();
        out.flush();
    });
    let mut out = out.lock();
    let arrived_us = pending.arrived_us();
    for chain in &mut chains {
        chain.finish(arrived_us, &mut *out);
    }
    let decode_ns = out.decode_ns;
    out.send(FromCodec::Progress { decode_ns, corrupt_packets: stats.corrupt_packets });
    let error = result.err().map(|e| e.to_string());
    match &error {
        None => tracing::debug!(corrupt = stats.corrupt_packets, resets = stats.resets, "codec input ended"),
        Some(error) => tracing::warn!(%error, "decoding stopped"),
    }
    out.send(FromCodec::Done { error });
    out.flush();
    ExitCode::SUCCESS
}

fn read_job(input: &mut impl io::Read) -> Result<Job, String> {
    match wire::read_frame(input) {
        Ok(Some((tag, payload))) => match ToCodec::decode(tag, payload) {
            Ok(ToCodec::Job(job)) => Ok(*job),
            Ok(_) => Err("the first message is not a job".into()),
            Err(error) => Err(error.to_string()),
        },
        Ok(None) => Err("the server closed the pipe".into()),
        Err(error) => Err(error.to_string()),
    }
}

/// Limit what this process can do to the machine before touching any input.
fn confine(job: &Job) {
    use rustix::process::{self, Resource, Rlimit, Signal};
    // Die with the server, even when stuck in a codec loop that never reads
    // stdin again; and if the server is already gone, do not start.
    if let Err(error) = process::set_parent_process_death_signal(Some(Signal::KILL)) {
        tracing::warn!(%error, "cannot tie the codec process to the server's life");
    }
    if process::getppid().map(|pid| pid.as_raw_nonzero().get()) != i32::try_from(job.server_pid).ok() {
        tracing::warn!("the server is gone; codec process exits");
        std::process::exit(0);
    }
    // What `top` shows: the executable's name is "exe" (/proc/self/exe).
    let _ = rustix::thread::set_name(c"floe-codec");
    if let Err(error) = process::setpriority_process(None, NICENESS) {
        tracing::debug!(%error, "cannot lower the codec process's priority");
    }
    let limit = Rlimit { current: Some(job.memory_limit), maximum: Some(job.memory_limit) };
    if let Err(error) = process::setrlimit(Resource::As, limit) {
        tracing::warn!(%error, "cannot limit the codec process's memory");
    }
}

/// The pipe to the server. A broken pipe means the server is gone: exit.
struct Pipe<W: Write> {
    out: BufWriter<W>,
    frame: Vec<u8>,
    last_progress: Instant,
    /// Decode time so far, for the progress reports.
    decode_ns: u64,
}

impl<W: Write> Pipe<W> {
    fn new(out: W) -> Pipe<W> {
        Pipe { out: BufWriter::new(out), frame: Vec::new(), last_progress: Instant::now(), decode_ns: 0 }
    }

    fn progress_if_due(&mut self) {
        if self.last_progress.elapsed() >= PROGRESS_EVERY {
            self.last_progress = Instant::now();
            let decode_ns = self.decode_ns;
            self.send(FromCodec::Progress { decode_ns, corrupt_packets: 0 });
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.out.flush().is_err() {
            std::process::exit(0);
        }
    }
}

impl<W: Write> Sink for Pipe<W> {
    fn send(&mut self, msg: FromCodec) {
        self.frame.clear();
        msg.encode(&mut self.frame);
        if self.out.write_all(&self.frame).is_err() {
            std::process::exit(0);
        }
    }
}

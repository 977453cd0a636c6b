//! How the server tells that a codec process went wrong without dying: it
//! stopped answering while it had input (a stall: a loop that reads nothing,
//! a deadlock, a stopped process), or it burns a whole core for seconds on
//! end (a runaway: input that sends a decoder into quadratic work). Either
//! costs the mount's renditions a restart, never the server.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Tracks whether input handed to the codec process went unanswered.
#[derive(Debug)]
pub struct Stall {
    base: Instant,
    /// When the oldest unanswered input was handed over (µs since `base`,
    /// plus one so that 0 means "nothing pending").
    first_unanswered: AtomicU64,
}

impl Stall {
    pub fn new() -> Stall {
        Stall { base: Instant::now(), first_unanswered: AtomicU64::new(0) }
    }

    fn now_mark(&self) -> u64 {
        self.base.elapsed().as_micros() as u64 + 1
    }

    /// Input is being handed to the process.
    pub fn sent(&self) {
        let _ = self.first_unanswered.compare_exchange(0, self.now_mark(), Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The process said something: whatever it had is being worked on.
    pub fn heard(&self) {
        self.first_unanswered.store(0, Ordering::Relaxed);
    }

    /// How long the oldest unanswered input has waited.
    pub fn waiting(&self) -> Duration {
        match self.first_unanswered.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            mark => Duration::from_micros(self.now_mark().saturating_sub(mark)),
        }
    }
}

/// Samples a process's CPU time (from `/proc/<pid>/stat`) over a window.
#[derive(Debug)]
pub struct CpuWatch {
    pid: u32,
    window: Duration,
    /// (when, CPU time in clock ticks), oldest first, spanning `window`.
    samples: VecDeque<(Instant, u64)>,
}

/// USER_HZ: the unit of `/proc/<pid>/stat` times (100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

impl CpuWatch {
    pub fn new(pid: u32, window: Duration) -> CpuWatch {
        CpuWatch { pid, window, samples: VecDeque::new() }
    }

    /// Take a sample (at most one a second); the cores used on average over
    /// the window once a whole window has been seen.
    pub fn sample(&mut self, now: Instant) -> Option<f64> {
        if self.samples.back().is_some_and(|(at, _)| now.duration_since(*at) < Duration::from_secs(1)) {
            return None;
        }
        let ticks = cpu_ticks(self.pid)?;
        self.samples.push_back((now, ticks));
        while self.samples.len() > 2 && now.duration_since(self.samples[1].0) >= self.window {
            self.samples.pop_front();
        }
        let (first_at, first) = *self.samples.front()?;
        let span = now.duration_since(first_at);
        (span >= self.window).then(|| ticks.saturating_sub(first) as f64 / TICKS_PER_SEC / span.as_secs_f64())
    }
}

/// User plus system CPU time of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it are plain.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stall_counts_from_the_oldest_unanswered_input() {
        let stall = Stall::new();
        assert_eq!(stall.waiting(), Duration::ZERO);
        stall.sent();
        std::thread::sleep(Duration::from_millis(20));
        stall.sent();
        assert!(stall.waiting() >= Duration::from_millis(20));
        stall.heard();
        assert_eq!(stall.waiting(), Duration::ZERO);
    }

    #[test]
    fn reads_this_process_cpu_time() {
        assert!(cpu_ticks(std::process::id()).is_some());
        let mut watch = CpuWatch::new(std::process::id(), Duration::from_secs(10));
        assert_eq!(watch.sample(Instant::now()), None, "no full window yet");
        assert!(CpuWatch::new(u32::MAX, Duration::from_secs(1)).sample(Instant::now()).is_none());
    }
}

//! Measurement helpers: a fixed-bucket latency histogram, percentiles, and
//! the server's CPU time and RSS read from `/proc/<pid>`.

/// Latencies in 100 µs buckets up to 10 s, plus the exact maximum.
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    max_us: u64,
}

const BUCKET_US: u64 = 100;
const BUCKETS: usize = 100_000;

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram { buckets: vec![0; BUCKETS], count: 0, max_us: 0 }
    }
}

impl Histogram {
    pub fn record(&mut self, us: u64) {
        let i = ((us / BUCKET_US) as usize).min(BUCKETS - 1);
        self.buckets[i] += 1;
        self.count += 1;
        self.max_us = self.max_us.max(us);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value (ms, bucket upper edge) below which `q` of samples fall.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return ((i as u64 + 1) * BUCKET_US).min(self.max_us.max(1)) as f64 / 1000.0;
            }
        }
        self.max_ms()
    }

    pub fn max_ms(&self) -> f64 {
        self.max_us as f64 / 1000.0
    }
}

/// Percentile of an unsorted sample (nearest rank); 0 for an empty one.
pub fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64) * q).ceil().max(1.0) as usize;
    values[rank.min(values.len()) - 1]
}

/// CPU seconds (user + system) and RSS of a process, from procfs.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    pub cpu_s: f64,
    pub rss_kib: u64,
}

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_S: f64 = 100.0;

pub fn sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the full line, 12 and 13 here (0-based 11, 12).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    Some(ProcSample { cpu_s: (utime + stime) / TICKS_PER_S, rss_kib })
}

/// The direct children of `pid` (a Floe server's codec processes).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(list.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
    }
    out
}

/// CPU and RSS summed over the children of `pid`.
pub fn sample_children(pid: u32) -> ProcSample {
    children(pid).into_iter().filter_map(sample).fold(ProcSample::default(), |acc, s| ProcSample {
        cpu_s: acc.cpu_s + s.cpu_s,
        rss_kib: acc.rss_kib + s.rss_kib,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for us in 1..=1000 {
            h.record(us * 10);
        }
        assert_eq!(h.count(), 1000);
        assert!((h.quantile_ms(0.5) - 5.0).abs() < 0.11);
        assert!((h.quantile_ms(0.99) - 9.9).abs() < 0.11);
        assert_eq!(h.max_ms(), 10.0);
        let mut v = vec![3.0, 1.0, 2.0, 4.0];
        assert_eq!(percentile(&mut v, 0.5), 2.0);
        assert_eq!(percentile(&mut v, 0.01), 1.0);
    }

    #[test]
    fn reads_own_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_kib > 0);
    }
}

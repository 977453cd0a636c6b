//! Listener counts over the last hours, sampled every 30 s, for the admin
//! page's graph (`/admin/history.json`). Bounded: six hours of samples, at
//! most `MOUNTS_PER_SAMPLE` mounts in each (the ones with most listeners).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::state::AppState;

pub const INTERVAL: Duration = Duration::from_secs(30);
/// Six hours.
const SAMPLES: usize = 720;
const MOUNTS_PER_SAMPLE: usize = 32;

struct Sample {
    at: u64,
    total: u64,
    mounts: Vec<(String, u64)>,
}

#[derive(Default)]
pub struct History(Mutex<VecDeque<Sample>>);

impl History {
    /// Record the counts now.
    pub fn sample(&self, state: &AppState) {
        let at = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut mounts: Vec<(String, u64)> = state
            .mounts
            .all()
            .iter()
            .map(|m| (m.name().to_string(), m.stats().listeners.load(Ordering::Relaxed)))
            .collect();
        mounts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        mounts.truncate(MOUNTS_PER_SAMPLE);
        let total = state.mounts.listener_total() as u64;
        let mut samples = self.0.lock();
        if samples.len() == SAMPLES {
            samples.pop_front();
        }
        samples.push_back(Sample { at, total, mounts });
    }

    /// `{"interval_s": 30, "samples": [{"at": unix seconds, "total": n, "mounts": {"/a": n}}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        let samples: Vec<serde_json::Value> = self
            .0
            .lock()
            .iter()
            .map(|s| {
                let mounts: serde_json::Map<String, serde_json::Value> =
                    s.mounts.iter().map(|(name, n)| (name.clone(), (*n).into())).collect();
                serde_json::json!({ "at": s.at, "total": s.total, "mounts": mounts })
            })
            .collect();
        serde_json::json!({ "interval_s": INTERVAL.as_secs(), "samples": samples })
    }

    /// Sample every `INTERVAL` until shutdown.
    pub async fn run(state: AppState) {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut shutdown = state.shutdown.clone();
        loop {
            tokio::select! {
                _ = tick.tick() => state.history.sample(&state),
                _ = shutdown.wait_for(|&down| down) => return,
            }
        }
    }
}

//! `/admin/events`: the event feed as server-sent events, for dashboards
//! and the admin page: each change as it happens (`listener_added`,
//! `listener_removed`, `source_connected`, `source_left`, `title`), a
//! `stats` snapshot every second, and `lagged` when a slow reader missed
//! some (it never makes the server hold more).

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;

use crate::http::body::BodySender;
use crate::state::AppState;

const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);

/// Feed `sender` until the reader leaves or the server shuts down; returns
/// the bytes sent.
pub async fn feed(state: AppState, sender: BodySender) -> u64 {
    let mut events = state.mounts.events().subscribe();
    let mut tick = tokio::time::interval(SNAPSHOT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = state.shutdown.clone();
    // EventSource reconnects after this many milliseconds.
    let mut next = String::from("retry: 3000\n\n");
    let mut sent = 0u64;
    loop {
        let len = next.len() as u64;
        if sender.send(Bytes::from(std::mem::take(&mut next))).await.is_err() {
            return sent;
        }
        sent += len;
        next = tokio::select! {
            event = events.recv() => match event {
                Ok(event) => message(event.name(), &serde_json::to_string(&*event).unwrap_or_default()),
                Err(RecvError::Lagged(missed)) => message("lagged", &format!("{{\"missed\":{missed}}}")),
                Err(RecvError::Closed) => return sent,
            },
            _ = tick.tick() => message("stats", &snapshot(&state).to_string()),
            _ = shutdown.wait_for(|&down| down) => return sent,
        };
    }
}

/// One SSE message; `data` is JSON, so it has no line breaks.
fn message(event: &str, data: &str) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

/// Listeners and sources now, per mount.
fn snapshot(state: &AppState) -> serde_json::Value {
    let mounts: Vec<serde_json::Value> = state
        .mounts
        .all()
        .iter()
        .map(|m| {
            serde_json::json!({
                "mount": m.name(),
                "live": m.is_live(),
                "listeners": m.stats().listeners.load(Ordering::Relaxed),
                "title": m.metadata().song.clone(),
            })
        })
        .collect();
    serde_json::json!({
        "listeners": state.mounts.listener_total(),
        "sources": state.mounts.live().len(),
        "mounts": mounts,
    })
}

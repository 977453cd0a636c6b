//! The event feed as server-sent events. `/admin/events`, for dashboards
//! and the admin page: each change as it happens (`listener_added`,
//! `listener_removed`, `source_connected`, `source_left`, `title`), a
//! `stats` snapshot every second, and `lagged` when a slow reader missed
//! some (it never makes the server hold more). `/status-events`, for the
//! public status page: only what `/status-json.xsl` shows anyway (no
//! addresses, no listener comings and goings, no hidden mounts).

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;

use crate::events::Event;
use crate::http::body::BodySender;
use crate::state::AppState;

/// Who reads the feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Admin,
    Public,
}

const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);

/// Feed `sender` until the reader leaves or the server shuts down; returns
/// the bytes sent.
pub async fn feed(state: AppState, sender: BodySender, audience: Audience) -> u64 {
    let mut events = state.mounts.events().subscribe();
    let mut tick = tokio::time::interval(SNAPSHOT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = state.shutdown.clone();
    // EventSource reconnects after this many milliseconds.
    let mut next = String::from("retry: 3000\n\n");
    let mut sent = 0u64;
    loop {
        if !next.is_empty() {
            let len = next.len() as u64;
            if sender.send(Bytes::from(std::mem::take(&mut next))).await.is_err() {
                return sent;
            }
            sent += len;
        }
        next = tokio::select! {
            event = events.recv() => match event {
                Ok(event) => shown(&state, &event, audience).map(|data| message(event.name(), &data)).unwrap_or_default(),
                Err(RecvError::Lagged(missed)) => message("lagged", &format!("{{\"missed\":{missed}}}")),
                Err(RecvError::Closed) => return sent,
            },
            _ = tick.tick() => message("stats", &snapshot(&state, audience).to_string()),
            _ = shutdown.wait_for(|&down| down) => return sent,
        };
    }
}

/// One SSE message; `data` is JSON, so it has no line breaks.
fn message(event: &str, data: &str) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

/// The event as `audience` may see it, as JSON.
fn shown(state: &AppState, event: &Event, audience: Audience) -> Option<String> {
    if audience == Audience::Admin {
        return serde_json::to_string(event).ok();
    }
    let public = |mount: &str| state.mounts.get(mount).is_some_and(|m| !m.config().hidden);
    let json = match event {
        Event::ListenerAdded { .. } | Event::ListenerRemoved { .. } => return None,
        Event::SourceConnected { mount, content_type, .. } => {
            serde_json::json!({"type": "source_connected", "mount": mount, "content_type": content_type})
        }
        Event::SourceLeft { mount } => serde_json::json!({"type": "source_left", "mount": mount}),
        Event::Title { mount, title } => serde_json::json!({"type": "title", "mount": mount, "title": title}),
    };
    let mount = json["mount"].as_str().unwrap_or("");
    public(mount).then(|| json.to_string())
}

/// Listeners and sources now, per mount (public mounts only for the public).
fn snapshot(state: &AppState, audience: Audience) -> serde_json::Value {
    let mounts: Vec<serde_json::Value> = state
        .mounts
        .all()
        .iter()
        .filter(|m| audience == Audience::Admin || (!m.config().hidden && m.is_live()))
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

//! The server's event feed: what changed, as it happens (listeners coming
//! and going, sources connecting and leaving, titles), for `/admin/events`.
//! Mounts publish; nothing is built while nobody listens, and a subscriber
//! that falls behind loses old events (and is told), never holds memory.

use std::sync::Arc;

use tokio::sync::broadcast;

/// Events kept for subscribers that are behind.
const BACKLOG: usize = 1024;

/// One change, as `/admin/events` sends it (`type` names the event).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    ListenerAdded { mount: String, id: u64, ip: String, user_agent: Option<String> },
    ListenerRemoved { mount: String, id: u64, seconds: u64 },
    SourceConnected { mount: String, content_type: String, ip: String },
    SourceLeft { mount: String },
    Title { mount: String, title: String },
}

impl Event {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::ListenerAdded { .. } => "listener_added",
            Event::ListenerRemoved { .. } => "listener_removed",
            Event::SourceConnected { .. } => "source_connected",
            Event::SourceLeft { .. } => "source_left",
            Event::Title { .. } => "title",
        }
    }
}

/// The feed; clones publish to the same subscribers.
#[derive(Debug, Clone)]
pub struct Events(broadcast::Sender<Arc<Event>>);

impl Default for Events {
    fn default() -> Events {
        Events(broadcast::channel(BACKLOG).0)
    }
}

impl Events {
    /// Publish the event `make` builds, if anyone is subscribed.
    pub fn publish(&self, make: impl FnOnce() -> Event) {
        if self.0.receiver_count() > 0 {
            let _ = self.0.send(Arc::new(make()));
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.0.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_built_without_subscribers_and_laggards_are_told() {
        let events = Events::default();
        events.publish(|| unreachable!("nobody listens"));
        let mut rx = events.subscribe();
        for i in 0..(BACKLOG as u64 + 10) {
            events.publish(|| Event::SourceLeft { mount: format!("/{i}") });
        }
        assert!(matches!(rx.try_recv(), Err(broadcast::error::TryRecvError::Lagged(10))));
        let json = serde_json::to_string(&*rx.try_recv().unwrap()).unwrap();
        assert_eq!(json, r#"{"type":"source_left","mount":"/10"}"#);
    }
}

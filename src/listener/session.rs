//! A listener's life as a session that can give up its task.
//!
//! Listeners last hours and spend nearly all of it caught up with their
//! mount, where the mount's delivery set writes to them (`mount::delivery`).
//! A task per listener would be kept for nothing but waiting: its state,
//! the runtime's task header and the socket's reactor registration are most
//! of what a listener costs in memory. So a session runs in a task only
//! while it has something to do itself (the burst on connect, a full
//! socket, an admin request, a fallback move, the end): caught up, it parks,
//! the task ends, and the delivery set holds the session until it hands the
//! socket back, when `resume` gives it a new task.
//!
//! A listener that must end by a deadline (URL auth's time limit) keeps its
//! task, as does one on hyper's body channel; they never park.

use std::time::Duration;

use super::{End, ListenerStream, Stop};
use crate::mount::{ListenerEntry, Parked, Resume, Unparked};
use crate::state::AppState;

/// What happens when a listener ends: the access log line and whatever the
/// connection holds (auth's leave notice, its connection slots).
pub trait Finish: Send + 'static {
    /// `entry`: who the listener was (address, user agent, referer);
    /// `sent`: the body bytes it received.
    fn finish(self, state: &AppState, entry: &ListenerEntry, sent: u64);
}

/// A listener stream and what to do when it ends.
struct Session<F: Finish> {
    stream: ListenerStream,
    /// Taken when the listener ends; still here on drop means the session
    /// was dropped unresumed (the runtime shutting down, a dropped mount).
    finish: Option<F>,
}

/// Run `stream` until it ends, then `finish`: parked between writes when it
/// can be, or in a task of its own for its whole life when it has a
/// `time_limit`.
pub fn spawn<F: Finish>(stream: ListenerStream, time_limit: Option<Duration>, finish: F) {
    let mut session = Box::new(Session { stream, finish: Some(finish) });
    match time_limit {
        Some(limit) => {
            tokio::spawn(async move {
                let sent = session.stream.run_for(Some(limit)).await;
                session.finish(sent);
            });
        }
        None => {
            session.stream.parkable = true;
            tokio::spawn(drive(session, None));
        }
    }
}

/// One stretch of a session's work: take the socket back (if it was
/// parked), then stream until it ends or parks again.
async fn drive<F: Finish>(mut session: Box<Session<F>>, back: Option<Unparked>) {
    if let Some(back) = back {
        if let Some(end) = session.stream.take_back(back).await {
            return session.end(end);
        }
    }
    match session.stream.run().await {
        Stop::Ended(end) => session.end(end),
        Stop::CaughtUp => session.park(),
    }
}

impl<F: Finish> Session<F> {
    /// Lend the socket and the session to the mount; the task ends.
    fn park(mut self: Box<Self>) {
        let Some(sock) = self.stream.lend() else {
            return self.end(End::ClientGone);
        };
        let mount = self.stream.mount().clone();
        let entry = self.stream.registration.entry().clone();
        let cursor = self.stream.cursor;
        let icy = self.stream.icy.take();
        // Refused (something to do first), it is resumed at once.
        mount.park(Parked { entry, sock, cursor, icy, sent: 0, owner: self });
    }

    fn end(&mut self, end: End) {
        let sent = self.stream.left(end);
        self.finish(sent);
    }

    fn finish(&mut self, sent: u64) {
        if let Some(finish) = self.finish.take() {
            finish.finish(&self.stream.state, self.stream.registration.entry(), sent);
        }
    }
}

impl<F: Finish> Resume for Session<F> {
    fn resume(self: Box<Self>, back: Unparked) {
        // Outside the runtime (it is going away) the session just ends.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(drive(self, Some(back)));
        }
    }
}

impl<F: Finish> Drop for Session<F> {
    fn drop(&mut self) {
        if self.finish.is_some() {
            let sent = self.stream.left(End::ClientGone);
            self.finish(sent);
        }
    }
}

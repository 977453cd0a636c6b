//! A listener's life as a session that can give up its task.
//!
//! Listeners last hours and spend nearly all of it caught up with their
//! mount, where the mount's delivery set writes to them (`mount::delivery`).
//! A task per listener would be kept for nothing but waiting: its state,
//! the runtime's task header and the socket's reactor registration are most
//! of what a listener costs in memory. So a session runs in a task only
//! while it has something to do itself (the burst on connect, a full
//! socket, an admin request, a fallback move, the end): caught up, it parks,
//! the task ends, and the delivery set holds what the listener keeps for
//! its whole life (`Lasting`, one box made at admission) until it hands the
//! socket back, when `resume` gives it a new task and a new `Wire`.
//!
//! A listener that must end by a deadline (URL auth's time limit) keeps its
//! task, as does one on hyper's body channel; they never park.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{End, Lasting, ListenerStream, Stop, Wire};
use crate::auth::Admission;
use crate::http::status::Status;
use crate::mount::{ListenerEntry, Parked, Resume, Unparked};
use crate::slots::Held;
use crate::state::AppState;

/// What a listener's end writes and lets go of: its access log line, auth's
/// leave notice, and (on a connection of its own) the connection's slots.
/// Held for the listener's whole life: what its listener entry already
/// says (address, request line, user agent, referer, when it connected,
/// bytes sent) is read there at the end.
#[derive(Default)]
pub struct StreamEnd {
    admission: Admission,
    /// Held for its drop, with the rest of the listener.
    _held: Option<Held>,
}

impl StreamEnd {
    pub fn new(admission: Admission, held: Option<Held>) -> StreamEnd {
        StreamEnd { admission, _held: held }
    }

    /// `entry`: who the listener was and what it was sent.
    pub(super) fn finish(mut self, state: &AppState, entry: &ListenerEntry) {
        let line = entry.request.to_request_line();
        let user = self.admission.user();
        let sent = entry.body_sent();
        state.access_log.finished(entry.ip, user, Some(&line), Status::Ok, sent, entry.connected());
        self.admission.left(state);
    }
}

/// Run `stream` until it ends, then `end`: parked between writes when it
/// can be, or in a task of its own for its whole life when it has a
/// `time_limit`.
pub fn spawn(mut stream: ListenerStream, time_limit: Option<Duration>, end: StreamEnd) {
    stream.lasting.end = end;
    stream.lasting.ending = true;
    match time_limit {
        Some(limit) => {
            tokio::spawn(async move {
                stream.run_for(Some(limit)).await;
                stream.lasting.finish();
            });
        }
        None => {
            stream.lasting.parkable = true;
            tokio::spawn(drive(stream));
        }
    }
}

/// One stretch of a session's work: stream until it ends or parks again.
async fn drive(mut stream: ListenerStream) {
    match stream.run().await {
        Stop::Ended(end) => stream.lasting.ended(end),
        Stop::CaughtUp => stream.park(),
    }
}

/// The socket is back from the mount: a stream again, first sending what
/// the walk could not.
async fn resumed(mut lasting: Box<Lasting>, back: Unparked) {
    let position = back.position;
    let mut stream = match Wire::taken_back(&lasting, back) {
        Ok(wire) => ListenerStream { lasting, wire },
        Err(end) => return lasting.ended(end),
    };
    if !stream.wire.pieces.is_empty() {
        if let Err(end) = stream.flush(position).await {
            return stream.lasting.ended(end);
        }
    }
    drive(stream).await
}

impl ListenerStream {
    /// Lend the socket and what the listener keeps to the mount; the
    /// task, and with it the `Wire`, ends.
    fn park(self) {
        let ListenerStream { mut lasting, wire } = self;
        let Some(sock) = wire.sink.lend() else {
            return lasting.ended(End::ClientGone);
        };
        let mount = lasting.registration.mount().clone();
        let entry = lasting.registration.entry().clone();
        // Refused (something to do first), it is resumed at once.
        // The walk reads where the listener is from its entry (kept in step
        // by `advance_to`; stored again here, so parking never depends on it).
        entry.cursor.store(wire.cursor, Ordering::Relaxed);
        mount.park(Parked { entry, sock, icy: wire.icy, owner: lasting });
    }
}

impl Lasting {
    /// The listener ended: log it and write its end.
    fn ended(&mut self, end: End) {
        self.left(end);
        self.finish();
    }

    fn finish(&mut self) {
        if std::mem::take(&mut self.ending) {
            std::mem::take(&mut self.end).finish(&self.state, self.registration.entry());
        }
    }
}

impl Resume for Lasting {
    fn resume(self: Box<Self>, back: Unparked) {
        // Outside the runtime (it is going away) the listener just ends.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(resumed(self, back));
        }
    }
}

impl Drop for Lasting {
    /// Dropped unresumed (the runtime shutting down, a dropped mount) or
    /// without its end written: it ends here.
    fn drop(&mut self) {
        if self.ending {
            self.ended(End::ClientGone);
        }
    }
}

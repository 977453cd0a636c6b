//! Listeners: admission (`admit`: which mount, the caps, the response head)
//! and the task that feeds one listener from its mount's ring (cursor, ICY
//! interleaving, slow-listener policy, fallback moves and admin kill/move).

mod admit;
mod session;
#[cfg(test)]
mod tests;
mod writer;

pub use admit::{admit, start, Admitted, ListenRequest, NotAdmitted, Served, Started};
pub use session::{spawn, Finish};
pub use writer::{try_write_pieces, write_all_pieces, Sink};

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::{watch, OwnedSemaphorePermit};

use crate::mount::{Head, IcyInterleaver, Lag, Metadata, MountHandle, Registration, Unparked};
use crate::state::AppState;

/// About how many bytes one batch copies out of the ring (chunk handles, not data).
const BATCH_BYTES: usize = 64 * 1024;

/// Kernel send buffer per listener socket (Linux doubles it). A fixed size
/// turns off send-buffer autotuning, which would otherwise let a stalled
/// listener park up to 4 MiB in the kernel before `queue_size` ever sees it,
/// and keeps kernel memory per listener bounded. 64 KiB carries 5 Mbit/s at
/// 100 ms round trip, far above any audio bitrate.
const SEND_BUFFER: usize = 64 * 1024;

/// How a listener connection ended, for logs and the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The source left and there was no live fallback.
    SourceGone,
    /// Fell more than `queue_size` behind.
    Slow,
    /// Socket accepted nothing for `client_timeout`.
    Stalled,
    Killed,
    ClientGone,
    Shutdown,
}

/// Why `ListenerStream::run` returned.
enum Stop {
    Ended(End),
    /// Caught up on a socket of its own, and allowed to park: the caller
    /// lends the socket to the mount (see `session`).
    CaughtUp,
}

/// A home mount and a watch on its head.
fn watching(home: MountHandle) -> Box<(MountHandle, watch::Receiver<Head>)> {
    let rx = home.watch_head();
    Box::new((home, rx))
}

/// One listener's socket, position and buffers, for the life of the stream.
pub struct ListenerStream {
    sink: Sink,
    state: AppState,
    registration: Registration,
    /// This listener's slot of `limits.clients`.
    _permit: OwnedSemaphorePermit,
    /// The mount to return to when its source comes back (`fallback_override`).
    /// Boxed: few listeners have one, and every listener holds the field.
    home: Option<Box<(MountHandle, watch::Receiver<Head>)>>,
    cursor: u64,
    head: watch::Receiver<Head>,
    icy: Option<Box<IcyInterleaver>>,
    /// What is queued to be written (empty between writes).
    pieces: VecDeque<Bytes>,
    /// Bytes written, response head included.
    sent: u64,
    /// Length of the response head, so the access log counts body bytes.
    head_len: u64,
    /// See `ListenRequest::own_mount_only`.
    own_mount_only: bool,
    /// May lend its socket to the mount's delivery set when caught up (a
    /// session that can give up its task; see `session`).
    parkable: bool,
}

impl ListenerStream {
    pub(super) fn new(
        sink: Sink,
        state: AppState,
        registration: Registration,
        home: Option<MountHandle>,
        metaint: Option<usize>,
        permit: OwnedSemaphorePermit,
        response_head: Bytes,
    ) -> ListenerStream {
        let subscription = registration.mount().subscribe(registration.entry().id, true);
        registration.entry().cursor.store(subscription.cursor, Ordering::Relaxed);
        let mut stream = ListenerStream {
            sink,
            state,
            _permit: permit,
            home: home.map(watching),
            cursor: subscription.cursor,
            head: subscription.head,
            icy: metaint.map(|metaint| {
                Box::new(IcyInterleaver::starting_with(metaint, subscription.meta.clone(), subscription.burst))
            }),
            pieces: VecDeque::new(),
            sent: 0,
            head_len: 0,
            own_mount_only: false,
            parkable: false,
            registration,
        };
        // Not through `queue`: the response head is not stream data, so it
        // must not count towards the ICY interval.
        stream.head_len = response_head.len() as u64;
        if !response_head.is_empty() {
            stream.pieces.push_back(response_head);
        }
        let meta = stream.registration.mount().metadata();
        if let Some(intro) = stream.intro() {
            stream.queue(intro, &meta);
        }
        stream.queue(subscription.headers, &meta);
        if stream.icy.is_none() {
            // The burst as one copied piece: cheaper than a handle per chunk
            // when many listeners arrive at once. ICY listeners read chunk by
            // chunk, for each chunk's title.
            let mut burst = BytesMut::new();
            if let Ok(next) = stream.mount().read_copy(stream.cursor, BATCH_BYTES, &mut burst) {
                stream.cursor = next;
                stream.registration.entry().cursor.store(next, Ordering::Relaxed);
                stream.queue(burst.freeze(), &meta);
            }
        }
        stream
    }

    /// The mount's intro, played before the live stream: frame formats and
    /// Ogg (the live stream's header pages then start a new chain link)
    /// take it as it is; WebM cannot be concatenated, so it gets none.
    fn intro(&self) -> Option<Bytes> {
        let intro = self.mount().config().intro.as_ref()?.0.clone();
        let webm = self.mount().source().is_some_and(|s| s.content_type.contains("webm"));
        (!webm).then_some(intro)
    }

    fn mount(&self) -> &MountHandle {
        self.registration.mount()
    }

    /// Stream until the listener leaves or `limit` (URL auth's time limit)
    /// has passed; returns the body bytes sent.
    pub async fn run_for(&mut self, limit: Option<std::time::Duration>) -> u64 {
        match limit {
            None => self.run_to_end().await.1,
            // Boxed: the timer exists only for listeners with a time limit,
            // not in the state of every other listener's task.
            Some(limit) => match Box::pin(tokio::time::timeout(limit, self.run_to_end())).await {
                Ok((_, sent)) => sent,
                Err(_) => {
                    tracing::debug!(mount = self.registration.mount().name(), "listener's time limit reached");
                    self.sent.saturating_sub(self.head_len)
                }
            },
        }
    }

    /// Stream until the listener leaves (in this task, never parked);
    /// returns how it ended and the bytes sent.
    pub async fn run_to_end(&mut self) -> (End, u64) {
        self.parkable = false;
        let end = loop {
            match self.run().await {
                Stop::Ended(end) => break end,
                // Not reached while `parkable` is false; waits in place from now on.
                Stop::CaughtUp => self.parkable = false,
            }
        };
        (end, self.left(end))
    }

    /// Log the end; returns the body bytes sent.
    fn left(&self, end: End) -> u64 {
        let entry = self.registration.entry();
        let body = self.sent.saturating_sub(self.head_len);
        tracing::debug!(
            mount = self.registration.mount().name(),
            client_id = entry.id,
            ?end,
            bytes = body,
            "listener left"
        );
        body
    }

    /// Stream until the listener ends or, if it may park, has caught up.
    async fn run(&mut self) -> Stop {
        loop {
            if *self.state.shutdown.borrow() {
                return Stop::Ended(End::Shutdown);
            }
            if let Some(end) = self.apply_control() {
                return Stop::Ended(end);
            }
            self.return_home_if_live();
            let mount = self.mount().clone();
            // Chunk handles of this batch: local, so a listener between
            // batches (parked, for hours) holds no room for them.
            let mut batch = Vec::new();
            let Ok(next) = mount.read(self.cursor, BATCH_BYTES, &mut batch) else {
                return Stop::Ended(self.dropped_slow());
            };
            if next != self.cursor {
                self.cursor = next;
                self.registration.entry().cursor.store(next, Ordering::Relaxed);
            }
            if batch.is_empty() && self.pieces.is_empty() {
                if let Some(stop) = self.wait().await {
                    return stop;
                }
                continue;
            }
            let position = batch.first().map(|c| c.start);
            for chunk in batch {
                self.queue(chunk.data, &chunk.meta);
            }
            if let Err(end) = self.flush(position).await {
                return Stop::Ended(end);
            }
        }
    }

    fn queue(&mut self, data: Bytes, meta: &Arc<Metadata>) {
        if data.is_empty() {
            return;
        }
        match &mut self.icy {
            Some(icy) => icy.feed(&data, meta, &mut self.pieces),
            None => self.pieces.push_back(data),
        }
    }

    /// Kill or move requests from admin (one atomic load when there are none).
    fn apply_control(&mut self) -> Option<End> {
        let control = &self.registration.entry().control;
        if !control.pending() {
            return None;
        }
        if control.is_killed() {
            return Some(End::Killed);
        }
        if let Some(target) = control.take_move() {
            if !target.same(self.mount()) {
                self.switch_to(target, None);
            }
        }
        None
    }

    fn return_home_if_live(&mut self) {
        let live_home = self.home.as_ref().filter(|home| home.0.is_live()).map(|home| home.0.clone());
        if let Some(home) = live_home {
            self.switch_to(home, None);
        }
    }

    /// Continue on another mount at its live edge, with its stream headers.
    fn switch_to(&mut self, target: MountHandle, home: Option<MountHandle>) {
        let entry = self.registration.entry().clone();
        // Hold the target's trimming until this listener's cursor there is known.
        entry.cursor.store(0, Ordering::Relaxed);
        let Some(registration) = target.register(entry.clone(), true) else {
            entry.cursor.store(self.cursor, Ordering::Relaxed);
            return;
        };
        tracing::debug!(from = self.mount().name(), to = target.name(), "listener moved");
        self.registration = registration;
        let subscription = target.subscribe(self.registration.entry().id, false);
        self.cursor = subscription.cursor;
        self.registration.entry().cursor.store(self.cursor, Ordering::Relaxed);
        self.head = subscription.head;
        self.home = home.map(watching);
        self.queue(subscription.headers, &target.metadata());
    }

    /// Nothing to send: wait for the mount to change (new data, or a nudge
    /// for an admin request or shutdown), or for the home mount to return.
    /// One wake source in the common case: this future is part of every idle
    /// listener's memory and its registration is paid on every wait.
    async fn wait(&mut self) -> Option<Stop> {
        let head = *self.head.borrow_and_update();
        // Re-checked after marking the head seen, so a nudge cannot slip between.
        if self.registration.entry().control.pending() || head.seq > self.cursor {
            return None;
        }
        if !head.live {
            return self.source_gone().map(Stop::Ended);
        }
        // A listener waiting for its home mount stays in its task, watching.
        if self.parkable && self.home.is_none() && matches!(self.sink, Sink::Socket(_)) {
            return Some(Stop::CaughtUp);
        }
        match self.home.as_mut() {
            Some(home) => {
                let home = &mut home.1;
                let head = &mut self.head;
                Box::pin(async move {
                    tokio::select! {
                        _ = head.changed() => {}
                        _ = home.wait_for(|h| h.live) => {}
                    }
                })
                .await
            }
            None => {
                let _ = self.head.changed().await;
            }
        }
        None
    }

    /// Take the socket out of the stream to lend it to the mount: a plain
    /// socket, out of the runtime's reactor (nothing waits on it while
    /// parked). `None` if the stream has no socket or it cannot be taken out.
    fn lend(&mut self) -> Option<std::net::TcpStream> {
        let Sink::Socket(sock) = std::mem::replace(&mut self.sink, Sink::Lent) else {
            return None;
        };
        sock.into_std().ok()
    }

    /// The socket is back from the mount: carry on where the walk left off,
    /// sending what it could not. `Some` if the listener ended.
    async fn take_back(&mut self, back: Unparked) -> Option<End> {
        let Unparked { sock, cursor, icy, sent, pending, position, failed } = back;
        self.cursor = cursor;
        self.icy = icy;
        self.sent += sent;
        if failed {
            return Some(End::ClientGone);
        }
        let Ok(sock) = tokio::net::TcpStream::from_std(sock) else {
            return Some(End::ClientGone);
        };
        self.sink = Sink::Socket(sock);
        if !pending.is_empty() {
            self.pieces = pending;
            if let Err(end) = self.flush(position).await {
                return Some(end);
            }
        }
        None
    }

    /// The source left and the ring is drained: follow the fallback or end.
    fn source_gone(&mut self) -> Option<End> {
        let current = self.mount().clone();
        let fallback = if self.own_mount_only { None } else { self.state.mounts.live_fallback(&current) };
        let Some(fallback) = fallback else {
            return Some(End::SourceGone);
        };
        // Remember where we came from (or keep an earlier home) to move back later.
        let home = match self.home.take() {
            Some(home) => Some(home.0),
            None => current.config().fallback_override.then_some(current),
        };
        self.switch_to(fallback, home);
        None
    }

    fn dropped_slow(&self) -> End {
        let mount = self.mount();
        mount.stats().slow_listeners.fetch_add(1, Ordering::Relaxed);
        self.state.stats.slow_listeners.fetch_add(1, Ordering::Relaxed);
        tracing::info!(mount = mount.name(), client_id = self.registration.entry().id, "listener too slow, dropped");
        End::Slow
    }

    /// Count `n` bytes written: this stream's total, the mount's, and what
    /// the admin's listener list shows (body bytes only).
    fn count_sent(&mut self, mount: &MountHandle, n: u64) {
        self.sent += n;
        mount.stats().bytes_sent.fetch_add(n, Ordering::Relaxed);
        self.registration.entry().sent.store(self.sent.saturating_sub(self.head_len), Ordering::Relaxed);
    }

    /// Write the queued pieces, dropping the listener if it falls more than
    /// `queue_size` behind or stalls for `client_timeout` meanwhile.
    async fn flush(&mut self, position: Option<u64>) -> Result<(), End> {
        let mount = self.mount().clone();
        let quick = self.sink.try_write(&mut self.pieces).map_err(|_| End::ClientGone)?;
        self.count_sent(&mount, quick);
        if self.pieces.is_empty() {
            self.pieces = VecDeque::new();
            return Ok(());
        }
        // Boxed: the waiting machinery (timer, select) exists only while a
        // write is actually blocked, not in every idle listener's state.
        Box::pin(self.flush_blocked(position)).await
    }

    /// The socket is full: finish the write unless the listener falls
    /// `queue_size` behind, stalls for `client_timeout` or is killed.
    async fn flush_blocked(&mut self, position: Option<u64>) -> Result<(), End> {
        let mount = self.mount().clone();
        let entry = self.registration.entry().clone();
        let control = &entry.control;
        let deadline = tokio::time::sleep(self.state.config.get().limits.client_timeout);
        tokio::pin!(deadline);
        let outcome = {
            let write = self.sink.write_all(&mut self.pieces);
            tokio::pin!(write);
            loop {
                tokio::select! {
                    result = &mut write => break result.map_err(|_| End::ClientGone),
                    _ = &mut deadline => break Err(End::Stalled),
                    changed = self.head.changed() => {
                        if control.is_killed() {
                            break Err(End::Killed);
                        }
                        let too_far = position.is_some_and(|p| mount.lag_at(p) == Lag::TooFar);
                        if changed.is_err() || too_far {
                            break Err(End::Slow);
                        }
                    }
                }
            }
        };
        match outcome {
            Ok(n) => {
                self.count_sent(&mount, n);
                Ok(())
            }
            Err(End::Slow) => Err(self.dropped_slow()),
            Err(end) => Err(end),
        }
    }
}

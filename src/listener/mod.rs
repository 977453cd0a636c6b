//! Listeners: admission (`admit`: which mount, the caps, the response head)
//! and the task that feeds one listener from its mount's ring (cursor, ICY
//! interleaving, slow-listener policy, fallback moves and admin kill/move).

mod admit;
mod session;
#[cfg(test)]
mod tests;
mod writer;

pub use admit::{admit, start, Admitted, ListenRequest, NotAdmitted, Served, Started};
pub use session::{spawn, StreamEnd};
pub use writer::Sink;

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;

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

/// A listener being streamed: what it keeps for its whole life, and what
/// it holds only while it has a task.
pub struct ListenerStream {
    /// First, so a stream dropped closes its socket before its slots go back.
    wire: Wire,
    lasting: Box<Lasting>,
}

/// What a listener keeps for its whole life, parked or not: boxed once at
/// admission, and all a parked listener holds besides its place in the
/// delivery set (see `session`). Kept small: it is held per listener for
/// hours.
struct Lasting {
    state: AppState,
    registration: Registration,
    /// This listener's slot of `limits.clients`.
    _permit: crate::slots::Slot,
    /// See `ListenRequest::own_mount_only`.
    own_mount_only: bool,
    /// May lend its socket to the mount's delivery set when caught up (a
    /// session that can give up its task; see `session`).
    parkable: bool,
    /// What its end writes and lets go of; taken when it ends.
    end: StreamEnd,
    /// `end` is still to be written (not an `Option<StreamEnd>`, whose tag
    /// would take 8 bytes where this takes one beside the other flags).
    ending: bool,
}

/// What a listener holds only while it has a task: its socket, position,
/// queue and watches. A parked listener has none of it (the delivery set
/// holds the socket, cursor and ICY state); resuming makes it again.
struct Wire {
    sink: Sink,
    cursor: u64,
    head: watch::Receiver<Head>,
    icy: Option<Box<IcyInterleaver>>,
    /// What is queued to be written (empty between writes).
    pieces: VecDeque<Bytes>,
    /// The mount to return to when its source comes back (`fallback_override`).
    /// Boxed: few listeners have one.
    home: Option<Box<(MountHandle, watch::Receiver<Head>)>>,
}

impl Wire {
    /// The socket is back from the mount: carry on where the walk left off,
    /// with what it could not send queued. `Err` if the listener ended.
    fn taken_back(lasting: &Lasting, back: Unparked) -> Result<Wire, End> {
        let Unparked { sock, cursor, icy, pending, position: _, failed } = back;
        if failed {
            return Err(End::ClientGone);
        }
        let sock = tokio::net::TcpStream::from_std(sock).map_err(|_| End::ClientGone)?;
        let mount = lasting.registration.mount();
        Ok(Wire {
            sink: Sink::Socket(sock),
            cursor,
            head: mount.watch_group_of(lasting.registration.entry().id),
            icy,
            pieces: pending,
            home: None,
        })
    }
}

impl ListenerStream {
    pub(super) fn new(
        sink: Sink,
        state: AppState,
        registration: Registration,
        home: Option<MountHandle>,
        metaint: Option<usize>,
        permit: crate::slots::Slot,
        response_head: Bytes,
    ) -> ListenerStream {
        let subscription = registration.mount().subscribe(registration.entry().id, true);
        registration.entry().cursor.store(subscription.cursor, Ordering::Relaxed);
        let wire = Wire {
            sink,
            cursor: subscription.cursor,
            head: subscription.head,
            icy: metaint.map(|metaint| {
                let _kept_for_hours = crate::heap::long_lived();
                Box::new(IcyInterleaver::starting_with(metaint, subscription.meta.clone(), subscription.burst))
            }),
            pieces: VecDeque::new(),
            home: home.map(watching),
        };
        let lasting = {
            let _kept_for_hours = crate::heap::long_lived();
            Box::new(Lasting {
                state,
                registration,
                _permit: permit,
                own_mount_only: false,
                parkable: false,
                end: StreamEnd::default(),
                ending: false,
            })
        };
        let mut stream = ListenerStream { lasting, wire };
        // Not through `queue`: the response head is not stream data, so it
        // must not count towards the ICY interval.
        if !response_head.is_empty() {
            stream.wire.pieces.push_back(response_head);
        }
        let meta = stream.mount().metadata();
        if let Some(intro) = stream.intro() {
            stream.queue(intro, &meta);
        }
        stream.queue(subscription.headers, &meta);
        if stream.wire.icy.is_none() {
            // The burst as one copied piece: cheaper than a handle per chunk
            // when many listeners arrive at once. ICY listeners read chunk by
            // chunk, for each chunk's title.
            if let Ok((burst, next)) = stream.mount().read_copy(stream.wire.cursor, BATCH_BYTES) {
                stream.advance_to(next);
                stream.queue(burst, &meta);
            }
        }
        stream
    }

    /// See `ListenRequest::own_mount_only`.
    pub(super) fn own_mount_only(&mut self, own: bool) {
        self.lasting.own_mount_only = own;
    }

    /// The next chunk to read is `next` (told to the listener entry, so the
    /// ring can trim what every listener has read).
    fn advance_to(&mut self, next: u64) {
        if next != self.wire.cursor {
            self.wire.cursor = next;
            self.lasting.registration.entry().cursor.store(next, Ordering::Relaxed);
        }
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
        self.lasting.registration.mount()
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
                    tracing::debug!(mount = self.mount().name(), "listener's time limit reached");
                    self.lasting.registration.entry().body_sent()
                }
            },
        }
    }

    /// Stream until the listener leaves (in this task, never parked);
    /// returns how it ended and the bytes sent.
    pub async fn run_to_end(&mut self) -> (End, u64) {
        self.lasting.parkable = false;
        let end = loop {
            match self.run().await {
                Stop::Ended(end) => break end,
                // Not reached while `parkable` is false; waits in place from now on.
                Stop::CaughtUp => self.lasting.parkable = false,
            }
        };
        (end, self.lasting.left(end))
    }

    /// Stream until the listener ends or, if it may park, has caught up.
    async fn run(&mut self) -> Stop {
        loop {
            if *self.lasting.state.shutdown.borrow() {
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
            let Ok(next) = mount.read(self.wire.cursor, BATCH_BYTES, &mut batch) else {
                return Stop::Ended(self.lasting.dropped_slow());
            };
            self.advance_to(next);
            if batch.is_empty() && self.wire.pieces.is_empty() {
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
        match &mut self.wire.icy {
            Some(icy) => icy.feed(&data, meta, &mut self.wire.pieces),
            None => self.wire.pieces.push_back(data),
        }
    }

    /// Kill or move requests from admin (one atomic load when there are none).
    fn apply_control(&mut self) -> Option<End> {
        let entry = self.lasting.registration.entry();
        if !entry.pending() {
            return None;
        }
        if entry.is_killed() {
            return Some(End::Killed);
        }
        if let Some(target) = self.mount().take_move(entry) {
            if !target.same(self.mount()) {
                self.switch_to(target, None);
            }
        }
        None
    }

    fn return_home_if_live(&mut self) {
        let live_home = self.wire.home.as_ref().filter(|home| home.0.is_live()).map(|home| home.0.clone());
        if let Some(home) = live_home {
            self.switch_to(home, None);
        }
    }

    /// Continue on another mount at its live edge, with its stream headers.
    fn switch_to(&mut self, target: MountHandle, home: Option<MountHandle>) {
        let entry = self.lasting.registration.entry().clone();
        // Hold the target's trimming until this listener's cursor there is known.
        entry.cursor.store(0, Ordering::Relaxed);
        let Some(registration) = target.register(entry.clone(), true) else {
            entry.cursor.store(self.wire.cursor, Ordering::Relaxed);
            return;
        };
        tracing::debug!(from = self.mount().name(), to = target.name(), "listener moved");
        self.lasting.registration = registration;
        let subscription = target.subscribe(entry.id, false);
        self.wire.cursor = subscription.cursor;
        entry.cursor.store(subscription.cursor, Ordering::Relaxed);
        self.wire.head = subscription.head;
        self.wire.home = home.map(watching);
        self.queue(subscription.headers, &target.metadata());
    }

    /// Nothing to send: wait for the mount to change (new data, or a nudge
    /// for an admin request or shutdown), or for the home mount to return.
    /// One wake source in the common case: this future is part of every idle
    /// listener's memory and its registration is paid on every wait.
    async fn wait(&mut self) -> Option<Stop> {
        let head = *self.wire.head.borrow_and_update();
        // Re-checked after marking the head seen, so a nudge cannot slip between.
        if self.lasting.registration.entry().pending() || head.seq > self.wire.cursor {
            return None;
        }
        if !head.live {
            return self.source_gone().map(Stop::Ended);
        }
        // A listener waiting for its home mount stays in its task, watching.
        if self.lasting.parkable && self.wire.home.is_none() && matches!(self.wire.sink, Sink::Socket(_)) {
            return Some(Stop::CaughtUp);
        }
        match self.wire.home.as_mut() {
            Some(home) => {
                let home = &mut home.1;
                let head = &mut self.wire.head;
                Box::pin(async move {
                    tokio::select! {
                        _ = head.changed() => {}
                        _ = home.wait_for(|h| h.live) => {}
                    }
                })
                .await
            }
            None => {
                let _ = self.wire.head.changed().await;
            }
        }
        None
    }

    /// The source left and the ring is drained: follow the fallback or end.
    fn source_gone(&mut self) -> Option<End> {
        let current = self.mount().clone();
        let fallback =
            if self.lasting.own_mount_only { None } else { self.lasting.state.mounts.live_fallback(&current) };
        let Some(fallback) = fallback else {
            return Some(End::SourceGone);
        };
        // Remember where we came from (or keep an earlier home) to move back later.
        let home = match self.wire.home.take() {
            Some(home) => Some(home.0),
            None => current.config().fallback_override.then_some(current),
        };
        self.switch_to(fallback, home);
        None
    }

    /// Write the queued pieces, dropping the listener if it falls more than
    /// `queue_size` behind or stalls for `client_timeout` meanwhile.
    async fn flush(&mut self, position: Option<u64>) -> Result<(), End> {
        let mut quick = 0;
        let wrote = self.wire.sink.try_write(&mut self.wire.pieces, &mut quick);
        self.lasting.count_sent(quick);
        wrote.map_err(|_| End::ClientGone)?;
        if self.wire.pieces.is_empty() {
            self.wire.pieces = VecDeque::new();
            return Ok(());
        }
        // Boxed: the waiting machinery (timer, select) exists only while a
        // write is actually blocked, not in every idle listener's state.
        Box::pin(self.flush_blocked(position)).await
    }

    /// The socket is full: finish the write unless the listener falls
    /// `queue_size` behind, stalls for `client_timeout` or is killed.
    async fn flush_blocked(&mut self, position: Option<u64>) -> Result<(), End> {
        let lasting = &self.lasting;
        let wire = &mut self.wire;
        let mount = lasting.registration.mount().clone();
        let entry = lasting.registration.entry().clone();
        let deadline = tokio::time::sleep(lasting.state.config.get().limits.client_timeout);
        tokio::pin!(deadline);
        let mut written = 0;
        let outcome = {
            let write = wire.sink.write_all(&mut wire.pieces, &mut written);
            tokio::pin!(write);
            loop {
                tokio::select! {
                    result = &mut write => break result.map_err(|_| End::ClientGone),
                    _ = &mut deadline => break Err(End::Stalled),
                    changed = wire.head.changed() => {
                        if entry.is_killed() {
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
        // What went out counts however the write ended.
        lasting.count_sent(written);
        match outcome {
            Ok(()) => Ok(()),
            Err(End::Slow) => Err(lasting.dropped_slow()),
            Err(End::Stalled) => Err(lasting.dropped_stalled()),
            Err(end) => Err(end),
        }
    }
}

impl Lasting {
    /// Log the end; returns the body bytes sent.
    fn left(&self, end: End) -> u64 {
        let body = self.registration.entry().body_sent();
        tracing::debug!(
            mount = self.registration.mount().name(),
            client_id = self.registration.entry().id,
            ?end,
            bytes = body,
            "listener left"
        );
        body
    }

    fn dropped_slow(&self) -> End {
        let mount = self.registration.mount();
        mount.stats().slow_listeners.fetch_add(1, Ordering::Relaxed);
        self.state.stats.slow_listeners.fetch_add(1, Ordering::Relaxed);
        tracing::info!(mount = mount.name(), client_id = self.registration.entry().id, "listener too slow, dropped");
        End::Slow
    }

    /// A blocked write did not finish within `client_timeout`: the client
    /// is gone without a word (a phone off the network, a forgotten NAT
    /// mapping), stopped reading, or reads too slowly to take what was queued.
    fn dropped_stalled(&self) -> End {
        let mount = self.registration.mount();
        mount.stats().stalled_listeners.fetch_add(1, Ordering::Relaxed);
        self.state.stats.stalled_listeners.fetch_add(1, Ordering::Relaxed);
        let client_id = self.registration.entry().id;
        tracing::info!(mount = mount.name(), client_id, "a write to the listener waited client_timeout, dropped");
        End::Stalled
    }

    /// Count `n` bytes written: this listener's and the mount's.
    fn count_sent(&self, n: u64) {
        self.registration.mount().stats().bytes_sent.fetch_add(n, Ordering::Relaxed);
        self.registration.entry().sent.fetch_add(n, Ordering::Relaxed);
    }
}

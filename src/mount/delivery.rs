//! Delivery sets: the fan-out's steady state.
//!
//! A listener that has caught up with its mount lends its socket to the
//! mount: it is *parked* in the delivery set of its wake group, and its task
//! sleeps until it gets the socket back. When the group is published, one
//! walk goes through the set and writes each parked listener the new bytes,
//! one non-blocking write of shared bytes: the chunks a listener is owed,
//! joined once per walk into one buffer per title, with ICY blocks cut in.
//! No listener task is woken, no waker registered, no chunk handle cloned
//! per listener.
//!
//! A parked listener has no task: its task ends when it parks, and the set
//! holds what the listener keeps for its whole life (`Resume`, which the
//! mount cannot name) beside the hot part. The socket is parked as a plain
//! non-blocking socket, out of the runtime's reactor: nothing waits on it.
//!
//! Anything out of the ordinary hands the socket back (*unparks*) with
//! whatever could not be written: `Resume::resume` gives the listener a task
//! again, which deals with it as before: a full socket (the slow-listener
//! policy and `client_timeout`), a write error, a listener too far behind,
//! an admin kill or move, shutdown, the source leaving. So every rule stays
//! in one place, the listener's task, and the walk only does the common case.
//!
//! Parking goes through a small inbox, so a listener never waits for a walk
//! in progress; the walk takes the inbox in when it starts.

use std::collections::VecDeque;
use std::io::{IoSlice, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::icy::{IcyInterleaver, Piece};
use super::listeners::ListenerEntry;
use super::wake::{Heads, GROUPS};
use super::{Chunk, MountHandle};
use crate::heap::GiveBackRoom;

/// About how many bytes one walk reads out of the ring per listener write.
const WALK_BYTES: usize = 64 * 1024;
/// Most slices handed to one write (well under Linux's IOV_MAX of 1024).
const MAX_SLICES: usize = 64;
/// Fewest slots a delivery set grows by (a small set grows by this, not
/// by an eighth of itself, so it does not reallocate for every arrival).
const MIN_GROWTH: usize = 16;

/// What a parked listener is besides its hot state: what it keeps for its
/// whole life, waiting to be given a task again.
pub trait Resume: Send {
    /// Take the socket back and carry on (in a task of its own). Dropping
    /// the `Resume` instead ends the listener.
    fn resume(self: Box<Self>, back: Unparked);
}

/// A listener lent to its mount's delivery set: the few dozen bytes of hot
/// state a walk needs, and the rest of the listener, boxed.
pub struct Parked {
    /// Also where the listener is in the stream (`cursor`: the sequence of
    /// the next chunk to send), which the walk reads and moves on there,
    /// not in a copy of its own: the walk touches the entry anyway.
    pub entry: Arc<ListenerEntry>,
    /// Non-blocking, and not registered with the runtime's reactor.
    pub sock: TcpStream,
    /// Boxed, here and in the listener: most listeners have none, and this
    /// state is held per listener for hours.
    pub icy: Option<Box<IcyInterleaver>>,
    /// The listener, to resume when the socket goes back.
    pub owner: Box<dyn Resume>,
}

impl std::fmt::Debug for Parked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parked").field("id", &self.entry.id).field("cursor", &self.cursor()).finish_non_exhaustive()
    }
}

/// A parked listener handed back to its task.
#[derive(Debug)]
pub struct Unparked {
    pub sock: TcpStream,
    pub cursor: u64,
    pub icy: Option<Box<IcyInterleaver>>,
    /// Bytes taken from the ring that the socket did not accept.
    pub pending: VecDeque<Bytes>,
    /// Stream offset of the first pending audio byte (for the lag check).
    pub position: Option<u64>,
    /// The socket failed: the listener is gone.
    pub failed: bool,
}

/// Why a walk hands a listener back.
struct Handback {
    pending: VecDeque<Bytes>,
    position: Option<u64>,
    failed: bool,
}

impl Handback {
    fn bare() -> Handback {
        Handback { pending: VecDeque::new(), position: None, failed: false }
    }
}

impl Parked {
    /// Sequence of the next chunk to send.
    fn cursor(&self) -> u64 {
        self.entry.cursor.load(Ordering::Relaxed)
    }

    fn unpark(self, why: Handback) {
        let back = Unparked {
            cursor: self.cursor(),
            sock: self.sock,
            icy: self.icy,
            pending: why.pending,
            position: why.position,
            failed: why.failed,
        };
        self.owner.resume(back);
    }
}

/// One wake group's parked listeners.
#[derive(Debug, Default)]
struct Group {
    /// Listeners parked since the last walk began.
    inbox: Mutex<Vec<Parked>>,
    /// Held for a whole walk; a walk that finds it held leaves the work to
    /// the one in progress (see `dirty`).
    set: Mutex<Vec<Parked>>,
    /// Published since the running walk started: it walks again.
    dirty: AtomicBool,
    /// Listeners in `inbox` and `set`, so a mount with none spawns no walk.
    parked: AtomicUsize,
}

/// A mount's delivery sets, one per wake group.
#[derive(Debug, Default)]
pub(super) struct DeliverySets {
    groups: [Group; GROUPS],
}

/// What one walk reuses from listener to listener: the chunks read for the
/// cursor most listeners share, and the slicing plan of one write.
#[derive(Default)]
struct Scratch {
    /// `runs` hold the ring from this sequence...
    from: Option<u64>,
    /// ...up to (not including) this one.
    next: u64,
    /// The ring's chunks from `from`, with neighbours under the same title
    /// joined (see `join_runs`).
    runs: Vec<Run>,
    /// What the ring read gives, before joining.
    read: Vec<Chunk>,
    plan: Vec<Slice>,
    blocks: Vec<Bytes>,
}

/// Consecutive ring chunks under one title, as one buffer.
struct Run {
    data: Bytes,
    meta: Arc<super::Metadata>,
    /// Stream offset of the first byte.
    start: u64,
}

/// Join neighbouring chunks that share a title into one buffer each. The
/// chunks a listener is owed are cut wherever another wake group was
/// published, so without this every write would carry a slice per group;
/// joined, a listener's write is one contiguous slice (plus ICY blocks), and
/// the copy is made once per walk, not per listener.
fn join_runs(chunks: &[Chunk], runs: &mut Vec<Run>) {
    runs.clear();
    let mut i = 0;
    while i < chunks.len() {
        let first = &chunks[i];
        let mut end = i + 1;
        while end < chunks.len() && Arc::ptr_eq(&chunks[end].meta, &first.meta) {
            end += 1;
        }
        let data = if end == i + 1 {
            first.data.clone()
        } else {
            let mut joined = bytes::BytesMut::with_capacity(chunks[i..end].iter().map(|c| c.data.len()).sum());
            for chunk in &chunks[i..end] {
                joined.extend_from_slice(&chunk.data);
            }
            joined.freeze()
        };
        runs.push(Run { data, meta: first.meta.clone(), start: first.start });
        i = end;
    }
}

/// One slice of a write: part of a run, or an ICY block.
#[derive(Clone, Copy)]
enum Slice {
    Audio { run: usize, start: usize, end: usize },
    Block(usize),
}

impl Scratch {
    fn bytes_of(&self, slice: Slice) -> &[u8] {
        match slice {
            Slice::Audio { run, start, end } => &self.runs[run].data[start..end],
            Slice::Block(block) => &self.blocks[block],
        }
    }

    /// The pieces of the plan after the first `written` bytes, as shared
    /// handles (only when a write was cut short).
    fn remainder(&self, mut written: usize) -> VecDeque<Bytes> {
        let mut pending = VecDeque::new();
        for &slice in &self.plan {
            let whole = match slice {
                Slice::Audio { run, start, end } => self.runs[run].data.slice(start..end),
                Slice::Block(block) => self.blocks[block].clone(),
            };
            if written >= whole.len() {
                written -= whole.len();
                continue;
            }
            pending.push_back(whole.slice(written..));
            written = 0;
        }
        pending
    }
}

impl DeliverySets {
    /// Listeners parked in every group (inboxes included).
    #[cfg(test)]
    pub(crate) fn parked(&self) -> usize {
        self.groups.iter().map(|group| group.parked.load(Ordering::Relaxed)).sum()
    }

    /// Park `parked` unless `may_park` says no (checked under the inbox
    /// lock, so it cannot race with a walk starting or an unpark-all); a
    /// refused listener is resumed at once. Returns whether it parked.
    pub(super) fn park(&self, group: usize, parked: Parked, may_park: impl FnOnce() -> bool) -> bool {
        let group = &self.groups[group];
        let mut inbox = group.inbox.lock();
        if !may_park() {
            drop(inbox);
            parked.unpark(Handback::bare());
            return false;
        }
        inbox.push(parked);
        group.parked.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Does `group` have anyone to walk for? Marks it dirty if so, so a walk
    /// in progress goes round again.
    /// Called after the group's head moved: under the inbox lock, so a
    /// listener parking concurrently either is counted here or saw the new
    /// head and was refused.
    pub(super) fn needs_walk(&self, group: usize) -> bool {
        let group = &self.groups[group];
        let _inbox = group.inbox.lock();
        if group.parked.load(Ordering::Relaxed) == 0 {
            return false;
        }
        group.dirty.store(true, Ordering::SeqCst);
        true
    }

    /// Hand back every parked listener for which `unpark` is true (the
    /// source left, admin asked something, shutdown). Waits for a walk in
    /// progress.
    pub(super) fn unpark_where(&self, unpark: impl Fn(&Parked) -> bool) {
        for group in &self.groups {
            let mut set = group.set.lock();
            take_in(&mut set, &mut group.inbox.lock());
            let mut i = 0;
            while i < set.len() {
                if unpark(&set[i]) {
                    group.parked.fetch_sub(1, Ordering::Relaxed);
                    set.swap_remove(i).unpark(Handback::bare());
                } else {
                    i += 1;
                }
            }
            set.give_back_room();
            group.inbox.lock().give_back_room();
        }
    }
}

impl MountHandle {
    /// Lend a caught-up listener to the mount (see `delivery`). Refused,
    /// and resumed at once, if the listener has something to do first: data
    /// its group was woken for, an admin request, or a source that is gone.
    /// Returns whether it parked.
    pub fn park(&self, parked: Parked) -> bool {
        let group = Heads::group_of(parked.entry.id);
        let cursor = parked.cursor();
        let entry = parked.entry.clone();
        self.0.deliveries.park(group, parked, || {
            let head = self.0.heads.of(group);
            head.live && head.seq <= cursor && !entry.pending()
        })
    }

    /// Wake every listener of this mount without new data, so they look at
    /// their control flags (admin kill/move, shutdown).
    pub fn nudge(&self) {
        self.0.heads.modify_all(|_| {});
        self.0.deliveries.unpark_where(|parked| parked.entry.pending());
    }

    /// Walk `group`'s set up to its published head, and again while it is
    /// published meanwhile. Runs in a task of its own per publish; only one
    /// walks a group at a time.
    pub(super) fn walk(&self, group: usize) {
        let sets = &self.0.deliveries.groups[group];
        let mut scratch = Scratch::default();
        loop {
            let Some(mut set) = sets.set.try_lock() else { return };
            sets.dirty.store(false, Ordering::SeqCst);
            take_in(&mut set, &mut sets.inbox.lock());
            let seq = self.0.heads.of(group).seq;
            let mut written = 0;
            let mut i = 0;
            while i < set.len() {
                match self.deliver(&mut set[i], seq, &mut scratch) {
                    Ok(n) => {
                        written += n;
                        i += 1;
                    }
                    Err(why) => {
                        sets.parked.fetch_sub(1, Ordering::Relaxed);
                        set.swap_remove(i).unpark(why);
                    }
                }
            }
            set.give_back_room();
            if set.is_empty() {
                // The crowd has gone: the inbox need not keep the room its
                // arrival needed (while listeners stay, it keeps it, so a
                // steady audience never regrows it under the publish lock).
                sets.inbox.lock().give_back_room();
            }
            drop(set);
            self.0.stats.bytes_sent.fetch_add(written, Ordering::Relaxed);
            if !sets.dirty.load(Ordering::SeqCst) {
                return;
            }
        }
    }

    /// Write `parked` everything up to `seq` that the socket takes at once.
    /// Returns the bytes written, or why it goes back to its task.
    fn deliver(&self, parked: &mut Parked, seq: u64, scratch: &mut Scratch) -> Result<u64, Handback> {
        let mut written = 0;
        let mut cursor = parked.cursor();
        while cursor < seq {
            if scratch.from != Some(cursor) {
                scratch.read.clear();
                scratch.from = None;
                scratch.next = self.read(cursor, WALK_BYTES, &mut scratch.read).map_err(|_| Handback::bare())?;
                join_runs(&scratch.read, &mut scratch.runs);
                scratch.read.clear();
                scratch.from = Some(cursor);
            }
            if scratch.next == cursor {
                break;
            }
            plan(parked.icy.as_deref_mut(), scratch);
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let count = scratch.plan.len().min(MAX_SLICES);
            for (slot, &slice) in slices.iter_mut().zip(&scratch.plan) {
                *slot = IoSlice::new(scratch.bytes_of(slice));
            }
            let total: usize = slices[..count].iter().map(|s| s.len()).sum();
            let n = match (&parked.sock).write_vectored(&slices[..count]) {
                Ok(0) if total > 0 => return Err(Handback { failed: true, ..Handback::bare() }),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
                Err(_) => return Err(Handback { failed: true, ..Handback::bare() }),
            };
            cursor = scratch.next;
            parked.entry.cursor.store(cursor, Ordering::Relaxed);
            parked.entry.sent.fetch_add(n as u64, Ordering::Relaxed);
            written += n as u64;
            if n < total || count < scratch.plan.len() {
                // The rest of these chunks goes with the listener: its task
                // waits for the socket under the slow-listener rules.
                let position = scratch.runs.first().map(|c| c.start);
                return Err(Handback { pending: scratch.remainder(n), position, failed: false });
            }
        }
        Ok(written)
    }
}

/// Move the listeners parked since the last walk into the set. The set
/// grows by an eighth at a time, not by doubling: it holds its listeners
/// for hours, so its spare room is memory per listener (a doubled set of
/// 10k listeners has room for 6k more).
fn take_in(set: &mut Vec<Parked>, inbox: &mut Vec<Parked>) {
    let needed = set.len() + inbox.len();
    if needed > set.capacity() {
        set.reserve_exact(inbox.len().max(set.len() / 8).max(MIN_GROWTH));
    }
    set.append(inbox);
}

/// Plan the write of `scratch.runs` for one listener: each run whole,
/// or cut by ICY blocks.
fn plan(icy: Option<&mut IcyInterleaver>, scratch: &mut Scratch) {
    scratch.plan.clear();
    scratch.blocks.clear();
    let Scratch { runs, plan, blocks, .. } = scratch;
    match icy {
        None => plan.extend(runs.iter().enumerate().map(|(run, r)| Slice::Audio { run, start: 0, end: r.data.len() })),
        Some(icy) => {
            for (index, run) in runs.iter().enumerate() {
                icy.plan(run.data.len(), &run.meta, |piece| match piece {
                    Piece::Audio(range) => plan.push(Slice::Audio { run: index, start: range.start, end: range.end }),
                    Piece::Block(block) => {
                        plan.push(Slice::Block(blocks.len()));
                        blocks.push(block);
                    }
                });
            }
        }
    }
}

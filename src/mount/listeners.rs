//! The listeners attached to a mount, as admin sees them (`listclients`) and
//! asks things of them (kill, move).
//!
//! A listener's stream task owns a `Registration`; dropping it removes the
//! entry, so the table never outlives the connections it describes.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::request_texts::RequestTexts;
use super::MountHandle;
use crate::heap::GiveBackRoom;

/// One connected listener. Kept small: held for hours, per listener.
#[derive(Debug)]
pub struct ListenerEntry {
    pub id: u64,
    pub ip: IpAddr,
    pub request: RequestTexts,
    connected: Arrived,
    /// What admin asked of the listener (`KILLED`, `PENDING`). Setting a
    /// request does not wake the listener by itself: the caller nudges the
    /// listener's mount (`MountHandle::nudge`), so an idle listener waits
    /// on one thing only. Where a move goes is kept by the mount's table
    /// (`MountHandle::ask_move`), not here: moves are rare.
    asked: AtomicU8,
    /// The ring sequence this listener reads next on its current mount, so
    /// the ring can let go of what every listener has read. 0 while it
    /// (re)subscribes, which holds trimming until its real cursor is known.
    pub cursor: AtomicU64,
    /// Bytes written so far, the response head included.
    pub sent: AtomicU64,
    /// Length of the response head, so what admin and the access log show
    /// counts stream bytes only.
    pub head_len: u32,
}

/// `ListenerEntry::asked`: admin killed the listener.
const KILLED: u8 = 1;
/// A move is asked (or was, until `take_move`).
const PENDING: u8 = 2;

/// When a request arrived, in 8 bytes (an `Instant` takes 16): microseconds
/// since `EPOCH`.
#[derive(Debug, Clone, Copy)]
struct Arrived(u64);

/// The first arrival kept: one handled concurrently may have come a little
/// earlier, and counts from here (off by its handling time, at most).
static EPOCH: OnceLock<Instant> = OnceLock::new();

impl Arrived {
    fn at(instant: Instant) -> Arrived {
        let since = instant.saturating_duration_since(*EPOCH.get_or_init(|| instant));
        Arrived(u64::try_from(since.as_micros()).unwrap_or(u64::MAX))
    }

    fn instant(self) -> Instant {
        *EPOCH.get_or_init(Instant::now) + Duration::from_micros(self.0)
    }
}

impl ListenerEntry {
    pub fn new(id: u64, ip: IpAddr, request: RequestTexts, connected: Instant, head_len: u32) -> ListenerEntry {
        ListenerEntry {
            id,
            ip,
            request,
            connected: Arrived::at(connected),
            asked: AtomicU8::new(0),
            cursor: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            head_len,
        }
    }

    /// When its request arrived.
    pub fn connected(&self) -> Instant {
        self.connected.instant()
    }

    pub fn kill(&self) {
        self.asked.fetch_or(KILLED | PENDING, Ordering::Release);
    }

    /// Has admin asked anything since the last `take_move`? A killed
    /// listener always has.
    pub fn pending(&self) -> bool {
        self.asked.load(Ordering::Acquire) != 0
    }

    pub fn is_killed(&self) -> bool {
        self.asked.load(Ordering::Acquire) & KILLED != 0
    }

    /// Stream bytes sent so far (the response head not counted).
    pub fn body_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed).saturating_sub(u64::from(self.head_len))
    }
}

/// The table of a mount's listeners.
#[derive(Debug, Default)]
pub struct ListenerTable {
    /// Short critical sections only (insert, remove, snapshot for admin).
    entries: Mutex<Listeners>,
}

#[derive(Debug, Default)]
struct Listeners {
    by_id: HashSet<ById>,
    /// Moves admin asked that their listeners have not taken yet (see
    /// `MountHandle::ask_move`): few, and for a moment.
    moves: HashMap<u64, MountHandle>,
}

/// A listener entry as its own table key, found by its id: a slot of the
/// table is one pointer, not an id beside it.
#[derive(Debug)]
struct ById(Arc<ListenerEntry>);

impl PartialEq for ById {
    fn eq(&self, other: &ById) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for ById {}

impl Hash for ById {
    /// As the id alone, so the table can be searched by id (`Borrow`).
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.id.hash(state);
    }
}

impl Borrow<u64> for ById {
    fn borrow(&self) -> &u64 {
        &self.0.id
    }
}

impl ListenerTable {
    pub fn insert(&self, entry: Arc<ListenerEntry>) -> usize {
        let mut entries = self.entries.lock();
        entries.by_id.replace(ById(entry));
        entries.by_id.len()
    }

    pub fn remove(&self, id: u64) -> usize {
        let mut entries = self.entries.lock();
        entries.by_id.remove(&id);
        entries.by_id.give_back_room();
        if entries.moves.remove(&id).is_some() {
            entries.moves.give_back_room();
        }
        entries.by_id.len()
    }

    pub fn get(&self, id: u64) -> Option<Arc<ListenerEntry>> {
        self.entries.lock().by_id.get(&id).map(|entry| entry.0.clone())
    }

    /// All listeners, oldest first.
    pub fn snapshot(&self) -> Vec<Arc<ListenerEntry>> {
        let mut all: Vec<_> = self.entries.lock().by_id.iter().map(|entry| entry.0.clone()).collect();
        all.sort_by_key(|e| e.id);
        all
    }

    pub fn len(&self) -> usize {
        self.entries.lock().by_id.len()
    }

    /// The smallest cursor of any listener (`None` without listeners).
    pub fn slowest_cursor(&self) -> Option<u64> {
        self.entries.lock().by_id.iter().map(|e| e.0.cursor.load(Ordering::Relaxed)).min()
    }
}

impl MountHandle {
    /// Ask listener `entry` of this mount to move to `to` (it takes the
    /// move when it next looks: nudge the mount). A listener no longer here
    /// (it moved on meanwhile) is left alone.
    pub fn ask_move(&self, entry: &ListenerEntry, to: MountHandle) {
        let mut entries = self.0.listeners.entries.lock();
        if entries.by_id.contains(&entry.id) {
            entries.moves.insert(entry.id, to);
            entry.asked.fetch_or(PENDING, Ordering::Release);
        }
    }

    /// The mount admin asked listener `entry` of this mount to move to, if
    /// any; clears `PENDING` (one step under the table's lock, so a kill
    /// meanwhile is never cleared: `KILLED` alone keeps `pending` true).
    pub fn take_move(&self, entry: &ListenerEntry) -> Option<MountHandle> {
        let mut entries = self.0.listeners.entries.lock();
        entry.asked.fetch_and(!PENDING, Ordering::AcqRel);
        entries.moves.remove(&entry.id)
    }
}

/// Keeps a listener in its mount's table; dropping it removes the entry.
#[derive(Debug)]
pub struct Registration {
    pub(super) mount: MountHandle,
    pub(super) entry: Arc<ListenerEntry>,
}

impl Registration {
    pub fn mount(&self) -> &MountHandle {
        &self.mount
    }

    pub fn entry(&self) -> &Arc<ListenerEntry> {
        &self.entry
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.mount.unregister(&self.entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::RequestLine;

    fn entry(id: u64) -> Arc<ListenerEntry> {
        let said = RequestLine { line: "GET / HTTP/1.0".into(), referer: None, user_agent: None };
        Arc::new(ListenerEntry::new(id, IpAddr::from([127, 0, 0, 1]), RequestTexts::of(&said), Instant::now(), 0))
    }

    /// A crowd's room goes when the crowd does: the table of a mount 10k
    /// listeners left holds no 10k empty slots.
    #[test]
    fn the_table_gives_back_a_crowds_room() {
        let table = ListenerTable::default();
        for id in 0..10_000 {
            table.insert(entry(id));
        }
        let crowd = table.entries.lock().by_id.capacity();
        for id in 0..9_990 {
            table.remove(id);
        }
        assert_eq!(table.len(), 10);
        assert!(table.entries.lock().by_id.capacity() * 20 < crowd, "{crowd} slots kept");
    }
}

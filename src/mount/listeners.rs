//! The listeners attached to a mount, as admin sees them (`listclients`), and
//! the control handle admin uses to kill or move one.
//!
//! A listener's stream task owns a `Registration`; dropping it removes the
//! entry, so the table never outlives the connections it describes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::MountHandle;
use crate::heap::GiveBackRoom;

/// What admin may ask of a running listener. Setting a request does not wake
/// the listener by itself: the caller nudges the listener's mount
/// (`MountHandle::nudge`), so an idle listener waits on one thing only.
#[derive(Debug, Default)]
pub struct ListenerControl {
    killed: AtomicBool,
    /// Something is set: the one load the data path pays.
    pending: AtomicBool,
    /// Set by `moveclients`; taken by the listener task. A mutex because it is
    /// touched once per move, never on the data path.
    move_to: Mutex<Option<MountHandle>>,
}

impl ListenerControl {
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.pending.store(true, Ordering::Release);
    }

    pub fn move_to(&self, mount: MountHandle) {
        *self.move_to.lock() = Some(mount);
        self.pending.store(true, Ordering::Release);
    }

    /// Has admin asked anything since the last `take_move`?
    pub fn pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    pub fn take_move(&self) -> Option<MountHandle> {
        let mut move_to = self.move_to.lock();
        if !self.is_killed() {
            self.pending.store(false, Ordering::Release);
        }
        move_to.take()
    }
}

/// One connected listener.
#[derive(Debug)]
pub struct ListenerEntry {
    pub id: u64,
    pub ip: IpAddr,
    /// Boxed strings, not `String`s: held for hours, never grown.
    pub user_agent: Option<Box<str>>,
    pub referer: Option<Box<str>>,
    pub connected: Instant,
    /// In the entry, not beside it: one allocation per listener fewer.
    pub control: ListenerControl,
    /// The ring sequence this listener reads next on its current mount, so
    /// the ring can let go of what every listener has read. 0 while it
    /// (re)subscribes, which holds trimming until its real cursor is known.
    pub cursor: AtomicU64,
    /// Stream bytes sent so far (the response head not counted).
    pub sent: AtomicU64,
}

/// The table of a mount's listeners.
#[derive(Debug, Default)]
pub struct ListenerTable {
    /// Short critical sections only (insert, remove, snapshot for admin).
    entries: Mutex<HashMap<u64, Arc<ListenerEntry>>>,
}

impl ListenerTable {
    pub fn insert(&self, entry: Arc<ListenerEntry>) -> usize {
        let mut entries = self.entries.lock();
        entries.insert(entry.id, entry);
        entries.len()
    }

    pub fn remove(&self, id: u64) -> usize {
        let mut entries = self.entries.lock();
        entries.remove(&id);
        entries.give_back_room();
        entries.len()
    }

    pub fn get(&self, id: u64) -> Option<Arc<ListenerEntry>> {
        self.entries.lock().get(&id).cloned()
    }

    /// All listeners, oldest first.
    pub fn snapshot(&self) -> Vec<Arc<ListenerEntry>> {
        let mut all: Vec<_> = self.entries.lock().values().cloned().collect();
        all.sort_by_key(|e| e.id);
        all
    }

    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// The smallest cursor of any listener (`None` without listeners).
    pub fn slowest_cursor(&self) -> Option<u64> {
        self.entries.lock().values().map(|e| e.cursor.load(Ordering::Relaxed)).min()
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

    fn entry(id: u64) -> Arc<ListenerEntry> {
        Arc::new(ListenerEntry {
            id,
            ip: IpAddr::from([127, 0, 0, 1]),
            user_agent: None,
            referer: None,
            connected: Instant::now(),
            control: ListenerControl::default(),
            cursor: AtomicU64::new(0),
            sent: AtomicU64::new(0),
        })
    }

    /// A crowd's room goes when the crowd does: the table of a mount 10k
    /// listeners left holds no 10k empty slots.
    #[test]
    fn the_table_gives_back_a_crowds_room() {
        let table = ListenerTable::default();
        for id in 0..10_000 {
            table.insert(entry(id));
        }
        let crowd = table.entries.lock().capacity();
        for id in 0..9_990 {
            table.remove(id);
        }
        assert_eq!(table.len(), 10);
        assert!(table.entries.lock().capacity() * 20 < crowd, "{crowd} slots kept");
    }
}

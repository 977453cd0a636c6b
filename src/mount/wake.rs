//! Waking a mount's listeners for new data.
//!
//! Listeners are split into `GROUPS` wake groups by listener id, each with a
//! `watch` head of its own, and the groups are published at phases spread
//! evenly over the delivery interval. Every listener is still woken once per
//! interval, but each publish fans out to a quarter of them: the sends of a
//! large mount are spread over the interval instead of made all at once, so
//! the last listener of ten thousand no longer waits for everyone else's.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::Head;

/// Wake groups per mount.
pub const GROUPS: usize = 4;

/// A set of wake groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Groups(u8);

impl Groups {
    pub const ALL: Groups = Groups((1 << GROUPS) - 1);
    pub const NONE: Groups = Groups(0);

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn with(self, group: usize) -> Groups {
        Groups(self.0 | 1 << group)
    }

    pub(super) fn contains(self, group: usize) -> bool {
        self.0 & 1 << group != 0
    }
}

/// The heads listeners wait on, one per group. Liveness and generation are
/// the same in all of them; `seq` is what each group was last woken for.
#[derive(Debug)]
pub struct Heads {
    senders: [watch::Sender<Head>; GROUPS],
}

impl Heads {
    pub fn new() -> Heads {
        Heads { senders: std::array::from_fn(|_| watch::channel(Head { seq: 0, live: false, generation: 0 }).0) }
    }

    /// The group of the listener with `id`.
    pub fn group_of(id: u64) -> usize {
        (id % GROUPS as u64) as usize
    }

    /// Liveness and generation (and group 0's sequence).
    pub fn current(&self) -> Head {
        *self.senders[0].borrow()
    }

    /// What `group` was last woken for.
    pub fn of(&self, group: usize) -> Head {
        *self.senders[group].borrow()
    }

    pub fn subscribe(&self, group: usize) -> watch::Receiver<Head> {
        self.senders[group].subscribe()
    }

    /// Change every group's head (a source came or went) and wake everyone.
    pub fn modify_all(&self, change: impl Fn(&mut Head)) {
        for sender in &self.senders {
            sender.send_modify(&change);
        }
    }

    /// Wake `groups` for data up to (not including) sequence `seq`.
    pub fn wake(&self, groups: Groups, seq: u64) {
        for (group, sender) in self.senders.iter().enumerate() {
            if groups.contains(group) {
                sender.send_if_modified(|h| {
                    let changed = h.seq != seq;
                    h.seq = seq;
                    changed
                });
            }
        }
    }

    /// The groups not yet woken for data before `ring_head`.
    pub fn behind(&self, ring_head: u64) -> Groups {
        let mut groups = Groups::NONE;
        for (group, sender) in self.senders.iter().enumerate() {
            if sender.borrow().seq < ring_head {
                groups = groups.with(group);
            }
        }
        groups
    }
}

/// When each group is next due. Due times stay on a grid one interval apart,
/// so the groups keep their phases however late a publish happens.
#[derive(Debug, Default)]
pub struct Schedule {
    /// `None` until the first publish.
    due: Option<[Instant; GROUPS]>,
}

impl Schedule {
    /// The groups due at `now`, their next due times set. The very first
    /// publish goes to every group at once, and spreads the phases.
    pub fn take_due(&mut self, now: Instant, interval: Duration) -> Groups {
        if interval.is_zero() {
            return Groups::ALL;
        }
        let Some(due) = &mut self.due else {
            self.due = Some(std::array::from_fn(|group| now + interval * (group as u32 + 1) / GROUPS as u32));
            return Groups::ALL;
        };
        let mut groups = Groups::NONE;
        for (group, due) in due.iter_mut().enumerate() {
            if *due <= now {
                groups = groups.with(group);
                let intervals = (now - *due).as_nanos() / interval.as_nanos() + 1;
                *due += interval * u32::try_from(intervals).unwrap_or(u32::MAX);
            }
        }
        groups
    }

    /// The earliest time one of `groups` is due (`now` before the first publish).
    pub fn next_due(&self, groups: Groups, now: Instant) -> Option<Instant> {
        (0..GROUPS).filter(|&g| groups.contains(g)).map(|g| self.due.map_or(now, |due| due[g])).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keep_spread_phases() {
        let interval = Duration::from_millis(100);
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut schedule = Schedule::default();
        assert_eq!(schedule.take_due(t0, interval), Groups::ALL, "the first data goes to everyone");
        assert_eq!(schedule.next_due(Groups::ALL, t0), Some(ms(25)));
        assert_eq!(schedule.take_due(ms(20), interval), Groups::NONE);
        assert_eq!(schedule.take_due(ms(26), interval), Groups(0b0001));
        assert_eq!(schedule.take_due(ms(60), interval), Groups(0b0010));
        assert_eq!(schedule.next_due(Groups::ALL, ms(60)), Some(ms(75)));
        // Late by several intervals: due at once, and back on its grid after.
        assert_eq!(schedule.take_due(ms(480), interval), Groups::ALL);
        assert_eq!(schedule.next_due(Groups(0b0001), ms(480)), Some(ms(525)));
        assert_eq!(schedule.next_due(Groups(0b1000), ms(480)), Some(ms(500)));
    }

    #[test]
    fn zero_interval_wakes_everyone_every_time() {
        let mut schedule = Schedule::default();
        let now = Instant::now();
        assert_eq!(schedule.take_due(now, Duration::ZERO), Groups::ALL);
        assert_eq!(schedule.take_due(now, Duration::ZERO), Groups::ALL);
    }

    #[test]
    fn heads_wake_only_their_groups() {
        let heads = Heads::new();
        let mut rx: Vec<_> = (0..GROUPS).map(|g| heads.subscribe(g)).collect();
        heads.wake(Groups(0b0101), 7);
        let woken: Vec<bool> = rx.iter_mut().map(|r| r.has_changed().unwrap()).collect();
        assert_eq!(woken, [true, false, true, false]);
        assert_eq!(heads.behind(7), Groups(0b1010));
        heads.modify_all(|h| h.live = true);
        assert!(rx.iter().all(|r| r.has_changed().unwrap() && r.borrow().live));
        assert_eq!(Heads::group_of(6), 2);
    }
}

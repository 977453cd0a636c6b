//! A cap on things held at once (listeners, sources, open connections)
//! that a reload may resize while slots are held. Growing frees slots at
//! once; shrinking below what is held takes effect as slots come back, so
//! nobody already in is cut off.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Semaphore;

/// A resizable semaphore. Clones share it.
#[derive(Debug, Clone)]
pub struct Slots(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    permits: Arc<Semaphore>,
    size: Mutex<Size>,
}

#[derive(Debug, Clone, Copy)]
struct Size {
    /// The cap in force.
    cap: usize,
    /// Slots a shrink still has to retire: held when it happened, retired
    /// as they are returned (the semaphore holds `cap + owed` in all).
    owed: usize,
}

/// One slot; returned when dropped. The semaphore's handle alone, not a
/// permit (which also counts its permits): a listener holds two for hours.
#[derive(Debug)]
pub struct Slot(Arc<Semaphore>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.add_permits(1);
    }
}

/// What an open connection holds until the last thing it serves has
/// ended (a listener's stream included): its slot of `[limits] connections`
/// and of its address's `max_connections_per_ip`.
#[allow(dead_code, reason = "never read: held for their drop, which returns the slots")]
pub struct Held {
    pub connection: Slot,
    pub per_ip: Option<crate::access::PerIpSlot>,
}

impl Slots {
    pub fn new(cap: usize) -> Slots {
        Slots(Arc::new(Inner {
            permits: Arc::new(Semaphore::new(cap.min(Semaphore::MAX_PERMITS))),
            size: Mutex::new(Size { cap, owed: 0 }),
        }))
    }

    /// A slot, or `None` when all are held.
    pub fn try_claim(&self) -> Option<Slot> {
        let mut size = self.0.size.lock();
        if size.owed > 0 {
            size.owed -= self.0.permits.forget_permits(size.owed);
        }
        drop(size);
        let permit = self.0.permits.try_acquire().ok()?;
        // Given back by the slot's drop.
        permit.forget();
        Some(Slot(self.0.permits.clone()))
    }

    /// Change the cap.
    pub fn resize(&self, cap: usize) {
        let cap = cap.min(Semaphore::MAX_PERMITS);
        let mut size = self.0.size.lock();
        if cap >= size.cap {
            let grow = cap - size.cap;
            let repaid = grow.min(size.owed);
            size.owed -= repaid;
            self.0.permits.add_permits(grow - repaid);
        } else {
            let shrink = size.cap - cap;
            size.owed += shrink - self.0.permits.forget_permits(shrink);
        }
        size.cap = cap;
    }

    pub fn cap(&self) -> usize {
        self.0.size.lock().cap
    }

    /// Slots held now.
    pub fn held(&self) -> usize {
        let size = *self.0.size.lock();
        (size.cap + size.owed).saturating_sub(self.0.permits.available_permits())
    }

    /// Wait (at most `limit`) until every slot is back: everything that
    /// held one has ended.
    pub async fn all_returned(&self, limit: Duration) {
        let total = {
            let size = self.0.size.lock();
            size.cap + size.owed
        };
        let total = u32::try_from(total).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(limit, self.0.permits.acquire_many(total)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_frees_slots_at_once() {
        let slots = Slots::new(1);
        let _a = slots.try_claim().unwrap();
        assert!(slots.try_claim().is_none());
        slots.resize(2);
        assert!(slots.try_claim().is_some());
    }

    #[test]
    fn shrinking_below_what_is_held_cuts_nobody_off_and_retires_returned_slots() {
        let slots = Slots::new(3);
        let a = slots.try_claim().unwrap();
        let b = slots.try_claim().unwrap();
        slots.resize(1);
        assert_eq!((slots.cap(), slots.held()), (1, 2));
        assert!(slots.try_claim().is_none());
        drop(a);
        assert!(slots.try_claim().is_none(), "one returned slot was retired, one is still held");
        drop(b);
        let c = slots.try_claim().expect("back within the new cap");
        assert!(slots.try_claim().is_none());
        assert_eq!(slots.held(), 1);
        drop(c);
        assert_eq!(slots.held(), 0);
    }

    #[test]
    fn growing_again_repays_what_a_shrink_still_owes() {
        let slots = Slots::new(2);
        let held: Vec<_> = (0..2).map(|_| slots.try_claim().unwrap()).collect();
        slots.resize(0);
        slots.resize(3);
        assert!(slots.try_claim().is_some(), "one slot beyond the two held");
        drop(held);
        assert_eq!(slots.held(), 0);
        let all: Vec<_> = std::iter::from_fn(|| slots.try_claim()).take(10).collect();
        assert_eq!(all.len(), 3);
    }
}

//! A region of its own for the small blocks a listener keeps for hours.
//!
//! While it connects, a listener allocates and frees kilobytes (its
//! request's buffers, a task's state, its burst) around the few hundred
//! bytes it keeps for its whole life (its table entry, what it keeps when
//! parked, its request's texts). Taken from glibc's heaps, those small blocks
//! are carved out of the holes the big ones leave behind, and a crowd of
//! 10k leaves its heap pages partly empty but resident. Allocated inside a
//! [`long_lived`] scope instead, they sit packed in a region of their own,
//! sorted by size; the heap's holes join up and go back to the system
//! (`trim`).
//!
//! The region is one reservation of address space (256 MiB, made on
//! first use: a process that never keeps a listener, the codec worker say,
//! never makes it; refused, by an address-space limit say, everything stays
//! glibc's), paged in as it is used. A freed block goes on its size's free
//! list for the next block of that size, so the region holds at most what
//! was alive at its busiest; when its last block is freed (the crowd, or a
//! storm of short visits, has gone), its pages go back to the system.
//! Whatever it does not take (too big, aligned beyond 8, the region full,
//! or allocated outside a scope) is glibc's as before; a block is given
//! back to whichever allocator its address belongs to.

#![allow(unsafe_code, reason = "a global allocator is unsafe by contract; the region's blocks are plain memory")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// Block sizes are multiples of this, and blocks are aligned to it.
const GRAIN: usize = 8;
/// The largest block the region takes: listener state comes in blocks of
/// a few dozen to a few hundred bytes.
const LARGEST: usize = 256;
const CLASSES: usize = LARGEST / GRAIN;
/// Address space reserved for the region: 256 MiB, about 800k listeners'
/// worth. Reserved, not used: pages are only touched as blocks are.
const RESERVED: usize = 256 << 20;

thread_local! {
    /// Inside a `long_lived` scope on this thread.
    static SCOPED: Cell<bool> = const { Cell::new(false) };
}

/// While held, small allocations on this thread come from the long-lived
/// region (in a binary that installs [`Allocator`]; a no-op otherwise).
/// Not `Send`, so it cannot be held across an `.await` in a spawned task.
#[must_use = "the scope ends when this is dropped"]
pub struct LongLived {
    outer: bool,
    _this_thread: PhantomData<*const ()>,
}

/// Start a long-lived scope: for a few allocations of state that will live
/// as long as a listener, not for anything freed soon after.
pub fn long_lived() -> LongLived {
    LongLived { outer: SCOPED.replace(true), _this_thread: PhantomData }
}

impl Drop for LongLived {
    fn drop(&mut self) {
        SCOPED.set(self.outer);
    }
}

/// glibc's malloc, with the long-lived region beside it.
pub struct Allocator;

static REGION: Region = Region::new(RESERVED);

// SAFETY: every block comes from `System` or from `REGION`, is given back
// to the one whose address range holds it, and a region block is at least
// `layout.size()` bytes aligned to `GRAIN` (only layouts aligned to at most
// `GRAIN` go there).
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match scoped_block(layout) {
            Some(block) => block,
            // SAFETY: the caller's layout, passed on.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match scoped_block(layout) {
            Some(block) => {
                // SAFETY: the block holds `layout.size()` bytes; a reused one is not zero.
                unsafe { block.write_bytes(0, layout.size()) };
                block
            }
            // SAFETY: the caller's layout, passed on.
            None => unsafe { System.alloc_zeroed(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if REGION.holds(ptr) {
            // SAFETY: a live block of the region, of this size, given up by the caller.
            unsafe { REGION.give_back(ptr, layout.size()) }
        } else {
            // SAFETY: not the region's, so `System`'s, with the caller's layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !REGION.holds(ptr) {
            // SAFETY: `System`'s block with the caller's layout and size.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: `new_size` is valid with this alignment (the caller's contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a non-zero size (the caller's contract).
        let moved = unsafe { self.alloc(new_layout) };
        if !moved.is_null() {
            // SAFETY: both blocks hold at least the smaller size, and are distinct live blocks.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                REGION.give_back(ptr, layout.size());
            }
        }
        moved
    }
}

/// A region block for `layout`, if this thread is in a `long_lived` scope
/// and the region takes it.
fn scoped_block(layout: Layout) -> Option<*mut u8> {
    if !SCOPED.get() || layout.align() > GRAIN {
        return None;
    }
    let block = REGION.take(layout.size());
    (!block.is_null()).then_some(block)
}

/// One reservation of address space cut into blocks by size class.
struct Region {
    /// Address of the reservation; 0 until it is first used.
    base: AtomicUsize,
    len: usize,
    /// Short critical sections only (a pointer pop or push); a futex that
    /// never allocates, as an allocator's lock must not.
    inner: Mutex<Blocks>,
}

#[derive(Clone, Copy)]
struct Blocks {
    /// Offset of the first byte never handed out.
    used: usize,
    /// Head of each class's free list (0: empty); a free block holds the
    /// address of the next one.
    free: [usize; CLASSES],
    /// Blocks handed out and not given back.
    live: usize,
    /// Reserving failed: the region stays empty.
    unavailable: bool,
}

impl Region {
    const fn new(len: usize) -> Region {
        Region {
            base: AtomicUsize::new(0),
            len,
            inner: Mutex::new(Blocks { used: 0, free: [0; CLASSES], live: 0, unavailable: false }),
        }
    }

    /// A block of at least `size` bytes, or null (too big, or no room).
    fn take(&self, size: usize) -> *mut u8 {
        let Some(class) = class_of(size) else {
            return std::ptr::null_mut();
        };
        let mut blocks = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let base = match self.base.load(Ordering::Acquire) {
            0 if blocks.unavailable => return std::ptr::null_mut(),
            0 => match reserve(self.len) {
                Some(base) => {
                    self.base.store(base, Ordering::Release);
                    base
                }
                None => {
                    blocks.unavailable = true;
                    return std::ptr::null_mut();
                }
            },
            base => base,
        };
        let head = blocks.free[class];
        if head != 0 {
            // SAFETY: a free block of this class holds the next one's address.
            blocks.free[class] = unsafe { (head as *const usize).read() };
            blocks.live += 1;
            return head as *mut u8;
        }
        let size = (class + 1) * GRAIN;
        if blocks.used + size > self.len {
            return std::ptr::null_mut();
        }
        let block = base + blocks.used;
        blocks.used += size;
        blocks.live += 1;
        block as *mut u8
    }

    /// Is `ptr` one of the region's blocks?
    fn holds(&self, ptr: *mut u8) -> bool {
        let base = self.base.load(Ordering::Acquire);
        let at = ptr as usize;
        base != 0 && at >= base && at < base + self.len
    }

    /// # Safety
    /// `ptr` is a live block of this region taken for `size` bytes, and is
    /// not used again.
    unsafe fn give_back(&self, ptr: *mut u8, size: usize) {
        let Some(class) = class_of(size) else {
            return;
        };
        let mut blocks = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        blocks.live -= 1;
        if blocks.live == 0 {
            // The last one: the pages go back (they read as zeros when
            // touched again) and the room starts over.
            let base = self.base.load(Ordering::Acquire);
            // SAFETY: no block of the region is live, so nothing refers to
            // these pages; they stay mapped.
            unsafe { libc::madvise(base as *mut libc::c_void, blocks.used, libc::MADV_DONTNEED) };
            blocks.used = 0;
            blocks.free = [0; CLASSES];
            return;
        }
        // SAFETY: the block is at least `GRAIN` bytes, aligned, and now unused.
        unsafe { (ptr as *mut usize).write(blocks.free[class]) };
        blocks.free[class] = ptr as usize;
    }
}

/// The class of a block of `size` bytes (`None`: too big for the region).
fn class_of(size: usize) -> Option<usize> {
    let class = size.max(1).div_ceil(GRAIN) - 1;
    (class < CLASSES).then_some(class)
}

/// Reserve `len` bytes of address space (paged in on first touch; not
/// counted against the memory limit until then).
fn reserve(len: usize) -> Option<usize> {
    // SAFETY: a fresh anonymous mapping; nothing else refers to its range.
    let at = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    (at != libc::MAP_FAILED).then_some(at as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_packed_aligned_and_reused_by_their_size_only() {
        let region = Region::new(4096);
        let a = region.take(120);
        let b = region.take(120);
        let c = region.take(34);
        assert!(!a.is_null() && !b.is_null() && !c.is_null());
        assert_eq!(b as usize - a as usize, 120, "packed, no header between");
        assert_eq!(c as usize - b as usize, 120);
        assert!([a, b, c].iter().all(|&p| (p as usize).is_multiple_of(GRAIN) && region.holds(p)));
        // SAFETY: live blocks of the region, of those sizes, not used again.
        unsafe {
            region.give_back(a, 120);
            region.give_back(c, 34);
        }
        assert_eq!(region.take(40), c, "34 and 40 bytes are one class");
        assert_eq!(region.take(113), a);
        let d = region.take(120);
        assert_eq!(d as usize - c as usize, 40, "an empty free list takes new room");
    }

    #[test]
    fn the_last_block_freed_gives_the_pages_back() {
        let region = Region::new(1 << 20);
        let blocks: Vec<*mut u8> = (0..5000).map(|_| region.take(200)).collect();
        let first = blocks[0];
        // SAFETY: live blocks of the region, of 200 bytes, each given back once.
        unsafe {
            for &block in &blocks {
                block.write_bytes(0xAB, 200);
            }
            for &block in &blocks[1..] {
                region.give_back(block, 200);
            }
            assert!(region.inner.lock().unwrap().used > 0, "one block still live: kept");
            region.give_back(first, 200);
        }
        assert_eq!(region.inner.lock().unwrap().used, 0);
        let again = region.take(16);
        assert_eq!(again, first, "the room starts over");
        // SAFETY: a live block of 16 bytes.
        assert!(unsafe { std::slice::from_raw_parts(again, 16) }.iter().all(|&b| b == 0), "pages given back");
    }

    #[test]
    fn what_the_region_does_not_take_is_refused() {
        let region = Region::new(256);
        assert!(region.take(LARGEST + 1).is_null(), "too big");
        assert!(!region.take(LARGEST).is_null());
        assert!(region.take(8).is_null(), "full");
        let elsewhere = Box::new(0u64);
        assert!(!region.holds((&raw const *elsewhere).cast_mut().cast()));
    }

    proptest::proptest! {
        /// For any run of takes and gives back: every block taken lies in
        /// the region, aligned, overlapping no other live block, and keeps
        /// what was written to it until it is given back (a free list never
        /// writes into a live block); and the region has handed out exactly
        /// the room each size's busiest moment needed since it was last
        /// empty (a freed block is always taken again before new room).
        #[test]
        fn blocks_never_overlap_and_keep_their_bytes(
            ops in proptest::collection::vec((0usize..=LARGEST + 8, proptest::bool::weighted(0.4), 0usize..64), 1..400),
        ) {
            let region = Region::new(64 << 10);
            // Live blocks: (address, size, fill byte).
            let mut live: Vec<(usize, usize, u8)> = Vec::new();
            // Blocks alive now and at most, by class.
            let (mut alive, mut peak) = ([0usize; CLASSES], [0usize; CLASSES]);
            for (n, (size, give_back, which)) in ops.into_iter().enumerate() {
                let size = size.max(1);
                if give_back && !live.is_empty() {
                    let (at, size, fill) = live.swap_remove(which % live.len());
                    // SAFETY: a live block of this region, taken for `size`.
                    let bytes = unsafe { std::slice::from_raw_parts(at as *const u8, size) };
                    proptest::prop_assert!(bytes.iter().all(|&b| b == fill), "a live block was written to");
                    // SAFETY: as above, and not used again.
                    unsafe { region.give_back(at as *mut u8, size) };
                    alive[class_of(size).unwrap_or_default()] -= 1;
                    if live.is_empty() {
                        // All given back: the room starts over.
                        peak = [0; CLASSES];
                    }
                    continue;
                }
                let block = region.take(size);
                if size > LARGEST {
                    proptest::prop_assert!(block.is_null());
                    continue;
                }
                proptest::prop_assert!(!block.is_null() && region.holds(block));
                let at = block as usize;
                proptest::prop_assert!(at.is_multiple_of(GRAIN));
                for &(other, other_size, _) in &live {
                    proptest::prop_assert!(at + size <= other || other + other_size <= at, "overlap");
                }
                let fill = n as u8;
                // SAFETY: the block was just taken for `size` bytes.
                unsafe { block.write_bytes(fill, size) };
                live.push((at, size, fill));
                let class = class_of(size).unwrap_or_default();
                alive[class] += 1;
                peak[class] = peak[class].max(alive[class]);
            }
            let used = region.inner.lock().unwrap_or_else(PoisonError::into_inner).used;
            let needed: usize = peak.iter().enumerate().map(|(class, &n)| n * (class + 1) * GRAIN).sum();
            proptest::prop_assert_eq!(used, needed);
        }
    }

    #[test]
    fn only_a_scope_puts_blocks_in_the_region() {
        let layout = Layout::new::<[u64; 15]>();
        // SAFETY: a non-zero layout; each block is given back with it.
        unsafe {
            let outside = Allocator.alloc(layout);
            let scope = long_lived();
            let inside = Allocator.alloc(layout);
            let nested = long_lived();
            drop(nested);
            let still_inside = Allocator.alloc_zeroed(layout);
            drop(scope);
            let after = Allocator.alloc(layout);
            assert!(!REGION.holds(outside) && !REGION.holds(after));
            assert!(REGION.holds(inside) && REGION.holds(still_inside), "a nested scope's end keeps the outer one");
            assert!(std::slice::from_raw_parts(still_inside, layout.size()).iter().all(|&b| b == 0));
            inside.write_bytes(7, layout.size());
            let grown = Allocator.realloc(inside, layout, 4096);
            assert!(!REGION.holds(grown), "grown past the region's sizes, outside a scope");
            assert!(std::slice::from_raw_parts(grown, layout.size()).iter().all(|&b| b == 7));
            for (block, layout) in [(outside, layout), (still_inside, layout), (after, layout)] {
                Allocator.dealloc(block, layout);
            }
            Allocator.dealloc(grown, Layout::from_size_align_unchecked(4096, layout.align()));
        }
    }
}

//! A region of its own for the blocks that outlive the ones around them.
//!
//! While it connects, a listener allocates and frees kilobytes (its
//! request's buffers, a task's state, its burst) around the few hundred
//! bytes it keeps for its whole life (its table entry, what it keeps when
//! parked, its request's texts). Taken from glibc's heaps, those small blocks
//! are carved out of the holes the big ones leave behind, and a crowd of
//! 10k leaves its heap pages partly empty but resident. Allocated inside a
//! [`long_lived`] scope instead, they sit packed in a region of their own,
//! sorted by size; the heap's holes join up and go back to the system
//! (`trim`). The ring's chunks come here too: each lives seconds (a burst's
//! worth), long beside a connection's transients, and while a crowd
//! arrived at 100 mounts glibc scattered the chunks made meanwhile (a
//! kilobyte or so, 16 a second a mount) over the pages the crowd had used,
//! which then could not go back.
//!
//! The region is one reservation of address space (256 MiB, made on
//! first use: a process that never keeps a listener, the codec worker say,
//! never makes it; refused, by an address-space limit say, everything stays
//! glibc's), paged in as it is used, slab by slab: each 4 KiB page is cut
//! into blocks of one size, and a page whose blocks are all free again is
//! empty, for any size. Empty pages go back to the system when the heap is
//! trimmed (`give_back_empty_pages`, every 10 s; until then they are the
//! next arrivals' room), so when a crowd leaves, the pages it filled go
//! back even while the listeners who came before it stay. Whatever it does not
//! take (too big, aligned beyond 8, the region full, or allocated outside a
//! scope) is glibc's as before; a block is given back to whichever
//! allocator its address belongs to.

#![allow(unsafe_code, reason = "a global allocator is unsafe by contract; the region's blocks are plain memory")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// Block sizes are multiples of this, and blocks are aligned to it.
const GRAIN: usize = 8;
/// Up to here, a class every `GRAIN` bytes: listener state comes in blocks
/// of a few dozen to a few hundred bytes, each size in crowds.
const FINE: usize = 256;
/// The largest block the region takes, a page. Beyond `FINE`, four classes
/// per doubling (a block at most a quarter larger than asked): a ring chunk
/// is a quarter of a delivery interval of audio (about 1 KB at 128 kbit/s);
/// larger ones (higher bitrates, a source catching up) are fewer and
/// glibc's.
const LARGEST: usize = PAGE;
const FINE_CLASSES: usize = FINE / GRAIN;
const STEPS_PER_DOUBLING: usize = 4;
const CLASSES: usize = FINE_CLASSES + STEPS_PER_DOUBLING * (LARGEST / FINE).ilog2() as usize;
/// Address space reserved for the region: 256 MiB, about 800k listeners'
/// worth. Reserved, not used: pages are only touched as blocks are.
const RESERVED: usize = 256 << 20;
/// Blocks are cut from pages of this size, each page one class's.
const PAGE: usize = 4096;

thread_local! {
    /// Inside a `long_lived` scope on this thread.
    static SCOPED: Cell<bool> = const { Cell::new(false) };
}

/// While held, allocations of up to a page on this thread come from the
/// long-lived region (in a binary that installs [`Allocator`]; a no-op otherwise).
/// Not `Send`, so it cannot be held across an `.await` in a spawned task.
#[must_use = "the scope ends when this is dropped"]
pub struct LongLived {
    outer: bool,
    _this_thread: PhantomData<*const ()>,
}

/// Start a long-lived scope: for a few allocations that will outlive the
/// connections coming and going around them (a listener's state, a ring
/// chunk), not for anything freed soon after.
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
        if class_of(new_size) == class_of(layout.size()) {
            // The block already has the room (a class's blocks are one size),
            // and stays in the region whether or not this is in a scope.
            return ptr;
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

/// One reservation of address space: a table of its pages first, then
/// pages each cut into blocks of one size class.
struct Region {
    /// Address of the reservation; 0 until it is first used.
    base: AtomicUsize,
    len: usize,
    /// Short critical sections only (a block popped or pushed, a page moved
    /// between lists); a futex that never allocates, as an allocator's lock
    /// must not.
    inner: Mutex<Blocks>,
}

/// What the region knows of one of its pages. All zero (the default): a
/// page never used, or empty again.
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Page {
    /// Class + 1 of the page's blocks (0: none).
    class: u16,
    /// Blocks handed out and not given back.
    live: u16,
    /// Offset of the first byte never handed out.
    bump: u16,
    /// First free block, as offset / `GRAIN` + 1 (0: none); a free block's
    /// first two bytes hold the next one's, likewise.
    free: u16,
    /// Neighbours on the list the page is on, as page number + 1 (0: none).
    prev: u32,
    next: u32,
}

/// The lists a page can be on. A page whose blocks are all handed out is
/// on none.
#[derive(Clone, Copy)]
enum List {
    /// Pages of this class with a block to give.
    Partial(usize),
    /// Empty pages, still resident.
    Empty,
    /// Empty pages handed back to the system (zero when touched again).
    Returned,
}

#[derive(Clone, Copy)]
struct Blocks {
    /// The reservation's address (0: not made yet).
    base: usize,
    /// Pages the reservation holds, the table's included.
    pages: usize,
    /// Pages the table of pages takes at the start.
    table_pages: usize,
    /// First page never used.
    fresh: usize,
    /// Heads of the lists, as page number + 1 (0: empty).
    partial: [u32; CLASSES],
    empty: u32,
    returned: u32,
    /// Pages on `Returned`.
    returned_pages: usize,
    /// Reserving failed: the region stays empty.
    unavailable: bool,
}

impl Blocks {
    fn page(&mut self, number: usize) -> &mut Page {
        check(number >= self.table_pages && number < self.pages);
        // SAFETY: the table's entries lie in the reservation's first
        // `table_pages` pages, one per page, and are only reached under
        // the region's lock (`&mut self`).
        unsafe { &mut *(self.base as *mut Page).add(number) }
    }

    fn head(&mut self, list: List) -> &mut u32 {
        match list {
            List::Partial(class) => &mut self.partial[class],
            List::Empty => &mut self.empty,
            List::Returned => &mut self.returned,
        }
    }

    fn push(&mut self, list: List, number: usize) {
        let old = *self.head(list);
        if old != 0 {
            self.page(old as usize - 1).prev = number as u32 + 1;
        }
        let page = self.page(number);
        page.prev = 0;
        page.next = old;
        *self.head(list) = number as u32 + 1;
    }

    fn unlink(&mut self, list: List, number: usize) {
        let Page { prev, next, .. } = *self.page(number);
        if prev == 0 {
            *self.head(list) = next;
        } else {
            self.page(prev as usize - 1).next = next;
        }
        if next != 0 {
            self.page(next as usize - 1).prev = prev;
        }
        let page = self.page(number);
        page.prev = 0;
        page.next = 0;
    }

    fn pop(&mut self, list: List) -> Option<usize> {
        let head = *self.head(list);
        let number = (head != 0).then(|| head as usize - 1)?;
        self.unlink(list, number);
        Some(number)
    }

    /// A page to cut into blocks: an empty one if any is resident, else one
    /// handed back, else one never used.
    fn fresh_page(&mut self) -> Option<usize> {
        if let Some(number) = self.pop(List::Empty) {
            return Some(number);
        }
        if let Some(number) = self.pop(List::Returned) {
            self.returned_pages -= 1;
            return Some(number);
        }
        (self.fresh < self.pages).then(|| {
            self.fresh += 1;
            self.fresh - 1
        })
    }

    /// Is the page out of room for blocks of `size`?
    fn full(page: &Page, size: usize) -> bool {
        page.free == 0 && usize::from(page.bump) + size > PAGE
    }
}

impl Region {
    const fn new(len: usize) -> Region {
        Region {
            base: AtomicUsize::new(0),
            len,
            inner: Mutex::new(Blocks {
                base: 0,
                pages: 0,
                table_pages: 0,
                fresh: 0,
                partial: [0; CLASSES],
                empty: 0,
                returned: 0,
                returned_pages: 0,
                unavailable: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Blocks> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A block of at least `size` bytes, or null (too big, or no room).
    fn take(&self, size: usize) -> *mut u8 {
        let Some(class) = class_of(size) else {
            return std::ptr::null_mut();
        };
        let mut blocks = self.lock();
        if blocks.base == 0 {
            if blocks.unavailable {
                return std::ptr::null_mut();
            }
            let Some(base) = reserve(self.len) else {
                blocks.unavailable = true;
                return std::ptr::null_mut();
            };
            blocks.base = base;
            blocks.pages = self.len / PAGE;
            blocks.table_pages = (blocks.pages * size_of::<Page>()).div_ceil(PAGE);
            blocks.fresh = blocks.table_pages;
            self.base.store(base, Ordering::Release);
        }
        let size = class_size(class);
        let number = match blocks.partial[class] {
            0 => {
                let Some(number) = blocks.fresh_page() else {
                    return std::ptr::null_mut();
                };
                *blocks.page(number) = Page { class: class as u16 + 1, ..Page::default() };
                blocks.push(List::Partial(class), number);
                number
            }
            head => head as usize - 1,
        };
        let at = blocks.base + number * PAGE;
        let page = blocks.page(number);
        let offset = if page.free != 0 {
            let offset = (usize::from(page.free) - 1) * GRAIN;
            // SAFETY: a free block of this page holds the next one's number.
            page.free = unsafe { ((at + offset) as *const u16).read() };
            offset
        } else {
            let offset = usize::from(page.bump);
            page.bump += size as u16;
            offset
        };
        page.live += 1;
        if Blocks::full(page, size) {
            blocks.unlink(List::Partial(class), number);
        }
        (at + offset) as *mut u8
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
            // Never taken for that size: a caller broke the contract.
            check(false);
            return;
        };
        let size = class_size(class);
        let mut blocks = self.lock();
        let from_base = ptr as usize - blocks.base;
        let (number, offset) = (from_base / PAGE, from_base % PAGE);
        let page = blocks.page(number);
        check(usize::from(page.class) == class + 1);
        let was_full = Blocks::full(page, size);
        // SAFETY: the block is at least `GRAIN` bytes, aligned, and now unused.
        unsafe { (ptr as *mut u16).write(page.free) };
        page.free = (offset / GRAIN + 1) as u16;
        page.live -= 1;
        if page.live == 0 {
            // Empty: any class may have it; `give_back_empty_pages` hands
            // it back to the system at the next trim.
            if !was_full {
                blocks.unlink(List::Partial(class), number);
            }
            *blocks.page(number) = Page::default();
            blocks.push(List::Empty, number);
        } else if was_full {
            blocks.push(List::Partial(class), number);
        }
    }

    /// Hand the empty pages back to the system. Pages are taken off the
    /// list a batch at a time, so the lock is not held over the system
    /// calls.
    fn give_back_empty_pages(&self) {
        loop {
            let mut batch = [0usize; 64];
            let (base, taken) = {
                let mut blocks = self.lock();
                let mut taken = 0;
                while taken < batch.len() {
                    let Some(number) = blocks.pop(List::Empty) else { break };
                    batch[taken] = number;
                    taken += 1;
                }
                (blocks.base, taken)
            };
            if taken == 0 {
                return;
            }
            let batch = &mut batch[..taken];
            batch.sort_unstable();
            // Neighbouring pages in one call.
            let mut run = 0;
            while run < batch.len() {
                let mut end = run + 1;
                while end < batch.len() && batch[end] == batch[end - 1] + 1 {
                    end += 1;
                }
                // SAFETY: pages of the reservation on no list, so no block
                // of theirs is live or handed out meanwhile; they stay mapped.
                unsafe {
                    libc::madvise(
                        (base + batch[run] * PAGE) as *mut libc::c_void,
                        (end - run) * PAGE,
                        libc::MADV_DONTNEED,
                    );
                }
                run = end;
            }
            let mut blocks = self.lock();
            for &number in batch.iter() {
                blocks.push(List::Returned, number);
            }
            blocks.returned_pages += batch.len();
        }
    }

    /// Bytes resident: every page cut so far and not handed back (holding
    /// blocks, or empty until the next trim), and the part of the table of
    /// pages that describes them.
    fn resident_bytes(&self) -> usize {
        let blocks = self.lock();
        if blocks.base == 0 {
            return 0;
        }
        let entries = |pages: usize| pages * size_of::<Page>();
        let table = entries(blocks.fresh).div_ceil(PAGE) - entries(blocks.table_pages) / PAGE;
        (blocks.fresh - blocks.table_pages - blocks.returned_pages + table) * PAGE
    }

    /// Pages holding at least one block.
    #[cfg(test)]
    fn pages_in_use(&self) -> usize {
        let mut blocks = self.lock();
        (blocks.table_pages..blocks.fresh).filter(|&number| blocks.page(number).class != 0).count()
    }

    /// Pages resident now (holding blocks, or empty and not yet handed
    /// back), the table's not counted.
    #[cfg(test)]
    fn resident_pages(&self) -> usize {
        let mut blocks = self.lock();
        let mut empty = 0;
        let mut next = blocks.empty;
        while next != 0 {
            empty += 1;
            next = blocks.page(next as usize - 1).next;
        }
        drop(blocks);
        self.pages_in_use() + empty
    }
}

/// Hand the long-lived region's empty pages back to the system.
pub fn give_back_empty_pages() {
    REGION.give_back_empty_pages();
}

/// Bytes the long-lived region keeps resident (0 where the binary does
/// not install [`Allocator`]).
pub fn long_lived_bytes() -> usize {
    REGION.resident_bytes()
}

/// In a test build, abort if `holds` is false: an allocator must not panic
/// (a panic allocates, here perhaps under the region's own lock).
fn check(holds: bool) {
    if cfg!(debug_assertions) && !holds {
        std::process::abort();
    }
}

/// The class of a block of `size` bytes (`None`: too big for the region).
fn class_of(size: usize) -> Option<usize> {
    let size = size.max(1);
    if size <= FINE {
        return Some(size.div_ceil(GRAIN) - 1);
    }
    if size > LARGEST {
        return None;
    }
    // `size` lies in (2^p, 2^(p+1)], cut in steps of a quarter of 2^p.
    let p = (size - 1).ilog2();
    let step = (1 << p) / STEPS_PER_DOUBLING;
    let k = (size - (1 << p)).div_ceil(step);
    Some(FINE_CLASSES + (p - FINE.ilog2()) as usize * STEPS_PER_DOUBLING + k - 1)
}

/// The size of a block of `class`.
fn class_size(class: usize) -> usize {
    if class < FINE_CLASSES {
        return (class + 1) * GRAIN;
    }
    let (doubling, k) = ((class - FINE_CLASSES) / STEPS_PER_DOUBLING, (class - FINE_CLASSES) % STEPS_PER_DOUBLING + 1);
    let low = FINE << doubling;
    low + k * (low / STEPS_PER_DOUBLING)
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
mod tests;

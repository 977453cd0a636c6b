use super::*;

/// The page a block lies in.
fn page_of(block: *mut u8) -> usize {
    block as usize / PAGE
}

#[test]
fn blocks_are_packed_aligned_and_reused_by_their_size_only() {
    let region = Region::new(64 << 10);
    let a = region.take(120);
    let b = region.take(120);
    let c = region.take(34);
    assert!(!a.is_null() && !b.is_null() && !c.is_null());
    assert_eq!(b as usize - a as usize, 120, "packed, no header between");
    assert_ne!(page_of(c), page_of(a), "a page is one size's");
    assert!([a, b, c].iter().all(|&p| (p as usize).is_multiple_of(GRAIN) && region.holds(p)));
    let d = region.take(39);
    assert_eq!(d as usize - c as usize, 40, "34 and 39 bytes are one class");
    // SAFETY: live blocks of the region, of those sizes, not used again.
    unsafe {
        region.give_back(a, 120);
        region.give_back(c, 34);
    }
    assert_eq!(region.take(40), c, "a freed block is taken again first");
    assert_eq!(region.take(113), a);
    assert_eq!(region.take(120) as usize - b as usize, 120, "no free block: new room");
}

#[test]
fn a_page_fills_then_the_next_one_is_cut() {
    let region = Region::new(64 << 10);
    let per_page = PAGE / 200;
    let blocks: Vec<*mut u8> = (0..per_page + 1).map(|_| region.take(200)).collect();
    assert!(blocks[..per_page].iter().all(|&b| page_of(b) == page_of(blocks[0])));
    assert_ne!(page_of(blocks[per_page]), page_of(blocks[0]), "no block straddles pages");
    // SAFETY: a live block of 200 bytes, not used again.
    unsafe { region.give_back(blocks[3], 200) };
    assert_eq!(region.take(200), blocks[3], "a full page with a free block has room again");
}

#[test]
fn empty_pages_go_back_and_pages_still_in_use_stay() {
    let region = Region::new(4 << 20);
    let per_page = PAGE / 200;
    let blocks: Vec<*mut u8> = (0..per_page * 100).map(|_| region.take(200)).collect();
    // SAFETY: live blocks of 200 bytes, each given back once and not used after.
    unsafe {
        for &block in &blocks {
            block.write_bytes(0xAB, 200);
        }
        // A listener that came first stays: its page stays.
        for &block in &blocks[1..] {
            region.give_back(block, 200);
        }
    }
    assert_eq!(region.resident_pages(), 100, "nothing handed back before the trim");
    let crowd_resident = region.resident_bytes();
    region.give_back_empty_pages();
    assert_eq!(region.resident_pages(), 1, "the crowd's pages go back, the first listener's stays");
    assert_eq!(crowd_resident - region.resident_bytes(), 99 * PAGE, "what went back is counted out");
    // Pages handed back read as zeros when cut again.
    let again: Vec<*mut u8> = (0..PAGE / 16 * 2).map(|_| region.take(16)).collect();
    // SAFETY: live blocks of 16 bytes.
    let zeroed = again.iter().filter(|&&b| unsafe { std::slice::from_raw_parts(b, 16) }.iter().all(|&x| x == 0));
    assert_eq!(zeroed.count(), PAGE / 16 * 2, "the pages that went back come back zeroed");
    assert_eq!(region.resident_pages(), 3);
    // SAFETY: the live blocks, given back once.
    unsafe {
        region.give_back(blocks[0], 200);
        for &block in &again {
            region.give_back(block, 16);
        }
    }
    region.give_back_empty_pages();
    assert_eq!(region.resident_pages(), 0);
    assert_eq!(region.resident_bytes(), PAGE, "only the table's page that describes them");
}

#[test]
fn classes_cover_every_size_with_at_most_a_quarter_spare() {
    let mut last = None;
    for size in 1..=LARGEST {
        let class = class_of(size).expect("taken");
        let block = class_size(class);
        assert!(block >= size && block.is_multiple_of(GRAIN), "{size} in a block of {block}");
        assert!(block - size <= (GRAIN - 1).max(size / 4), "{size} in a block of {block}");
        assert!(last.is_none_or(|last| class == last || class == last + 1), "classes in order");
        last = Some(class);
    }
    assert_eq!(last, Some(CLASSES - 1));
    assert_eq!(class_of(LARGEST + 1), None);
}

#[test]
fn what_the_region_does_not_take_is_refused() {
    // One page for the table, two for blocks.
    let region = Region::new(3 * PAGE);
    assert!(region.take(LARGEST + 1).is_null(), "too big");
    assert!(!region.take(LARGEST).is_null());
    for _ in 0..PAGE / 1000 {
        assert!(!region.take(1000).is_null());
    }
    assert!(region.take(8).is_null(), "full");
    let elsewhere = Box::new(0u64);
    assert!(!region.holds((&raw const *elsewhere).cast_mut().cast()));
}

proptest::proptest! {
    /// For any run of takes and gives back: every block taken lies in
    /// the region, aligned, overlapping no other live block, and keeps
    /// what was written to it until it is given back (a free list never
    /// writes into a live block); the region counts as in use exactly
    /// the pages that hold live blocks; and after a trim it keeps no
    /// empty page.
    #[test]
    fn blocks_never_overlap_keep_their_bytes_and_empty_pages_go(
        ops in proptest::collection::vec(
            (proptest::prop_oneof![0usize..=FINE + 8, 0usize..=LARGEST + 8], proptest::bool::weighted(0.4), 0usize..64),
            1..600,
        ),
    ) {
        let region = Region::new(4 << 20);
        // Live blocks: (address, size, fill byte).
        let mut live: Vec<(usize, usize, u8)> = Vec::new();
        for (n, (size, give_back, which)) in ops.into_iter().enumerate() {
            let size = size.max(1);
            if give_back && !live.is_empty() {
                let (at, size, fill) = live.swap_remove(which % live.len());
                // SAFETY: a live block of this region, taken for `size`.
                let bytes = unsafe { std::slice::from_raw_parts(at as *const u8, size) };
                proptest::prop_assert!(bytes.iter().all(|&b| b == fill), "a live block was written to");
                // SAFETY: as above, and not used again.
                unsafe { region.give_back(at as *mut u8, size) };
                if n % 7 == 0 {
                    region.give_back_empty_pages();
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
            proptest::prop_assert_eq!(page_of(block), page_of(block.wrapping_add(size - 1)), "straddles pages");
            for &(other, other_size, _) in &live {
                proptest::prop_assert!(at + size <= other || other + other_size <= at, "overlap");
            }
            let fill = n as u8;
            // SAFETY: the block was just taken for `size` bytes.
            unsafe { block.write_bytes(fill, size) };
            live.push((at, size, fill));
        }
        let mut pages: Vec<usize> = live.iter().map(|&(at, _, _)| at / PAGE).collect();
        pages.sort_unstable();
        pages.dedup();
        let in_use = region.pages_in_use();
        proptest::prop_assert_eq!(in_use, pages.len());
        region.give_back_empty_pages();
        proptest::prop_assert_eq!(region.resident_pages(), pages.len());
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
        let same = Allocator.realloc(inside, layout, layout.size() - 4);
        assert_eq!(same, inside, "still its class: stays put, outside a scope too");
        let inside = Allocator.realloc(
            same,
            Layout::from_size_align_unchecked(layout.size() - 4, layout.align()),
            layout.size(),
        );
        assert_eq!(same, inside);
        let grown = Allocator.realloc(inside, layout, 2 * LARGEST);
        assert!(!REGION.holds(grown), "grown past the region's sizes, outside a scope");
        assert!(std::slice::from_raw_parts(grown, layout.size()).iter().all(|&b| b == 7));
        for (block, layout) in [(outside, layout), (still_inside, layout), (after, layout)] {
            Allocator.dealloc(block, layout);
        }
        Allocator.dealloc(grown, Layout::from_size_align_unchecked(2 * LARGEST, layout.align()));
    }
}

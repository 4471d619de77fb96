//! skiff's global allocator: a bump arena, for a process that lives for one
//! command.
//!
//! musl's allocator (mallocng, skiff's C library on x86_64) maps and unmaps
//! pages as small blocks come and go: a `skiff run` made 87 mmap and 73
//! munmap calls (perf: ~0.3 ms of a 5.3 ms run in munmap alone). A skiff
//! process allocates little in all (a whole `skiff run`: 377 KB), so blocks
//! of up to [`BIG`] bytes are cut from a static zero-filled arena (bss: only
//! the pages used cost memory) by bumping an atomic offset. A block is given
//! back only if it is the last one cut (the usual case for a temporary); the
//! rest of the arena is never reused. Larger blocks, and every block once
//! the arena is used up (a long `events` stream gets there), go to the C
//! library's allocator, so a process holds at most the arena's size more
//! than it would without it.
//! The arena is plain memory: a cloned child (the container's init) gets a
//! copy of it, and threads share it through the atomic offset.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The arena's size for skiff (the `N` of its [`Arena`]).
pub const SIZE: usize = 2 << 20;
/// Blocks larger than this always go to the C library's allocator.
const BIG: usize = 64 << 10;

/// The global allocator (see the module's doc): `N` bytes of arena.
#[repr(C, align(4096))]
pub struct Arena<const N: usize> {
    space: UnsafeCell<[u8; N]>,
    /// Offset of the arena's first unused byte.
    next: AtomicUsize,
}

// SAFETY: the bytes of the arena are handed out only through `next`'s
// atomic updates, each range to one caller, so threads never share a block.
unsafe impl<const N: usize> Sync for Arena<N> {}

impl<const N: usize> Arena<N> {
    /// An arena with nothing cut from it (all zero: a static one is bss).
    pub const fn new() -> Self {
        Arena {
            space: UnsafeCell::new([0; N]),
            next: AtomicUsize::new(0),
        }
    }

    fn base(&self) -> usize {
        self.space.get() as usize
    }

    /// The block's offset in the arena, if it is one of the arena's.
    fn offset(&self, ptr: *mut u8) -> Option<usize> {
        (ptr as usize)
            .checked_sub(self.base())
            .filter(|&off| off < N)
    }

    /// Cut `layout` from the arena; null if it does not fit.
    fn bump(&self, layout: Layout) -> *mut u8 {
        let base = self.base();
        let mut cur = self.next.load(Ordering::Relaxed);
        loop {
            // The address is aligned, not the offset: an alignment can be
            // larger than the arena's own (a power of two either way).
            let mask = layout.align() - 1;
            let start = match (base + cur).checked_add(mask) {
                Some(up) => (up & !mask) - base,
                None => return std::ptr::null_mut(),
            };
            let end = match start.checked_add(layout.size()) {
                Some(end) if end <= N => end,
                _ => return std::ptr::null_mut(),
            };
            match self
                .next
                .compare_exchange_weak(cur, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return (base + start) as *mut u8,
                Err(now) => cur = now,
            }
        }
    }
}

// SAFETY: every block is a range of the arena cut once by `bump` (aligned
// and sized as asked, never handed out twice while live) or a block of
// `System`, which gets back only its own blocks (`offset` tells them apart).
unsafe impl<const N: usize> GlobalAlloc for Arena<N> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() <= BIG {
            let p = self.bump(layout);
            if !p.is_null() {
                return p;
            }
        }
        // SAFETY: the caller's layout contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match self.offset(ptr) {
            // The last block cut: the offset goes back to its start.
            Some(off) => {
                let _ = self.next.compare_exchange(
                    off + layout.size(),
                    off,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            // SAFETY: not the arena's, so it came from System.alloc.
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(off) = self.offset(ptr) else {
            // SAFETY: not the arena's, so it came from System.alloc.
            return unsafe { System.realloc(ptr, layout, new_size) };
        };
        if new_size <= layout.size() {
            return ptr;
        }
        // The last block cut grows in place if the arena has room.
        if new_size <= BIG
            && off + new_size <= N
            && self
                .next
                .compare_exchange(
                    off + layout.size(),
                    off + new_size,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return ptr;
        }
        // SAFETY: GlobalAlloc::realloc's contract: new_size, rounded up to
        // the alignment, does not overflow isize.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: new_layout has a non-zero size (larger than the old one).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live, distinct, and at least
            // layout.size() long.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size());
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned_distinct_and_reused_only_when_last() {
        static A: Arena<4096> = Arena::new();
        let l8 = Layout::from_size_align(24, 8).unwrap();
        let l64 = Layout::from_size_align(10, 64).unwrap();
        unsafe {
            let p = A.alloc(l8);
            let q = A.alloc(l64);
            assert_eq!(A.offset(p), Some(0));
            assert_eq!(A.offset(q), Some(64));
            // p is not the last block: freeing it gives nothing back.
            A.dealloc(p, l8);
            let r = A.alloc(l8);
            assert_eq!(A.offset(r), Some(80));
            // r is the last: the next block takes its place.
            A.dealloc(r, l8);
            assert_eq!(A.alloc(l8), r);
        }
    }

    #[test]
    fn alignments_above_the_arenas_own_hold() {
        static A: Arena<65536> = Arena::new();
        let small = Layout::from_size_align(8, 8).unwrap();
        let wide = Layout::from_size_align(16, 16384).unwrap();
        unsafe {
            let p = A.alloc(small);
            let q = A.alloc(wide);
            assert!(A.offset(q).is_some());
            assert_eq!(q as usize % 16384, 0);
            assert!(q as usize >= p as usize + 8);
        }
    }

    #[test]
    fn realloc_grows_the_last_block_in_place_and_moves_others() {
        static A: Arena<4096> = Arena::new();
        let l = Layout::from_size_align(16, 8).unwrap();
        unsafe {
            let p = A.alloc(l);
            p.write_bytes(7, 16);
            assert_eq!(A.realloc(p, l, 100), p);
            let l100 = Layout::from_size_align(100, 8).unwrap();
            let q = A.alloc(l);
            assert_eq!(A.offset(q), Some(104));
            // p is no longer the last block: it moves, with its bytes.
            let p2 = A.realloc(p, l100, 200);
            assert_eq!(A.offset(p2), Some(120));
            assert_eq!(std::slice::from_raw_parts(p2, 16), &[7u8; 16]);
            // Shrinking keeps the block where it is.
            assert_eq!(
                A.realloc(p2, Layout::from_size_align(200, 8).unwrap(), 50),
                p2
            );
        }
    }

    #[test]
    fn big_blocks_and_a_full_arena_go_to_the_c_library() {
        static A: Arena<4096> = Arena::new();
        let small = Layout::from_size_align(3000, 8).unwrap();
        let big = Layout::from_size_align(BIG + 1, 8).unwrap();
        unsafe {
            let p = A.alloc(big);
            assert!(!p.is_null() && A.offset(p).is_none());
            A.dealloc(p, big);
            let q = A.alloc(small);
            assert_eq!(A.offset(q), Some(0));
            // 3000 more bytes do not fit in the 1096 left.
            let r = A.alloc(small);
            assert!(!r.is_null() && A.offset(r).is_none());
            r.write_bytes(1, 3000);
            // Growing q past the arena's end moves it out, with its bytes.
            q.write_bytes(2, 3000);
            let q2 = A.realloc(q, small, 5000);
            assert!(A.offset(q2).is_none());
            assert_eq!(std::slice::from_raw_parts(q2, 3000), &[2u8; 3000][..]);
            A.dealloc(q2, Layout::from_size_align(5000, 8).unwrap());
            A.dealloc(r, small);
        }
    }
}

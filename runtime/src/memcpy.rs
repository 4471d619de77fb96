//! skiff's `memcpy` on x86_64 musl builds.
//!
//! musl's x86_64 `memcpy` copies with `rep movsq` and single `movsb`s for
//! the unaligned head and tail. On the hosts measured (an Intel Xeon PVM
//! guest) that costs 40-80 ns per call whatever the size (glibc: 3-10 ns),
//! and Rust calls `memcpy` for most moves and byte-slice appends that are
//! not inlined: a `skiff run` makes ~4,900 calls, two thirds of them of 16
//! bytes or less (a third of one byte), ~0.2 ms of its CPU time (perf).
//! runtime/build.rs links musl builds with `--wrap=memcpy`, so every call of
//! `memcpy` (Rust's and the C library's) comes here instead: up to 32 bytes
//! with two overlapping loads and stores, larger copies with `rep movsb`
//! (fast string moves, which the CPUs that lack them run as slowly as
//! musl's copy).

use core::ptr::{read_unaligned, write_unaligned};

/// `memcpy(dst, src, n)`, for the linker's `--wrap=memcpy`.
///
/// # Safety
/// memcpy's contract: `src` readable and `dst` writable for `n` bytes, the
/// two ranges not overlapping.
#[no_mangle]
pub unsafe extern "C" fn __wrap_memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract, passed on; each branch keeps to the
    // n bytes (`pair`'s bound: n is at least the width and at most twice it).
    unsafe {
        match n {
            33.. => core::arch::asm!(
                "rep movsb",
                inout("rcx") n => _,
                inout("rdi") dst => _,
                inout("rsi") src => _,
                options(nostack, preserves_flags)
            ),
            16.. => pair::<u128>(dst, src, n),
            8.. => pair::<u64>(dst, src, n),
            4.. => pair::<u32>(dst, src, n),
            2.. => pair::<u16>(dst, src, n),
            1 => *dst = *src,
            0 => {}
        }
    }
    dst
}

/// Copy `n` bytes, `size_of::<T>() <= n <= 2 * size_of::<T>()`, as two `T`s
/// that overlap unless `n` is twice the width: the first `T` and the last.
///
/// # Safety
/// As [`__wrap_memcpy`], with `n` in those bounds.
#[inline(always)]
unsafe fn pair<T: Copy>(dst: *mut u8, src: *const u8, n: usize) {
    let last = n - core::mem::size_of::<T>();
    // SAFETY: both reads lie in src[0..n], both writes in dst[0..n].
    unsafe {
        let (a, b) = (
            read_unaligned(src.cast::<T>()),
            read_unaligned(src.add(last).cast::<T>()),
        );
        write_unaligned(dst.cast::<T>(), a);
        write_unaligned(dst.add(last).cast::<T>(), b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_every_size_and_alignment_exactly() {
        let src: Vec<u8> = (0..400u32).map(|i| (i * 7 + 3) as u8).collect();
        for n in 0..=300 {
            for so in 0..8 {
                for d_off in 0..8 {
                    let mut dst = vec![0xAAu8; 320];
                    // SAFETY: src has so + n <= 308 bytes, dst d_off + n <= 308.
                    let r = unsafe {
                        __wrap_memcpy(dst.as_mut_ptr().add(d_off), src.as_ptr().add(so), n)
                    };
                    assert_eq!(r, dst.as_mut_ptr().wrapping_add(d_off));
                    assert_eq!(
                        &dst[d_off..d_off + n],
                        &src[so..so + n],
                        "n={n} so={so} d_off={d_off}"
                    );
                    assert!(
                        dst[..d_off]
                            .iter()
                            .chain(&dst[d_off + n..])
                            .all(|&b| b == 0xAA),
                        "n={n}: wrote outside"
                    );
                }
            }
        }
    }
}

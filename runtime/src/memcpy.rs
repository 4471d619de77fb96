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
    // SAFETY: each branch reads only src[0..n] and writes only dst[0..n]
    // (the two accesses of a pair overlap when n is under twice their
    // width), which the caller guarantees are valid and disjoint.
    unsafe {
        if n >= 33 {
            core::arch::asm!(
                "rep movsb",
                inout("rcx") n => _,
                inout("rdi") dst => _,
                inout("rsi") src => _,
                options(nostack, preserves_flags)
            );
        } else if n >= 16 {
            let (a, b) = (
                read_unaligned(src.cast::<u128>()),
                read_unaligned(src.add(n - 16).cast::<u128>()),
            );
            write_unaligned(dst.cast::<u128>(), a);
            write_unaligned(dst.add(n - 16).cast::<u128>(), b);
        } else if n >= 8 {
            let (a, b) = (
                read_unaligned(src.cast::<u64>()),
                read_unaligned(src.add(n - 8).cast::<u64>()),
            );
            write_unaligned(dst.cast::<u64>(), a);
            write_unaligned(dst.add(n - 8).cast::<u64>(), b);
        } else if n >= 4 {
            let (a, b) = (
                read_unaligned(src.cast::<u32>()),
                read_unaligned(src.add(n - 4).cast::<u32>()),
            );
            write_unaligned(dst.cast::<u32>(), a);
            write_unaligned(dst.add(n - 4).cast::<u32>(), b);
        } else if n >= 2 {
            let (a, b) = (
                read_unaligned(src.cast::<u16>()),
                read_unaligned(src.add(n - 2).cast::<u16>()),
            );
            write_unaligned(dst.cast::<u16>(), a);
            write_unaligned(dst.add(n - 2).cast::<u16>(), b);
        } else if n == 1 {
            *dst = *src;
        }
    }
    dst
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

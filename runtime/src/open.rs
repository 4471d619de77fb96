//! skiff's `open` on musl builds.
//!
//! musl's `open` follows every open with `O_CLOEXEC` by an
//! `fcntl(F_SETFD, FD_CLOEXEC)`, for kernels older than 2.6.23 that ignored
//! the flag. Rust opens every file with `O_CLOEXEC`, so that is one system
//! call more per file: 44 of the ~710 of a `skiff run`. runtime/build.rs
//! links musl builds with `--wrap=open`, so every call of `open` (Rust's and
//! the C library's) comes here, and opens the same through
//! `openat(AT_FDCWD, ...)`, which musl hands to the kernel as it is.

use std::ffi::{c_char, c_int, c_uint};

/// `open(path, flags, mode)`, for the linker's `--wrap=open`.
///
/// `open` is variadic in C; on x86_64 and aarch64 Linux a variadic call
/// passes its arguments in the same registers as this fixed one, and when
/// the caller gives no mode (no `O_CREAT`/`O_TMPFILE`) the kernel ignores
/// the one read here.
///
/// # Safety
/// open's contract: `path` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn __wrap_open(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    // SAFETY: the caller's contract, passed on; openat(2) with AT_FDCWD
    // resolves `path` as open(2) does.
    unsafe { libc::openat(libc::AT_FDCWD, path, flags, mode) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn opens_as_open_does() {
        let dir = std::env::temp_dir().join(format!("skiff-open-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC;
        // SAFETY: `c` is NUL-terminated.
        let fd = unsafe { __wrap_open(c.as_ptr(), flags, 0o640) };
        assert!(fd >= 0, "open: {}", std::io::Error::last_os_error());
        // SAFETY: fd is ours; F_GETFD reads its flags.
        assert_eq!(unsafe { libc::fcntl(fd, libc::F_GETFD) }, libc::FD_CLOEXEC);
        // SAFETY: fd is ours and closed once.
        unsafe { libc::close(fd) };
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !0o022, 0o640 & !0o022);
        // SAFETY: as above; O_EXCL makes a second create fail.
        assert_eq!(unsafe { __wrap_open(c.as_ptr(), flags, 0o640) }, -1);
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EEXIST)
        );
        // No mode given: the file opens read-only all the same.
        // SAFETY: as above.
        let fd = unsafe { __wrap_open(c.as_ptr(), libc::O_RDONLY, 0) };
        assert!(fd >= 0);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::fcntl(fd, libc::F_GETFD) }, 0);
        // SAFETY: as above.
        unsafe { libc::close(fd) };
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

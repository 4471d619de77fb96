//! Protection against CVE-2019-5736: a container process must never be able
//! to open the host's skiff binary for writing through /proc/PID/exe.
//!
//! Before skiff forks anything that will live in a container, it re-executes
//! itself from a detached, read-only bind mount of its own binary
//! (`open_tree` + `mount_setattr` + `execveat`). /proc/PID/exe of every
//! process forked afterwards then refers to a file on a read-only mount, and
//! a write open fails with EROFS. This costs one execve (well under a
//! millisecond) instead of copying the binary on every call, and it needs no
//! temporary files. If the binary already sits on a read-only mount, nothing
//! is done.

use std::ffi::CString;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::statvfs::{statvfs, FsFlags};

use crate::error::{Error, Result, SysContext};
use crate::sys;

/// Is /proc/self/exe already on a read-only mount?
pub fn is_sealed() -> bool {
    statvfs("/proc/self/exe").is_ok_and(|s| s.flags().contains(FsFlags::ST_RDONLY))
}

/// Re-execute the running binary from a read-only detached mount of itself,
/// with the same arguments and environment. Returns only on failure, or at
/// once when the binary is already sealed.
pub fn ensure_sealed() -> Result<()> {
    if is_sealed() {
        return Ok(());
    }
    let exe = Path::new("/proc/self/exe");
    let fd = sys::open_tree(libc::AT_FDCWD, exe, sys::OPEN_TREE_CLONE)
        .step(|| "open_tree /proc/self/exe".into())?;
    sys::mount_setattr(
        fd.as_fd(),
        0,
        sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NODEV | sys::MOUNT_ATTR_NOSUID,
        0,
    )
    .step(|| "seal skiff binary read-only".into())?;
    let args: Vec<CString> = std::env::args_os()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let errno = sys::fexecve_at(fd.as_fd(), &args, &env);
    Err(Error::Sys {
        step: "re-exec sealed skiff binary".into(),
        source: errno,
    })
}

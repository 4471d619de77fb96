//! seccomp(2): load a BPF program with explicit filter flags, and probe
//! which return actions and flags the running kernel supports.

use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;

use super::SysResult;

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const SECCOMP_GET_ACTION_AVAIL: libc::c_ulong = 2;

/// SECCOMP_FILTER_FLAG_LOG: log every action but ALLOW.
pub const FLAG_LOG: u32 = 1 << 1;
/// SECCOMP_FILTER_FLAG_SPEC_ALLOW: keep speculative store bypass enabled.
pub const FLAG_SPEC_ALLOW: u32 = 1 << 2;
/// SECCOMP_FILTER_FLAG_NEW_LISTENER: return a user-notification fd.
pub const FLAG_NEW_LISTENER: u32 = 1 << 3;
/// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: a notified task waits killably.
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// Install `prog` as a seccomp filter of the calling thread with `flags`.
/// With [`FLAG_NEW_LISTENER`] the kernel returns the notification fd
/// (close-on-exec).
pub fn load_filter(prog: &[libc::sock_filter], flags: u32) -> SysResult<Option<OwnedFd>> {
    let len = u16::try_from(prog.len()).map_err(|_| Errno::E2BIG)?;
    let fprog = libc::sock_fprog {
        len,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `prog`, which outlives the call; the kernel
    // only reads (copies) the program.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            &fprog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        return Err(Errno::last());
    }
    if flags & FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    let fd = i32::try_from(r).map_err(|_| Errno::EBADF)?;
    // SAFETY: with NEW_LISTENER the kernel returned a new fd that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Does the kernel know the filter return action `action` (SECCOMP_RET_*)?
pub fn action_available(action: u32) -> bool {
    // SAFETY: SECCOMP_GET_ACTION_AVAIL only reads the u32 behind the pointer.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_GET_ACTION_AVAIL,
            0 as libc::c_ulong,
            &action as *const u32,
        )
    };
    r == 0
}

/// Does the kernel accept filter `flags`? The flags are checked before the
/// program is read, so a NULL program gives EFAULT exactly when they are
/// known (the probe libseccomp uses too); nothing is installed.
pub fn flags_supported(flags: u32) -> bool {
    // SAFETY: a NULL program is never dereferenced: the kernel fails the copy with EFAULT.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    r < 0 && Errno::last() == Errno::EFAULT
}

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
//!
//! Rootless (no CAP_SYS_ADMIN, so `open_tree` fails with EPERM), see
//! [`ensure_sealed`].

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use nix::sys::statvfs::{statvfs, FsFlags};

use crate::error::{Error, IoContext, Result, SysContext};
use crate::sys;

const EXE: &str = "/proc/self/exe";

/// Is /proc/self/exe already on a read-only mount, or a write-sealed memfd?
pub fn is_sealed() -> bool {
    // access(W_OK) says EROFS for a file on a read-only mount, once the
    // permission bits allow the write (always for root): no statfs, which
    // on ext4 sums the free-space counters (~30 us a call here).
    match nix::unistd::access(EXE, nix::unistd::AccessFlags::W_OK) {
        Err(Errno::EROFS) => return true,
        Err(Errno::EACCES)
            if statvfs(EXE).is_ok_and(|s| s.flags().contains(FsFlags::ST_RDONLY)) =>
        {
            return true
        }
        _ => {}
    }
    std::fs::File::open(EXE).is_ok_and(|f| {
        fcntl(f.as_raw_fd(), FcntlArg::F_GET_SEALS)
            .is_ok_and(|s| SealFlag::from_bits_truncate(s).contains(SealFlag::F_SEAL_WRITE))
    })
}

/// Re-execute the running binary from a read-only detached mount of itself,
/// with the same arguments and environment. Returns only on failure, or at
/// once when the binary is already sealed.
///
/// Without CAP_SYS_ADMIN (rootless), there is no mount to make. The
/// processes of a rootless container hold only ids the caller could map:
/// its own uid and groups, its subordinate ids, and root of a user
/// namespace it owns, whose capabilities count on the host only for files
/// owned by ids mapped into that namespace. So when the binary belongs to
/// another user, outside the caller's subordinate ranges, and is writable
/// by neither group nor others (a root-owned 0755 /usr/bin/skiff), no
/// container process can open it for writing, and skiff runs as it is: no
/// copy, no extra execve. Otherwise (say ~/bin/skiff) skiff copies itself
/// into a memfd, seals it against writes and re-executes from that, as runc
/// does when it cannot mount.
pub fn ensure_sealed() -> Result<()> {
    if is_sealed() {
        return Ok(());
    }
    let fd = match sys::open_tree(libc::AT_FDCWD, Path::new(EXE), sys::OPEN_TREE_CLONE) {
        Ok(fd) => {
            sys::mount_setattr(
                fd.as_fd(),
                0,
                sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NODEV | sys::MOUNT_ATTR_NOSUID,
                0,
            )
            .step(|| "seal skiff binary read-only".into())?;
            fd
        }
        Err(Errno::EPERM) if !container_could_write()? => {
            tracing::debug!(
                "rootless: the skiff binary is not writable by the caller or its subordinate ids: not sealing it"
            );
            return Ok(());
        }
        Err(Errno::EPERM) => sealed_copy()?,
        Err(e) => return Err(e).step(|| "open_tree /proc/self/exe".into()),
    };
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

/// Could a process of a rootless container get write access to the
/// running binary (see [`ensure_sealed`])? Group-writable counts as yes
/// whatever the group: the caller keeps its supplementary groups when
/// setgroups is denied, and a POSIX ACL entry shows up in the group bits.
fn container_could_write() -> Result<bool> {
    let meta = std::fs::metadata(EXE).path(EXE)?;
    let euid = nix::unistd::geteuid().as_raw();
    let (subuids, _) = crate::idmap::own_subids();
    Ok(meta.uid() == euid
        || subuids.iter().any(|r| r.contains(meta.uid()))
        || meta.mode() & 0o022 != 0
        || nix::unistd::access(EXE, nix::unistd::AccessFlags::W_OK).is_ok())
}

/// A copy of the running binary in a memfd sealed against any change.
fn sealed_copy() -> Result<OwnedFd> {
    let step = || "copy skiff binary into a sealed memfd".to_string();
    let mut src = std::fs::File::open(EXE).path(EXE)?;
    let memfd = memfd_create(
        c"skiff",
        MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
    )
    .step(step)?;
    let mut dst = std::fs::File::from(memfd);
    std::io::copy(&mut src, &mut dst).path("memfd:skiff")?;
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(dst.as_raw_fd(), FcntlArg::F_ADD_SEALS(seals)).step(step)?;
    // execve refuses a file that is open for writing (ETXTBSY): keep only a
    // read-only reopening.
    let ro = format!("/proc/self/fd/{}", dst.as_raw_fd());
    let ro = std::fs::File::open(&ro).path(ro)?;
    drop(dst);
    Ok(ro.into())
}

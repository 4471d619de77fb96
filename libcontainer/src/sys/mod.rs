//! The few raw syscall wrappers skiff needs that nix does not offer.
//!
//! Every `unsafe` block of libcontainer lives in this module, each with a
//! `// SAFETY:` comment. Everything else calls these safe functions.

pub mod bpf;
pub mod sched;
pub mod seccomp;

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::unistd::Pid;

/// Result of a syscall wrapper: the raw errno on failure.
pub type SysResult<T> = Result<T, Errno>;

fn cstr(path: &Path) -> SysResult<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP`: start the child in the cgroup given by an fd.
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Which side of a fork-like [`clone3`] we are on.
pub enum Forked {
    /// In the parent: the child's pid.
    Parent(Pid),
    /// In the child.
    Child,
}

/// A fork-like `clone3` (no new stack, SIGCHLD on exit) with extra `flags`,
/// such as new namespaces, and optionally `CLONE_INTO_CGROUP` with `cgroup_fd`.
///
/// The caller must be single-threaded: the child gets only the calling thread.
pub fn clone3(flags: u64, cgroup_fd: Option<RawFd>) -> SysResult<Forked> {
    // With CLONE_PARENT the kernel wants no exit_signal of its own: the
    // child signals its new parent as the caller does (SIGCHLD).
    let exit_signal = match flags & libc::CLONE_PARENT as u64 {
        0 => libc::SIGCHLD as u64,
        _ => 0,
    };
    let mut args = CloneArgs {
        flags,
        exit_signal,
        ..Default::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: clone3 with a zero stack behaves like fork: the child continues on a
    // copy of this thread's stack. skiff calls it single-threaded, so no lock held by
    // another thread can be left locked in the child. `args` outlives the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// openat(2) of `path` below `dir`: plain openat, for where a seccomp
/// filter may already be in that predates openat2.
pub fn openat(dir: BorrowedFd, path: &Path, flags: i32) -> SysResult<OwnedFd> {
    let fd = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        path,
        nix::fcntl::OFlag::from_bits_retain(flags),
        nix::sys::stat::Mode::empty(),
    )?;
    // SAFETY: openat just returned this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// open(2) of `path` with `O_PATH | O_CLOEXEC`. std's `OpenOptions` cannot
/// do it everywhere: on musl its `O_ACCMODE` includes `O_PATH` (as
/// `O_SEARCH`), so `custom_flags` drops it and the open reads instead.
pub fn open_path(path: &Path) -> SysResult<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    // SAFETY: open just returned this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Does this kernel have clone3(2)? Probed with a null argument of size 0,
/// which the kernel refuses (EINVAL) before it reads or creates anything.
pub fn has_clone3() -> bool {
    // SAFETY: a null pointer with size 0 is rejected by the kernel's size
    // check; no memory is read and no process is made.
    let ret = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) };
    !(ret == -1 && Errno::last() == Errno::ENOSYS)
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `RESOLVE_NO_SYMLINKS`: refuse every symlink on the way.
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
/// `RESOLVE_NO_MAGICLINKS`: refuse /proc magic links.
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
/// `RESOLVE_IN_ROOT`: treat the starting directory as `/` for every lookup.
pub const RESOLVE_IN_ROOT: u64 = 0x10;

/// `openat2(2)`: open `path` relative to `dirfd` with `resolve` restrictions.
pub fn openat2(
    dirfd: BorrowedFd,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> SysResult<OwnedFd> {
    let c = cstr(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve,
    };
    loop {
        // SAFETY: `c` is a valid NUL-terminated string and `how` a valid open_how that
        // both outlive the call; the kernel returns a new fd that we own.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd.as_raw_fd(),
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if ret >= 0 {
            // SAFETY: the kernel just returned this fd to us, nobody else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) });
        }
        match Errno::last() {
            Errno::EAGAIN | Errno::EINTR => continue,
            e => return Err(e),
        }
    }
}

/// `renameat2(2)` with `RENAME_NOREPLACE`: rename `from` to `to`, failing
/// with EEXIST if `to` exists.
pub fn rename_noreplace(from: &Path, to: &Path) -> SysResult<()> {
    renameat2(from, to, libc::RENAME_NOREPLACE)
}

/// `renameat2(2)` with `RENAME_EXCHANGE`: swap `from` and `to` atomically
/// (both must exist; EINVAL where the filesystem cannot).
pub fn rename_exchange(from: &Path, to: &Path) -> SysResult<()> {
    renameat2(from, to, libc::RENAME_EXCHANGE)
}

/// `renameat2(2)` relative to the working directory. A raw syscall: nix
/// offers it on glibc only.
fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> SysResult<()> {
    let (from, to) = (cstr(from)?, cstr(to)?);
    // SAFETY: both are valid NUL-terminated strings that outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            flags,
        )
    };
    Errno::result(ret).map(drop)
}

/// `OPEN_TREE_CLONE`: make a detached copy of the mount.
pub const OPEN_TREE_CLONE: u32 = 1;

/// `open_tree(2)`: a detached bind mount of `path` (recursive with `AT_RECURSIVE`).
pub fn open_tree(dirfd: RawFd, path: &Path, flags: u32) -> SysResult<OwnedFd> {
    let c = cstr(path)?;
    // SAFETY: `c` is a valid C string for the duration of the call; the result is a new fd.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            dirfd,
            c.as_ptr(),
            flags | libc::O_CLOEXEC as u32,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `MOUNT_ATTR_RDONLY` for [`mount_setattr`].
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
/// `MOUNT_ATTR_NOSUID` for [`mount_setattr`].
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
/// `MOUNT_ATTR_NODEV` for [`mount_setattr`].
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
/// `MOUNT_ATTR_NOEXEC` for [`mount_setattr`].
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
/// `MOUNT_ATTR__ATIME`: the mask of the atime attributes.
pub const MOUNT_ATTR_ATIME: u64 = 0x70;
/// `MOUNT_ATTR_NOATIME` for [`mount_setattr`].
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
/// `MOUNT_ATTR_STRICTATIME` for [`mount_setattr`].
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
/// `MOUNT_ATTR_NODIRATIME` for [`mount_setattr`].
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
/// `MOUNT_ATTR_NOSYMFOLLOW` for [`mount_setattr`].
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x20_0000;

/// `MOUNT_ATTR_IDMAP`: idmap the mount with a user namespace's mappings.
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `mount_setattr(2)` on the mount at `fd` (with `AT_RECURSIVE` in `flags`, on its whole tree).
pub fn mount_setattr(fd: BorrowedFd, flags: u32, set: u64, clr: u64) -> SysResult<()> {
    mount_setattr_raw(
        fd,
        flags,
        MountAttr {
            attr_set: set,
            attr_clr: clr,
            propagation: 0,
            userns_fd: 0,
        },
    )
}

/// Make the detached mount at `fd` an idmapped mount with the mappings of
/// the user namespace `userns` (with `AT_RECURSIVE` in `flags`, its whole tree).
pub fn mount_set_idmap(fd: BorrowedFd, flags: u32, userns: BorrowedFd) -> SysResult<()> {
    mount_setattr_raw(
        fd,
        flags,
        MountAttr {
            attr_set: MOUNT_ATTR_IDMAP,
            attr_clr: 0,
            propagation: 0,
            userns_fd: userns.as_raw_fd() as u64,
        },
    )
}

fn mount_setattr_raw(fd: BorrowedFd, flags: u32, attr: MountAttr) -> SysResult<()> {
    let empty = c"";
    // SAFETY: `empty` and `attr` are valid for the call; AT_EMPTY_PATH makes the kernel
    // act on `fd` itself.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            empty.as_ptr(),
            flags | libc::AT_EMPTY_PATH as u32,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`: execute the file open at `fd`.
/// Returns only on failure.
pub fn fexecve_at(fd: BorrowedFd, argv: &[CString], envp: &[CString]) -> Errno {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    let empty = c"";
    // SAFETY: argv and envp are NULL-terminated arrays of pointers into CStrings that
    // outlive the call; on success the call does not return.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            empty.as_ptr(),
            a.as_ptr(),
            e.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Errno::last()
}

/// `pidfd_open(2)`: an fd that refers to process `pid`.
pub fn pidfd_open(pid: Pid) -> SysResult<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; the result is a new fd.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// Mark every fd from `first` upwards close-on-exec (`close_range` with
/// `CLOSE_RANGE_CLOEXEC`), so nothing leaks into the container process.
pub fn cloexec_from(first: u32) -> SysResult<()> {
    // SAFETY: plain syscall with integer arguments; it only changes fd flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Reset to its default action every signal of `ignored` (bit n-1 for
/// signal n) among 1 to 64: handlers are reset by execve, but an ignore
/// set by the runtime or its caller would leak into the container process.
/// Through rt_sigaction(2) itself: the C libraries refuse the signals they
/// keep for themselves (32 and 33 in glibc, 32 to 34 in musl), and an
/// ignored one of those would leak across the exec.
pub fn reset_signal_dispositions(ignored: u64) {
    // The kernel's struct sigaction, all zero: handler SIG_DFL (0), no
    // flags, no restorer, empty mask, whatever the field order.
    let dfl = [0u64; 4];
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || ignored & (1 << (sig - 1)) == 0 {
            continue;
        }
        // SAFETY: `dfl` is a valid, zeroed kernel sigaction that outlives the
        // call, no old action is asked for, and SIG_DFL installs no handler.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                dfl.as_ptr(),
                std::ptr::null::<u64>(),
                8usize,
            )
        };
    }
}

/// `getcwd(2)` as raw bytes, including the kernel's "(unreachable)" prefix that
/// glibc would turn into an error: used to check the cwd lies inside the container.
pub fn raw_getcwd() -> SysResult<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: buf is writable for buf.len() bytes; the raw syscall writes at most that.
    let ret = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    if ret < 0 {
        return Err(Errno::last());
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    buf.truncate(len);
    Ok(buf)
}

/// `umask(2)`.
pub fn set_umask(mask: u32) {
    // SAFETY: umask cannot fail and touches only this process.
    unsafe { libc::umask(mask as libc::mode_t) };
}

/// `ioctl(fd, TIOCSCTTY, 0)`: make the terminal at `fd` our controlling terminal.
pub fn set_controlling_tty(fd: BorrowedFd) -> SysResult<()> {
    // SAFETY: TIOCSCTTY takes an integer argument; fd is valid for the call.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// `ioctl(fd, TIOCSWINSZ)`: set a terminal's size.
pub fn set_winsize(fd: BorrowedFd, rows: u16, cols: u16) -> SysResult<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `ws` is a valid winsize that outlives the call.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// `ioctl(fd, TIOCGPTPEER)`: open the peer (slave) of the pty master at `fd`
/// without a path lookup, so a swapped /dev/pts entry cannot be substituted.
pub fn open_pty_peer(master: BorrowedFd) -> SysResult<OwnedFd> {
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd that we own.
    let ret = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(ret) })
}

/// `ioctl(fd, TIOCSPTLCK, 0)`: unlock a pty master so its peer can be opened.
pub fn unlock_pty(master: BorrowedFd) -> SysResult<()> {
    let zero: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from the pointer, which outlives the call.
    let ret = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &zero) };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// `ioctl(fd, TIOCGPTN)`: the number of the pty whose master is `fd`.
pub fn pty_number(master: BorrowedFd) -> SysResult<u32> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int through the pointer, valid for the call.
    let ret = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(n)
}

/// `MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH`: both ends given by fd.
const MOVE_MOUNT_FDS: u32 = 0x4 | 0x40;

/// `move_mount(2)`: attach the detached mount `from` on top of the file or
/// directory open at `to`.
pub fn move_mount(from: BorrowedFd, to: BorrowedFd) -> SysResult<()> {
    let empty = c"";
    // SAFETY: both fds are valid for the call and the empty paths are valid C strings;
    // the flags make the kernel use the fds themselves.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            empty.as_ptr(),
            to.as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_FDS,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// `kill(2)` with any signal number, including real-time ones nix has no name for.
pub fn kill_raw(pid: Pid, sig: i32) -> i32 {
    // SAFETY: kill takes plain integers and has no memory effects.
    unsafe { libc::kill(pid.as_raw(), sig) }
}

/// `keyctl(KEYCTL_JOIN_SESSION_KEYRING, name)`: give the process a new
/// session keyring of its own, so containers never share the host's.
pub fn join_session_keyring(name: &str) -> SysResult<()> {
    let c = CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: `c` is a valid C string for the duration of the call.
    let ret = unsafe { libc::syscall(libc::SYS_keyctl, 1 as libc::c_long, c.as_ptr()) };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Make the child that `cmd` spawns get SIGKILL when the spawning thread
/// dies, so a killed skiff never leaves a hook behind, and start it with no
/// signal blocked: skiff and the shim block SIGCHLD (and `run` blocks the
/// signals it forwards), and a shell hook waiting for its own children in
/// sigsuspend would never wake with SIGCHLD still blocked.
pub fn hook_child_defaults(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec; it only
    // calls prctl(2), sigemptyset(3), sigprocmask(2) and close_range(2),
    // which are async-signal-safe, on a stack-local set, and allocates
    // nothing.
    unsafe {
        cmd.pre_exec(|| {
            // A hook gets stdio and nothing else (as runc's): no fd of the
            // runtime or of the container's init (fifo, channel, preserved
            // fds) leaks into it.
            if libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            ) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigemptyset(set.as_mut_ptr());
            if libc::sigprocmask(libc::SIG_SETMASK, set.as_ptr(), std::ptr::null_mut()) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Receive one fd sent with SCM_RIGHTS on the connected unix socket `sock`
/// (close-on-exec); `Ok(None)` when the message carried none.
pub fn recv_fd(sock: BorrowedFd) -> SysResult<Option<OwnedFd>> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 4096];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            let mut owned: Vec<OwnedFd> = fds
                .iter()
                // SAFETY: SCM_RIGHTS just installed these fds in our table;
                // nothing else owns them.
                .map(|fd| unsafe { OwnedFd::from_raw_fd(*fd) })
                .collect();
            if !owned.is_empty() {
                return Ok(Some(owned.swap_remove(0)));
            }
        }
    }
    Ok(None)
}

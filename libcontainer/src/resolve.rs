//! Resolving paths inside the container's rootfs without ever leaving it,
//! and opening files of a verified procfs. A low layer: rootfs and the
//! security modules use it; it uses only `sys`.
//!
//! Every lookup goes through openat2 with `RESOLVE_IN_ROOT`, so a symlink in
//! the rootfs (even one pointing at `/etc` or `../../..`) resolves as if the
//! rootfs were `/`. Mounts are then made on the resolved fd through
//! `/proc/self/fd/N`, never on a path that could be swapped in between.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::Mode;

use crate::error::{Result, SysContext};
use crate::sys::{self, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS};

const IN_ROOT: u64 = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

/// The path that names the file open at `fd`, for mount(2) targets.
pub fn fd_path(fd: BorrowedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// `path` made relative (a leading `/` dropped), for lookups from the root fd.
fn rel(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::RootDir))
        .collect()
}

/// Open `path` inside `root` with `flags` (O_PATH for mount targets).
pub fn open_in_root(
    root: BorrowedFd,
    path: &Path,
    flags: i32,
) -> std::result::Result<OwnedFd, Errno> {
    let p = rel(path);
    let p = if p.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        p
    };
    sys::openat2(root, &p, flags, 0, IN_ROOT)
}

/// Open `rel` (e.g. `sys/net/ipv4/ip_forward`, `self/attr/apparmor/exec`)
/// under the `/proc` of `root`, refusing to be redirected (CVE-2025-52881):
/// `/proc` must be the root of a procfs mount, and the lookup below it may
/// not cross a mount (something mounted over a proc file) or follow a magic
/// link. Plain procfs symlinks such as `self` are allowed.
pub fn open_proc(root: BorrowedFd, rel: &str, flags: i32) -> std::result::Result<OwnedFd, Errno> {
    use std::os::unix::fs::MetadataExt;
    const RESOLVE_NO_XDEV: u64 = 0x01;
    const RESOLVE_BENEATH: u64 = 0x08;
    const PROC_ROOT_INO: u64 = 1;
    let proc = open_in_root(root, Path::new("/proc"), libc::O_PATH | libc::O_DIRECTORY)?;
    let fs = nix::sys::statfs::fstatfs(&proc)?;
    let ino = std::fs::File::from(proc.try_clone().map_err(|_| Errno::EBADF)?)
        .metadata()
        .map_err(|_| Errno::EIO)?
        .ino();
    if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC || ino != PROC_ROOT_INO {
        return Err(Errno::EXDEV);
    }
    sys::openat2(
        proc.as_fd(),
        Path::new(rel),
        flags | libc::O_NOFOLLOW,
        0,
        RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH,
    )
}

/// Most symlinks followed while resolving one path (the kernel's limit).
const MAX_LINKS: usize = 40;

/// `path` with each symlink on it that points at something missing
/// replaced by its target, resolved inside `root` (`..` and absolute
/// targets stop at the rootfs), so what is missing can be created where
/// the link points, inside the rootfs, as runc (securejoin) does. The parts
/// that exist are looked up with RESOLVE_IN_ROOT like everything else.
fn follow_dangling(root: BorrowedFd, path: &Path) -> Result<PathBuf> {
    use std::collections::VecDeque;
    use std::ffi::OsString;
    let mut todo: VecDeque<OsString> = rel(path).iter().map(OsStr::to_os_string).collect();
    let mut cur = PathBuf::new();
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            cur.pop();
            continue;
        }
        if c == "." {
            continue;
        }
        let next = cur.join(&c);
        match open_in_root(root, &next, libc::O_PATH) {
            Ok(_) => cur = next,
            Err(Errno::ENOENT) => {
                let dir = open_in_root(root, &cur, libc::O_PATH | libc::O_DIRECTORY)
                    .step(|| format!("open {} in rootfs", cur.display()))?;
                let Ok(target) = nix::fcntl::readlinkat(Some(dir.as_raw_fd()), c.as_os_str())
                else {
                    // Missing, not a link: this and the rest get created.
                    cur = next;
                    cur.extend(todo);
                    return Ok(cur);
                };
                links += 1;
                if links > MAX_LINKS {
                    return Err(Errno::ELOOP).step(|| format!("resolve {}", path.display()));
                }
                let target = PathBuf::from(target);
                if target.is_absolute() {
                    cur = PathBuf::new();
                }
                for part in rel(&target).iter().rev() {
                    todo.push_front(part.to_os_string());
                }
            }
            Err(e) => return Err(e).step(|| format!("open {} in rootfs", next.display())),
        }
    }
    Ok(cur)
}

/// Create every missing directory of `path` inside `root`, and return an
/// O_PATH fd of the last one. A dangling symlink on the way is followed
/// and its target created inside the rootfs (runc's behaviour).
pub fn mkdir_all(root: BorrowedFd, path: &Path) -> Result<OwnedFd> {
    let flags = libc::O_PATH | libc::O_DIRECTORY;
    match open_in_root(root, path, flags) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e).step(|| format!("open {} in rootfs", path.display())),
    }
    if let Some(fd) = mkdir_last(root, path)? {
        return Ok(fd);
    }
    let path = &follow_dangling(root, path)?;
    let mut cur = PathBuf::new();
    let mut fd = open_in_root(root, Path::new("."), flags).step(|| "open rootfs".into())?;
    for comp in rel(path).components() {
        cur.push(comp);
        fd = match open_in_root(root, &cur, flags) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                let name = match comp {
                    Component::Normal(n) => n,
                    _ => OsStr::new("."),
                };
                match nix::sys::stat::mkdirat(
                    Some(fd.as_raw_fd()),
                    name,
                    Mode::from_bits_truncate(0o755),
                ) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e).step(|| format!("mkdir {} in rootfs", cur.display())),
                }
                open_in_root(root, &cur, flags)
                    .step(|| format!("open {} in rootfs", cur.display()))?
            }
            Err(e) => return Err(e).step(|| format!("open {} in rootfs", cur.display())),
        };
    }
    Ok(fd)
}

/// The common case of [`mkdir_all`]: only the last component of `path` is
/// missing, and it is no symlink. Then it is made in its parent (resolved
/// in `root`) and opened: 5 system calls, where the walk over every
/// component takes 16 (a mount point such as /dev/pts). `None` when that
/// is not the case, for the full walk.
fn mkdir_last(root: BorrowedFd, path: &Path) -> Result<Option<OwnedFd>> {
    let rel = rel(path);
    let (Some(parent), Some(Component::Normal(name))) =
        (rel.parent(), rel.components().next_back())
    else {
        return Ok(None);
    };
    let Ok(dir) = open_in_root(root, parent, libc::O_PATH | libc::O_DIRECTORY) else {
        return Ok(None);
    };
    // A dangling symlink reads; a missing name is ENOENT.
    if nix::fcntl::readlinkat(Some(dir.as_raw_fd()), name) != Err(Errno::ENOENT) {
        return Ok(None);
    }
    match nix::sys::stat::mkdirat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e).step(|| format!("mkdir {} in rootfs", path.display())),
    }
    open_in_root(root, path, libc::O_PATH | libc::O_DIRECTORY)
        .step(|| format!("open {} in rootfs", path.display()))
        .map(Some)
}

/// Make sure a file exists at `path` inside `root` (creating its parents),
/// and return an O_PATH fd of it: the target of a file bind mount.
pub fn create_file(root: BorrowedFd, path: &Path) -> Result<OwnedFd> {
    let flags = libc::O_PATH;
    match open_in_root(root, path, flags) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e).step(|| format!("open {} in rootfs", path.display())),
    }
    let path = &follow_dangling(root, path)?;
    let parent = path.parent().unwrap_or(Path::new("/"));
    let dir = mkdir_all(root, parent)?;
    let name = path.file_name().unwrap_or(OsStr::new("."));
    let step = || format!("create {} in rootfs", path.display());
    match sys::openat2(
        dir.as_fd(),
        Path::new(name),
        libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW,
        0o644,
        IN_ROOT,
    ) {
        Ok(_) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e).step(step),
    }
    open_in_root(root, path, flags).step(step)
}

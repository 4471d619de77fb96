//! maskedPaths, readonlyPaths and sysctl, applied after pivot_root.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, major, minor, SFlag};

use crate::error::{Error, Result, SysContext};
use crate::resolve::{fd_path, open_in_root, open_proc};
use crate::sys;

/// `AT_EMPTY_PATH | AT_RECURSIVE` for open_tree on an fd.
const TREE_OF_FD: u32 = 0x1000;
const AT_RECURSIVE: u32 = 0x8000;

/// Open /dev/null under `root` without following symlinks and check it is
/// the real null device (char 1:3), so a masked path is never bound from
/// anything else, however the container's /dev was tampered with.
pub fn open_dev_null(root: BorrowedFd) -> Result<OwnedFd> {
    let fd = open_in_root(
        root,
        Path::new("/dev/null"),
        libc::O_PATH | libc::O_NOFOLLOW,
    )
    .step(|| "open /dev/null".into())?;
    let st = fstat(fd.as_raw_fd()).step(|| "stat /dev/null".into())?;
    let is_chr = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_chr || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3 {
        return Err(Error::Child(
            "/dev/null is not the null device (char 1:3)".into(),
        ));
    }
    Ok(fd)
}

/// Give each of stdin, stdout and stderr that is a null device (the
/// caller's /dev/null, on a mount the container cannot see) the
/// container's own /dev/null instead, as runc does: CRIU can only dump
/// files on the container's mounts. Nothing changes without a usable
/// /dev/null in the container.
pub fn reopen_null_stdio(root: BorrowedFd) -> Result<()> {
    let is_null = |st: &nix::sys::stat::FileStat| {
        SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR
            && major(st.st_rdev) == 1
            && minor(st.st_rdev) == 3
    };
    let nulls: Vec<i32> = (0..3)
        .filter(|fd| fstat(*fd).is_ok_and(|st| is_null(&st)))
        .collect();
    if nulls.is_empty() {
        return Ok(());
    }
    let flags = libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let Ok(null) = open_in_root(root, Path::new("/dev/null"), flags) else {
        return Ok(());
    };
    if !fstat(null.as_raw_fd()).is_ok_and(|st| is_null(&st)) {
        return Ok(());
    }
    for fd in nulls {
        nix::unistd::dup2(null.as_raw_fd(), fd).step(|| format!("reopen /dev/null as fd {fd}"))?;
    }
    Ok(())
}

/// Hide each of `paths`: files get the real /dev/null bound over them,
/// directories a read-only empty tmpfs. Missing paths are skipped.
pub fn mask(root: BorrowedFd, paths: &[String], null: BorrowedFd) -> Result<()> {
    for p in paths {
        let target = match open_in_root(root, Path::new(p), libc::O_PATH) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(e).step(|| format!("linux.maskedPaths: open {p}")),
        };
        let st = fstat(target.as_raw_fd()).step(|| format!("linux.maskedPaths: stat {p}"))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
            mount(
                Some("tmpfs"),
                &fd_path(target.as_fd()),
                Some("tmpfs"),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("size=0,mode=0755"),
            )
            .step(|| format!("linux.maskedPaths: mask {p}"))?;
        } else {
            let tree = sys::open_tree(
                null.as_raw_fd(),
                Path::new(""),
                sys::OPEN_TREE_CLONE | TREE_OF_FD,
            )
            .step(|| format!("linux.maskedPaths: clone /dev/null for {p}"))?;
            sys::move_mount(tree.as_fd(), target.as_fd())
                .step(|| format!("linux.maskedPaths: mask {p}"))?;
        }
    }
    Ok(())
}

/// Make each of `paths` a read-only (and nosuid, nodev, noexec) bind of itself.
pub fn readonly(root: BorrowedFd, paths: &[String]) -> Result<()> {
    for p in paths {
        let target = match open_in_root(root, Path::new(p), libc::O_PATH) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(e).step(|| format!("linux.readonlyPaths: open {p}")),
        };
        let tree = sys::open_tree(
            target.as_raw_fd(),
            Path::new(""),
            sys::OPEN_TREE_CLONE | TREE_OF_FD | AT_RECURSIVE,
        )
        .step(|| format!("linux.readonlyPaths: clone {p}"))?;
        let attrs = sys::MOUNT_ATTR_RDONLY
            | sys::MOUNT_ATTR_NOSUID
            | sys::MOUNT_ATTR_NODEV
            | sys::MOUNT_ATTR_NOEXEC;
        sys::mount_setattr(tree.as_fd(), AT_RECURSIVE, attrs, 0)
            .step(|| format!("linux.readonlyPaths: {p} read-only"))?;
        sys::move_mount(tree.as_fd(), target.as_fd())
            .step(|| format!("linux.readonlyPaths: {p}"))?;
    }
    Ok(())
}

/// Write each sysctl through the container's own procfs, refusing to write
/// anywhere a symlink or a mount over a /proc file could redirect it.
pub fn sysctl(root: BorrowedFd, values: &[(String, String)]) -> Result<()> {
    for (key, value) in values {
        let rel = if key.contains('/') {
            key.clone()
        } else {
            key.replace('.', "/")
        };
        let path = format!("sys/{rel}");
        let field = || format!("linux.sysctl.{key}");
        let fd = match open_proc(root, &path, libc::O_WRONLY) {
            Ok(fd) => fd,
            Err(Errno::EXDEV | Errno::ELOOP) => {
                return Err(Error::Invalid {
                    field: field(),
                    msg: format!("/proc/{path} is redirected (a mount or symlink over procfs)"),
                })
            }
            Err(e) => return Err(e).step(|| format!("{}: open /proc/{path}", field())),
        };
        let mut f = std::fs::File::from(fd);
        f.write_all(value.as_bytes()).map_err(|e| Error::Invalid {
            field: field(),
            msg: format!("write {value:?}: {e}"),
        })?;
    }
    Ok(())
}

/// The mount point of a /proc/self/mountinfo line when it is a full
/// (root "/") procfs or sysfs mount, with the octal escapes undone.
pub fn full_proc_or_sys_mount(line: &str) -> Option<std::path::PathBuf> {
    let (pre, post) = line.split_once(" - ")?;
    let fstype = post.split(' ').next()?;
    let mut f = pre.split(' ');
    let root = f.nth(3)?;
    let point = f.next()?;
    if root != "/" || !matches!(fstype, "proc" | "sysfs") {
        return None;
    }
    Some(std::path::PathBuf::from(crate::procfs::unescape_mountinfo(
        point,
    )))
}

#[cfg(test)]
mod mountinfo_tests {
    use super::*;

    #[test]
    fn finds_full_proc_and_sys_mounts() {
        let l = "22 28 0:21 / /proc rw,nosuid - proc proc rw";
        assert_eq!(full_proc_or_sys_mount(l), Some("/proc".into()));
        let l = "23 28 0:22 / /my\\040sys rw shared:7 - sysfs sysfs rw";
        assert_eq!(full_proc_or_sys_mount(l), Some("/my sys".into()));
        // A bind of a subtree is not a full mount; other types are ignored.
        assert_eq!(
            full_proc_or_sys_mount("24 28 0:21 /sys /x rw - proc proc rw"),
            None
        );
        assert_eq!(
            full_proc_or_sys_mount("25 28 0:23 / /tmp rw - tmpfs t rw"),
            None
        );
    }
}

//! The container's /dev: device nodes, the standard symlinks, and the console.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use crate::error::{Error, Result, SysContext};
use crate::resolve::{create_file, fd_path, mkdir_all, open_in_root};
use crate::sys;

/// A device node to create in the container.
#[derive(Debug, Clone)]
pub struct Device {
    path: String,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// The devices every container gets, as runc gives them.
pub fn default_devices() -> Vec<Device> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .iter()
    .map(|(n, major, minor)| Device {
        path: format!("/dev/{n}"),
        kind: SFlag::S_IFCHR,
        major: *major,
        minor: *minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// Convert `linux.devices` entries.
pub fn config_devices(devs: &[LinuxDevice]) -> Vec<Device> {
    devs.iter()
        .filter_map(|d| {
            let kind = match d.typ() {
                LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
                LinuxDeviceType::B => SFlag::S_IFBLK,
                LinuxDeviceType::P => SFlag::S_IFIFO,
                LinuxDeviceType::A => return None,
            };
            Some(Device {
                path: d.path().to_string_lossy().into_owned(),
                kind,
                major: d.major() as u64,
                minor: d.minor() as u64,
                mode: d.file_mode().unwrap_or(0o666) & 0o7777,
                uid: d.uid().unwrap_or(0),
                gid: d.gid().unwrap_or(0),
            })
        })
        .collect()
}

/// Create `devs` under the rootfs open at `root`: mknod, or a bind mount of
/// the host's node when in a user namespace (where mknod is not allowed).
pub fn create_devices(root: BorrowedFd, devs: &[Device], bind: bool) -> Result<()> {
    // Most nodes share a parent (/dev): resolved once for a run of them.
    let mut last: Option<(&Path, OwnedFd)> = None;
    for d in devs {
        let path = Path::new(&d.path);
        if bind {
            let target = create_file(root, path)?;
            let tree = sys::open_tree(libc::AT_FDCWD, path, sys::OPEN_TREE_CLONE)
                .step(|| format!("bind device {}", d.path))?;
            sys::move_mount(tree.as_fd(), target.as_fd())
                .step(|| format!("bind device {}", d.path))?;
            continue;
        }
        let dir = path.parent().unwrap_or(Path::new("/dev"));
        let parent = match last.take() {
            Some((p, fd)) if p == dir => fd,
            _ => mkdir_all(root, dir)?,
        };
        let parent = &last.insert((dir, parent)).1;
        let name = path.file_name().unwrap_or_default();
        let mode = Mode::from_bits_truncate(d.mode);
        let dev = makedev(d.major, d.minor);
        let step = || format!("mknod {}", d.path);
        match mknodat(Some(parent.as_raw_fd()), name, d.kind, mode, dev) {
            Err(Errno::EEXIST) => {
                // Never trust what the image put there: replace it.
                nix::unistd::unlinkat(
                    Some(parent.as_raw_fd()),
                    name,
                    nix::unistd::UnlinkatFlags::NoRemoveDir,
                )
                .step(step)?;
                mknodat(Some(parent.as_raw_fd()), name, d.kind, mode, dev).step(step)?;
            }
            r => r.step(step)?,
        }
        fchownat(
            Some(parent.as_raw_fd()),
            name,
            Some(Uid::from_raw(d.uid)),
            Some(Gid::from_raw(d.gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .step(|| format!("chown {}", d.path))?;
    }
    Ok(())
}

/// The standard /dev symlinks (fd, stdin, stdout, stderr, core, ptmx).
pub fn create_symlinks(root: BorrowedFd) -> Result<()> {
    let dev = mkdir_all(root, Path::new("/dev"))?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        if name == "ptmx" {
            // The image or a /dev bind may carry a ptmx node: the symlink wins, as in runc.
            let _ = nix::unistd::unlinkat(
                Some(dev.as_raw_fd()),
                name,
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
        match nix::unistd::symlinkat(target, Some(dev.as_raw_fd()), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).step(|| format!("symlink /dev/{name}")),
        }
    }
    Ok(())
}

/// Open a new pty in the devpts at `/dev/pts` under `root`, unlock it and
/// apply `size` (rows, cols). Returns (master, peer); the peer is opened
/// from the master (TIOCGPTPEER), never by a path that could be swapped.
pub fn open_pty(root: BorrowedFd, size: Option<(u16, u16)>) -> Result<(OwnedFd, OwnedFd)> {
    let master = open_in_root(
        root,
        Path::new("/dev/pts/ptmx"),
        libc::O_RDWR | libc::O_NOCTTY,
    )
    .step(|| "open /dev/pts/ptmx in the container".into())?;
    sys::unlock_pty(master.as_fd()).step(|| "unlock pty".into())?;
    if let Some((rows, cols)) = size {
        sys::set_winsize(master.as_fd(), rows, cols).step(|| "set console size".into())?;
    }
    let peer = sys::open_pty_peer(master.as_fd()).step(|| "open pty peer".into())?;
    Ok((master, peer))
}

/// Open a new pty in the container's devpts (its /dev/pts/ptmx), unlock it,
/// apply `size`, and bind its peer on /dev/console. Returns the master and
/// the peer: the process's terminal is the peer itself (`/dev/pts/N`, as
/// runc gives it), not /dev/console.
pub fn setup_console(root: BorrowedFd, size: Option<(u16, u16)>) -> Result<(OwnedFd, OwnedFd)> {
    let (master, peer) = open_pty(root, size)?;
    let target = console_target(root)?;
    mount(
        Some(&fd_path(peer.as_fd())),
        &fd_path(target.as_fd()),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .step(|| "bind pty on /dev/console".into())?;
    Ok((master, peer))
}

/// The /dev/console bind target: a regular file or char device reached
/// without any symlink (CVE-2025-52565: a symlink there would move the pty
/// mount onto whatever it points at), created if missing.
fn console_target(root: BorrowedFd) -> Result<OwnedFd> {
    let path = Path::new("dev/console");
    let resolve = sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_SYMLINKS;
    let open = || sys::openat2(root, path, libc::O_PATH | libc::O_NOFOLLOW, 0, resolve);
    let fd = match open() {
        Err(Errno::ENOENT) => {
            drop(create_file(root, Path::new("/dev/console"))?);
            open()
        }
        r => r,
    };
    let fd = match fd {
        Err(Errno::ELOOP) => {
            return Err(Error::Invalid {
                field: "process.terminal".into(),
                msg: "/dev/console in the container is (or is reached through) a symlink".into(),
            })
        }
        r => r.step(|| "open /dev/console in the container".into())?,
    };
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).step(|| "stat /dev/console".into())?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFREG && kind != SFlag::S_IFCHR {
        return Err(Error::Invalid {
            field: "process.terminal".into(),
            msg: "/dev/console in the container is not a file or a character device".into(),
        });
    }
    Ok(fd)
}

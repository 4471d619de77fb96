//! Building the container's root filesystem, in runc's order:
//! before pivot_root the mounts, /dev and the console; after it sysctl,
//! readonlyPaths, maskedPaths, the read-only root and rootfsPropagation.

mod dev;
mod mount;
mod paths;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::mount::{mount as mount2, umount2, MntFlags, MsFlags};
use oci_spec::runtime::Spec;

pub mod host_binds;

pub use dev::open_pty;
pub use mount::CgroupMode;

use crate::error::{Error, IoContext, Result, SysContext};
use crate::sys;

fn propagation_flags(p: &str) -> Option<MsFlags> {
    Some(match p {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// Check `linux.rootfsPropagation` before anything is built.
pub fn check_propagation(spec: &Spec) -> Result<()> {
    if let Some(p) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_ref())
    {
        if propagation_flags(p).is_none() {
            return Err(Error::Invalid {
                field: "linux.rootfsPropagation".into(),
                msg: format!("unknown propagation {p:?}"),
            });
        }
    }
    Ok(())
}

/// Everything done in the new mount namespace before pivot_root. Returns an
/// fd of the rootfs mount and, with a terminal, the pty master.
pub struct Prepared {
    /// The rootfs, bind-mounted on itself.
    pub root: OwnedFd,
    /// The pty master and its peer (the process's terminal) when
    /// `process.terminal` is set.
    pub console: Option<(OwnedFd, OwnedFd)>,
}

fn console_size(spec: &Spec) -> Option<(u16, u16)> {
    spec.process()
        .as_ref()
        .and_then(|p| p.console_size())
        .map(|b| (b.height() as u16, b.width() as u16))
}

fn wants_terminal(spec: &Spec) -> bool {
    spec.process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
}

/// Without a mount namespace of its own the container shares the caller's
/// mounts, so nothing may be mounted, pivoted or remounted there (runc
/// would mount the config's mounts into the caller's namespace; skiff never
/// does). The process only gets root.path as its root by chroot(2)
/// ([`chroot_only`]), which changes no mount. Masked and read-only paths
/// are refused by validation (runc's check); `mounts`, a read-only root and
/// rootfsPropagation are ignored with a warning. A terminal is a new pty of
/// the caller's /dev/pts, without a /dev/console.
pub fn prepare_shared(spec: &Spec, rootfs: &Path) -> Result<Prepared> {
    let ignored = [
        (
            "mounts",
            spec.mounts().as_ref().is_some_and(|m| !m.is_empty()),
        ),
        (
            "root.readonly",
            spec.root().as_ref().and_then(|r| r.readonly()) == Some(true),
        ),
        (
            "linux.rootfsPropagation",
            spec.linux()
                .as_ref()
                .is_some_and(|l| l.rootfs_propagation().is_some()),
        ),
    ];
    for (field, _) in ignored.iter().filter(|(_, set)| *set) {
        tracing::warn!("{field}: ignored: the container has no mount namespace of its own");
    }
    let host: OwnedFd = std::fs::File::open("/").path("/")?.into();
    let console = if wants_terminal(spec) {
        Some(open_pty(host.as_fd(), console_size(spec))?)
    } else {
        None
    };
    let root: OwnedFd = std::fs::File::open(rootfs).path(rootfs)?.into();
    Ok(Prepared { root, console })
}

/// Make `root` the process's root directory by chroot(2) alone (no mount
/// namespace of its own: see [`prepare_shared`]).
pub fn chroot_only(root: BorrowedFd) -> Result<()> {
    nix::unistd::fchdir(std::os::fd::AsRawFd::as_raw_fd(&root))
        .step(|| "chdir to rootfs".into())?;
    nix::unistd::chroot(".").step(|| "chroot to rootfs".into())?;
    nix::unistd::chdir("/").step(|| "chdir /".into())
}

/// Mount everything in the rootfs (runs in the container's mount namespace).
pub fn prepare(
    spec: &Spec,
    rootfs: &Path,
    bundle: &Path,
    in_userns: bool,
    mut host_binds: Vec<host_binds::HostBind>,
) -> Result<Prepared> {
    let linux = spec.linux().as_ref();
    // As runc: a shared rootfsPropagation is applied to / as given, so that
    // the container's copies stay in the host's peer groups and a volume
    // bound with rshared receives and sends mounts. Any other value starts
    // from rslave (runc's default) and is applied to the new root in
    // `finish` (unbindable here would make the rootfs impossible to bind).
    let root_prop = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(propagation_flags)
        .filter(|f| f.contains(MsFlags::MS_SHARED))
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    mount2(None::<&str>, "/", None::<&str>, root_prop, None::<&str>)
        .step(|| "set the propagation of / in the container's mount namespace".into())?;
    // The mount holding the rootfs goes private (in this namespace only), so
    // neither the rootfs bind below nor anything mounted under it reaches the
    // host, and pivot_root finds no shared parent.
    make_parent_mount_private(rootfs)?;
    mount2(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .step(|| format!("bind rootfs {}", rootfs.display()))?;
    let root: OwnedFd = std::fs::File::open(rootfs).path(rootfs)?.into();
    let cg = CgroupMode::detect();
    let label = linux.and_then(|l| l.mount_label().as_deref());
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    for (i, m) in mounts.iter().enumerate() {
        let tree = host_binds
            .iter()
            .position(|t| t.index == i)
            .map(|p| host_binds.swap_remove(p).tree);
        mount::mount_one(root.as_fd(), bundle, i, m, cg, label, tree)?;
    }
    let dev_is_bind = mounts.iter().any(|m| {
        m.destination() == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind")
                || m.options()
                    .iter()
                    .flatten()
                    .any(|o| o == "bind" || o == "rbind"))
    });
    if !dev_is_bind {
        let mut devs = dev::default_devices();
        devs.extend(dev::config_devices(
            linux
                .and_then(|l| l.devices().as_deref())
                .unwrap_or_default(),
        ));
        dev::create_devices(root.as_fd(), &devs, in_userns)?;
        dev::create_symlinks(root.as_fd())?;
    }
    let process = spec.process().as_ref();
    // runc creates a missing cwd.
    if let Some(p) = process {
        crate::resolve::mkdir_all(root.as_fd(), p.cwd())?;
    }
    let console = if wants_terminal(spec) {
        Some(dev::setup_console(root.as_fd(), console_size(spec))?)
    } else {
        None
    };
    Ok(Prepared { root, console })
}

/// --no-pivot keeps the host's mounts in the container's mount namespace
/// (only out of the chroot's reach), and the kernel lets a new procfs or
/// sysfs be mounted wherever a full one is visible in the namespace: with
/// the host's /proc there, a container could mount a fresh /proc over its
/// masked one. As runc, every full procfs and sysfs mount outside the
/// rootfs is detached (made a slave first, so nothing reaches the host),
/// or covered with a tmpfs where it cannot be unmounted.
fn hide_full_proc_and_sys(rootfs: &Path) -> Result<()> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").path("/proc/self/mountinfo")?;
    let mut points: Vec<std::path::PathBuf> = info
        .lines()
        .filter_map(paths::full_proc_or_sys_mount)
        .filter(|p| !p.starts_with(rootfs))
        .collect();
    // Deepest first, so a parent's detach does not hide a child's path.
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        match mount2(
            None::<&str>,
            &p,
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        ) {
            Err(nix::errno::Errno::ENOENT) => continue,
            r => r.step(|| format!("--no-pivot: make {} a slave", p.display()))?,
        }
        match umount2(&p, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::EPERM) => {
                mount2(
                    Some("tmpfs"),
                    &p,
                    Some("tmpfs"),
                    MsFlags::empty(),
                    None::<&str>,
                )
                .step(|| format!("--no-pivot: cover {}", p.display()))?;
            }
            Err(e) => return Err(e).step(|| format!("--no-pivot: unmount {}", p.display())),
        }
    }
    Ok(())
}

/// Make the mount that holds `path` (the nearest mount point at or above
/// it) private, as runc does before binding the rootfs.
fn make_parent_mount_private(path: &Path) -> Result<()> {
    let mut at = path;
    loop {
        match mount2(
            None::<&str>,
            at,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        ) {
            Ok(()) => return Ok(()),
            // Not a mount point: try the directory above.
            Err(nix::errno::Errno::EINVAL) if at.parent().is_some() => {
                at = at.parent().unwrap_or(Path::new("/"));
            }
            Err(e) => {
                return Err(e).step(|| format!("make the mount holding {} private", path.display()))
            }
        }
    }
}

/// Make the rootfs the process's root: pivot_root and detach the old root,
/// or with `no_pivot` move the mount to / and chroot (runc's --no-pivot).
pub fn enter(root: BorrowedFd, rootfs: &Path, no_pivot: bool) -> Result<()> {
    nix::unistd::fchdir(std::os::fd::AsRawFd::as_raw_fd(&root))
        .step(|| "chdir to rootfs".into())?;
    if no_pivot {
        hide_full_proc_and_sys(rootfs)?;
        mount2(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .step(|| "move rootfs to /".into())?;
        nix::unistd::chroot(".").step(|| "chroot".into())?;
    } else {
        // The old root, held open so that "." can name it after the pivot:
        // the cwd is the new root's top, and a path lookup of "." does not
        // cross into the old root stacked on it, so without the fchdir the
        // rslave below would hit the container's own tree (every volume
        // then a slave: rshared propagation to the host lost).
        let old = std::fs::File::open("/").path("/")?;
        nix::unistd::pivot_root(".", ".").step(|| "pivot_root".into())?;
        nix::unistd::fchdir(std::os::fd::AsRawFd::as_raw_fd(&old))
            .step(|| "chdir to the old root".into())?;
        // Make sure the unmount does not propagate to the host, then
        // detach the old root.
        mount2(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .step(|| "make old root a slave".into())?;
        umount2(".", MntFlags::MNT_DETACH).step(|| "unmount old root".into())?;
    }
    nix::unistd::chdir("/").step(|| "chdir /".into())
}

/// The steps after pivot_root, all resolved from the new root. Without a
/// mount namespace of its own (`own_mounts` false) only sysctl is written.
pub fn finish(spec: &Spec, own_mounts: bool) -> Result<()> {
    let root: OwnedFd = std::fs::File::open("/").path("/")?.into();
    let linux = spec.linux().as_ref();
    if let Some(sysctl) = linux.and_then(|l| l.sysctl().as_ref()) {
        let mut v: Vec<(String, String)> =
            sysctl.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        v.sort();
        paths::sysctl(root.as_fd(), &v)?;
    }
    if !own_mounts {
        return Ok(());
    }
    paths::reopen_null_stdio(root.as_fd())?;
    if let Some(ro) = linux.and_then(|l| l.readonly_paths().as_ref()) {
        paths::readonly(root.as_fd(), ro)?;
    }
    if let Some(masked) = linux.and_then(|l| l.masked_paths().as_ref()) {
        let null = paths::open_dev_null(root.as_fd())?;
        paths::mask(root.as_fd(), masked, null.as_fd())?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        sys::mount_setattr(root.as_fd(), 0, sys::MOUNT_ATTR_RDONLY, 0)
            .step(|| "root.readonly: remount / read-only".into())?;
    }
    if let Some(flags) = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(propagation_flags)
    {
        mount2(None::<&str>, "/", None::<&str>, flags, None::<&str>)
            .step(|| "linux.rootfsPropagation".into())?;
    }
    Ok(())
}

//! Making one `mounts[]` entry inside the rootfs.
//!
//! Bind mounts are cloned with open_tree, get their attributes with
//! mount_setattr while still detached, and are attached with move_mount on a
//! target fd resolved inside the rootfs. Other filesystems are mounted with
//! mount(2) on `/proc/self/fd/N` of the resolved target.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;

use crate::config::{MountOptions, Propagation};
use crate::error::{Error, Result, SysContext};
use crate::resolve::{create_file, fd_path, mkdir_all, open_in_root};
use crate::sys;

/// `AT_RECURSIVE` for open_tree and mount_setattr.
const AT_RECURSIVE: u32 = 0x8000;

/// How to treat `cgroup` mounts on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// The host has a pure cgroup v2 hierarchy: mount cgroup2.
    V2,
    /// Hybrid or v1 host: bind the host's /sys/fs/cgroup read-only.
    Bind,
}

impl CgroupMode {
    /// Detect the host's cgroup layout from /sys/fs/cgroup.
    pub fn detect() -> CgroupMode {
        match nix::sys::statfs::statfs("/sys/fs/cgroup") {
            Ok(s) if s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => CgroupMode::V2,
            _ => CgroupMode::Bind,
        }
    }
}

/// The host path a bind mount `m` (entry `idx` of `mounts`) takes:
/// relative sources are taken from the `bundle` directory.
pub fn bind_source(m: &Mount, idx: usize, bundle: &Path) -> Result<PathBuf> {
    let src = m.source().as_ref().ok_or_else(|| Error::Invalid {
        field: format!("mounts[{idx}].source"),
        msg: "a bind mount needs a source".into(),
    })?;
    Ok(if src.is_absolute() {
        src.clone()
    } else {
        bundle.join(src)
    })
}

/// Mount `m` (entry `idx` of `mounts`) inside the rootfs open at `root`.
/// Relative bind sources are taken from the `bundle` directory.
pub fn mount_one(
    root: BorrowedFd,
    bundle: &Path,
    idx: usize,
    m: &Mount,
    cgroups: CgroupMode,
    mount_label: Option<&str>,
    premade: Option<OwnedFd>,
) -> Result<()> {
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref().unwrap_or("none");
    let dest = m.destination();
    let field = || format!("mounts[{idx}] ({})", dest.display());
    if opts.bind || typ == "bind" {
        let src = bind_source(m, idx, bundle)?;
        return bind(root, &src, dest, &opts, &field, premade);
    }
    if typ == "cgroup" || typ == "cgroup2" {
        let v2 = cgroups == CgroupMode::V2;
        let mounted = v2 && {
            let target = mkdir_all(root, dest)?;
            match mount(
                Some("cgroup2"),
                &fd_path(target.as_fd()),
                Some("cgroup2"),
                opts.flags,
                None::<&str>,
            ) {
                // As runc: in a user namespace cgroup2 may not be mounted
                // (EPERM), or is there already from a /sys rbind (EBUSY,
                // rootless): bind the host's hierarchy instead.
                Err(nix::errno::Errno::EPERM | nix::errno::Errno::EBUSY) => false,
                r => r
                    .step(|| format!("{}: mount cgroup2", field()))
                    .map(|()| true)?,
            }
        };
        if !mounted {
            let mut o = opts.clone();
            o.recursive_bind = true;
            if o.flags.contains(MsFlags::MS_RDONLY) {
                o.rec_set |= sys::MOUNT_ATTR_RDONLY;
            }
            return bind(root, Path::new("/sys/fs/cgroup"), dest, &o, &field, None);
        }
        return Ok(());
    }
    if matches!(typ, "proc" | "sysfs") {
        check_ordinary_dir(root, dest, typ, &field)?;
    }
    let target = mkdir_all(root, dest)?;
    let src = m
        .source()
        .as_ref()
        .map(PathBuf::as_path)
        .unwrap_or(Path::new(typ));
    let labeled = matches!(typ, "tmpfs" | "devpts" | "mqueue")
        .then(|| crate::security::lsm::with_mount_label(&opts.data, mount_label))
        .flatten();
    let data = labeled
        .as_deref()
        .or((!opts.data.is_empty()).then_some(opts.data.as_str()));
    match mount(
        Some(src),
        &fd_path(target.as_fd()),
        Some(typ),
        opts.flags,
        data,
    ) {
        // A user namespace without its own network namespace may not
        // mount sysfs (rootless): bind the host's /sys instead, as runc.
        Err(nix::errno::Errno::EPERM) if typ == "sysfs" => {
            let mut o = opts.clone();
            o.recursive_bind = true;
            if o.flags.contains(MsFlags::MS_RDONLY) {
                o.rec_set |= sys::MOUNT_ATTR_RDONLY;
            }
            return bind(root, Path::new("/sys"), dest, &o, &field, None);
        }
        r => r.step(|| format!("{}: mount {typ}", field()))?,
    }
    propagate(root, dest, &opts.propagation, &field)
}

/// As runc: procfs and sysfs go on an ordinary directory only. A symlink
/// (or a file) there is refused, so that a masked /proc can never be
/// replaced by a link to somewhere its masks do not reach.
fn check_ordinary_dir(
    root: BorrowedFd,
    dest: &Path,
    typ: &str,
    field: &dyn Fn() -> String,
) -> Result<()> {
    let fd = match sys::openat2(
        root,
        dest.strip_prefix("/").unwrap_or(dest),
        libc::O_PATH | libc::O_NOFOLLOW,
        0,
        sys::RESOLVE_IN_ROOT,
    ) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e).step(|| format!("{}: open", field())),
    };
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).step(|| format!("{}: stat", field()))?;
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        return Ok(());
    }
    Err(Error::Invalid {
        field: field(),
        msg: format!("filesystem {typ:?} must be mounted on ordinary directory"),
    })
}

fn bind(
    root: BorrowedFd,
    src: &Path,
    dest: &Path,
    opts: &MountOptions,
    field: &dyn Fn() -> String,
    premade: Option<OwnedFd>,
) -> Result<()> {
    // A tree cloned on the host is looked at through its fd: its source may
    // be out of reach from the container's user namespace.
    let is_dir = match &premade {
        Some(t) => nix::sys::stat::fstat(t.as_raw_fd())
            .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
            .step(|| format!("{}: stat bind source {}", field(), src.display()))?,
        None => std::fs::metadata(src)
            .map_err(|e| Error::Invalid {
                field: field(),
                msg: format!("bind source {}: {e}", src.display()),
            })?
            .is_dir(),
    };
    let target = if is_dir {
        mkdir_all(root, dest)?
    } else {
        create_file(root, dest)?
    };
    let rec = if opts.recursive_bind { AT_RECURSIVE } else { 0 };
    let tree = match premade {
        Some(t) => t,
        None => sys::open_tree(libc::AT_FDCWD, src, sys::OPEN_TREE_CLONE | rec)
            .step(|| format!("{}: clone mount of {}", field(), src.display()))?,
    };
    let set = opts.attrs();
    let clr = if set & sys::MOUNT_ATTR_ATIME != 0 {
        sys::MOUNT_ATTR_ATIME
    } else {
        0
    };
    if set != 0 || clr != 0 {
        sys::mount_setattr(tree.as_fd(), 0, set, clr)
            .step(|| format!("{}: set bind mount flags", field()))?;
    }
    if opts.rec_set != 0 || opts.rec_clr != 0 {
        let clr = opts.rec_clr
            | if opts.rec_set & sys::MOUNT_ATTR_ATIME != 0 {
                sys::MOUNT_ATTR_ATIME
            } else {
                0
            };
        sys::mount_setattr(tree.as_fd(), AT_RECURSIVE, opts.rec_set, clr)
            .step(|| format!("{}: set recursive mount attributes", field()))?;
    }
    sys::move_mount(tree.as_fd(), target.as_fd())
        .step(|| format!("{}: attach bind mount", field()))?;
    propagate(root, dest, &opts.propagation, field)
}

/// Apply propagation options to the mount now at `dest`.
fn propagate(
    root: BorrowedFd,
    dest: &Path,
    props: &[(Propagation, bool)],
    field: &dyn Fn() -> String,
) -> Result<()> {
    if props.is_empty() {
        return Ok(());
    }
    let fd = open_in_root(root, dest, libc::O_PATH).step(|| format!("{}: reopen", field()))?;
    for (p, rec) in props {
        let mut f = match p {
            Propagation::Private => MsFlags::MS_PRIVATE,
            Propagation::Shared => MsFlags::MS_SHARED,
            Propagation::Slave => MsFlags::MS_SLAVE,
            Propagation::Unbindable => MsFlags::MS_UNBINDABLE,
        };
        if *rec {
            f |= MsFlags::MS_REC;
        }
        mount(
            None::<&str>,
            &fd_path(fd.as_fd()),
            None::<&str>,
            f,
            None::<&str>,
        )
        .step(|| format!("{}: set propagation", field()))?;
    }
    Ok(())
}

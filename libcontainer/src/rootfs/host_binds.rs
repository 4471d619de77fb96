//! Bind mounts made on the host, before the clone, for init to attach
//! (move_mount): id-mapped binds (`mounts[].uidMappings`/`gidMappings`, or
//! the `idmap`/`ridmap` options with the container's own mappings), and
//! every bind of a container in a user namespace.
//!
//! Setting MOUNT_ATTR_IDMAP needs CAP_SYS_ADMIN over the filesystem's user
//! namespace, which a container init in a new user namespace lacks; and a
//! bind source may be out of reach of the namespace's root (a 0700 host
//! directory: runc's "userns with inaccessible mount"). So, like crun and
//! runc, the runtime clones the sources as host root and init only attaches
//! them.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::sys::wait::waitpid;
use oci_spec::runtime::{LinuxIdMapping, Spec};

use crate::config::{mount_idmap, MountOptions};
use crate::error::{Error, Result, SysContext};
use crate::sys::{self, Forked};

/// A detached copy of mount `index`'s source (id-mapped if asked), ready
/// to attach.
#[derive(Debug)]
pub struct HostBind {
    /// The index in `mounts`.
    pub index: usize,
    /// The detached mount (from open_tree).
    pub tree: OwnedFd,
}

/// Clone, on the host, the bind sources init will attach: the id-mapped
/// ones (and map them), and with `in_userns` every other bind too. A caller
/// that may not clone mounts (rootless) leaves the plain binds to init.
pub fn prepare(spec: &Spec, bundle: &Path, in_userns: bool) -> Result<Vec<HostBind>> {
    let mut out = Vec::new();
    for (index, m) in spec.mounts().iter().flatten().enumerate() {
        let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
        let field = || format!("mounts[{index}] ({})", m.destination().display());
        let Some((uid, gid, recursive)) = mount_idmap::mappings(spec, index, m)? else {
            let bind = opts.bind || m.typ().as_deref() == Some("bind");
            if !(in_userns && bind) {
                continue;
            }
            let src = super::mount::bind_source(m, index, bundle)?;
            let rec = if opts.recursive_bind { AT_RECURSIVE } else { 0 };
            match sys::open_tree(libc::AT_FDCWD, &src, sys::OPEN_TREE_CLONE | rec) {
                Ok(tree) => out.push(HostBind { index, tree }),
                // Rootless: no mount can be cloned here; init binds it.
                Err(nix::errno::Errno::EPERM) => {}
                // A missing source is reported by init, with its field.
                Err(nix::errno::Errno::ENOENT) => {}
                Err(e) => {
                    return Err(e).step(|| format!("{}: clone mount of {}", field(), src.display()))
                }
            }
            continue;
        };
        let src = super::mount::bind_source(m, index, bundle)?;
        let userns = userns_with(uid, gid).map_err(|e| match e {
            Error::Io { path, source } => Error::Invalid {
                field: format!("mounts[{index}].uidMappings"),
                msg: format!("{}: {source}", path.display()),
            },
            e => e,
        })?;
        let rec = if recursive { AT_RECURSIVE } else { 0 };
        let tree = sys::open_tree(libc::AT_FDCWD, &src, sys::OPEN_TREE_CLONE | rec)
            .step(|| format!("{}: clone mount of {}", field(), src.display()))?;
        sys::mount_set_idmap(tree.as_fd(), rec, userns.as_fd())
            .step(|| format!("{}: idmap the mount", field()))?;
        out.push(HostBind { index, tree });
    }
    Ok(out)
}

const AT_RECURSIVE: u32 = 0x8000;

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// A user namespace with these mappings: made by a short-lived child that
/// only waits for its pipe to close.
fn userns_with(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<OwnedFd> {
    let (r, w) = nix::unistd::pipe().step(|| "pipe".into())?;
    let pid = match sys::clone3(libc::CLONE_NEWUSER as u64, None)
        .step(|| "clone a user namespace for an id-mapped mount".into())?
    {
        Forked::Child => {
            drop(w);
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&r), &mut b);
            std::process::exit(0)
        }
        Forked::Parent(pid) => pid,
    };
    drop(r);
    let result = (|| {
        for (file, text) in [("uid_map", map_text(uid)), ("gid_map", map_text(gid))] {
            let path = format!("/proc/{pid}/{file}");
            std::fs::write(&path, text).map_err(|e| Error::Io {
                path: path.into(),
                source: e,
            })?;
        }
        let path = format!("/proc/{pid}/ns/user");
        std::fs::File::open(&path)
            .map(OwnedFd::from)
            .map_err(|e| Error::Io {
                path: path.into(),
                source: e,
            })
    })();
    drop(w);
    let _ = waitpid(pid, None);
    result
}

//! id-mapped bind mounts (`mounts[].uidMappings`/`gidMappings`, or the
//! `idmap`/`ridmap` options with the container's own mappings).
//!
//! Setting MOUNT_ATTR_IDMAP needs CAP_SYS_ADMIN over the filesystem's user
//! namespace, which a container init in a new user namespace lacks; so,
//! like crun, the runtime makes the detached idmapped mounts on the host
//! before the clone, and init only attaches them (move_mount).

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::sys::wait::waitpid;
use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};

use crate::config::MountOptions;
use crate::error::{Error, Result, SysContext};
use crate::sys::{self, Forked};

/// A detached, idmapped copy of mount `index`'s source, ready to attach.
#[derive(Debug)]
pub struct Idmapped {
    /// The index in `mounts`.
    pub index: usize,
    /// The detached mount (from open_tree).
    pub tree: OwnedFd,
}

/// uid mappings, gid mappings, and whether the whole tree is mapped.
type Maps<'a> = (&'a [LinuxIdMapping], &'a [LinuxIdMapping], bool);

/// The mappings mount `m` asks for, if any: its own, or the container's
/// with the `idmap`/`ridmap` options. Errors name the field.
fn mappings<'a>(spec: &'a Spec, idx: usize, m: &'a Mount) -> Result<Option<Maps<'a>>> {
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
    let own = (m.uid_mappings().as_deref(), m.gid_mappings().as_deref());
    let (uid, gid) = match own {
        (None, None) if opts.idmap.is_none() => return Ok(None),
        (None, None) => {
            let l = spec.linux().as_ref();
            (
                l.and_then(|l| l.uid_mappings().as_deref()),
                l.and_then(|l| l.gid_mappings().as_deref()),
            )
        }
        o => o,
    };
    let field = |f: &str| format!("mounts[{idx}].{f}");
    let bind = opts.bind || m.typ().as_deref() == Some("bind");
    if !bind {
        return Err(Error::Invalid {
            field: field("uidMappings"),
            msg: "id-mapped mounts must be bind mounts".into(),
        });
    }
    match (uid, gid) {
        (Some(u), Some(g)) if !u.is_empty() && !g.is_empty() => Ok(Some((
            u,
            g,
            opts.recursive_bind || opts.idmap == Some(true),
        ))),
        _ => Err(Error::Invalid {
            field: field("uidMappings"),
            msg: "an id-mapped mount needs both uidMappings and gidMappings".into(),
        }),
    }
}

/// Check every mount's id mappings (for validation before anything is built).
pub fn check(spec: &Spec) -> Result<()> {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        mappings(spec, i, m)?;
    }
    Ok(())
}

/// Make the idmapped mounts the config asks for (on the host, before clone).
pub fn prepare(spec: &Spec, bundle: &Path) -> Result<Vec<Idmapped>> {
    let mut out = Vec::new();
    for (index, m) in spec.mounts().iter().flatten().enumerate() {
        let Some((uid, gid, recursive)) = mappings(spec, index, m)? else {
            continue;
        };
        let field = || format!("mounts[{index}] ({})", m.destination().display());
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
        out.push(Idmapped { index, tree });
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

//! What lies outside a container's own tree, named for CRIU: bind mounts
//! from the host (external mounts), namespaces joined by path (external
//! namespaces), and the container's cgroup (frozen for a dump, the root of
//! the restored tree's cgroups).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::rpc::CgroupRoot;
use crate::cgroups::{v1, v2, Cgroup};
use crate::config::MountOptions;
use crate::error::{Error, Result};

/// The bind mounts of `spec`: (destination, host source). Relative
/// sources are taken from `bundle`, as create takes them.
pub fn bind_mounts(spec: &Spec, bundle: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let opts = MountOptions::parse(m.options().as_deref().unwrap_or(&[]));
        if !(opts.bind || m.typ().as_deref() == Some("bind")) {
            continue;
        }
        let Some(src) = m.source() else { continue };
        let src = if src.is_absolute() {
            src.clone()
        } else {
            bundle.join(src)
        };
        out.push((m.destination().to_string_lossy().into_owned(), src));
    }
    out
}

/// The namespaces CRIU must treat as external: the network and pid
/// namespaces `spec` joins by path, as (path, key) with runc's keys.
pub fn joined_namespaces(spec: &Spec) -> Vec<(PathBuf, &'static str, &'static str)> {
    let mut out = Vec::new();
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
    for ns in namespaces.into_iter().flatten() {
        let (kind, key) = match ns.typ() {
            LinuxNamespaceType::Network => ("net", "extRootNetNS"),
            LinuxNamespaceType::Pid => ("pid", "extRootPidNS"),
            _ => continue,
        };
        if let Some(p) = ns.path() {
            out.push((p.clone(), kind, key));
        }
    }
    out
}

/// The `external` entries of a dump for the namespaces `spec` joins.
pub fn external_namespaces(spec: &Spec) -> Result<Vec<String>> {
    joined_namespaces(spec)
        .into_iter()
        .map(|(path, kind, key)| {
            let ino = std::fs::metadata(&path)
                .map_err(|e| Error::Invalid {
                    field: format!("linux.namespaces[{kind}].path"),
                    msg: format!("{}: {e}", path.display()),
                })?
                .ino();
            Ok(format!("{kind}[{ino}]:{key}"))
        })
        .collect()
}

/// The cgroup CRIU freezes the container with during a dump.
pub fn freezer(cg: &Cgroup) -> Option<String> {
    let dir = match cg {
        Cgroup::V2(c) => Some(c.dir.clone()),
        Cgroup::V1(c) => {
            let hs = v1::hierarchy::all();
            c.dirs
                .iter()
                .find(|d| {
                    hs.iter()
                        .any(|h| h.controllers.contains("freezer") && d.starts_with(&h.mount))
                })
                .cloned()
        }
    };
    dir.map(|d| d.to_string_lossy().into_owned())
}

/// Where the restored tree's cgroups go: the container's cgroup, as a path
/// below each hierarchy's root.
pub fn cgroup_roots(cg: &Cgroup) -> Vec<CgroupRoot> {
    let rel = |dir: &Path, mount: &Path| {
        dir.strip_prefix(mount)
            .ok()
            .map(|r| format!("/{}", r.to_string_lossy()))
    };
    match cg {
        Cgroup::V2(c) => rel(&c.dir, Path::new(v2::MOUNT))
            .map(|path| CgroupRoot { ctrl: None, path })
            .into_iter()
            .collect(),
        Cgroup::V1(c) => {
            let hs = v1::hierarchy::all();
            c.dirs
                .iter()
                .filter_map(|d| {
                    let h = hs
                        .iter()
                        .find(|h| d.starts_with(&h.mount) && !h.is_unified())?;
                    let ctrl = h.controllers.iter().cloned().collect::<Vec<_>>().join(",");
                    Some(CgroupRoot {
                        ctrl: Some(ctrl),
                        path: rel(d, &h.mount)?,
                    })
                })
                .collect()
        }
    }
}

/// The init's stdio as a dump records it (descriptors.json, one entry per
/// fd 0-2), and the `external` entries among them. A pipe is recorded as
/// `pipe:[INODE]`; a file the container cannot reach, on a mount outside
/// its mount namespace (containerd's io fifos, a log file, a caller's
/// redirection), as CRIU's external-file key `file[MNT_ID:INODE]` (hex),
/// which CRIU cannot dump otherwise. Either kind is replaced on restore by
/// the restoring caller's fd (inherit_fd with the same key), as runc
/// replaces pipes.
pub fn stdio(pid: i32) -> (Vec<String>, Vec<String>) {
    let mounts: std::collections::HashSet<u64> =
        std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').next()?.parse().ok())
            .collect();
    let mut descriptors = Vec::new();
    let mut external: Vec<String> = Vec::new();
    for fd in 0..3 {
        let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let key = link
            .starts_with('/')
            .then(|| outside_file(pid, fd, &mounts))
            .flatten();
        match key {
            Some(key) => {
                if !external.contains(&key) {
                    external.push(key.clone());
                }
                descriptors.push(key);
            }
            None => descriptors.push(link),
        }
    }
    (descriptors, external)
}

/// CRIU's key for `pid`'s fd `fd` if its file is on a mount not among
/// `mounts` (the process's own mount namespace).
fn outside_file(pid: i32, fd: i32, mounts: &std::collections::HashSet<u64>) -> Option<String> {
    let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let mnt_id: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))?
        .trim()
        .parse()
        .ok()?;
    if mounts.contains(&mnt_id) {
        return None;
    }
    let ino = std::fs::metadata(format!("/proc/{pid}/fd/{fd}"))
        .ok()?
        .ino();
    Some(format!("file[{mnt_id:x}:{ino:x}]"))
}

/// Is `descriptor` (an entry of descriptors.json) one that restore
/// replaces with the caller's fd?
pub fn inherited(descriptor: &str) -> bool {
    descriptor.starts_with("pipe:") || descriptor.starts_with("file[")
}

//! Rootless placement: may the calling user use a cgroup at all?

use std::path::{Path, PathBuf};

use nix::fcntl::AtFlags;
use nix::unistd::{faccessat, AccessFlags};

use super::{own_cgroup, Cgroup, MOUNT};

fn writable(p: &Path) -> bool {
    faccessat(None, p, AccessFlags::W_OK, AtFlags::AT_EACCESS).is_ok()
}

/// Check cgroup v2's delegation rules for the caller: it can make `cg` (or
/// write its cgroup.procs if it exists), and it can move a process from its
/// own cgroup there, which needs write access to cgroup.procs of the
/// nearest common ancestor. The error says which file stood in the way.
pub fn delegation(cg: &Cgroup) -> std::result::Result<(), String> {
    let mut existing = cg.dir.as_path();
    while !existing.exists() {
        existing = existing.parent().unwrap_or(Path::new(MOUNT));
    }
    let need = if existing == cg.dir {
        cg.dir.join("cgroup.procs")
    } else {
        existing.to_path_buf()
    };
    if !writable(&need) {
        return Err(format!("{} is not writable", need.display()));
    }
    let own = Path::new(MOUNT).join(own_cgroup().map_err(|e| e.to_string())?);
    let common: PathBuf = own
        .components()
        .zip(cg.dir.components())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a)
        .collect();
    let procs = common.join("cgroup.procs");
    if !writable(&procs) {
        return Err(format!(
            "moving a process out of {} needs write access to {}",
            own.display(),
            procs.display()
        ));
    }
    Ok(())
}

//! Intel RDT (`linux.intelRdt`) through the resctrl filesystem.

use std::path::{Path, PathBuf};

use nix::unistd::Pid;
use oci_spec::runtime::LinuxIntelRdt;

use crate::error::{Error, Result};

const RESCTRL: &str = "/sys/fs/resctrl";

/// Is resctrl mounted, so Intel RDT can be used?
pub fn available() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .is_ok_and(|m| m.lines().any(|l| l.contains(" - resctrl ")))
}

/// The resctrl group of a container: `closID`, or the container id.
pub fn group_dir(rdt: &LinuxIntelRdt, id: &str) -> PathBuf {
    Path::new(RESCTRL).join(rdt.clos_id().as_deref().unwrap_or(id))
}

/// Create (or join) the container's resctrl group, write its schemata and
/// move `pid` into it.
pub fn apply(rdt: &LinuxIntelRdt, id: &str, pid: Pid) -> Result<()> {
    let dir = group_dir(rdt, id);
    let io = |path: PathBuf| move |e| Error::Io { path, source: e };
    if !dir.exists() {
        std::fs::create_dir(&dir).map_err(io(dir.clone()))?;
    }
    let mut lines: Vec<String> = Vec::new();
    lines.extend(rdt.l3_cache_schema().iter().cloned());
    lines.extend(rdt.mem_bw_schema().iter().cloned());
    lines.extend(rdt.schemata().iter().flatten().cloned());
    for line in lines.iter().flat_map(|l| l.lines()) {
        let f = dir.join("schemata");
        std::fs::write(&f, format!("{line}\n")).map_err(|e| Error::Invalid {
            field: "linux.intelRdt".into(),
            msg: format!("{}: write {line:?}: {e}", f.display()),
        })?;
    }
    let tasks = dir.join("tasks");
    std::fs::write(&tasks, pid.to_string()).map_err(io(tasks))
}

/// Remove the container's own resctrl group (not a shared `closID` one).
pub fn remove(rdt: &LinuxIntelRdt, id: &str) {
    if rdt.clos_id().is_none() {
        let _ = std::fs::remove_dir(group_dir(rdt, id));
    }
}

//! One container's cgroup under whichever driver the host has, so the
//! container code needs no second path for cgroup v1.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::{v1, v2};
use crate::error::Result;

/// One container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cgroup {
    /// cgroup v2: one directory in the unified hierarchy.
    V2(v2::Cgroup),
    /// cgroup v1 (legacy or hybrid host): a directory per hierarchy.
    V1(v1::Cgroup),
}

impl Cgroup {
    /// The cgroup saved as `dirs` (in a state file): a v1 one on a v1
    /// host, else the one v2 directory.
    pub fn from_dirs(mut dirs: Vec<PathBuf>) -> Option<Cgroup> {
        if v1::is_v1_host() {
            return (!dirs.is_empty()).then_some(Cgroup::V1(v1::Cgroup { dirs }));
        }
        (dirs.len() == 1).then(|| {
            Cgroup::V2(v2::Cgroup {
                dir: dirs.remove(0),
            })
        })
    }

    /// The cgroup at `rel` (relative to each hierarchy's root) under the
    /// driver this host has: the systemd driver's scopes are named this way.
    pub fn at(rel: &Path) -> Cgroup {
        if v1::is_v1_host() {
            let dirs = v1::hierarchy::all()
                .iter()
                .map(|h| h.mount.join(rel))
                .collect();
            return Cgroup::V1(v1::Cgroup { dirs });
        }
        Cgroup::V2(v2::Cgroup {
            dir: Path::new(v2::MOUNT).join(rel),
        })
    }

    /// Make sure process `pid`, which systemd put in its scope, is in the
    /// cgroup in every hierarchy: on v1 systemd leaves out the hierarchies it
    /// does not manage (net_cls, perf_event, ...), which are made here.
    pub fn adopt(&self, pid: i32) -> Result<()> {
        match self {
            Cgroup::V2(_) => Ok(()),
            Cgroup::V1(c) => c.adopt(pid),
        }
    }

    /// The directories, as saved in a state file.
    pub fn dirs(&self) -> Vec<PathBuf> {
        match self {
            Cgroup::V2(c) => vec![c.dir.clone()],
            Cgroup::V1(c) => c.dirs.clone(),
        }
    }

    /// The v2 cgroup, if this is one.
    pub fn v2(&self) -> Option<&v2::Cgroup> {
        match self {
            Cgroup::V2(c) => Some(c),
            Cgroup::V1(_) => None,
        }
    }

    /// Create the cgroup and apply `resources` and the device rules.
    /// Returns, on v2, an fd of the directory for CLONE_INTO_CGROUP; on
    /// v1 the process joins afterwards ([`Cgroup::join`]).
    pub fn create(&self, resources: Option<&LinuxResources>) -> Result<Option<OwnedFd>> {
        match self {
            Cgroup::V2(c) => c.create(resources).map(Some),
            Cgroup::V1(c) => c.create(resources).map(|()| None),
        }
    }

    /// An fd for CLONE_INTO_CGROUP (v2 only).
    pub fn open(&self) -> Result<Option<OwnedFd>> {
        match self {
            Cgroup::V2(c) => c.open().map(Some),
            Cgroup::V1(_) => Ok(None),
        }
    }

    /// Move process `pid` into the cgroup.
    pub fn join(&self, pid: i32) -> Result<()> {
        match self {
            Cgroup::V2(c) => c.write("cgroup.procs", &pid.to_string()),
            Cgroup::V1(c) => c.join(pid),
        }
    }

    /// Apply `r` (create and `update`).
    pub fn set(&self, r: &LinuxResources) -> Result<()> {
        match self {
            Cgroup::V2(c) => c.set(r),
            Cgroup::V1(c) => c.set(r),
        }
    }

    /// Apply `resources` and the device rules (after init joined, as runc
    /// orders it, or after the create of the directories).
    pub fn configure(&self, resources: Option<&LinuxResources>) -> Result<()> {
        match self {
            Cgroup::V2(c) => c.configure(resources),
            Cgroup::V1(c) => c.configure(resources),
        }
    }

    /// Install the device rules of `r` behind a deny-all, with runc's
    /// default allow-list.
    pub fn apply_devices(&self, r: Option<&LinuxResources>) -> Result<()> {
        match self {
            Cgroup::V2(c) => c.apply_devices(r),
            Cgroup::V1(c) => c.apply_devices(r),
        }
    }

    /// Pids in the cgroup and its sub-cgroups.
    pub fn procs(&self) -> Result<Vec<i32>> {
        match self {
            Cgroup::V2(c) => c.procs(),
            Cgroup::V1(c) => c.procs(),
        }
    }

    /// Does the cgroup exist?
    pub fn exists(&self) -> bool {
        match self {
            Cgroup::V2(c) => c.exists(),
            Cgroup::V1(c) => c.exists(),
        }
    }

    /// Is it frozen?
    pub fn is_frozen(&self) -> bool {
        match self {
            Cgroup::V2(c) => c.is_frozen(),
            Cgroup::V1(c) => c.is_frozen(),
        }
    }

    /// Freeze or thaw, and wait until done.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        match self {
            Cgroup::V2(c) => c.freeze(frozen),
            Cgroup::V1(c) => c.freeze(frozen),
        }
    }

    /// Kill everything in it and remove it.
    pub fn destroy(&self) -> Result<()> {
        match self {
            Cgroup::V2(c) => c.destroy(),
            Cgroup::V1(c) => c.destroy(),
        }
    }

    /// OOM kills so far.
    pub fn oom_kills(&self) -> u64 {
        match self {
            Cgroup::V2(c) => c.oom_kills(),
            Cgroup::V1(c) => c.oom_kills(),
        }
    }

    /// The `data` object of a runc stats event.
    pub fn stats(&self) -> serde_json::Value {
        match self {
            Cgroup::V2(c) => v2::stats(c),
            Cgroup::V1(c) => v1::stats(c),
        }
    }

    /// Its directory (or directories), for messages.
    pub fn display(&self) -> String {
        match self {
            Cgroup::V2(c) => c.dir.display().to_string(),
            Cgroup::V1(c) => c.display(),
        }
    }
}

//! The cgroup v2 filesystem driver: one container, one cgroup directory.
//!
//! cgroups-rs covers v1 and v2 behind one abstraction but cannot place a
//! process with CLONE_INTO_CGROUP, has no eBPF device filter replacement and
//! reads stats in a shape different from runc's; the v2 files are simple
//! enough that owning this code is less than adapting it.

mod delegate;
pub mod devices;
mod resources;
mod stats;

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

pub use delegate::delegation;
pub use resources::{check_unified, cpu_weight, io_weight};
pub use stats::stats;

use crate::error::{Error, IoContext, Result};

/// Where the unified hierarchy is mounted.
pub const MOUNT: &str = "/sys/fs/cgroup";

/// Is this host's /sys/fs/cgroup a pure cgroup v2 hierarchy?
pub fn is_v2_host() -> bool {
    nix::sys::statfs::statfs(MOUNT)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// The controllers the root of the hierarchy offers (empty on v1/hybrid hosts).
pub fn available_controllers() -> Vec<String> {
    if !is_v2_host() {
        return Vec::new();
    }
    fs::read_to_string(Path::new(MOUNT).join("cgroup.controllers"))
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// skiff's own cgroup (from /proc/self/cgroup), relative to the mount.
pub(crate) fn own_cgroup() -> Result<PathBuf> {
    let text = crate::procfs::read_text("/proc/self/cgroup").path("/proc/self/cgroup")?;
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(|| Error::Unsupported {
            field: "linux.cgroupsPath".into(),
            msg: "skiff is not in a cgroup v2 hierarchy".into(),
        })?;
    Ok(PathBuf::from(line.trim_start_matches('/')))
}

/// `path` without `..`, `.` or a leading `/`, so it stays under the mount.
pub(crate) fn clean(path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::Invalid {
                    field: "linux.cgroupsPath".into(),
                    msg: format!("{} must not contain \"..\"", path.display()),
                })
            }
        }
    }
    Ok(out)
}

pub(crate) fn deny_all() -> oci_spec::runtime::LinuxDeviceCgroup {
    let mut d = oci_spec::runtime::LinuxDeviceCgroup::default();
    d.set_allow(false);
    d.set_access(Some("rwm".into()));
    d
}

/// One container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    /// The cgroup directory, absolute (under [`MOUNT`]).
    pub dir: PathBuf,
}

impl Cgroup {
    /// Resolve `linux.cgroupsPath` as runc's cgroupfs driver does on v2:
    /// absolute paths under the mount, relative ones under the parent of
    /// skiff's own cgroup (its own one usually holds processes, so no
    /// controller could be enabled below it), and none at all as `<id>`
    /// there too.
    pub fn resolve(cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup> {
        let beside_own = || -> Result<PathBuf> {
            Ok(own_cgroup()?
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default())
        };
        let rel = match cgroups_path {
            Some(p) if p.is_absolute() => clean(p)?,
            Some(p) => beside_own()?.join(clean(p)?),
            None => beside_own()?.join(id),
        };
        if rel.as_os_str().is_empty() {
            return Err(Error::Invalid {
                field: "linux.cgroupsPath".into(),
                msg: "resolves to the root cgroup".into(),
            });
        }
        Ok(Cgroup {
            dir: Path::new(MOUNT).join(rel),
        })
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Read one interface file, trimmed.
    pub fn read(&self, name: &str) -> Result<String> {
        let p = self.file(name);
        fs::read_to_string(&p).map(|s| s.trim().to_string()).path(p)
    }

    /// Write one interface file; the error names the file and the value.
    pub fn write(&self, name: &str, value: &str) -> Result<()> {
        let p = self.file(name);
        fs::write(&p, value).map_err(|e| Error::Invalid {
            field: format!("cgroup {}", p.display()),
            msg: format!("write {value:?}: {e}"),
        })
    }

    /// Create the cgroup (and missing parents, enabling every available
    /// controller down the path), refuse one that already holds processes
    /// or is frozen, and apply `resources`. Returns an fd of the directory
    /// for CLONE_INTO_CGROUP.
    pub fn create(&self, resources: Option<&LinuxResources>) -> Result<OwnedFd> {
        self.make_dirs()?;
        self.configure(resources)?;
        self.open()
    }

    /// Create the directories, enabling every available controller in
    /// each parent, and check the cgroup is empty and thawed.
    fn make_dirs(&self) -> Result<()> {
        let rel = self
            .dir
            .strip_prefix(MOUNT)
            .unwrap_or(&self.dir)
            .to_path_buf();
        let mut cur = PathBuf::from(MOUNT);
        for comp in rel.components() {
            let controllers =
                fs::read_to_string(cur.join("cgroup.controllers")).unwrap_or_default();
            let wanted: Vec<String> = controllers
                .split_whitespace()
                .map(|c| format!("+{c}"))
                .collect();
            if !wanted.is_empty() {
                let sc = cur.join("cgroup.subtree_control");
                let enabled = fs::read_to_string(&sc).unwrap_or_default();
                let missing: Vec<&String> = wanted
                    .iter()
                    .filter(|w| !enabled.split_whitespace().any(|e| e == &w[1..]))
                    .collect();
                if !missing.is_empty() {
                    let line = missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" ");
                    if let Err(e) = fs::write(&sc, &line) {
                        // A parent holding processes cannot delegate; the
                        // limits that need a missing controller fail later, by name.
                        tracing::debug!("enable {line} in {}: {e}", sc.display());
                    }
                }
            }
            cur.push(comp);
            super::mkdir_once(&cur)?;
        }
        if !self.procs()?.is_empty() {
            return Err(Error::Invalid {
                field: "linux.cgroupsPath".into(),
                msg: format!("cgroup {} already holds processes", self.dir.display()),
            });
        }
        if self.is_frozen() {
            return Err(Error::Invalid {
                field: "linux.cgroupsPath".into(),
                msg: format!("cgroup {} is frozen", self.dir.display()),
            });
        }
        Ok(())
    }

    /// Make the directory and its parents (enabling the controllers on the
    /// way) and refuse one that holds processes or is frozen; returns its fd
    /// for CLONE_INTO_CGROUP. [`Cgroup::configure`] applies the limits.
    pub fn make(&self) -> Result<OwnedFd> {
        self.make_dirs()?;
        self.open()
    }

    /// Apply `resources` and the device filter to a cgroup [`Cgroup::make`]
    /// made.
    pub fn configure(&self, resources: Option<&LinuxResources>) -> Result<()> {
        if let Some(r) = resources {
            self.set(r)?;
        }
        self.apply_devices(resources)
    }

    /// An fd of the directory, for CLONE_INTO_CGROUP.
    pub fn open(&self) -> Result<OwnedFd> {
        Ok(fs::File::open(&self.dir).path(&self.dir)?.into())
    }

    /// Apply `r` (used by create and by `update`).
    pub fn set(&self, r: &LinuxResources) -> Result<()> {
        resources::apply(self, r)
    }

    /// Install the device filter: the config's rules, then runc's default
    /// allow-list. On by default: a config without rules still gets the
    /// defaults behind a deny-all.
    pub fn apply_devices(&self, r: Option<&LinuxResources>) -> Result<()> {
        let rules = super::device_rules(r);
        let dir = self.open()?;
        match devices::apply(std::os::fd::AsFd::as_fd(&dir), &rules) {
            // Like runc: a rootless caller cannot load the eBPF filter (it
            // needs CAP_SYS_ADMIN or CAP_BPF); its container can only reach
            // the device nodes the caller itself may open anyway.
            Err(e) if !nix::unistd::geteuid().is_root() => {
                tracing::debug!("rootless: no device filter for {}: {e}", self.dir.display());
                Ok(())
            }
            r => r,
        }
    }

    /// Pids in the cgroup and its sub-cgroups (cgroup.procs of each, as
    /// runc's GetAllPids: `exec --cgroup` puts processes below it).
    pub fn procs(&self) -> Result<Vec<i32>> {
        super::procs_below(&self.dir)
    }

    /// Does the cgroup exist?
    pub fn exists(&self) -> bool {
        self.dir.is_dir()
    }

    /// Is the cgroup frozen (cgroup.freeze is 1)?
    pub fn is_frozen(&self) -> bool {
        self.read("cgroup.freeze").is_ok_and(|v| v == "1")
    }

    /// Freeze or thaw, and wait until cgroup.events says it is done.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        self.write("cgroup.freeze", if frozen { "1" } else { "0" })?;
        let want = if frozen { "frozen 1" } else { "frozen 0" };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.read("cgroup.events")?.lines().any(|l| l == want) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Err(Error::Child(format!(
            "cgroup {} did not reach \"{want}\" in 10s",
            self.dir.display()
        )))
    }

    /// Kill everything in the cgroup and remove it (and nothing else).
    pub fn destroy(&self) -> Result<()> {
        // Empty and without sub-cgroups (or gone): removed at once, nothing
        // to thaw or kill.
        if super::rmdir_done(&self.dir) {
            return Ok(());
        }
        let _ = self.freeze(false);
        if self.file("cgroup.kill").exists() {
            let _ = self.write("cgroup.kill", "1");
        } else {
            for pid in self.procs()? {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        // Seldom any sub-cgroups: the cgroup alone first (no listing).
        if super::rmdir_done(&self.dir) {
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        // Sub-cgroups first, deepest first (a cgroup with children cannot
        // be removed).
        for d in super::descendants(&self.dir).iter().rev() {
            while let Err(e) = fs::remove_dir(d) {
                if Instant::now() >= deadline || e.raw_os_error() != Some(libc::EBUSY) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        loop {
            match fs::remove_dir(&self.dir) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) if Instant::now() < deadline && e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => {
                    return Err(Error::Io {
                        path: self.dir.clone(),
                        source: e,
                    })
                }
            }
        }
    }

    /// The number of OOM kills so far (memory.events `oom_kill`).
    pub fn oom_kills(&self) -> u64 {
        self.read("memory.events")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("oom_kill ").and_then(|v| v.parse().ok()))
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_paths() {
        let c = Cgroup::resolve(Some(Path::new("/a/b")), "x").unwrap();
        assert_eq!(c.dir, Path::new("/sys/fs/cgroup/a/b"));
        assert!(Cgroup::resolve(Some(Path::new("/a/../../etc")), "x").is_err());
        assert!(Cgroup::resolve(Some(Path::new("/")), "x").is_err());
    }
}

//! The cgroup v1 filesystem driver, for legacy and hybrid hosts: one
//! container, one directory in every mounted hierarchy (and in the unified
//! one on a hybrid host), placed as runc's fs driver places them.

pub mod devices;
pub mod hierarchy;
mod resources;
mod self_join;
mod stats;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

pub use hierarchy::Hierarchy;
pub use self_join::SelfJoin;
pub use stats::stats;

use crate::error::{Error, Result};

/// Does this host have cgroup v1 hierarchies (legacy or hybrid layout)?
pub fn is_v1_host() -> bool {
    !super::v2::is_v2_host() && !hierarchy::all().is_empty()
}

/// The v1 controllers mounted on this host.
pub fn available_controllers() -> Vec<String> {
    hierarchy::all()
        .iter()
        .flat_map(|h| h.controllers.iter().cloned())
        .filter(|c| !c.starts_with("name="))
        .collect()
}

/// One container's cgroup: its directory in each hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    /// One absolute directory per hierarchy, in [`hierarchy::all`]'s order.
    pub dirs: Vec<PathBuf>,
}

fn write_err(p: &Path, value: &str, e: std::io::Error) -> Error {
    Error::Invalid {
        field: format!("cgroup {}", p.display()),
        msg: format!("write {value:?}: {e}"),
    }
}

impl Cgroup {
    /// Resolve `linux.cgroupsPath` in every hierarchy as runc's v1 fs
    /// driver does: absolute paths from each hierarchy's root, relative
    /// ones (and `<id>` when none is given) below skiff's own cgroup there.
    pub fn resolve(cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup> {
        let inner = match cgroups_path {
            Some(p) => super::v2::clean(p)?,
            None => PathBuf::from(id),
        };
        if inner.as_os_str().is_empty() {
            return Err(Error::Invalid {
                field: "linux.cgroupsPath".into(),
                msg: "resolves to the root cgroup".into(),
            });
        }
        let absolute = cgroups_path.is_some_and(Path::is_absolute);
        let dirs = hierarchy::all()
            .iter()
            .zip(hierarchy::own_all())
            .map(|(h, own)| {
                let base = if absolute {
                    h.mount.clone()
                } else {
                    h.mount.join(own)
                };
                base.join(&inner)
            })
            .collect();
        Ok(Cgroup { dirs })
    }

    /// The directory in the hierarchy that carries `controller`.
    pub fn dir(&self, controller: &str) -> Option<&Path> {
        let h = hierarchy::of(controller)?;
        self.dirs
            .iter()
            .find(|d| hierarchy::contains(h, d))
            .map(PathBuf::as_path)
    }

    /// The directory in the unified hierarchy of a hybrid host.
    fn unified_dir(&self) -> Option<&Path> {
        let h = hierarchy::all().iter().find(|h| h.is_unified())?;
        self.dirs
            .iter()
            .find(|d| hierarchy::contains(h, d))
            .map(PathBuf::as_path)
    }

    /// Read `file` of `controller`'s directory, trimmed.
    pub fn read(&self, controller: &str, file: &str) -> Result<String> {
        let dir = self
            .dir(controller)
            .ok_or_else(|| not_mounted(controller))?;
        let p = dir.join(file);
        fs::read_to_string(&p)
            .map(|s| s.trim().to_string())
            .map_err(|e| Error::Io { path: p, source: e })
    }

    /// Write `value` to `file` of `controller`'s directory; the error names
    /// the file and the value.
    pub fn write(&self, controller: &str, file: &str, value: &str) -> Result<()> {
        let dir = self
            .dir(controller)
            .ok_or_else(|| not_mounted(controller))?;
        let p = dir.join(file);
        fs::write(&p, value).map_err(|e| write_err(&p, value, e))
    }

    /// Does `file` exist in `controller`'s directory?
    pub fn has_file(&self, controller: &str, file: &str) -> bool {
        self.dir(controller).is_some_and(|d| d.join(file).exists())
    }

    /// [`Cgroup::prepare`], then [`Cgroup::configure`]. The init joins
    /// afterwards, with [`Cgroup::join`].
    pub fn create(&self, resources: Option<&LinuxResources>) -> Result<()> {
        self.prepare()?;
        self.configure(resources)
    }

    /// Create the directories (cpuset ones get their parent's cpus and
    /// mems, as the kernel leaves them empty) and refuse a cgroup that
    /// already holds processes or is frozen: what must be so before a
    /// process may join.
    pub fn prepare(&self) -> Result<()> {
        self.make_dirs()?;
        if !self.procs()?.is_empty() {
            return Err(Error::Invalid {
                field: "linux.cgroupsPath".into(),
                msg: format!("cgroup {} already holds processes", self.display()),
            });
        }
        if self.is_frozen() {
            return Err(Error::Invalid {
                field: "linux.cgroupsPath".into(),
                msg: format!("cgroup {} is frozen", self.display()),
            });
        }
        Ok(())
    }

    /// Apply `resources` and the device rules (runc sets them after init
    /// joined, too).
    pub fn configure(&self, resources: Option<&LinuxResources>) -> Result<()> {
        if let Some(r) = resources {
            self.set(r)?;
        }
        self.apply_devices(resources)
    }

    /// Make the directories missing in some hierarchy and move `pid` into
    /// all of them (after systemd made the scope in those it manages).
    pub fn adopt(&self, pid: i32) -> Result<()> {
        self.make_dirs()?;
        self.join(pid)
    }

    /// Create the directories and their missing parents.
    fn make_dirs(&self) -> Result<()> {
        for (h, dir) in hierarchy::all().iter().zip(&self.dirs) {
            make_dir(h, dir)?;
        }
        Ok(())
    }

    /// Create only the directory in the unified hierarchy of a hybrid host
    /// (and its missing parents), for a clone straight into it; the v1
    /// hierarchies follow with [`Cgroup::create`]. Returns the directory.
    pub fn make_unified(&self) -> Result<Option<&Path>> {
        for (h, dir) in hierarchy::all().iter().zip(&self.dirs) {
            if h.is_unified() {
                make_dir(h, dir)?;
                return Ok(Some(dir));
            }
        }
        Ok(None)
    }

    /// Move process `pid` into the cgroup in every hierarchy.
    pub fn join(&self, pid: i32) -> Result<()> {
        self.dirs.iter().try_for_each(|d| join_one(d, pid))
    }

    /// Apply `r` (used by create and by `update`).
    pub fn set(&self, r: &LinuxResources) -> Result<()> {
        resources::apply(self, r)
    }

    /// Write the device rules: deny all, the config's rules, then runc's
    /// default allow-list, changing only what differs from the current list.
    pub fn apply_devices(&self, r: Option<&LinuxResources>) -> Result<()> {
        let Some(dir) = self.dir("devices") else {
            return Ok(());
        };
        devices::apply(dir, &super::device_rules(r))
    }

    /// The directory processes are counted in: the devices hierarchy (as
    /// runc's GetAllPids), else the first v1 one.
    fn procs_dir(&self) -> Option<&Path> {
        ["devices", "freezer", "pids", "memory"]
            .iter()
            .find_map(|c| self.dir(c))
            // Not the unified one: create clones init into it before it
            // makes the cgroup's v1 hierarchies, and checks them empty.
            .or_else(|| {
                hierarchy::all()
                    .iter()
                    .zip(&self.dirs)
                    .find(|(h, _)| !h.is_unified())
                    .map(|(_, d)| d.as_path())
            })
            .or(self.dirs.first().map(PathBuf::as_path))
    }

    /// Pids in the cgroup and its sub-cgroups.
    pub fn procs(&self) -> Result<Vec<i32>> {
        let Some(dir) = self.procs_dir() else {
            return Ok(Vec::new());
        };
        super::procs_below(dir)
    }

    /// Does the cgroup exist (in any hierarchy)?
    pub fn exists(&self) -> bool {
        self.dirs.iter().any(|d| d.is_dir())
    }

    /// Is the freezer cgroup FROZEN?
    pub fn is_frozen(&self) -> bool {
        self.read("freezer", "freezer.state")
            .is_ok_and(|s| s == "FROZEN")
    }

    /// Freeze or thaw. Freezing retries as runc does: a cgroup can stay
    /// FREEZING while a process is in an uninterruptible sleep, so every
    /// 50 tries it is thawed for a moment and frozen again.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        if self.dir("freezer").is_none() {
            return Err(not_mounted("freezer"));
        }
        if !frozen {
            return self.write("freezer", "freezer.state", "THAWED");
        }
        for i in 0..1000 {
            if i % 50 == 49 {
                let _ = self.write("freezer", "freezer.state", "THAWED");
                std::thread::sleep(Duration::from_millis(10));
            }
            self.write("freezer", "freezer.state", "FROZEN")?;
            if i % 25 == 24 {
                std::thread::sleep(Duration::from_micros(10));
            }
            match self.read("freezer", "freezer.state")?.as_str() {
                "FROZEN" => return Ok(()),
                "FREEZING" => continue,
                s => {
                    return Err(Error::Child(format!(
                        "cgroup {}: unexpected freezer state {s} after writing FROZEN",
                        self.display()
                    )))
                }
            }
        }
        let _ = self.write("freezer", "freezer.state", "THAWED");
        Err(Error::Child(format!(
            "cgroup {}: unable to freeze (stuck in FREEZING)",
            self.display()
        )))
    }

    /// Kill everything in the cgroup and remove its directories (and
    /// nothing else), sub-cgroups first.
    pub fn destroy(&self) -> Result<()> {
        // Empty and without sub-cgroups, as after every container but a
        // killed one: removed at once, nothing to thaw or kill. (rmdir
        // cannot remove skiff's own cgroup or one above it: they hold
        // skiff or a child cgroup.)
        if self.dirs.iter().all(|d| super::rmdir_done(d)) {
            return Ok(());
        }
        if !self.exists() {
            return Ok(());
        }
        // Never skiff's own cgroup or one above it (a corrupt state file
        // must not make skiff kill its caller).
        let own = hierarchy::own_all();
        for ((h, own), d) in hierarchy::all().iter().zip(own).zip(&self.dirs) {
            if h.mount.join(own).starts_with(d) {
                return Err(Error::Invalid {
                    field: "linux.cgroupsPath".into(),
                    msg: format!("{} holds skiff itself: not removed", d.display()),
                });
            }
        }
        if self.dir("freezer").is_some_and(Path::exists) {
            let _ = self.freeze(false);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let via_kill = self
            .unified_dir()
            .map(|d| d.join("cgroup.kill"))
            .filter(|k| k.exists());
        loop {
            let pids = self.procs().unwrap_or_default();
            if pids.is_empty() || Instant::now() >= deadline {
                break;
            }
            match &via_kill {
                Some(k) => {
                    let _ = fs::write(k, "1");
                }
                None => {
                    for pid in pids {
                        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        for dir in &self.dirs {
            remove_tree(dir, deadline)?;
        }
        Ok(())
    }

    /// The number of OOM kills so far (memory.oom_control `oom_kill`).
    pub fn oom_kills(&self) -> u64 {
        self.read("memory", "memory.oom_control")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("oom_kill ").and_then(|v| v.parse().ok()))
            })
            .unwrap_or(0)
    }

    /// The directories, for messages.
    pub fn display(&self) -> String {
        self.dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Move process `pid` into cgroup directory `dir` (its `cgroup.procs`).
pub fn join_one(dir: &Path, pid: i32) -> Result<()> {
    let (p, v) = (dir.join("cgroup.procs"), pid.to_string());
    fs::write(&p, &v).map_err(|e| write_err(&p, &v, e))
}

fn not_mounted(controller: &str) -> Error {
    Error::Unsupported {
        field: "linux.resources".into(),
        msg: format!("the {controller} cgroup v1 controller is not mounted on this host"),
    }
}

/// Create `dir` of hierarchy `h` and its missing parents (cpuset ones get
/// their parent's cpus and mems).
fn make_dir(h: &hierarchy::Hierarchy, dir: &Path) -> Result<()> {
    let is_cpuset = hierarchy::of("cpuset").is_some_and(|c| c == h);
    let rel = dir.strip_prefix(&h.mount).unwrap_or(dir);
    let mut cur = h.mount.clone();
    for comp in rel.components() {
        let parent = cur.clone();
        cur.push(comp);
        super::mkdir_once(&cur)?;
        if is_cpuset {
            inherit_cpuset(&parent, &cur)?;
        }
    }
    Ok(())
}

/// Give a new cpuset cgroup its parent's cpus and mems where it has none.
fn inherit_cpuset(parent: &Path, dir: &Path) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let p = dir.join(file);
        let cur = fs::read_to_string(&p).unwrap_or_default();
        if !cur.trim().is_empty() {
            continue;
        }
        let from = parent.join(file);
        let v = fs::read_to_string(&from).map_err(|e| Error::Io {
            path: from,
            source: e,
        })?;
        fs::write(&p, v.trim()).map_err(|e| write_err(&p, v.trim(), e))?;
    }
    Ok(())
}

/// Remove `dir` and its sub-cgroups, deepest first, retrying EBUSY (a
/// killed process leaves its cgroup a moment later) until `deadline`.
fn remove_tree(dir: &Path, deadline: Instant) -> Result<()> {
    // A container's cgroup seldom has sub-cgroups: try it alone first and
    // list it only if that fails (one opendir fewer per hierarchy).
    if super::rmdir_done(dir) {
        return Ok(());
    }
    let mut all = super::descendants(dir);
    all.insert(0, dir.to_path_buf());
    for d in all.iter().rev() {
        loop {
            match fs::remove_dir(d) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if Instant::now() < deadline && e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => {
                    return Err(Error::Io {
                        path: d.clone(),
                        source: e,
                    })
                }
            }
        }
    }
    Ok(())
}

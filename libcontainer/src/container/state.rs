//! The on-disk state of one container: `<root>/<id>/state.json`, written
//! atomically, and the status derived from it and the live process.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result, SysContext};
use crate::procfs;

/// Where a container is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// `create` is still running.
    Creating,
    /// Built, init waiting for `start`.
    Created,
    /// The user process runs.
    Running,
    /// Frozen (needs the cgroup manager).
    Paused,
    /// The init process has exited.
    Stopped,
}

impl Status {
    /// The name runc prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What skiff records about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// The container id.
    pub id: String,
    /// Host pid of the init process.
    pub pid: i32,
    /// Start time of the init process, to detect pid reuse.
    pub pid_start: u64,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The rootfs directory.
    pub rootfs: PathBuf,
    /// When the container was created (RFC 3339).
    pub created: String,
    /// The user that created it.
    pub owner: String,
    /// The config the container was created from.
    pub config: Spec,
    /// The container's cgroup v2 directory, when skiff made one.
    #[serde(default)]
    pub cgroup: Option<PathBuf>,
    /// The container's cgroup v1 directories (one per hierarchy), when
    /// skiff made them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cgroup_paths: Vec<PathBuf>,
    /// The cgroup is a systemd scope (`--systemd-cgroup`).
    #[serde(default)]
    pub systemd: bool,
    /// `create` has not finished: saved early so that `delete` can clean
    /// up after a create that was killed half-way.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub creating: bool,
}

impl State {
    /// The annotations of the config, empty if none.
    pub fn annotations(&self) -> HashMap<String, String> {
        self.config.annotations().clone().unwrap_or_default()
    }

    /// The container's cgroup, if it has its own.
    pub fn cgroup(&self) -> Option<crate::cgroups::Cgroup> {
        if !self.cgroup_paths.is_empty() {
            return Some(crate::cgroups::Cgroup::V1(crate::cgroups::v1::Cgroup {
                dirs: self.cgroup_paths.clone(),
            }));
        }
        self.cgroup
            .clone()
            .map(|dir| crate::cgroups::Cgroup::V2(crate::cgroups::v2::Cgroup { dir }))
    }

    /// Record the container's cgroup (`None`: it has none of its own).
    pub fn set_cgroup(&mut self, cg: Option<&crate::cgroups::Cgroup>) {
        self.cgroup = cg.and_then(|c| c.v2()).map(|c| c.dir.clone());
        self.cgroup_paths = match cg {
            Some(crate::cgroups::Cgroup::V1(c)) => c.dirs.clone(),
            _ => Vec::new(),
        };
    }

    /// The init pid.
    pub fn init_pid(&self) -> Pid {
        Pid::from_raw(self.pid)
    }
}

/// The directory holding all containers' state (`--root`).
#[derive(Debug, Clone)]
pub struct StateRoot {
    path: PathBuf,
}

/// The file in a container's dir that init blocks on until `start`.
pub const EXEC_FIFO: &str = "exec.fifo";
const STATE_FILE: &str = "state.json";
/// The next state, written before it is renamed over [`STATE_FILE`].
const STAGED_FILE: &str = ".state.json.tmp";
/// Beside the state: init's pid and start time and the cgroup, in a few
/// bytes of text, so that `delete --force` can still end a container whose
/// state.json got corrupted (runc would leak its processes).
const REMAINS_FILE: &str = "remains";

/// What `delete --force` needs to end a container without its state.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remains {
    /// Host pid of init.
    pub pid: i32,
    /// Its start time, to tell a reused pid.
    pub pid_start: u64,
    /// The container's cgroup directories (one on v2, one per hierarchy
    /// on v1), when skiff made them.
    pub cgroup: Vec<PathBuf>,
}

impl Remains {
    fn encode(&self) -> Vec<u8> {
        let mut out = format!("{} {}\n", self.pid, self.pid_start).into_bytes();
        for cg in &self.cgroup {
            out.extend_from_slice(cg.as_os_str().as_bytes());
            out.push(b'\n');
        }
        out
    }

    fn decode(data: &[u8]) -> Option<Remains> {
        let mut lines = data.split(|&b| b == b'\n');
        let first = std::str::from_utf8(lines.next()?).ok()?;
        let (pid, start) = first.split_once(' ')?;
        // Only whole lines (a torn last one could name a parent cgroup).
        let whole = lines.clone().count().saturating_sub(1);
        let cgroup = lines
            .take(whole)
            .take_while(|l| l.first() == Some(&b'/'))
            .map(|l| PathBuf::from(std::ffi::OsStr::from_bytes(l)))
            .collect();
        Some(Remains {
            pid: pid.parse().ok().filter(|&p| p > 0)?,
            pid_start: start.parse().ok()?,
            cgroup,
        })
    }
}

/// Check that `id` is safe to use as a directory name, as runc does.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::BadId(id.to_string()))
    }
}

impl StateRoot {
    /// Use `path` as the state root, creating it (mode 0700) if missing.
    pub fn open(path: &Path) -> Result<StateRoot> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .path(path)?;
        Ok(StateRoot {
            path: path.to_path_buf(),
        })
    }

    /// The directory of container `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.path.join(id)
    }

    /// Reserve `id`: create its directory, failing if it exists, and hold
    /// its lock. The directory is made under a name no id can have (it has
    /// spaces), locked, and only then renamed to `id` (RENAME_NOREPLACE), so
    /// no other command ever finds it unlocked and without a state (which
    /// `delete` takes for the remains of a killed create).
    pub fn reserve(&self, id: &str) -> Result<Lock> {
        use std::os::unix::fs::DirBuilderExt;
        validate_id(id)?;
        let dir = self.dir(id);
        let tmp = self.path.join(format!(
            ".creating {} {}",
            std::process::id(),
            nix::unistd::gettid()
        ));
        std::fs::DirBuilder::new()
            .mode(0o711)
            .create(&tmp)
            .path(&tmp)?;
        let res = lock_dir(&tmp).and_then(|lock| {
            crate::sys::rename_noreplace(&tmp, &dir)
                .map(|()| lock)
                .map_err(std::io::Error::from)
        });
        res.map_err(|e| {
            let _ = std::fs::remove_dir(&tmp);
            match e.kind() {
                std::io::ErrorKind::AlreadyExists => Error::Exists(id.to_string()),
                _ => Error::Io {
                    path: dir,
                    source: e,
                },
            }
        })
    }

    /// Take the exclusive lock of container `id`, which must exist.
    pub fn lock(&self, id: &str) -> Result<Lock> {
        validate_id(id)?;
        let dir = self.dir(id);
        lock_dir(&dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotExist(id.to_string()),
            _ => Error::Io {
                path: dir,
                source: e,
            },
        })
    }

    /// Load the state of container `id`.
    pub fn load(&self, id: &str) -> Result<State> {
        validate_id(id)?;
        let path = self.dir(id).join(STATE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotExist(id.to_string()))
            }
            Err(e) => return Err(Error::Io { path, source: e }),
        };
        // Not UTF-8 is corrupt too (and `delete --force` must get past it).
        let text = String::from_utf8(bytes).map_err(|e| Error::BadState {
            id: id.to_string(),
            path: path.clone(),
            msg: e.to_string(),
        })?;
        parse(&text, id, &path)
    }

    /// Write the state atomically (temp file, rename). No fsync: the state
    /// root is normally on tmpfs (/run), a container does not outlive a
    /// crash anyway, and the rename alone keeps readers from seeing a torn
    /// file (runc does the same); an fsync cost 1-2 ms on disk-backed roots.
    pub fn save(&self, state: &State) -> Result<()> {
        self.stage(state)?;
        self.commit(state)
    }

    /// The first half of [`StateRoot::save`]: write `state` to the
    /// temporary file, not yet seen by readers (`create` does it while
    /// init works, so that only the rename is left when init is ready).
    pub fn stage(&self, state: &State) -> Result<()> {
        use std::io::Write;
        let tmp = self.dir(&state.id).join(STAGED_FILE);
        let data = serde_json::to_vec(state).map_err(|e| Error::BadState {
            id: state.id.clone(),
            path: tmp.clone(),
            msg: e.to_string(),
        })?;
        let mut f = File::create(&tmp).path(&tmp)?;
        f.write_all(&data).path(&tmp)
    }

    /// The second half of [`StateRoot::save`]: put the state [`StateRoot::stage`]
    /// wrote (which must be `state`) in place.
    ///
    /// Over an earlier state the two files are exchanged and the old one
    /// (now the temporary) removed: ext4 allocates a file's blocks when it
    /// is renamed over another (`auto_da_alloc`), and with `discard` the
    /// unlink at `delete` then waits for the disk (~0.1 ms each, where
    /// /run is on disk); an exchanged file keeps its allocation delayed.
    pub fn commit(&self, state: &State) -> Result<()> {
        let dir = self.dir(&state.id);
        let tmp = dir.join(STAGED_FILE);
        let path = dir.join(STATE_FILE);
        match crate::sys::rename_exchange(&tmp, &path) {
            Ok(()) => std::fs::remove_file(&tmp).path(&tmp)?,
            // The first save, or a filesystem without exchange.
            Err(nix::errno::Errno::ENOENT | nix::errno::Errno::EINVAL) => {
                std::fs::rename(&tmp, &path).path(&tmp)?
            }
            Err(e) => {
                return Err(e).step(|| format!("exchange {} and {}", tmp.display(), path.display()))
            }
        }
        // Init and the cgroup are final from the first save that names
        // init on: the remains record is written once, then.
        match state.creating {
            true => self.write_remains(state),
            false => self.save_remains(state),
        }
    }

    /// Write the remains record of `state` (once it names init) unless
    /// there is one: init and its cgroup do not change after that.
    pub fn save_remains(&self, state: &State) -> Result<()> {
        match self.dir(&state.id).join(REMAINS_FILE).exists() {
            true => Ok(()),
            false => self.write_remains(state),
        }
    }

    fn write_remains(&self, state: &State) -> Result<()> {
        if state.pid <= 0 {
            return Ok(());
        }
        let path = self.dir(&state.id).join(REMAINS_FILE);
        let remains = Remains {
            pid: state.pid,
            pid_start: state.pid_start,
            cgroup: state.cgroup().map(|c| c.dirs()).unwrap_or_default(),
        };
        std::fs::write(&path, remains.encode()).path(&path)
    }

    /// The remains record of container `id`, if there is a readable one.
    pub fn load_remains(&self, id: &str) -> Option<Remains> {
        Remains::decode(&std::fs::read(self.dir(id).join(REMAINS_FILE)).ok()?)
    }

    /// Ids of every container under this root, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.path)
            .path(&self.path)?
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| validate_id(name).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Remove the directory of `id` and everything in it.
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dir(id);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
                path: dir,
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

/// Open directory `dir` and take its exclusive lock, waiting for it.
fn lock_dir(dir: &Path) -> std::io::Result<Lock> {
    let file = File::open(dir)?;
    let file = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| e)?;
    Ok(Lock { file })
}

/// Parse the text of container `id`'s state file `path`.
pub fn parse(text: &str, id: &str, path: &Path) -> Result<State> {
    serde_json::from_str(text).map_err(|e| Error::BadState {
        id: id.to_string(),
        path: path.to_path_buf(),
        msg: e.to_string(),
    })
}

/// The status of a container from its state and the live process.
pub fn status_of(root: &StateRoot, state: &State) -> Status {
    if state.pid <= 0 || !procfs::is_alive(state.init_pid(), state.pid_start) {
        return Status::Stopped;
    }
    if state.creating {
        Status::Creating
    } else if root.dir(&state.id).join(EXEC_FIFO).exists() {
        Status::Created
    } else if state.cgroup().is_some_and(|c| c.is_frozen()) {
        Status::Paused
    } else {
        Status::Running
    }
}

/// Held while a command changes a container; released on drop.
pub struct Lock {
    file: Flock<File>,
}

impl Lock {
    /// The locked fd. A forked child shares the lock through it until it
    /// closes it, so a child that outlives a killed parent must close it.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.file.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for good in ["a", "abc-1_2.3+x", "A.b"] {
            assert!(validate_id(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "x\n"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn remains_round_trip_and_garbage() {
        for r in [
            Remains {
                pid: 42,
                pid_start: 123456,
                cgroup: vec![PathBuf::from("/sys/fs/cgroup/a b/c")],
            },
            Remains {
                pid: 43,
                pid_start: 1,
                cgroup: vec![
                    PathBuf::from("/sys/fs/cgroup/cpu/x"),
                    PathBuf::from("/sys/fs/cgroup/memory/a/x"),
                ],
            },
            Remains {
                pid: 7,
                pid_start: 0,
                cgroup: vec![],
            },
        ] {
            assert_eq!(Remains::decode(&r.encode()), Some(r));
        }
        for bad in [
            &b""[..],
            b"x",
            b"12",
            b"-1 5\n",
            b"0 5\n",
            b"5 x\n",
            b"\xff 1\n",
        ] {
            assert_eq!(Remains::decode(bad), None, "{bad:?}");
        }
        // A relative or torn cgroup line is not taken.
        let cg = |d: &[u8]| Remains::decode(d).map(|r| r.cgroup);
        assert_eq!(cg(b"5 6\nsys/fs\n"), Some(vec![]));
        assert_eq!(
            cg(b"5 6\n/sys/fs/cgroup/cpu/x\n/sys/fs/cgroup/mem"),
            Some(vec![PathBuf::from("/sys/fs/cgroup/cpu/x")])
        );
    }

    /// A new state root under the temporary dir, named for the test, with
    /// container "c1" reserved in it.
    fn temp_root_with_c1(test: &str) -> (PathBuf, StateRoot, Lock) {
        let path = std::env::temp_dir().join(format!("skiff-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        let root = StateRoot { path: path.clone() };
        let lock = root.reserve("c1").unwrap();
        (path, root, lock)
    }

    #[test]
    fn reserve_is_locked_and_exclusive() {
        let (path, root, lock) = temp_root_with_c1("reserve");
        assert!(matches!(root.reserve("c1"), Err(Error::Exists(_))));
        // Its lock is held: a second lock on the dir would block.
        let f = File::open(root.dir("c1")).unwrap();
        assert!(Flock::lock(f, FlockArg::LockExclusiveNonblock).is_err());
        drop(lock);
        // A half-made reservation (a name no id can have) is not listed.
        std::fs::create_dir(path.join(".creating 1 2")).unwrap();
        assert_eq!(root.ids().unwrap(), vec!["c1".to_string()]);
        std::fs::remove_dir_all(&path).unwrap();
    }

    /// A save over an earlier state puts the staged file itself in place
    /// and leaves no temporary file (the old state, after the exchange)
    /// behind. That it was not renamed over shows only in time, on ext4
    /// (hack/bench).
    #[test]
    fn save_over_a_state_puts_the_staged_file_in_place() {
        use std::os::unix::fs::MetadataExt;
        let (path, root, lock) = temp_root_with_c1("commit");
        let mut state = State {
            id: "c1".into(),
            pid: 0,
            pid_start: 0,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: String::new(),
            owner: String::new(),
            config: Spec::default(),
            cgroup: None,
            cgroup_paths: Vec::new(),
            systemd: false,
            creating: true,
        };
        root.save(&state).unwrap();
        state.bundle = "/b2".into();
        root.stage(&state).unwrap();
        let staged = std::fs::metadata(root.dir("c1").join(STAGED_FILE))
            .unwrap()
            .ino();
        root.commit(&state).unwrap();
        let saved = std::fs::metadata(root.dir("c1").join(STATE_FILE))
            .unwrap()
            .ino();
        assert_eq!(staged, saved);
        assert!(!root.dir("c1").join(STAGED_FILE).exists());
        assert_eq!(root.load("c1").unwrap().bundle, PathBuf::from("/b2"));
        drop(lock);
        std::fs::remove_dir_all(&path).unwrap();
    }
}

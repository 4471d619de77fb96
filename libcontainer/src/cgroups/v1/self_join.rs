//! A new process moving itself into a v1 cgroup.
//!
//! Writing another process's pid to a v1 `cgroup.procs` (or `tasks`) takes
//! the kernel's global `cgroup_threadgroup_rwsem` for writing, and the first
//! writer after a quiet spell waits there for an RCU grace period: on a
//! hybrid host 7-30 ms in most container starts that come tens of
//! milliseconds apart. A thread writing `0` (itself) to `tasks` skips that
//! lock (kernel/cgroup/cgroup.c, `cgroup_procs_write_start`). A freshly
//! cloned child is single-threaded, so moving its one thread moves the
//! whole process, as `cgroup.procs` would. The unified hierarchy of a hybrid
//! host has no `tasks`: the child is cloned into it (CLONE_INTO_CGROUP).

use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::{hierarchy, write_err, Cgroup};
use crate::error::{Error, IoContext, Result};

/// The `tasks` files of a cgroup's v1 hierarchies, opened by the parent
/// for the child to write, and its unified directory for CLONE_INTO_CGROUP.
#[derive(Debug)]
pub struct SelfJoin {
    tasks: Vec<(PathBuf, File)>,
    /// The directory in the unified hierarchy (hybrid hosts), opened for
    /// CLONE_INTO_CGROUP.
    pub unified: Option<(PathBuf, OwnedFd)>,
}

impl SelfJoin {
    /// Open what the child of the next clone needs to join `cg`.
    pub fn open(cg: &Cgroup) -> Result<SelfJoin> {
        let mut join = SelfJoin {
            tasks: Vec::new(),
            unified: None,
        };
        for (h, dir) in hierarchy::all().iter().zip(&cg.dirs) {
            // std opens with O_CLOEXEC: the files end with the child's exec.
            if h.is_unified() {
                let fd = OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_DIRECTORY)
                    .open(dir)
                    .path(dir)?;
                join.unified = Some((dir.clone(), fd.into()));
            } else {
                join.tasks.push(open_tasks(dir)?);
            }
        }
        Ok(join)
    }

    /// Open the `tasks` files of `cg`'s v1 hierarchies only, to send to a
    /// child cloned before they existed (into the unified hierarchy, if
    /// any, by the clone).
    pub fn open_tasks(cg: &Cgroup) -> Result<SelfJoin> {
        let tasks = hierarchy::all()
            .iter()
            .zip(&cg.dirs)
            .filter(|(h, _)| !h.is_unified())
            .map(|(_, dir)| open_tasks(dir))
            .collect::<Result<_>>()?;
        Ok(SelfJoin {
            tasks,
            unified: None,
        })
    }

    /// The `tasks` files' paths and fds, in the same order, to send.
    pub fn tasks(&self) -> (Vec<PathBuf>, Vec<RawFd>) {
        self.tasks
            .iter()
            .map(|(p, f)| (p.clone(), f.as_raw_fd()))
            .unzip()
    }

    /// The join a child received: `paths` and their `fds`, as
    /// [`SelfJoin::tasks`] gave them.
    pub fn received(paths: Vec<PathBuf>, fds: Vec<OwnedFd>) -> Result<SelfJoin> {
        if paths.len() != fds.len() {
            return Err(Error::Child(format!(
                "cgroup v1: {} tasks files named, {} received",
                paths.len(),
                fds.len()
            )));
        }
        Ok(SelfJoin {
            tasks: paths
                .into_iter()
                .zip(fds.into_iter().map(File::from))
                .collect(),
            unified: None,
        })
    }

    /// In the child, single-threaded: move itself into every v1 hierarchy,
    /// and close the files. Allocates nothing unless it fails.
    pub fn join_self(self) -> Result<()> {
        for (p, f) in &self.tasks {
            match nix::unistd::write(f.as_fd(), b"0") {
                Ok(1) => {}
                Ok(_) => return Err(write_err(p, "0", Errno::EIO.into())),
                Err(e) => return Err(write_err(p, "0", e.into())),
            }
        }
        Ok(())
    }
}

/// Open `dir`'s `tasks` file for writing (close-on-exec, as std opens).
fn open_tasks(dir: &Path) -> Result<(PathBuf, File)> {
    let p = dir.join("tasks");
    let f = OpenOptions::new().write(true).open(&p).path(&p)?;
    Ok((p, f))
}

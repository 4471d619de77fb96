//! The clone of a container's init or exec process, straight into the
//! container's cgroup.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::cgroups::v1::{self, SelfJoin};
use crate::cgroups::Cgroup;
use crate::error::{Result, SysContext};
use crate::sys::{self, Forked};

/// What [`clone_into`] returns, in the parent and in the child.
#[derive(Debug)]
pub(crate) enum Cloned {
    /// In the parent: the child's pid.
    Parent(Pid),
    /// In the child: on cgroup v1, the move into the v1 hierarchies it
    /// makes itself ([`SelfJoin::join_self`]) as its first step, reporting
    /// a failure as any other.
    Child(Option<SelfJoin>),
}

/// clone3 straight into `cgroup` (CLONE_INTO_CGROUP, given its `fd`); on
/// kernels without it, clone and then move the child in. On cgroup v1 the
/// child moves itself into the v1 hierarchies (see [`SelfJoin`]), and the
/// unified one of a hybrid host is joined by the clone.
pub(crate) fn clone_into(
    flags: u64,
    cgroup: Option<&Cgroup>,
    fd: Option<&OwnedFd>,
) -> Result<Cloned> {
    let join = match cgroup {
        Some(Cgroup::V1(cg)) => Some(SelfJoin::open(cg)?),
        _ => None,
    };
    let raw = match &join {
        Some(j) => j.unified.as_ref().map(|(_, f)| f.as_raw_fd()),
        None => fd.map(AsRawFd::as_raw_fd),
    };
    if let Some(raw) = raw {
        match sys::clone3(flags, Some(raw)) {
            Err(Errno::E2BIG | Errno::ENOSYS) => {}
            r => return r.step(|| "clone3".into()).map(|f| cloned(f, join)),
        }
    }
    let forked = sys::clone3(flags, None).step(|| "clone3".into())?;
    if let Forked::Parent(pid) = forked {
        // Without CLONE_INTO_CGROUP: by pid, into the unified hierarchy of
        // a hybrid host, or the v2 cgroup.
        let joined = match (cgroup, &join) {
            (Some(Cgroup::V1(_)), Some(j)) => j
                .unified
                .as_ref()
                .map_or(Ok(()), |(dir, _)| v1::join_one(dir, pid.as_raw())),
            (Some(cg), _) => cg.join(pid.as_raw()),
            (None, _) => Ok(()),
        };
        if let Err(e) = joined {
            // The child waits for us: end it, so no process outside the
            // cgroup lives on (and a caller's retry forks the only one).
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(e);
        }
    }
    Ok(cloned(forked, join))
}

fn cloned(f: Forked, join: Option<SelfJoin>) -> Cloned {
    match f {
        Forked::Parent(pid) => Cloned::Parent(pid),
        Forked::Child => Cloned::Child(join),
    }
}

//! The parent side of `exec`: join the pid namespace, fork the process with
//! one clone3 and wait until it has executed (channel EOF) or failed.

use std::path::PathBuf;

use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::Process;

use super::clone::Cloned;
use super::state::{State, StateRoot};
use super::{load, write_pid_file, Status};
use crate::error::{Error, Result, SysContext};
use crate::process::attrs::Attrs;
use crate::process::channel::{self, Msg};
use crate::process::exec::{self as child, ExecArgs};
use crate::process::tty;
use crate::procfs;
use crate::sys;

/// Options of `exec`.
#[derive(Debug, Clone)]
pub struct ExecOpts {
    /// The process to run (from `--process` or built from the flags).
    pub process: Process,
    /// `--user` when it names a user (resolved in the container).
    pub user: Option<String>,
    /// `--additional-gids`.
    pub extra_groups: Vec<String>,
    /// `--console-socket`.
    pub console_socket: Option<PathBuf>,
    /// `--pid-file`.
    pub pid_file: Option<PathBuf>,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
    /// fds to become the process's stdin, stdout and stderr instead of the
    /// caller's own (the containerd shim's); open until exec returns.
    pub stdio: Option<[std::os::fd::RawFd; 3]>,
    /// An already connected socket to send the pty master on, instead of
    /// connecting to `console_socket` (the shim keeps the other end).
    pub console_stream: Option<std::sync::Arc<std::os::fd::OwnedFd>>,
    /// `--ignore-paused`: exec into a paused container (the process starts
    /// frozen, as runc's).
    pub ignore_paused: bool,
    /// `--cgroup`: a sub-cgroup of the container's (cgroup v2) to start
    /// the process in; it must exist.
    pub sub_cgroup: Option<PathBuf>,
}

const NAMESPACES: [(&str, CloneFlags); 7] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("mnt", CloneFlags::CLONE_NEWNS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("time", CloneFlags::from_bits_retain(0x80)),
];

/// Start `opts.process` in container `id`; returns its host pid once it has
/// executed. The caller is its parent and must wait for it.
pub fn exec(root: &StateRoot, id: &str, opts: &ExecOpts) -> Result<Pid> {
    exec_loaded(load(root, id)?, opts)
}

/// [`exec`] into a container whose state and status the caller has just
/// read with [`load`] (the CLI needs its config to build the process
/// first): each read costs the state file, /proc and the freezer again.
pub fn exec_loaded((s, status): (State, Status), opts: &ExecOpts) -> Result<Pid> {
    let id = s.id.as_str();
    let paused_ok = opts.ignore_paused && status == Status::Paused;
    if !paused_ok && !matches!(status, Status::Running | Status::Created) {
        return Err(Error::WrongStatus {
            id: id.into(),
            status: status.to_string(),
            msg: if status == Status::Paused {
                "cannot exec in a paused container (use --ignore-paused to override)".into()
            } else {
                "cannot exec in a container that is not running".into()
            },
        });
    }
    let attrs = Attrs::resolve(&opts.process, s.config.linux().as_ref())?;
    attrs.check_host()?;
    let init = s.init_pid();
    let pidfd = sys::pidfd_open(init).step(|| format!("pidfd_open {init}"))?;
    let differs =
        |name: &str| procfs::ns_inode(&s.pid.to_string(), name) != procfs::ns_inode("self", name);
    let ns = NAMESPACES
        .iter()
        .filter(|(n, _)| differs(n))
        .fold(CloneFlags::empty(), |a, (_, f)| a | *f);
    // Joining a pid namespace needs CAP_SYS_ADMIN in skiff's own user
    // namespace too. A rootless caller has none: its child joins the user
    // namespace and the pid namespace together and forks the process there.
    let mut ns = ns;
    // Where this thread forks children goes back after the fork: a thread
    // whose children's pid namespace is not its own cannot create threads
    // (EINVAL), which the foreground pty copy of `exec -t` needs.
    let mut own_pid_ns = None;
    if differs("pid") {
        let own = std::fs::File::open("/proc/thread-self/ns/pid").map_err(|e| Error::Io {
            path: "/proc/thread-self/ns/pid".into(),
            source: e,
        })?;
        match nix::sched::setns(&pidfd, CloneFlags::CLONE_NEWPID) {
            Err(nix::errno::Errno::EPERM) if ns.contains(CloneFlags::CLONE_NEWUSER) => {
                ns |= CloneFlags::CLONE_NEWPID;
            }
            r => {
                r.step(|| "join the container's pid namespace".into())?;
                own_pid_ns = Some(own);
            }
        }
    }
    let console_socket = match (&opts.console_socket, &opts.console_stream) {
        (Some(p), _) => Some(tty::connect(p)?),
        (None, Some(fd)) => Some(fd.try_clone().map_err(|e| Error::Io {
            path: "console stream".into(),
            source: e,
        })?),
        (None, None) => None,
    };
    let (parent_chan, child_chan) = channel::pair()?;
    let cgroup = match (s.cgroup(), &opts.sub_cgroup) {
        (Some(c), Some(sub)) => Some(sub_cgroup(&c, sub)?),
        (None, Some(_)) => {
            return Err(Error::Invalid {
                field: "--cgroup".into(),
                msg: "the container has no cgroup of its own".into(),
            })
        }
        (c, None) => c,
    };
    // `Running` was told from the freezer a moment ago; a created
    // container and a sub-cgroup are asked now.
    let asked = status != Status::Running || opts.sub_cgroup.is_some();
    if !opts.ignore_paused && asked && cgroup.as_ref().is_some_and(|c| c.is_frozen()) {
        return Err(Error::WrongStatus {
            id: id.into(),
            status: "paused".into(),
            msg: "cannot exec in a paused container (use --ignore-paused to override)".into(),
        });
    }
    let cgroup = cgroup.filter(|c| c.exists());
    let cgroup_fd = cgroup.as_ref().map(|c| c.open()).transpose()?.flatten();
    let seccomp = s.config.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let forked = match super::clone::clone_into(0, cgroup.as_ref(), cgroup_fd.as_ref()) {
        // Like runc: a rootless caller outside the container's delegated
        // subtree may not move a process into its cgroup; it stays in ours.
        Err(Error::Sys {
            source: nix::errno::Errno::EACCES | nix::errno::Errno::EPERM,
            ..
        }) if !nix::unistd::geteuid().is_root() => {
            tracing::debug!("rootless: exec process stays in skiff's cgroup");
            super::clone::clone_into(0, None, None)?
        }
        r => r?,
    };
    let pid = match forked {
        Cloned::Child(cgroup_join) => {
            drop(parent_chan);
            child::main(ExecArgs {
                cgroup_join,
                process: &opts.process,
                user: opts.user.as_deref(),
                extra_groups: &opts.extra_groups,
                pidfd,
                ns,
                in_userns: ns.contains(CloneFlags::CLONE_NEWUSER),
                chan: child_chan,
                wait_joined: cgroup.is_some(),
                console_socket,
                preserve_fds: opts.preserve_fds,
                attrs,
                seccomp,
                stdio: opts.stdio,
            })
        }
        Cloned::Parent(pid) => pid,
    };
    if let Some(fd) = &own_pid_ns {
        nix::sched::setns(fd, CloneFlags::CLONE_NEWPID)
            .step(|| "return to our own pid namespace".into())?;
    }
    drop(child_chan);
    drop(console_socket);
    if cgroup.is_some() {
        parent_chan.send_to_child(&Msg::Joined)?;
    }
    let pid = match ns.contains(CloneFlags::CLONE_NEWPID) {
        true => forked_pid(&parent_chan, pid)?,
        false => pid,
    };
    let fail = |e: Error| {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(pid, None);
        e
    };
    loop {
        match parent_chan.recv_with_fd() {
            Ok(None) => break,
            Ok(Some((Msg::SeccompFd, Some(fd)))) => {
                let state = super::state_value(&s, Status::Running);
                let ps = crate::security::seccomp::notify::process_state(
                    state,
                    i64::from(pid.as_raw()),
                    seccomp.and_then(|c| c.listener_metadata().as_deref()),
                );
                let listener = crate::security::seccomp::notify::listener_of(seccomp)
                    .and_then(|l| {
                        l.ok_or_else(|| {
                            Error::Child("seccomp notify fd without listenerPath".into())
                        })
                    })
                    .map_err(fail)?;
                crate::security::seccomp::notify::deliver(&listener, &ps, &fd).map_err(fail)?;
            }
            Ok(Some((Msg::Failed(msg), _))) => {
                let _ = waitpid(pid, None);
                return Err(Error::Child(msg));
            }
            Ok(Some((m, _))) => {
                return Err(fail(Error::Child(format!(
                    "unexpected message from exec process: {m:?}"
                ))));
            }
            Err(e) => {
                let _ = waitpid(pid, None);
                return Err(e);
            }
        }
    }
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    Ok(pid)
}

/// `sub` (`--cgroup`) under the container's cgroup `c`: relative, without
/// `..`, and existing (runc does not create it either); on cgroup v1 in
/// every hierarchy.
fn sub_cgroup(c: &crate::cgroups::Cgroup, sub: &std::path::Path) -> Result<crate::cgroups::Cgroup> {
    let bad = |msg: String| Error::Invalid {
        field: "--cgroup".into(),
        msg,
    };
    let ok = sub
        .components()
        .all(|p| matches!(p, std::path::Component::Normal(_)));
    if !ok || sub.as_os_str().is_empty() {
        return Err(bad(format!(
            "{}: must be a path below the container's cgroup",
            sub.display()
        )));
    }
    let dirs: Vec<std::path::PathBuf> = c.dirs().iter().map(|d| d.join(sub)).collect();
    if let Some(missing) = dirs.iter().find(|d| !d.is_dir()) {
        return Err(bad(format!("{}: no such cgroup", missing.display())));
    }
    Ok(match c {
        crate::cgroups::Cgroup::V2(_) => crate::cgroups::Cgroup::V2(crate::cgroups::v2::Cgroup {
            dir: dirs.into_iter().next().unwrap_or_default(),
        }),
        crate::cgroups::Cgroup::V1(_) => {
            crate::cgroups::Cgroup::V1(crate::cgroups::v1::Cgroup { dirs })
        }
    })
}

/// The pid an exec child forked into the container's pid namespace; the
/// child itself exits and is reaped here.
fn forked_pid(chan: &channel::Channel, child: Pid) -> Result<Pid> {
    let msg = chan.recv();
    let _ = waitpid(child, None);
    match msg? {
        Some(Msg::Pid(p)) => Ok(Pid::from_raw(p)),
        Some(Msg::Failed(msg)) => Err(Error::Child(msg)),
        m => Err(Error::Child(format!(
            "unexpected message from exec process: {m:?}"
        ))),
    }
}

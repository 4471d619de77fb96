//! The child side of `exec`: join every namespace of the running container
//! through its pidfd, then the same final setup as init. Success shows as
//! EOF on the channel (its end is close-on-exec); failure as `Failed`.

use std::convert::Infallible;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

use nix::sched::{setns, CloneFlags};
use oci_spec::runtime::Process;

use super::attrs::Attrs;
use super::channel::{Channel, Msg};
use super::setup::{become_ns_root, Final};
use crate::error::{Error, Result, SysContext};
use crate::rootfs::open_pty;

/// What the exec child needs, opened by the parent before the clone.
pub struct ExecArgs<'a> {
    /// The process to run.
    pub process: &'a Process,
    /// `--user` as a name or `uid[:gid]`, resolved in the container.
    pub user: Option<&'a str>,
    /// `--additional-gids`.
    pub extra_groups: &'a [String],
    /// pidfd of the container's init.
    pub pidfd: OwnedFd,
    /// The namespaces to join (those that differ from skiff's own).
    pub ns: CloneFlags,
    /// Is the container in a user namespace?
    pub in_userns: bool,
    /// The child end of the channel.
    pub chan: Channel,
    /// On cgroup v1: the move into the container's cgroup that the child
    /// makes itself, first of all.
    pub cgroup_join: Option<crate::cgroups::v1::SelfJoin>,
    /// Wait for [`Msg::Joined`] before anything else (but the v1 move
    /// above): the parent sends it once the child is in the container's
    /// cgroup, or moving itself there (v1).
    pub wait_joined: bool,
    /// Connected console socket, for `--tty`.
    pub console_socket: Option<OwnedFd>,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
    /// Personality, scheduler, LSM labels and the like, resolved by the parent.
    pub attrs: Attrs,
    /// The container's `linux.seccomp`.
    pub seccomp: Option<&'a oci_spec::runtime::LinuxSeccomp>,
    /// fds to become the process's stdin, stdout and stderr.
    pub stdio: Option<[std::os::fd::RawFd; 3]>,
}

/// Run the exec child; on failure report on the channel and exit 1.
pub fn main(a: ExecArgs) -> ! {
    let chan = a.chan.clone_fd();
    let Err(err) = run(a);
    if chan.is_none_or(|c| c.send(&Msg::Failed(err.to_string())).is_err()) {
        let _ = writeln!(std::io::stderr(), "skiff exec: {err}");
    }
    std::process::exit(1)
}

fn run(mut a: ExecArgs) -> Result<Infallible> {
    if let Some(j) = a.cgroup_join.take() {
        j.join_self()?;
    }
    if a.wait_joined {
        match a.chan.recv()? {
            Some(Msg::Joined) => {}
            // The parent could not move us in: it reports why, in one line.
            None => std::process::exit(1),
            Some(m) => return Err(Error::Child(format!("expected Joined, got {m:?}"))),
        }
    }
    super::setup::install_stdio(a.stdio)?;
    setns(a.pidfd.as_fd(), a.ns).step(|| "join the container's namespaces".into())?;
    drop(a.pidfd);
    if a.ns.contains(CloneFlags::CLONE_NEWPID) {
        // Only children enter a joined pid namespace: fork the process as a
        // sibling (a child of skiff, which waits for it) and report its pid.
        const CLONE_PARENT: u64 = libc::CLONE_PARENT as u64;
        match crate::sys::clone3(CLONE_PARENT, None)
            .step(|| "fork into the pid namespace".into())?
        {
            crate::sys::Forked::Parent(pid) => {
                a.chan.send(&Msg::Pid(pid.as_raw()))?;
                std::process::exit(0)
            }
            crate::sys::Forked::Child => {}
        }
    }
    if a.in_userns {
        become_ns_root()?;
    }
    let mut fin = Final::resolve(a.process, a.user, a.extra_groups)?;
    fin.preserve_fds = a.preserve_fds;
    fin.seccomp = crate::security::seccomp::for_exec(a.seccomp, a.chan.clone_fd())?;
    if a.process.terminal().unwrap_or(false) {
        let sock = a.console_socket.as_ref().ok_or_else(|| Error::Invalid {
            field: "process.terminal".into(),
            msg: "a terminal needs --console-socket".into(),
        })?;
        let root = std::fs::File::open("/").map_err(|e| Error::Io {
            path: "/".into(),
            source: e,
        })?;
        let size = a
            .process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        let (master, peer) = open_pty(root.as_fd(), size)?;
        fin.tty = Some(peer);
        super::tty::send_master(sock.as_fd(), master.as_fd())?;
    }
    fin.apply_rlimits()?;
    a.attrs.apply()?;
    fin.enter_cwd()?;
    fin.become_process()?;
    fin.exec()
}

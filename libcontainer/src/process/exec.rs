//! The child side of `exec`: join every namespace of the running container
//! through its pidfd, then the same final setup as init. Success shows as
//! EOF on the channel (its end is close-on-exec); failure as `Failed`.

use std::convert::Infallible;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::sched::{setns, CloneFlags};
use nix::unistd::{setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::Process;

use super::channel::{Channel, Msg};
use super::setup::Final;
use crate::error::{Error, Result, SysContext};
use crate::rootfs::open_in_root;
use crate::sys;

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
    /// Connected console socket, for `--tty`.
    pub console_socket: Option<OwnedFd>,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
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

fn run(a: ExecArgs) -> Result<Infallible> {
    setns(a.pidfd.as_fd(), a.ns).step(|| "join the container's namespaces".into())?;
    drop(a.pidfd);
    if a.in_userns {
        setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .step(|| "setresgid 0".into())?;
        setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .step(|| "setresuid 0".into())?;
    }
    let mut fin = Final::resolve(a.process, a.user, a.extra_groups)?;
    fin.preserve_fds = a.preserve_fds;
    fin.setgroups = !a.in_userns
        || std::fs::read_to_string("/proc/self/setgroups").map_or(true, |s| s.trim() == "allow");
    if a.process.terminal().unwrap_or(false) {
        let sock = a.console_socket.as_ref().ok_or_else(|| Error::Invalid {
            field: "process.terminal".into(),
            msg: "a terminal needs --console-socket".into(),
        })?;
        let root = std::fs::File::open("/").map_err(|e| Error::Io {
            path: "/".into(),
            source: e,
        })?;
        let master = open_in_root(
            root.as_fd(),
            Path::new("/dev/pts/ptmx"),
            libc::O_RDWR | libc::O_NOCTTY,
        )
        .step(|| "open /dev/pts/ptmx in the container".into())?;
        sys::unlock_pty(master.as_fd()).step(|| "unlock pty".into())?;
        if let Some(b) = a.process.console_size() {
            sys::set_winsize(master.as_fd(), b.height() as u16, b.width() as u16)
                .step(|| "set console size".into())?;
        }
        fin.tty = Some(sys::open_pty_peer(master.as_fd()).step(|| "open pty peer".into())?);
        super::tty::send_master(sock.as_fd(), master.as_fd())?;
    }
    fin.apply_rlimits()?;
    fin.enter_cwd()?;
    fin.exec()
}

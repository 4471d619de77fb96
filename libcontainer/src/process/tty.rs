//! Handing a pty master to the `--console-socket` listener, as runc does:
//! one message whose data is the pty's name and whose SCM_RIGHTS carries the fd.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::error::{Error, Result, SysContext};
use crate::sys;

/// Connect to the `--console-socket` listener at `path`.
pub fn connect(path: &Path) -> Result<OwnedFd> {
    UnixStream::connect(path)
        .map(OwnedFd::from)
        .map_err(|e| Error::Invalid {
            field: "--console-socket".into(),
            msg: format!("{}: {e}", path.display()),
        })
}

/// Send `master` over the connected console socket `sock`.
pub fn send_master(sock: BorrowedFd, master: BorrowedFd) -> Result<()> {
    let name = sys::pty_number(master)
        .map_or_else(|_| "/dev/ptmx".to_string(), |n| format!("/dev/pts/{n}"));
    let fds = [master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(name.as_bytes())],
        &cmsg,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .step(|| "--console-socket: send pty master".into())?;
    Ok(())
}

//! Handing a pty master to the `--console-socket` listener, as runc does:
//! one message whose data is the pty's name and whose SCM_RIGHTS carries the fd.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::error::{Result, SysContext};
use crate::sys;

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

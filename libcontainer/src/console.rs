//! The caller's side of a container terminal, for callers that keep the pty
//! themselves (the containerd shim): receive the master that the container
//! process sends on the console socket, and resize it.

use std::os::fd::{AsFd, OwnedFd};

use crate::error::{Error, Result, SysContext};
use crate::sys;

/// Receive the pty master sent by the container process on `sock` (the
/// other end of the stream given as `console_stream`).
pub fn receive_master(sock: impl AsFd) -> Result<OwnedFd> {
    sys::recv_fd(sock.as_fd())
        .step(|| "receive the pty master".into())?
        .ok_or_else(|| Error::Child("the container sent no pty master".into()))
}

/// Set the size of the terminal at `master`.
pub fn resize(master: impl AsFd, rows: u16, cols: u16) -> Result<()> {
    sys::set_winsize(master.as_fd(), rows, cols).step(|| "resize the terminal".into())
}

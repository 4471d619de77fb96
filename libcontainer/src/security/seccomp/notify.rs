//! The SCMP_ACT_NOTIFY handover, as runc does it: connect to the agent's
//! `listenerPath` and send one message whose data is the
//! ContainerProcessState JSON and whose SCM_RIGHTS carries the notify fd.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::LinuxSeccomp;
use serde_json::{json, Value};

use super::Listener;
use crate::error::{Error, Result, SysContext};

/// runtime-spec's ContainerProcessState: `state` is the container's state
/// (status `creating` for init, `running` for exec), `pid` the process
/// the filter is on.
pub fn process_state(state: Value, pid: i64, metadata: Option<&str>) -> Value {
    let mut v = json!({
        "ociVersion": crate::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state,
    });
    if let Some(m) = metadata.filter(|m| !m.is_empty()) {
        v["metadata"] = json!(m);
    }
    v
}

/// The listener of a profile that uses SCMP_ACT_NOTIFY.
pub fn listener_of(s: Option<&LinuxSeccomp>) -> Result<Option<Listener>> {
    match s {
        Some(s) => Ok(super::compile(s)?.listener),
        None => Ok(None),
    }
}

/// Connect to the agent at `l.path`.
pub fn connect(l: &Listener) -> Result<OwnedFd> {
    UnixStream::connect(&l.path)
        .map(OwnedFd::from)
        .map_err(|e| Error::Invalid {
            field: "linux.seccomp.listenerPath".into(),
            msg: format!(
                "could not connect to the seccomp agent at {}: {e}",
                l.path.display()
            ),
        })
}

/// Send `state` with `fd` on the connected `sock`.
pub fn send(sock: &impl AsFd, state: &[u8], fd: &impl AsFd) -> Result<()> {
    let fds = [fd.as_fd().as_raw_fd()];
    sendmsg::<()>(
        sock.as_fd().as_raw_fd(),
        &[IoSlice::new(state)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .step(|| "linux.seccomp.listenerPath: send the notify fd".into())?;
    Ok(())
}

/// Connect to `l` and send `state` with `fd` (the parent side, for exec).
pub fn deliver(l: &Listener, state: &Value, fd: &impl AsFd) -> Result<()> {
    let sock = connect(l)?;
    send(&sock, state.to_string().as_bytes(), fd)
}

//! A CRIU service worker: `criu swrk FD` with its end of a SEQPACKET
//! socketpair, one request per session, its notifications answered by a
//! callback. Every fd CRIU must inherit is handed over by number.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{
    recvmsg, send, socketpair, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use prost::Message;

use super::rpc::{Features, Req, ReqType, Resp, Version};
use crate::error::{Error, Result};

/// CRIU's messages are small; its answers fit this (runc uses 40 KiB too).
const BUF: usize = 40 * 4096;

/// The oldest CRIU skiff drives (the RPC fields it sets exist since 3.0).
pub const MIN_VERSION: u32 = 30000;

/// A running `criu swrk`.
pub struct Swrk {
    sock: OwnedFd,
    child: Child,
    op: &'static str,
}

/// Set or clear FD_CLOEXEC on `fd`.
fn set_cloexec(fd: BorrowedFd, on: bool) -> Result<()> {
    let flag = if on {
        FdFlag::FD_CLOEXEC
    } else {
        FdFlag::empty()
    };
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(flag))
        .map(drop)
        .map_err(|e| Error::Sys {
            step: "fcntl F_SETFD".into(),
            source: e,
        })
}

impl Swrk {
    /// Start `criu swrk` for request `op`; `inherit` are the fds (beside
    /// stdio) CRIU must have open under the same numbers.
    pub fn start(criu: &Path, op: &'static str, inherit: &[BorrowedFd]) -> Result<Swrk> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| Error::Sys {
            step: "socketpair for criu".into(),
            source: e,
        })?;
        let passed: Vec<BorrowedFd> = inherit.iter().copied().chain([theirs.as_fd()]).collect();
        for fd in &passed {
            set_cloexec(*fd, false)?;
        }
        let spawned = Command::new(criu)
            .arg("swrk")
            .arg(theirs.as_raw_fd().to_string())
            .spawn();
        // Back to close-on-exec, so hooks run later do not get them.
        for fd in &passed {
            set_cloexec(*fd, true)?;
        }
        let child = spawned.map_err(|e| Error::Criu {
            op,
            msg: match e.kind() {
                std::io::ErrorKind::NotFound => format!(
                    "{} not found: install CRIU (Debian: the criu package) or give its path with --criu",
                    criu.display()
                ),
                _ => format!("cannot run {}: {e}", criu.display()),
            },
        })?;
        Ok(Swrk {
            sock: ours,
            child,
            op,
        })
    }

    /// The pid of the `criu swrk` process.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn send(&self, req: &Req) -> Result<()> {
        send(
            self.sock.as_raw_fd(),
            &req.encode_to_vec(),
            MsgFlags::MSG_NOSIGNAL,
        )
        .map(drop)
        .map_err(|e| self.failed(format!("cannot send the request: {e}")))
    }

    fn failed(&self, msg: String) -> Error {
        Error::Criu { op: self.op, msg }
    }

    /// Read one message of CRIU's into `buf`: its length and the fd it
    /// carried, if any (CRIU attaches one to `orphan-pts-master`).
    fn recv(&self, buf: &mut [u8]) -> Result<(usize, Option<OwnedFd>)> {
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let mut iov = [std::io::IoSliceMut::new(buf)];
        let msg = loop {
            match recvmsg::<()>(
                self.sock.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r,
            }
        }
        .map_err(|e| self.failed(format!("cannot read its answer: {e}")))?;
        let mut fd = None;
        let cmsgs = msg
            .cmsgs()
            .map_err(|e| self.failed(format!("cannot read the fd of its message: {e}")))?;
        for c in cmsgs {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for raw in fds {
                    // SAFETY: SCM_RIGHTS just installed this fd in our
                    // table; nothing else owns it (extra ones are closed).
                    let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                    fd.get_or_insert(owned);
                }
            }
        }
        Ok((msg.bytes, fd))
    }

    /// Send `req` and wait for its answer, answering each notification on
    /// the way with `notify(script, pid, fd)` (`fd`: the one CRIU sent with
    /// it, if any; an error fails the request).
    pub fn call(
        &mut self,
        req: &Req,
        mut notify: impl FnMut(&str, i32, Option<OwnedFd>) -> Result<()>,
    ) -> Result<Resp> {
        self.send(req)?;
        let mut buf = vec![0u8; BUF];
        loop {
            let (n, fd) = self.recv(&mut buf)?;
            if n == 0 {
                return Err(self.failed("criu exited without an answer".into()));
            }
            let resp = Resp::decode(&buf[..n])
                .map_err(|e| self.failed(format!("cannot decode its answer: {e}")))?;
            if resp.r#type == ReqType::Notify as i32 {
                let n = resp.notify.clone().unwrap_or_default();
                let res = notify(n.script.as_deref().unwrap_or(""), n.pid.unwrap_or(0), fd);
                self.send(&Req {
                    r#type: ReqType::Notify as i32,
                    notify_success: Some(res.is_ok()),
                    ..Default::default()
                })?;
                res?;
                continue;
            }
            if !resp.success {
                let mut msg = resp.cr_errmsg.clone().unwrap_or_default();
                if let Some(e) = resp.cr_errno.filter(|e| *e != 0) {
                    let errno = nix::errno::Errno::from_raw(e);
                    msg = format!("{msg} ({errno})").trim().to_string();
                }
                return Err(self.failed(if msg.is_empty() { "failed".into() } else { msg }));
            }
            if resp.r#type != req.r#type {
                return Err(self.failed(format!(
                    "answered request type {} to request type {}",
                    resp.r#type, req.r#type
                )));
            }
            return Ok(resp);
        }
    }

    /// Wait for `criu swrk` to exit (it does once its request is served).
    pub fn finish(mut self) -> Result<()> {
        self.close_and_wait()
    }

    fn close_and_wait(&mut self) -> Result<()> {
        // Closing our end tells CRIU no request follows.
        let _ = nix::sys::socket::shutdown(self.sock.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        self.child
            .wait()
            .map(drop)
            .map_err(|e| self.failed(format!("wait for criu: {e}")))
    }
}

impl Drop for Swrk {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.close_and_wait();
        }
    }
}

/// A request with no options.
fn bare(t: ReqType) -> Req {
    Req {
        r#type: t as i32,
        ..Default::default()
    }
}

/// CRIU's version as `major*10000 + minor*100 + sublevel`; an error if
/// `criu` is missing or older than [`MIN_VERSION`].
pub fn version(criu: &Path) -> Result<u32> {
    let mut w = Swrk::start(criu, "version", &[])?;
    let resp = w.call(&bare(ReqType::Version), |_, _, _| Ok(()))?;
    w.finish()?;
    let Version {
        major_number,
        minor_number,
        sublevel,
    } = resp.version.ok_or_else(|| Error::Criu {
        op: "version",
        msg: "its answer has no version".into(),
    })?;
    let v = (major_number * 10000 + minor_number * 100 + sublevel.unwrap_or(0)) as u32;
    if v < MIN_VERSION {
        return Err(Error::Criu {
            op: "version",
            msg: format!("{major_number}.{minor_number} is too old: skiff needs CRIU 3.0 or later"),
        });
    }
    Ok(v)
}

/// Which of `wanted` CRIU and this kernel support.
pub fn features(criu: &Path, wanted: Features) -> Result<Features> {
    let mut w = Swrk::start(criu, "feature check", &[])?;
    let req = Req {
        features: Some(wanted),
        ..bare(ReqType::FeatureCheck)
    };
    let resp = w.call(&req, |_, _, _| Ok(()))?;
    w.finish()?;
    Ok(resp.features.unwrap_or_default())
}

//! The typed channel between skiff and the container process it forked: a
//! SOCK_SEQPACKET socketpair carrying small JSON messages, and fds by
//! SCM_RIGHTS. Its child end is close-on-exec, so EOF after `Ready` means
//! the user process was executed.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::sys::socket::{
    recv, recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, SysContext};

/// One message on the channel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Msg {
    /// Parent to child: ids are mapped and the hooks' state is known: go on.
    Go {
        /// The state JSON for the createContainer and startContainer hooks
        /// (status created: runc has no "creating" for hooks either).
        state: String,
    },
    /// Child to parent: mounts are done, run prestart and createRuntime
    /// (sent only when the config has such a step: `Bundle::has_runtime_step`).
    RunHooks,
    /// Parent to child: the hooks ran.
    HooksDone,
    /// Child to parent: the container is built; init now waits for start.
    Ready,
    /// Child to parent: a step failed (the message names it).
    Failed(String),
    /// Exec child to parent: the seccomp notify fd is attached; send it to
    /// the profile's listenerPath.
    SeccompFd,
    /// Parent to exec child: go on. The child is in the container's cgroup
    /// (cloned or moved there; on cgroup v1 it moves itself first).
    Joined,
    /// Parent to init: the container's cgroup is made and its limits are
    /// in. On cgroup v1 the `tasks` file of each of its hierarchies is
    /// attached, in this order, for init to move itself in
    /// ([`crate::cgroups::v1::SelfJoin`]); on v2 none (init was cloned into
    /// it).
    Cgroups {
        /// The attached files' paths, for messages.
        tasks: Vec<PathBuf>,
    },
    /// Parent to init (foreground `run`, no exec fifo): start the user
    /// process. EOF on the channel then means it was executed.
    Start,
    /// Exec child to parent: the host pid of the process it forked into
    /// the container's pid namespace (rootless exec; the child then exits).
    Pid(i32),
}

/// The most fds one message carries (a v1 host has at most 13 hierarchies).
pub const MAX_FDS: usize = 16;

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// Make a connected pair (parent end, child end).
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .step(|| "socketpair".into())?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    /// A second handle on the same end (close-on-exec), or `None` if dup fails.
    pub fn clone_fd(&self) -> Option<Channel> {
        self.fd.try_clone().ok().map(|fd| Channel { fd })
    }

    /// Send `msg`.
    pub fn send(&self, msg: &Msg) -> Result<()> {
        self.send_with_fd(msg, None)
    }

    /// Send `msg` to a child that may have failed before reading it: then
    /// the error is the reason it queued ([`Msg::Failed`]), not EPIPE. Any
    /// other error (the message too large, say) is returned as it is: the
    /// child is still waiting, and a receive would wait for ever.
    pub fn send_to_child(&self, msg: &Msg) -> Result<()> {
        self.send_to_child_with_fds(msg, &[])
    }

    /// [`Channel::send_to_child`] with `fds` attached.
    pub fn send_to_child_with_fds(&self, msg: &Msg, fds: &[RawFd]) -> Result<()> {
        self.send_with_fds(msg, fds).map_err(|e| match e {
            Error::Sys {
                source: nix::errno::Errno::EPIPE | nix::errno::Errno::ECONNRESET,
                ..
            } => match self.recv() {
                Ok(Some(Msg::Failed(reason))) => Error::Child(reason),
                _ => e,
            },
            e => e,
        })
    }

    /// Send `msg` with an fd attached.
    pub fn send_with_fd(&self, msg: &Msg, fd: Option<RawFd>) -> Result<()> {
        self.send_with_fds(msg, fd.as_slice())
    }

    /// Send `msg` with `fds` attached (at most [`MAX_FDS`]), in this order.
    pub fn send_with_fds(&self, msg: &Msg, fds: &[RawFd]) -> Result<()> {
        let data =
            serde_json::to_vec(msg).map_err(|e| Error::Child(format!("encode message: {e}")))?;
        let cmsg: Vec<ControlMessage> = match fds {
            [] => Vec::new(),
            fds => vec![ControlMessage::ScmRights(fds)],
        };
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &[IoSlice::new(&data)],
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .step(|| "send on channel".into())?;
        Ok(())
    }

    /// Receive the next message; `None` on EOF (the other end is closed).
    pub fn recv(&self) -> Result<Option<Msg>> {
        Ok(self.recv_with_fd()?.map(|(m, _)| m))
    }

    /// Receive the next message and the first fd attached to it, if any.
    pub fn recv_with_fd(&self) -> Result<Option<(Msg, Option<OwnedFd>)>> {
        Ok(self
            .recv_with_fds()?
            .map(|(m, fds)| (m, fds.into_iter().next())))
    }

    /// Receive the next message and the fds attached to it, in the order
    /// they were sent.
    pub fn recv_with_fds(&self) -> Result<Option<(Msg, Vec<OwnedFd>)>> {
        let mut reset = false;
        // The next message's whole length first (peeked with MSG_TRUNC; no
        // control buffer, so no fd is taken), then a buffer of that size:
        // a fixed 64 KiB one cost its zeroing and ~16 page faults in each
        // process on every receive, more than the extra system call.
        let len = loop {
            match recv(
                self.fd.as_raw_fd(),
                &mut [],
                MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC,
            ) {
                Ok(len) => break len,
                Err(nix::errno::Errno::EINTR) => continue,
                // The other end closed with a message of ours unread: the
                // kernel reports that once, before what it had sent
                // (a `Failed`, say), which is still queued.
                Err(nix::errno::Errno::ECONNRESET) if !reset => reset = true,
                Err(e) => return Err(e).step(|| "receive on channel".into()),
            }
        };
        if len == 0 {
            return Ok(None);
        }
        let mut buf = vec![0u8; len];
        let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
        let (n, fds) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(m) => {
                    let mut fds = Vec::new();
                    for c in m.cmsgs().step(|| "read channel control data".into())? {
                        if let ControlMessageOwned::ScmRights(got) = c {
                            for f in got {
                                // SAFETY: SCM_RIGHTS just gave us this fd; nothing else owns it.
                                fds.push(unsafe { OwnedFd::from_raw_fd(f) });
                            }
                        }
                    }
                    break (m.bytes, fds);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::ECONNRESET) if !reset => reset = true,
                Err(e) => return Err(e).step(|| "receive on channel".into()),
            }
        };
        let msg = serde_json::from_slice(&buf[..n])
            .map_err(|e| Error::Child(format!("bad message on channel: {e}")))?;
        Ok(Some((msg, fds)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::OpenOptionsExt;

    #[test]
    fn roundtrip_and_eof() {
        let (a, b) = pair().unwrap();
        let go = Msg::Go { state: "{}".into() };
        a.send(&go).unwrap();
        assert_eq!(b.recv().unwrap(), Some(go));
        let null = std::fs::File::open("/dev/null").unwrap();
        b.send_with_fd(&Msg::Ready, Some(null.as_raw_fd())).unwrap();
        let (m, fd) = a.recv_with_fd().unwrap().unwrap();
        assert_eq!(m, Msg::Ready);
        assert!(fd.is_some());
        drop(b);
        assert_eq!(a.recv().unwrap(), None);
    }

    /// A message is received whole whatever its size (the buffer is sized
    /// by a peek), with its fd.
    #[test]
    fn large_message_with_fd() {
        let (a, b) = pair().unwrap();
        let big = Msg::Go {
            state: "s".repeat(150_000),
        };
        let null = std::fs::File::open("/dev/null").unwrap();
        a.send_with_fd(&big, Some(null.as_raw_fd())).unwrap();
        a.send(&Msg::Ready).unwrap();
        let (m, fd) = b.recv_with_fd().unwrap().unwrap();
        assert_eq!(m, big);
        assert!(fd.is_some());
        assert_eq!(
            b.recv_with_fd().unwrap().map(|(m, fd)| (m, fd.is_none())),
            Some((Msg::Ready, true))
        );
    }

    /// Several fds in one message arrive in the order they were sent.
    #[test]
    fn fds_arrive_in_order() {
        let (a, b) = pair().unwrap();
        let dir = std::env::temp_dir();
        let files: Vec<std::fs::File> = (0..MAX_FDS).map(|_| tempfile_in(&dir)).collect();
        let raw: Vec<RawFd> = files.iter().map(|f| f.as_raw_fd()).collect();
        let msg = Msg::Cgroups {
            tasks: (0..MAX_FDS).map(|i| PathBuf::from(i.to_string())).collect(),
        };
        a.send_with_fds(&msg, &raw).unwrap();
        let (m, fds) = b.recv_with_fds().unwrap().unwrap();
        assert_eq!(m, msg);
        assert_eq!(fds.len(), MAX_FDS);
        for (sent, got) in files.iter().zip(&fds) {
            let ino = |fd: RawFd| nix::sys::stat::fstat(fd).unwrap().st_ino;
            assert_eq!(ino(sent.as_raw_fd()), ino(got.as_raw_fd()));
        }
    }

    fn tempfile_in(dir: &std::path::Path) -> std::fs::File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .open(dir)
            .unwrap()
    }

    /// A send that fails while the child waits (a message over the
    /// socket's limit) returns its error at once.
    #[test]
    fn oversized_send_to_a_waiting_child_fails_at_once() {
        let (a, _b) = pair().unwrap();
        let huge = Msg::Failed("x".repeat(8 << 20));
        let e = a.send_to_child(&huge).unwrap_err();
        assert!(e.to_string().contains("EMSGSIZE"), "{e}");
    }

    /// A child that fails with the parent's message unread: its `Failed`
    /// still arrives (the kernel reports ECONNRESET first), and a send
    /// after it has gone returns that reason.
    #[test]
    fn failed_arrives_after_close_with_unread_message() {
        let (parent, child) = pair().unwrap();
        parent.send(&Msg::Joined).unwrap();
        child.send(&Msg::Failed("cgroup: no space".into())).unwrap();
        drop(child);
        assert_eq!(
            parent.recv().unwrap(),
            Some(Msg::Failed("cgroup: no space".into()))
        );
        assert_eq!(parent.recv().unwrap(), None);

        let (parent, child) = pair().unwrap();
        child.send(&Msg::Failed("early".into())).unwrap();
        drop(child);
        match parent.send_to_child(&Msg::Joined) {
            Err(Error::Child(m)) => assert_eq!(m, "early"),
            r => panic!("send_to_child after the child failed: {r:?}"),
        }
    }
}

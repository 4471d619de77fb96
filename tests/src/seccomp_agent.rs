//! A tiny seccomp notify agent for the SCMP_ACT_NOTIFY tests: it listens on
//! a unix socket (the profile's `listenerPath`), receives the container
//! process state and the notify fd over SCM_RIGHTS, as runc sends them, and
//! answers every notification with a fixed errno or lets it continue.

use serde_json::Value;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use crate::TempDir;

/// How the agent answers a notification.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// Fail the syscall with this errno.
    Errno(i32),
    /// Let the kernel run the syscall (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
    Continue,
}

/// What the agent saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// One ContainerProcessState per connection.
    pub states: Vec<Value>,
    /// The syscall number of each notification.
    pub syscalls: Vec<i32>,
}

/// A running agent; stops on drop.
#[derive(Debug)]
pub struct SeccompAgent {
    _dir: TempDir,
    path: PathBuf,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

#[repr(C)]
#[derive(Default)]
struct SeccompData {
    nr: i32,
    arch: u32,
    instruction_pointer: u64,
    args: [u64; 6],
}

#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    data: SeccompData,
}

#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

// _IOWR('!', 0, struct seccomp_notif) and _IOWR('!', 1, struct seccomp_notif_resp).
const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;
const FLAG_CONTINUE: u32 = 1;

fn serve_fd(fd: OwnedFd, answer: Answer, seen: &Mutex<Seen>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let mut pfd = [PollFd::new(
            std::os::fd::AsFd::as_fd(&fd),
            PollFlags::POLLIN,
        )];
        match poll(&mut pfd, PollTimeout::from(100u16)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
            Ok(_) => {}
        }
        let revents = pfd[0].revents().unwrap_or(PollFlags::empty());
        if !revents.contains(PollFlags::POLLIN) {
            // POLLHUP: every task using the filter is gone.
            return;
        }
        let mut req = Notif::default();
        // SAFETY: NOTIF_RECV fills the zeroed struct seccomp_notif `req`.
        if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV, &mut req as *mut Notif) } < 0 {
            continue;
        }
        seen.lock().unwrap().syscalls.push(req.data.nr);
        let resp = match answer {
            Answer::Errno(e) => NotifResp {
                id: req.id,
                val: 0,
                error: -e,
                flags: 0,
            },
            Answer::Continue => NotifResp {
                id: req.id,
                val: 0,
                error: 0,
                flags: FLAG_CONTINUE,
            },
        };
        // SAFETY: NOTIF_SEND reads the struct seccomp_notif_resp `resp`.
        unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND, &resp as *const NotifResp) };
    }
}

fn recv_state(conn: &std::os::unix::net::UnixStream) -> Option<(Value, OwnedFd)> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ok()?;
    let mut fd = None;
    for c in msg.cmsgs().ok()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for f in fds {
                // SAFETY: SCM_RIGHTS just gave us this fd.
                fd.get_or_insert(unsafe { OwnedFd::from_raw_fd(f) });
            }
        }
    }
    let n = msg.bytes;
    let state = serde_json::from_slice(&buf[..n]).ok()?;
    Some((state, fd?))
}

impl SeccompAgent {
    /// Listen on a fresh socket and answer every notification with `answer`.
    pub fn start(answer: Answer) -> SeccompAgent {
        let dir = TempDir::new("skiff-agent");
        let path = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&path).expect("bind agent socket");
        listener.set_nonblocking(true).expect("nonblocking");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, st2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut workers = Vec::new();
            while !st2.load(Ordering::Relaxed) {
                let conn = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                };
                let _ = conn.set_nonblocking(false);
                let (s3, st3) = (s2.clone(), st2.clone());
                workers.push(std::thread::spawn(move || {
                    if let Some((state, fd)) = recv_state(&conn) {
                        s3.lock().unwrap().states.push(state);
                        serve_fd(fd, answer, &s3, &st3);
                    }
                }));
            }
            for w in workers {
                let _ = w.join();
            }
        });
        SeccompAgent {
            _dir: dir,
            path,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// The socket path, for `listenerPath`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The states received so far.
    pub fn states(&self) -> Vec<Value> {
        self.seen.lock().unwrap().states.clone()
    }

    /// The syscall numbers notified so far.
    pub fn syscalls(&self) -> Vec<i32> {
        self.seen.lock().unwrap().syscalls.clone()
    }
}

impl Drop for SeccompAgent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

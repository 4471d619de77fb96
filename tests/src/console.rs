//! The `--console-socket` side of a terminal container: a unix socket that
//! receives the pty master over `SCM_RIGHTS`, and reading the pty.

use crate::TempDir;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A unix socket listening at a temp path; [`ConsoleSocket::recv_fd`] accepts
/// one connection and receives one file descriptor (the pty master) from it.
#[derive(Debug)]
pub struct ConsoleSocket {
    _dir: TempDir,
    path: PathBuf,
    listener: UnixListener,
}

impl Default for ConsoleSocket {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsoleSocket {
    /// Binds a fresh socket `console.sock` in a new temp directory.
    pub fn new() -> ConsoleSocket {
        let dir = TempDir::new("skiff-console");
        let path = dir.path().join("console.sock");
        let listener = UnixListener::bind(&path).expect("bind console socket");
        listener
            .set_nonblocking(true)
            .expect("make console socket non-blocking");
        ConsoleSocket {
            _dir: dir,
            path,
            listener,
        }
    }

    /// The socket path, for `--console-socket`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The socket path as a string.
    pub fn path_str(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    /// Waits up to `timeout` for a connection, then receives one message with
    /// one fd attached.  Returns the fd and the message payload (runc sends
    /// the pty's name there).
    pub fn recv_fd(&self, timeout: Duration) -> io::Result<(OwnedFd, String)> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "no connection on the console socket",
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e),
            }
        };
        stream.set_nonblocking(false)?;
        if !wait_readable(stream.as_raw_fd(), remaining(deadline))? {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no message on the console socket connection",
            ));
        }
        recv_one_fd(stream.as_raw_fd())
    }
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Polls `fd` for input (or hang-up) for at most `timeout`; `Ok(false)` on timeout.
fn wait_readable(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    loop {
        // SAFETY: `pfd` is a valid, initialised pollfd and we pass a count of 1.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(r > 0);
    }
}

/// Receives one message from a connected unix socket and returns the first
/// file descriptor passed with it via `SCM_RIGHTS` (closing any extra ones).
fn recv_one_fd(sock: RawFd) -> io::Result<(OwnedFd, String)> {
    let mut data = [0u8; 4096];
    // u64 storage keeps the control buffer aligned for cmsghdr.
    let mut control = [0u64; 64];
    let (n, fds) = recvmsg_fds(sock, &mut data, &mut control)?;
    let name = String::from_utf8_lossy(&data[..n])
        .trim_end_matches('\0')
        .to_owned();
    let mut fds = fds.into_iter();
    let first = fds.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message on the console socket carried no fd (payload {name:?})"),
        )
    })?;
    Ok((first, name))
}

/// One `recvmsg(2)` into `data`, collecting the `SCM_RIGHTS` fds of the
/// control message as owned fds (received with `MSG_CMSG_CLOEXEC`).
fn recvmsg_fds(
    sock: RawFd,
    data: &mut [u8],
    control: &mut [u64],
) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: msghdr is a plain C struct for which all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(control) as _;
    let n = loop {
        // SAFETY: `msg` points at `iov` and `control`, which outlive the call
        // and whose lengths are given in `iov_len` and `msg_controllen`.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    Ok((n, control_fds(&msg)))
}

/// Walks the control messages of a filled-in `msg` and takes ownership of
/// every fd carried in `SCM_RIGHTS` messages.
fn control_fds(msg: &libc::msghdr) -> Vec<OwnedFd> {
    let mut fds = Vec::new();
    // SAFETY: `msg` was filled in by a successful recvmsg, so its control
    // buffer and msg_controllen describe valid cmsghdr records; CMSG_FIRSTHDR
    // and CMSG_NXTHDR stay within that buffer.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !cmsg.is_null() {
        // SAFETY: `cmsg` is non-null and points at a cmsghdr inside the buffer.
        let hdr = unsafe { &*cmsg };
        if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: CMSG_LEN(0) is a pure computation.
            let header_len = unsafe { libc::CMSG_LEN(0) } as usize;
            let payload = (hdr.cmsg_len as usize).saturating_sub(header_len);
            let count = payload / std::mem::size_of::<RawFd>();
            // SAFETY: the payload of an SCM_RIGHTS message is `count` ints.
            let data = unsafe { libc::CMSG_DATA(cmsg) } as *const RawFd;
            for i in 0..count {
                // SAFETY: `i < count`, inside the payload; read_unaligned
                // because CMSG_DATA need not be aligned for c_int.
                let fd = unsafe { std::ptr::read_unaligned(data.add(i)) };
                // SAFETY: the kernel just installed `fd` in our table for us;
                // nothing else owns it.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        // SAFETY: as above; returns null after the last record.
        cmsg = unsafe { libc::CMSG_NXTHDR(msg, cmsg) };
    }
    fds
}

/// Reads the pty master `fd` until the other side is closed (EOF or `EIO`,
/// which is how a pty master reports that every slave fd is closed) or
/// `timeout` elapses; returns what was read, lossily decoded, with `\r`
/// removed.  The second value is true when the end was reached (false on
/// timeout).
pub fn read_pty_until_eof(fd: &OwnedFd, timeout: Duration) -> (String, bool) {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut ended = false;
    loop {
        match wait_readable(fd.as_raw_fd(), remaining(deadline)) {
            Ok(true) => {}
            Ok(false) => break,
            Err(_) => {
                ended = true;
                break;
            }
        }
        match read_fd(fd.as_raw_fd(), &mut chunk) {
            Ok(0) => {
                ended = true;
                break;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => {
                // EIO: the slave side is gone.
                ended = true;
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).replace('\r', "");
    (text, ended)
}

/// Writes all of `data` to `fd` (e.g. keystrokes to a pty master).
pub fn write_fd_all(fd: &OwnedFd, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        // SAFETY: `data` is a valid readable buffer of `data.len()` bytes.
        let n = unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        data = &data[n as usize..];
    }
    Ok(())
}

fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid writable buffer of `buf.len()` bytes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

//! Create and exec run in a forked, single-threaded copy of the shim.
//!
//! libcontainer forks container processes with a raw `clone3`, which skips
//! glibc's fork handlers. From the many-threaded shim that child inherits
//! whatever locks other threads held at that instant (malloc arenas shared
//! by the ttrpc threads, above all) and can block on them forever: the
//! intermittent `ctr task exec` and CRI hang of issue 5 was an exec child
//! stuck in a futex before execve. glibc's `fork` leaves malloc usable in
//! the child, and from that one-thread helper libcontainer's `clone3` is
//! safe. The helper reports the new process's pid over a pipe and exits; the
//! process is reparented to the shim (a child subreaper), which reaps it.
//! Hooks run by create are the helper's own children, so waiting for them
//! no longer races the shim's reaper either.

use std::fmt;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use containerd_shim::protos::ttrpc::Code;
use nix::unistd::ForkResult;

/// A create or exec that failed in the helper: the gRPC code its
/// libcontainer error maps to, and the message.
#[derive(Debug)]
pub struct Failed {
    /// The status code for containerd.
    pub code: Code,
    /// The error, as libcontainer printed it.
    pub msg: String,
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Failed {}

/// The gRPC status code for a libcontainer error.
pub fn code_of(e: &libcontainer::Error) -> Code {
    use libcontainer::Error as E;
    match e {
        E::NotExist(_) => Code::NOT_FOUND,
        E::Exists(_) => Code::ALREADY_EXISTS,
        E::WrongStatus { .. } => Code::FAILED_PRECONDITION,
        E::Invalid { .. } | E::BadId(_) | E::BadSignal(_) => Code::INVALID_ARGUMENT,
        E::Unsupported { .. } => Code::UNIMPLEMENTED,
        _ => Code::UNKNOWN,
    }
}

/// Run `f` (a libcontainer create or exec returning the new pid) in a
/// forked helper and return that pid. The helper first closes every fd but
/// stdin/stdout/stderr and `keep` (the process's io): a created init holds
/// what it inherited until start, and must not hold the shim's sockets or
/// another process's stdin pipe.
pub fn run(keep: &[RawFd], f: impl FnOnce() -> libcontainer::Result<i32>) -> anyhow::Result<i32> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| anyhow::anyhow!("helper pipe: {e}"))?;
    let shim = nix::unistd::getpid();
    // SAFETY: glibc's fork runs its atfork handlers, so malloc works in the
    // child. The child runs only `f` (libcontainer, which takes none of the
    // shim's locks: the task table lock is held by this very thread) and
    // leaves with _exit, never returning into the shim's code.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            drop(r);
            die_with(shim);
            let mut keep = keep.to_vec();
            keep.push(w.as_raw_fd());
            close_all_but(&keep);
            child(f, w)
        }
        Ok(ForkResult::Parent { child }) => {
            drop(w);
            parent(r, child)
        }
        Err(e) => Err(anyhow::anyhow!("fork the create/exec helper: {e}")),
    }
}

/// A helper whose shim is killed mid-create must not go on building a
/// container nobody will delete (containerd runs `shim delete` as soon as
/// the shim is gone): die with the shim. The signal follows the forking
/// thread, which waits in [`parent`] for as long as the helper lives.
fn die_with(shim: nix::unistd::Pid) {
    let armed = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).is_ok();
    if !armed || nix::unistd::getppid() != shim {
        // SAFETY: _exit in the forked helper, as in `child`.
        unsafe { libc::_exit(1) }
    }
}

/// Close every fd above stderr that is not in `keep` (in the helper only:
/// the objects owning them belong to the parent and are never dropped here).
fn close_all_but(keep: &[RawFd]) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<RawFd> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds.into_iter().filter(|fd| *fd > 2 && !keep.contains(fd)) {
        // The directory's own fd is already closed: EBADF, ignored.
        let _ = nix::unistd::close(fd);
    }
}

/// The most a report may hold: one pipe write of at most PIPE_BUF bytes is
/// atomic, so the parent reads it whole with one read.
const REPORT_MAX: usize = 4096;

fn child(f: impl FnOnce() -> libcontainer::Result<i32>, w: OwnedFd) -> ! {
    let mut msg = match f() {
        Ok(pid) => format!("ok {pid}"),
        Err(e) => format!("err {} {e}", code_of(&e) as i32),
    };
    if msg.len() > REPORT_MAX {
        let mut end = REPORT_MAX;
        while !msg.is_char_boundary(end) {
            end -= 1;
        }
        msg.truncate(end);
    }
    let _ = std::fs::File::from(w).write_all(msg.as_bytes());
    // SAFETY: _exit ends the helper without running the shim's destructors
    // or atexit handlers (they belong to the parent).
    unsafe { libc::_exit(0) }
}

/// Wait for the report, or for the helper to die without one. Never wait
/// for EOF: the container's init inherits the pipe's write end from the
/// helper and keeps it until it executes (at start).
fn parent(r: OwnedFd, helper: nix::unistd::Pid) -> anyhow::Result<i32> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let pidfd = libcontainer::pidfd_open(helper).ok();
    let mut file = std::fs::File::from(r);
    let mut buf = vec![0u8; REPORT_MAX];
    loop {
        let mut fds = vec![PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        if let Some(p) = &pidfd {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => anyhow::bail!("wait for the create/exec helper: {e}"),
        }
        let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
        let report = ready(&fds[0]);
        let died = fds.get(1).is_some_and(ready);
        if !report && died {
            // Exited: a report it wrote is in the pipe by now.
            let mut last = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
            if !matches!(poll(&mut last, PollTimeout::ZERO), Ok(n) if n > 0) {
                return parse("");
            }
        } else if !report {
            continue;
        }
        drop(fds);
        let n = match file.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => anyhow::bail!("read the create/exec helper's result: {e}"),
        };
        return parse(&String::from_utf8_lossy(&buf[..n]));
    }
}

/// The helper's report: `ok PID` or `err CODE MESSAGE`.
fn parse(out: &str) -> anyhow::Result<i32> {
    if let Some(pid) = out.strip_prefix("ok ") {
        return pid
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("create/exec helper: bad pid {pid:?}"));
    }
    if let Some(rest) = out.strip_prefix("err ") {
        let (code, msg) = rest.split_once(' ').unwrap_or((rest, ""));
        let code = code
            .parse::<i32>()
            .ok()
            .and_then(<Code as containerd_shim::protos::protobuf::Enum>::from_i32)
            .unwrap_or(Code::UNKNOWN);
        return Err(Failed {
            code,
            msg: msg.to_string(),
        }
        .into());
    }
    anyhow::bail!("the create/exec helper died without a result")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reports() {
        assert_eq!(parse("ok 42").unwrap(), 42);
        let e = parse("err 5 no such container").unwrap_err();
        let f = e.downcast_ref::<Failed>().unwrap();
        assert_eq!(f.code, Code::NOT_FOUND);
        assert_eq!(f.msg, "no such container");
        assert!(parse("").unwrap_err().to_string().contains("died"));
        assert!(parse("ok x").is_err());
    }

    #[test]
    fn runs_in_a_child() {
        let me = std::process::id() as i32;
        let pid = run(&[], || Ok(nix::unistd::getpid().as_raw())).unwrap();
        assert_ne!(pid, me);
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        let e = run(&[], || Err(libcontainer::Error::NotExist("c1".into()))).unwrap_err();
        assert_eq!(e.downcast_ref::<Failed>().unwrap().code, Code::NOT_FOUND);
    }

    #[test]
    fn does_not_wait_for_inherited_write_ends() {
        // A grandchild keeps the pipe open, as a created init does.
        let t = std::time::Instant::now();
        let pid = run(&[], || {
            let p = std::process::Command::new("sleep").arg("3").spawn();
            p.map(|c| c.id() as i32)
                .map_err(|e| libcontainer::Error::Io {
                    path: "sleep".into(),
                    source: e,
                })
        })
        .unwrap();
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    }

    #[test]
    fn closes_all_but_kept_fds() {
        let kept = std::fs::File::open("/dev/null").unwrap();
        let other = std::fs::File::open("/dev/null").unwrap();
        let (k, o) = (kept.as_raw_fd(), other.as_raw_fd());
        let open = |fd: RawFd| nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_ok();
        let r = run(&[k], || Ok(i32::from(open(k)) * 10 + i32::from(open(o))));
        assert_eq!(r.unwrap(), 10);
    }

    #[test]
    fn a_helper_that_dies_is_reported() {
        let e = run(&[], || {
            // SAFETY: test: end the helper before it reports.
            unsafe { libc::_exit(3) }
        })
        .unwrap_err();
        assert!(e.to_string().contains("died"), "{e}");
    }
}

//! Foreground `run` with `process.terminal` and no `--console-socket`: skiff
//! receives the pty master itself and copies it to and from its own stdio,
//! with stdin in raw mode while the container runs (as runc does).

use std::fs::File;
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use libcontainer::config::Bundle;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

/// The pty copy in progress; restores the terminal when dropped.
pub struct Console {
    saved: Option<Termios>,
    output: Option<JoinHandle<()>>,
}

/// What create, run and restore do about `process.terminal`: a terminal
/// with no `--console-socket` gets a socketpair whose first end receives the
/// master (a foreground container only), a console socket with no terminal
/// is an error.
pub fn local_console(
    bundle: &Bundle,
    console_socket: Option<&Path>,
    detached: bool,
) -> Result<Option<(UnixStream, UnixStream)>> {
    let terminal = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    match (terminal, console_socket.is_some()) {
        (true, false) if detached => anyhow::bail!(
            "process.terminal: cannot allocate a tty for a detached container without --console-socket"
        ),
        (true, false) => Ok(Some(UnixStream::pair().context("console socketpair")?)),
        (false, true) => {
            anyhow::bail!("--console-socket: only allowed when process.terminal is true")
        }
        _ => Ok(None),
    }
}

/// Receive the pty master sent on `sock` by the container's init.
pub fn receive_master(sock: &UnixStream) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context("receive the pty master")?;
    for c in msg.cmsgs().context("receive the pty master")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: SCM_RIGHTS just gave us this fd; nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    anyhow::bail!("the container sent no pty master")
}

/// Start copying: stdin to the master, the master to stdout.
pub fn attach(master: OwnedFd) -> Result<Console> {
    let stdin = std::io::stdin();
    let saved = tcgetattr(stdin.as_fd()).ok();
    if let Some(t) = &saved {
        let mut raw = t.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).context("set the terminal raw")?;
        if let Ok(size) = winsize(stdin.as_raw_fd()).map_err(drop).and_then(|s| {
            if s.ws_row > 0 && s.ws_col > 0 {
                Ok(s)
            } else {
                Err(())
            }
        }) {
            let _ = set_winsize(master.as_raw_fd(), &size);
        }
    }
    let mut to_pty = File::from(master.try_clone().context("dup pty master")?);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut input = std::io::stdin();
        while let Ok(n) = input.read(&mut buf) {
            if n == 0 || to_pty.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let mut from_pty = File::from(master);
    let output = std::thread::spawn(move || {
        let mut out = std::io::stdout();
        // Ends with EIO once the container's last holder of the pty exits.
        let _ = std::io::copy(&mut from_pty, &mut out);
        let _ = out.flush();
    });
    Ok(Console {
        saved,
        output: Some(output),
    })
}

nix::ioctl_read_bad!(tiocgwinsz, libc::TIOCGWINSZ, libc::winsize);
nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, libc::winsize);

fn winsize(fd: RawFd) -> nix::Result<libc::winsize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into `ws`, which outlives the call.
    unsafe { tiocgwinsz(fd, &mut ws) }?;
    Ok(ws)
}

fn set_winsize(fd: RawFd, ws: &libc::winsize) -> nix::Result<()> {
    // SAFETY: TIOCSWINSZ reads one winsize from `ws`, which outlives the call.
    unsafe { tiocswinsz(fd, ws) }.map(drop)
}

impl Console {
    /// Wait (briefly) for the last output to be copied, then restore the terminal.
    pub fn finish(mut self) {
        if let Some(h) = self.output.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

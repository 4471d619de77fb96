//! Foreground `run` and `exec`: the signals skiff forwards are blocked
//! before the container process exists, and read from a signalfd after, so
//! no signal and no exit can be lost (however fast the process is).

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Result, SysContext};
use crate::sys;

/// Block every signal skiff forwards, plus SIGCHLD. Call before create or
/// exec; the container process unblocks them itself before its execve.
pub fn block_signals() -> Result<SigSet> {
    let mut set = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
    ] {
        set.remove(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .step(|| "block signals".into())?;
    Ok(set)
}

/// Forward signals to `pid` until it exits; return its exit status as a
/// shell would (128+N for signal N).
pub fn wait_forwarding(pid: Pid, set: &SigSet) -> Result<i32> {
    let sfd = SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC).step(|| "signalfd".into())?;
    loop {
        // Reap first: the exit may have happened before we got here.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p == pid => return Ok(code),
                Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return Ok(128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        let Some(info) = sfd.read_signal().step(|| "read signalfd".into())? else {
            continue;
        };
        let signo = info.ssi_signo as i32;
        if signo == libc::SIGCHLD || signo == libc::SIGURG || signo == libc::SIGWINCH {
            continue;
        }
        sys::kill_raw(pid, signo);
    }
}

//! `binary://` io: containerd's logging driver protocol. The binary gets the
//! read ends of the stdout and stderr pipes as fds 3 and 4 and a "ready"
//! pipe as fd 5, which it closes once it reads; the environment names the
//! container and namespace; the URI's query gives its arguments.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::fcntl::OFlag;

/// Who the logs belong to.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// Container id.
    pub id: String,
    /// containerd namespace.
    pub namespace: String,
}

/// Split `binary:///path?k=v&x` into the path and its arguments.
pub fn parse(uri: &str) -> Result<(String, Vec<String>)> {
    let rest = uri
        .strip_prefix("binary://")
        .context("not a binary:// URI")?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() {
        bail!("{uri}: no binary path");
    }
    let mut args = Vec::new();
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        match kv.split_once('=') {
            Some((k, v)) if !v.is_empty() => {
                args.push(unescape(k));
                args.push(unescape(v));
            }
            Some((k, _)) => args.push(unescape(k)),
            None => args.push(unescape(kv)),
        }
    }
    Ok((unescape(path), args))
}

/// Percent-decoding, as Go's url.Parse does.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Start the logging binary; returns the write ends for the container's
/// stdout and stderr once it reported ready.
pub fn start(uri: &str, env: &Env) -> Result<(OwnedFd, OwnedFd)> {
    let (path, args) = parse(uri)?;
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("stdout pipe")?;
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("stderr pipe")?;
    let (ready_r, ready_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("ready pipe")?;
    let fds = [out_r.as_raw_fd(), err_r.as_raw_fd(), ready_w.as_raw_fd()];
    let mut cmd = Command::new(&path);
    cmd.args(&args)
        .env("CONTAINER_ID", &env.id)
        .env("CONTAINER_NAMESPACE", &env.namespace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only
    // calls dup2, sigemptyset and sigprocmask, which are async-signal-safe,
    // on a stack-local set; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            // The shim blocks SIGCHLD; a logger (often a shell script that
            // waits for its children) must not inherit that.
            let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigemptyset(set.as_mut_ptr());
            if libc::sigprocmask(libc::SIG_SETMASK, set.as_ptr(), std::ptr::null_mut()) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for (i, fd) in fds.iter().enumerate() {
                // dup2 clears close-on-exec on the new fd.
                if libc::dup2(*fd, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn()
        .with_context(|| format!("start logging binary {path}"))?;
    drop((out_r, err_r, ready_w));
    wait_ready(ready_r, Duration::from_secs(10))
        .with_context(|| format!("logging binary {path}"))?;
    Ok((out_w, err_w))
}

/// Wait for the binary to close its ready fd (EOF), at most `limit`.
fn wait_ready(fd: OwnedFd, limit: Duration) -> Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let deadline = Instant::now() + limit;
    let mut f = std::fs::File::from(fd);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("not ready after {limit:?}");
        }
        let ms = left.as_millis().min(1000) as u16;
        let mut p = [PollFd::new(f.as_fd(), PollFlags::POLLIN)];
        if poll(&mut p, PollTimeout::from(ms)).unwrap_or(0) == 0 {
            continue;
        }
        let mut b = [0u8; 64];
        match f.read(&mut b) {
            Ok(0) => return Ok(()),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_path_and_args() {
        let (p, a) = parse("binary:///usr/bin/logger?id=abc&flag&path=%2Fvar%2Flog").unwrap();
        assert_eq!(p, "/usr/bin/logger");
        assert_eq!(a, ["id", "abc", "flag", "path", "/var/log"]);
        let (p, a) = parse("binary:///bin/x").unwrap();
        assert_eq!(p, "/bin/x");
        assert!(a.is_empty());
        assert!(parse("binary://").is_err());
    }
}

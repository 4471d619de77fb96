//! Running OCI hooks: the state JSON on stdin, the hook's own env, its timeout.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks};

use crate::error::{Error, Result};

/// The six hook kinds, in lifecycle order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Deprecated, run with createRuntime.
    Prestart,
    /// In the runtime namespace, after the namespaces and mounts exist.
    CreateRuntime,
    /// In the container's namespaces, before pivot_root.
    CreateContainer,
    /// In the container, before the user process is executed.
    StartContainer,
    /// After the user process started, before `start` returns.
    Poststart,
    /// After the container is deleted.
    Poststop,
}

impl Kind {
    /// The name used in config.json.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }

    fn of(self, hooks: &Hooks) -> &Option<Vec<Hook>> {
        #[allow(deprecated)]
        match self {
            Kind::Prestart => hooks.prestart(),
            Kind::CreateRuntime => hooks.create_runtime(),
            Kind::CreateContainer => hooks.create_container(),
            Kind::StartContainer => hooks.start_container(),
            Kind::Poststart => hooks.poststart(),
            Kind::Poststop => hooks.poststop(),
        }
    }
}

/// Run every hook of `kind` in order, stopping at the first failure. The
/// hooks start in `cwd` when given (runc: the bundle for the runtime's
/// hooks, the rootfs for createContainer), else in the caller's.
pub fn run(hooks: Option<&Hooks>, kind: Kind, state_json: &str, cwd: Option<&Path>) -> Result<()> {
    for hook in of_kind(hooks, kind) {
        run_one(hook, kind, state_json, cwd)?;
    }
    Ok(())
}

/// Run every hook of `kind` (poststart, poststop): a failure is logged as a
/// warning and the remaining hooks still run, as runtime-spec requires.
pub fn run_warn(hooks: Option<&Hooks>, kind: Kind, state_json: &str, cwd: Option<&Path>) {
    for hook in of_kind(hooks, kind) {
        if let Err(e) = run_one(hook, kind, state_json, cwd) {
            tracing::warn!("{e}");
        }
    }
}

fn of_kind(hooks: Option<&Hooks>, kind: Kind) -> impl Iterator<Item = &Hook> {
    hooks
        .and_then(|h| kind.of(h).as_ref())
        .into_iter()
        .flatten()
}

/// Does the config have any hook of `kind`?
pub fn any(hooks: Option<&Hooks>, kind: Kind) -> bool {
    hooks
        .and_then(|h| kind.of(h).as_ref())
        .is_some_and(|v| !v.is_empty())
}

fn run_one(hook: &Hook, kind: Kind, state_json: &str, cwd: Option<&Path>) -> Result<()> {
    let err = |msg: String| Error::Hook {
        kind: kind.name(),
        path: hook.path().clone(),
        msg,
    };
    let mut cmd = Command::new(hook.path());
    let args = hook.args().clone().unwrap_or_default();
    if let Some((arg0, rest)) = args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    // As runc (Go's exec.Cmd): without `env` the hook inherits the
    // runtime's environment; with one (even empty) it gets exactly that.
    if let Some(env) = hook.env() {
        cmd.env_clear();
        for kv in env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    // Its own process group, killed whole at the timeout; and it dies
    // with skiff.
    cmd.process_group(0);
    crate::sys::hook_child_defaults(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| err(format!("cannot start: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook may exit without reading its stdin: a broken pipe is not an error.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let timeout = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(err(format!("wait: {e}"))),
        }
        if let Some(t) = timeout {
            if started.elapsed() >= t {
                let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
                let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
                let _ = child.kill();
                let _ = child.wait();
                return Err(err(format!("timed out after {}s", t.as_secs())));
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    let first = stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let detail = if first.is_empty() {
        String::new()
    } else {
        format!(": {first}")
    };
    Err(err(format!("failed with {status}{detail}")))
}

//! `exec`: a new process in a running container.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use libcontainer::container::{self, ExecOpts, StateRoot};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, Process};

/// Run a new process in a container.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// A process.json to run instead of ARGS.
    #[arg(short, long)]
    process: Option<PathBuf>,
    /// Give the process a terminal.
    #[arg(short, long)]
    tty: bool,
    /// Unix socket that receives the pty master.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Working directory in the container.
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Extra environment variables (KEY=VALUE).
    #[arg(short, long)]
    env: Vec<String>,
    /// User: name or uid[:gid].
    #[arg(short, long)]
    user: Option<String>,
    /// Extra supplementary groups.
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<String>,
    /// Extra capabilities.
    #[arg(short, long)]
    cap: Vec<String>,
    /// Set no_new_privs.
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// AppArmor profile for the process.
    #[arg(long)]
    apparmor: Option<String>,
    /// SELinux label for the process.
    #[arg(long = "process-label")]
    process_label: Option<String>,
    /// Return once the process runs.
    #[arg(short, long)]
    detach: bool,
    /// Write the process's pid to this file.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Pass this many extra fds (from 3) to the process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// Exec even if the container is paused.
    #[arg(long = "ignore-paused")]
    ignore_paused: bool,
    /// Run the process in this sub-cgroup of the container's (cgroup v2;
    /// runc's `controller:path` form for v1 is not supported).
    #[arg(long = "cgroup")]
    cgroup: Vec<String>,
    /// Container id.
    id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

fn add_caps(set: &Option<Capabilities>, extra: &[Capability]) -> Capabilities {
    let mut s = set.clone().unwrap_or_default();
    s.extend(extra.iter().copied());
    s
}

/// `--env` entries replace the config's entries of the same name (runc:
/// `exec --env PATH=... printenv PATH` prints the given PATH), others are
/// appended.
fn override_env(env: &mut Vec<String>, extra: &[String]) {
    for e in extra {
        let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
        env.retain(|old| old.split_once('=').map_or(old.as_str(), |(k, _)| k) != key);
        env.push(e.clone());
    }
}

/// The error of a failed `exec`: runc prints "exec failed: ..." and exits
/// 255, which callers (containerd, scripts) tell apart from the process's
/// own exit codes.
#[derive(Debug)]
pub struct ExecFailed;

impl std::fmt::Display for ExecFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("exec failed")
    }
}

/// The exit code of `exec` when it fails.
pub const EXEC_FAILED: u8 = 255;

fn build_process(base: Option<&Process>, a: &ExecArgs) -> Result<Process> {
    if let Some(p) = &a.process {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("--process {}", p.display()))?;
        let mut v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("--process {}: invalid JSON", p.display()))?;
        if let Some(caps) = v.pointer_mut("/capabilities") {
            libcontainer::config::drop_unknown_caps(caps);
        }
        // runc: a process without `user` runs as uid 0, gid 0.
        if let Some(obj) = v.as_object_mut() {
            obj.entry("user")
                .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
        }
        return serde_json::from_value(v)
            .with_context(|| format!("--process {}: invalid JSON", p.display()));
    }
    if a.args.is_empty() {
        bail!("exec: the command to run is missing");
    }
    let mut p = base.cloned().unwrap_or_default();
    p.set_args(Some(a.args.clone()));
    let mut env = p.env().clone().unwrap_or_default();
    override_env(&mut env, &a.env);
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    p.set_terminal(Some(a.tty));
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(profile) = &a.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &a.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    if !a.cap.is_empty() {
        // As runc: a capability skiff does not know is warned about and
        // left out, not an error.
        let extra: Vec<Capability> = a
            .cap
            .iter()
            .filter_map(|c| {
                let cap =
                    serde_json::from_value::<Capability>(serde_json::Value::String(c.clone()));
                if cap.is_err() {
                    tracing::warn!("--cap: unknown capability {c:?} ignored");
                }
                cap.ok()
            })
            .collect();
        let c = p.capabilities().clone().unwrap_or_default();
        let mut n = LinuxCapabilities::default();
        n.set_bounding(Some(add_caps(c.bounding(), &extra)));
        n.set_effective(Some(add_caps(c.effective(), &extra)));
        n.set_permitted(Some(add_caps(c.permitted(), &extra)));
        n.set_inheritable(c.inheritable().clone());
        n.set_ambient(c.ambient().clone());
        p.set_capabilities(Some(n));
    }
    Ok(p)
}

/// `skiff exec`; returns the process's exit code (0 with --detach). A
/// failure to start the process is an [`ExecFailed`] error.
pub fn exec(root: &Path, a: &ExecArgs) -> Result<u8> {
    let (pid, signals, console) = start(root, a).context(ExecFailed)?;
    let Some(signals) = signals else {
        return Ok(0);
    };
    let code = container::wait_forwarding(pid, &signals)?;
    if let Some(c) = console {
        c.finish();
    }
    Ok(code.clamp(0, 255) as u8)
}

/// `--cgroup`: on cgroup v2 one plain path (runc also takes `:path` or
/// `unified:path` for it); a v1 `controller:path` is refused.
fn sub_cgroup(given: &[String]) -> Result<Option<PathBuf>> {
    match given {
        [] => Ok(None),
        [one] => {
            let path = match one.split_once(':') {
                None => one.as_str(),
                Some(("" | "unified", p)) => p,
                Some((ctl, _)) => {
                    bail!("--cgroup {one}: per-controller paths ({ctl}:...) need cgroup v1")
                }
            };
            Ok(Some(PathBuf::from(path)))
        }
        _ => bail!("--cgroup: given more than once; cgroup v2 takes a single path"),
    }
}

type Started = (
    nix::unistd::Pid,
    Option<nix::sys::signal::SigSet>,
    Option<super::tty::Console>,
);

fn start(root: &Path, a: &ExecArgs) -> Result<Started> {
    libcontainer::exeseal::ensure_sealed()?;
    let root = StateRoot::open(root)?;
    let loaded = container::load(&root, &a.id)?;
    let process = build_process(loaded.0.config.process().as_ref(), a)?;
    let terminal = process.terminal().unwrap_or(false);
    // As runc: without --console-socket a foreground exec copies the pty to
    // its own stdio; a detached one has nobody to give it to.
    let mut console = None;
    if terminal && a.console_socket.is_none() {
        if a.detach {
            bail!("--tty: cannot allocate a tty for a detached exec without --console-socket");
        }
        console = Some(UnixStream::pair().context("console socketpair")?);
    }
    let opts = ExecOpts {
        process,
        user: a.user.clone(),
        extra_groups: a.additional_gids.clone(),
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
        stdio: None,
        ignore_paused: a.ignore_paused,
        sub_cgroup: sub_cgroup(&a.cgroup)?,
        console_stream: console
            .as_ref()
            .map(|(_, theirs)| theirs.try_clone().map(|s| Arc::new(OwnedFd::from(s))))
            .transpose()
            .context("console socket")?,
    };
    let signals = if a.detach {
        None
    } else {
        Some(container::block_signals()?)
    };
    let pid = container::exec_loaded(loaded, &opts)?;
    drop(opts);
    let console = match console {
        Some((ours, _)) => Some(super::tty::attach(super::tty::receive_master(&ours)?)?),
        None => None,
    };
    Ok((pid, signals, console))
}

//! `exec`: a new process in a running container.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use libcontainer::container::{self, ExecOpts, StateRoot};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, Process};

/// Flags of `exec`, as runc names them.
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

fn build_process(base: Option<&Process>, a: &ExecArgs) -> Result<Process> {
    if let Some(p) = &a.process {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("--process {}", p.display()))?;
        return serde_json::from_str(&text)
            .with_context(|| format!("--process {}: invalid JSON", p.display()));
    }
    if a.args.is_empty() {
        bail!("exec: the command to run is missing");
    }
    let mut p = base.cloned().unwrap_or_default();
    p.set_args(Some(a.args.clone()));
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(a.env.iter().cloned());
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
        let extra: Vec<Capability> = a
            .cap
            .iter()
            .map(|c| {
                serde_json::from_value::<Capability>(serde_json::Value::String(c.clone()))
                    .map_err(|_| anyhow::anyhow!("--cap: unknown capability {c:?}"))
            })
            .collect::<Result<_>>()?;
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

/// `skiff exec`; returns the process's exit code (0 with --detach).
pub fn exec(root: &Path, a: &ExecArgs) -> Result<u8> {
    libcontainer::exeseal::ensure_sealed()?;
    let root = StateRoot::open(root)?;
    let (state, _) = container::load(&root, &a.id)?;
    let process = build_process(state.config.process().as_ref(), a)?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && a.console_socket.is_none() {
        bail!("--tty: skiff needs --console-socket to give the process a terminal");
    }
    let opts = ExecOpts {
        process,
        user: a.user.clone(),
        extra_groups: a.additional_gids.clone(),
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
        stdio: None,
        console_stream: None,
    };
    let signals = if a.detach {
        None
    } else {
        Some(container::block_signals()?)
    };
    let pid = container::exec(&root, &a.id, &opts)?;
    let Some(signals) = signals else {
        return Ok(0);
    };
    let code = container::wait_forwarding(pid, &signals)?;
    Ok(code.clamp(0, 255) as u8)
}

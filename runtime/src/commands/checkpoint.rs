//! `checkpoint` and `restore`, with runc's flags, through libcontainer's
//! CRIU client.

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use libcontainer::checkpoint::{self, CgroupsMode, CheckpointOpts, CriuOpts, RestoreOpts};
use libcontainer::config::Bundle;
use libcontainer::container::{self, StateRoot};

use super::tty;

/// The flags checkpoint and restore share.
#[derive(Debug, Args)]
pub struct CriuArgs {
    /// Directory for the images [default: ./checkpoint].
    #[arg(long = "image-path")]
    image_path: Option<PathBuf>,
    /// Directory for CRIU's log.
    #[arg(long = "work-path")]
    work_path: Option<PathBuf>,
    /// Allow open TCP connections.
    #[arg(long = "tcp-established")]
    tcp_established: bool,
    /// Allow external unix sockets.
    #[arg(long = "ext-unix-sk")]
    ext_unix_sk: bool,
    /// Allow a shell job (a tty and session from outside).
    #[arg(long = "shell-job")]
    shell_job: bool,
    /// Handle file locks.
    #[arg(long = "file-locks")]
    file_locks: bool,
    /// Cgroups mode: soft, full, strict or ignore.
    #[arg(long = "manage-cgroups-mode")]
    manage_cgroups_mode: Option<String>,
    /// Make this namespace empty instead of dumping or restoring it.
    #[arg(long = "empty-ns")]
    empty_ns: Vec<String>,
    /// Deduplicate the pages of the parent images.
    #[arg(long = "auto-dedup")]
    auto_dedup: bool,
    /// Use lazy migration of memory pages.
    #[arg(long = "lazy-pages")]
    lazy_pages: bool,
}

impl CriuArgs {
    fn opts(&self, criu: Option<&Path>) -> Result<CriuOpts> {
        let image_path = match &self.image_path {
            Some(p) => p.clone(),
            None => std::env::current_dir()
                .context("current directory")?
                .join("checkpoint"),
        };
        Ok(CriuOpts {
            criu: criu.map(Path::to_path_buf),
            image_path,
            work_path: self.work_path.clone(),
            tcp_established: self.tcp_established,
            ext_unix_sk: self.ext_unix_sk,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            cgroups_mode: self
                .manage_cgroups_mode
                .as_deref()
                .map(CgroupsMode::parse)
                .transpose()?
                .unwrap_or_default(),
            empty_ns: self.empty_ns.clone(),
            auto_dedup: self.auto_dedup,
            lazy_pages: self.lazy_pages,
        })
    }
}

/// Checkpoint a running container with CRIU.
#[derive(Debug, Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    criu: CriuArgs,
    /// The parent (pre-dump) images, relative to --image-path.
    #[arg(long = "parent-path")]
    parent_path: Option<PathBuf>,
    /// Leave the container running after the checkpoint.
    #[arg(long = "leave-running")]
    leave_running: bool,
    /// Dump the memory only (the container keeps running).
    #[arg(long = "pre-dump")]
    pre_dump: bool,
    /// ADDRESS:PORT of the page server (with --lazy-pages: where the pages
    /// are served from).
    #[arg(long = "page-server")]
    page_server: Option<String>,
    /// With --lazy-pages: a zero byte is written to this fd once the page
    /// server is ready.
    #[arg(long = "status-fd")]
    status_fd: Option<i32>,
    /// Container id.
    id: String,
}

/// Restore a container from a checkpoint with CRIU.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    criu: CriuArgs,
    /// The bundle directory.
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Unix socket that receives the pty master.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Return once the container is restored.
    #[arg(short, long)]
    detach: bool,
    /// Write the init's pid to this file.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Do not make skiff a subreaper.
    #[arg(long = "no-subreaper")]
    no_subreaper: bool,
    /// Accepted as runc does (CRIU makes the root itself).
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// The LSM profile of the restored processes.
    #[arg(long = "lsm-profile")]
    lsm_profile: Option<String>,
    /// The SELinux mount context of the restored mounts.
    #[arg(long = "lsm-mount-context")]
    lsm_mount_context: Option<String>,
    /// Container id.
    id: String,
}

/// The inherited `--status-fd`, checked to be open for writing.
fn status_fd(fd: i32) -> Result<OwnedFd> {
    let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL)
        .with_context(|| format!("--status-fd {fd}"))?;
    let mode = nix::fcntl::OFlag::from_bits_truncate(flags) & nix::fcntl::OFlag::O_ACCMODE;
    if mode == nix::fcntl::OFlag::O_RDONLY {
        bail!("--status-fd {fd}: not open for writing");
    }
    // SAFETY: fd is open (F_GETFL above), was inherited for this purpose,
    // and nothing else in this process owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `skiff checkpoint`.
pub fn checkpoint(root: &Path, a: &CheckpointArgs, criu: Option<&Path>) -> Result<()> {
    let root = StateRoot::open(root)?;
    let page_server = a
        .page_server
        .as_deref()
        .map(|s| {
            s.rsplit_once(':')
                .and_then(|(addr, port)| Some((addr.to_string(), port.parse().ok()?)))
                .with_context(|| format!("--page-server {s:?}: ADDRESS:PORT expected"))
        })
        .transpose()?;
    let opts = CheckpointOpts {
        criu: a.criu.opts(criu)?,
        parent_path: a.parent_path.clone(),
        leave_running: a.leave_running,
        pre_dump: a.pre_dump,
        page_server,
        status_fd: a.status_fd.map(status_fd).transpose()?.map(Arc::new),
    };
    checkpoint::checkpoint(&root, &a.id, &opts)?;
    Ok(())
}

/// `skiff restore`: like `run`, the restored container is waited for and
/// deleted unless --detach.
pub fn restore(root: &Path, a: &RestoreArgs, criu: Option<&Path>, systemd: bool) -> Result<u8> {
    let root = StateRoot::open(root)?;
    let bundle = Bundle::load(&a.bundle)?;
    // A terminal with no --console-socket: in the foreground skiff takes the
    // master itself and copies it to its own stdio, as run does.
    let ours = tty::local_console(&bundle, a.console_socket.as_deref(), a.detach)?;
    let opts = RestoreOpts {
        criu: a.criu.opts(criu)?,
        pid_file: a.pid_file.clone(),
        systemd_cgroup: systemd,
        lsm_profile: a.lsm_profile.clone(),
        lsm_mount_context: a.lsm_mount_context.clone(),
        stdio: None,
        console_socket: a.console_socket.clone(),
        console_stream: ours
            .as_ref()
            .map(|(_, theirs)| theirs.try_clone().map(OwnedFd::from))
            .transpose()?,
    };
    let signals = if a.detach {
        None
    } else {
        Some(container::block_signals()?)
    };
    if !a.no_subreaper {
        nix::sys::prctl::set_child_subreaper(true).context("become a subreaper")?;
    }
    let state = checkpoint::restore(&root, &a.id, &bundle, &opts)?;
    drop(opts);
    let console = match ours {
        Some((sock, _)) => Some(tty::attach(tty::receive_master(&sock)?)?),
        None => None,
    };
    let Some(signals) = signals else {
        return Ok(0);
    };
    let code = container::wait_forwarding(state.init_pid(), &signals)?;
    if let Some(c) = console {
        c.finish();
    }
    container::delete(&root, &a.id, true)?;
    Ok(code.clamp(0, 255) as u8)
}

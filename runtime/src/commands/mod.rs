//! One module per group of commands; each is a thin call into libcontainer.

mod cgroup;
mod checkpoint;
pub mod create;
mod exec;
mod info;
mod lifecycle;
mod spec;
mod tty;

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

/// The commands, with runc's names and flags. Each command's flags are
/// built only when that command is parsed (`defer`), not for every call;
/// a command whose flags are a struct has its description twice, on the
/// variant (the list of commands) and on the struct (its own help), and
/// the test `deferred_flags_keep_the_description` holds them equal.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Create a container; its process waits for `start`.
    Create(CreateArgs),
    /// Run the process of a created container.
    Start {
        /// Container id.
        id: String,
    },
    /// Create and start a container, and wait for it unless --detach.
    Run(RunArgs),
    /// Print a container's state as JSON.
    State {
        /// Container id.
        id: String,
    },
    /// Send a signal to a container's init (or all its processes).
    Kill {
        /// Send the signal to every process of the container.
        #[arg(short, long)]
        all: bool,
        /// Container id.
        id: String,
        /// Signal name or number.
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container and what it holds.
    Delete {
        /// Kill a running container first.
        #[arg(short, long)]
        force: bool,
        /// Container id.
        id: String,
    },
    /// List containers.
    List {
        /// Print only the ids.
        #[arg(short, long)]
        quiet: bool,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        format: OutFormat,
    },
    /// List the processes of a container.
    Ps {
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        format: OutFormat,
        /// Container id.
        id: String,
        /// Options passed to ps(1) for the table format.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Run a new process in a container.
    Exec(exec::ExecArgs),
    /// Write a default config.json.
    Spec {
        /// The bundle directory to write it in.
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// Make a config for a rootless container.
        #[arg(long)]
        rootless: bool,
    },
    /// Print the features of this runtime as JSON.
    Features,
    /// Check whether this host can run containers well, and what would help.
    Check {
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        format: OutFormat,
    },
    /// Freeze every process of a container.
    Pause {
        /// Container id.
        id: String,
    },
    /// Thaw a paused container.
    Resume {
        /// Container id.
        id: String,
    },
    /// Change a running container's resource limits.
    Update(cgroup::UpdateArgs),
    /// Checkpoint a running container with CRIU.
    Checkpoint(checkpoint::CheckpointArgs),
    /// Restore a container from a checkpoint with CRIU.
    Restore(checkpoint::RestoreArgs),
    /// Print a container's stats and OOM events as JSON lines.
    Events {
        /// Seconds (or a duration like 500ms) between stats.
        #[arg(long, default_value = "5s")]
        interval: String,
        /// Print the stats once and exit.
        #[arg(long)]
        stats: bool,
        /// Container id.
        id: String,
    },
}

/// Table or JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutFormat {
    /// Aligned columns.
    Table,
    /// JSON.
    Json,
}

/// Create a container; its process waits for `start`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The bundle directory.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Write the init's pid to this file.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE and chroot instead of pivot_root.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not make a new session keyring.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many extra fds (from 3) to the process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Container id.
    pub id: String,
}

/// Create and start a container, and wait for it unless --detach.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return once the container is started.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container after it exits (runc's --keep).
    #[arg(long)]
    pub keep: bool,
}

impl Command {
    /// Does the command only print (no container is changed, no hook runs)?
    pub fn only_prints(&self) -> bool {
        matches!(
            self,
            Command::State { .. }
                | Command::List { .. }
                | Command::Ps { .. }
                | Command::Features
                | Command::Check { .. }
                | Command::Events { .. }
        )
    }
}

/// The exit code for a command that failed with `e`: 255 for a failed
/// exec (as runc), 1 otherwise.
pub fn exit_code_of(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<exec::ExecFailed>().is_some() {
        exec::EXEC_FAILED
    } else {
        1
    }
}

/// Run `cmd` with state under `root`; returns the exit code. `rootless`:
/// use cgroups only where delegated to the caller; `criu`: the CRIU binary
/// (`--criu`).
pub fn run(
    cmd: Command,
    root: &Path,
    drivers: create::Drivers,
    criu: Option<&Path>,
) -> anyhow::Result<u8> {
    match cmd {
        Command::Create(a) => create::create(root, &a, drivers).map(|_| 0),
        Command::Run(a) => create::run(root, &a, drivers),
        Command::Start { id } => lifecycle::start(root, &id).map(|_| 0),
        Command::State { id } => lifecycle::state(root, &id).map(|_| 0),
        Command::Kill { all, id, signal } => lifecycle::kill(root, &id, &signal, all).map(|_| 0),
        Command::Delete { force, id } => lifecycle::delete(root, &id, force).map(|_| 0),
        Command::List { quiet, format } => info::list(root, quiet, format).map(|_| 0),
        Command::Ps {
            format,
            id,
            ps_args,
        } => info::ps(root, &id, format, &ps_args).map(|_| 0),
        Command::Exec(a) => exec::exec(root, &a),
        Command::Spec { bundle, rootless } => spec::spec(&bundle, rootless).map(|_| 0),
        Command::Features => info::features().map(|_| 0),
        Command::Check { format } => info::check(format),
        Command::Pause { id } => cgroup::pause(root, &id, true).map(|_| 0),
        Command::Resume { id } => cgroup::pause(root, &id, false).map(|_| 0),
        Command::Update(a) => cgroup::update(root, &a).map(|_| 0),
        Command::Checkpoint(a) => checkpoint::checkpoint(root, &a, criu).map(|_| 0),
        Command::Restore(a) => checkpoint::restore(root, &a, criu, drivers.systemd),
        Command::Events {
            interval,
            stats,
            id,
        } => cgroup::events(root, &id, &interval, stats).map(|_| 0),
    }
}

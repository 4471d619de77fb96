//! `skiff`: an OCI container runtime with runc's command line.

mod commands;
mod logging;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

const VERSION: &str = concat!(
    "version ",
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("SKIFF_COMMIT"),
    "\nspec: 1.2.0"
);

/// The global flags, named as runc names them.
#[derive(Debug, Parser)]
#[command(name = "skiff", version = VERSION, about = "skiff: a fast, small OCI container runtime (drop-in for runc)")]
struct Cli {
    /// Directory for the containers' state.
    #[arg(long, default_value = "/run/skiff")]
    root: PathBuf,
    /// Write log lines to this file instead of stderr.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Log line format.
    #[arg(long = "log-format", value_enum, default_value = "text")]
    log_format: logging::Format,
    /// Log debug messages.
    #[arg(long)]
    debug: bool,
    /// Place containers in systemd scopes (cgroupsPath `slice:prefix:name`).
    #[arg(long = "systemd-cgroup")]
    systemd_cgroup: bool,
    /// crun's spelling of the cgroup driver choice (cgroupfs, systemd, disabled).
    #[arg(long = "cgroup-manager", hide = true)]
    cgroup_manager: Option<String>,
    /// Rootless mode: auto, true or false.
    #[arg(long, default_value = "auto")]
    rootless: String,
    #[command(subcommand)]
    cmd: commands::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = match logging::init(cli.log.as_deref(), cli.log_format, cli.debug) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("skiff: {e:#}");
            return ExitCode::from(1);
        }
    };
    let systemd = cli.systemd_cgroup || cli.cgroup_manager.as_deref() == Some("systemd");
    tracing::debug!(rootless = cli.rootless.as_str(), "starting");
    match commands::run(cli.cmd, &cli.root, systemd) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            log.fatal(&e);
            ExitCode::from(1)
        }
    }
}

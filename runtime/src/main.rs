//! `skiff`: an OCI container runtime with runc's command line.

mod arena;
mod commands;
mod logging;
#[cfg(target_arch = "x86_64")]
mod memcpy;
mod open;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Every allocation of skiff goes through the bump arena (see arena.rs).
#[global_allocator]
static ALLOC: arena::Arena<{ arena::SIZE }> = arena::Arena::new();

const VERSION: &str = concat!(
    "version ",
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("SKIFF_COMMIT"),
    "\nspec: 1.2.0"
);

/// The global flags, named as runc names them.
#[derive(Debug, Parser)]
#[command(name = "skiff", version = VERSION, disable_version_flag = true, about = "skiff: a fast, small OCI container runtime (drop-in for runc)")]
struct Cli {
    /// Print the version (runc's -v / --version).
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    version: Option<bool>,
    /// Directory for the containers' state [default: /run/skiff, or
    /// $XDG_RUNTIME_DIR/skiff when not root].
    #[arg(long)]
    root: Option<PathBuf>,
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
    /// The CRIU binary for checkpoint and restore [default: criu].
    #[arg(long)]
    criu: Option<PathBuf>,
    /// Rootless mode: auto, true or false.
    #[arg(long, default_value = "auto")]
    rootless: String,
    #[command(subcommand)]
    cmd: commands::Command,
}

/// The state root: `--root`, else runc's rule: $XDG_RUNTIME_DIR/skiff for
/// a non-root user when XDG_RUNTIME_DIR is set (made 0700 with the sticky
/// bit, so the XDG cleaner leaves it alone), else /run/skiff.
fn state_root(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if let Some(root) = given {
        return Ok(root);
    }
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty());
    let Some(xdg) = xdg.filter(|_| !nix::unistd::geteuid().is_root()) else {
        return Ok(PathBuf::from("/run/skiff"));
    };
    let root = PathBuf::from(xdg).join("skiff");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&root)
        .with_context(|| format!("create state dir {}", root.display()))?;
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o1700))
        .with_context(|| format!("chmod {}", root.display()))?;
    Ok(root)
}

/// `--rootless`: true, false, or auto (rootless when not root), as runc.
fn rootless(flag: &str) -> anyhow::Result<bool> {
    match flag {
        "true" => Ok(true),
        "false" => Ok(false),
        "auto" => Ok(!nix::unistd::geteuid().is_root()),
        other => anyhow::bail!("--rootless: {other:?} is not one of auto, true, false"),
    }
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so printing to a closed pipe (`skiff features |
    // head`, `skiff --help | head`) would panic. The commands that only
    // print die of the signal quietly instead, as runc (Go) does for stdout;
    // the others keep it ignored, so a hook that does not read its state
    // gives EPIPE rather than killing skiff half-way.
    let help = ["help", "-h", "--help", "-v", "--version"];
    if std::env::args().len() == 1 || std::env::args().skip(1).any(|a| help.contains(&a.as_str())) {
        libcontainer::signal::default_sigpipe();
    }
    // The commands that fork into a container re-execute skiff from a sealed
    // copy of itself (exeseal) before they do anything else. Doing it before
    // the argument parsing keeps the first image small: it faults in and
    // runs almost nothing. A stray match (an id named "run") costs only the
    // re-exec; a failure here is reported by the command's own call.
    if std::env::args_os()
        .skip(1)
        .any(|a| a == "create" || a == "run" || a == "exec")
    {
        let _ = libcontainer::exeseal::ensure_sealed();
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return parse_failure(e),
    };
    if cli.cmd.only_prints() {
        libcontainer::signal::default_sigpipe();
    }
    let log = match logging::init(cli.log.as_deref(), cli.log_format, cli.debug) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("skiff: {}", libcontainer::error::one_line(e.as_ref()));
            return ExitCode::from(1);
        }
    };
    let systemd = cli.systemd_cgroup || cli.cgroup_manager.as_deref() == Some("systemd");
    tracing::debug!(rootless = cli.rootless.as_str(), "starting");
    let res = state_root(cli.root).and_then(|root| {
        let rootless = rootless(&cli.rootless)?;
        let drivers = commands::create::Drivers { systemd, rootless };
        commands::run(cli.cmd, &root, drivers, cli.criu.as_deref())
    });
    match res {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            log.fatal(&e);
            ExitCode::from(commands::exit_code_of(&e))
        }
    }
}

/// Report a command line clap could not parse. An unknown command (`skiff
/// foo`, `skiff foo -h`, `skiff help foo`) is answered as runc answers it:
/// "No help topic for 'foo'", exit 3; anything else as clap does.
fn parse_failure(e: clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::InvalidSubcommand {
        e.exit()
    }
    let name = match e.get(ContextKind::InvalidSubcommand) {
        Some(ContextValue::String(n)) => n.clone(),
        _ => String::new(),
    };
    match logging::init(None, logging::Format::Text, false) {
        Ok(log) => log.fatal(&anyhow::anyhow!("No help topic for '{name}'")),
        Err(_) => eprintln!("No help topic for '{name}'"),
    }
    ExitCode::from(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootless_flag_and_explicit_root() {
        assert!(rootless("true").unwrap());
        assert!(!rootless("false").unwrap());
        assert_eq!(rootless("auto").unwrap(), !nix::unistd::geteuid().is_root());
        assert!(rootless("maybe").is_err());
        let given = PathBuf::from("/tmp/skiff-given-root");
        assert_eq!(state_root(Some(given.clone())).unwrap(), given);
        if nix::unistd::geteuid().is_root() {
            assert_eq!(state_root(None).unwrap(), PathBuf::from("/run/skiff"));
        }
    }

    /// The commands' flags are built only when parsed (`defer`); building
    /// them must not change a command's description (a struct of flags
    /// brings its own doc comment).
    #[test]
    fn deferred_flags_keep_the_description() {
        use clap::CommandFactory;
        let cli = Cli::command();
        let mut checked = 0;
        for sub in cli.get_subcommands() {
            let mut built = sub.clone();
            built.build();
            let text = |c: &clap::Command| {
                (
                    c.get_about().map(|a| a.to_string()),
                    c.get_long_about().map(|a| a.to_string()),
                )
            };
            assert!(
                sub.get_about().is_some(),
                "{} has no description",
                sub.get_name()
            );
            assert_eq!(text(sub), text(&built), "description of {}", sub.get_name());
            checked += usize::from(built.get_arguments().count() > sub.get_arguments().count());
        }
        assert!(checked >= 6, "only {checked} commands had deferred flags");
        Cli::command().debug_assert();
    }
}

//! `create` and `run`.

use std::path::Path;

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use anyhow::Result;
use libcontainer::config::Bundle;
use libcontainer::container::{self, CreateOpts, StateRoot};

use super::{tty, CreateArgs, RunArgs};

/// Socket-activation fds handed to skiff (LISTEN_FDS for our own pid), which
/// runc passes on to the container after stdio.
fn listen_fds() -> u32 {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    if !ours {
        return 0;
    }
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// What create and run share: the sealed binary, the loaded bundle, the
/// state root, the options, and (foreground run with a terminal) our end of
/// the console socket.
type Prepared = (StateRoot, Bundle, CreateOpts, Option<UnixStream>);

/// The global flags that choose how a container is placed.
#[derive(Debug, Clone, Copy)]
pub struct Drivers {
    /// `--systemd-cgroup`.
    pub systemd: bool,
    /// `--rootless` (auto: not root).
    pub rootless: bool,
}

fn prepare(root: &Path, a: &CreateArgs, detached: bool, drivers: Drivers) -> Result<Prepared> {
    libcontainer::exeseal::ensure_sealed()?;
    let bundle = Bundle::load(&a.bundle)?;
    let console = tty::local_console(&bundle, a.console_socket.as_deref(), detached)?;
    let root = StateRoot::open(root)?;
    let opts = CreateOpts {
        console_socket: a.console_socket.clone(),
        console_stream: console
            .as_ref()
            .map(|(_, theirs)| theirs.try_clone().map(OwnedFd::from))
            .transpose()?,
        pid_file: a.pid_file.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        listen_fds: listen_fds(),
        systemd_cgroup: drivers.systemd,
        rootless: drivers.rootless,
        stdio: None,
        start_on_channel: false,
    };
    Ok((root, bundle, opts, console.map(|(ours, _)| ours)))
}

/// `skiff create`.
pub fn create(root: &Path, a: &CreateArgs, drivers: Drivers) -> Result<()> {
    let (root, bundle, opts, _) = prepare(root, a, true, drivers)?;
    container::create(&root, &a.id, &bundle, &opts)?;
    Ok(())
}

/// `skiff run`: create, start, and unless detached wait and delete.
pub fn run(root: &Path, a: &RunArgs, drivers: Drivers) -> Result<u8> {
    let (root, bundle, mut opts, console) = prepare(root, &a.create, a.detach, drivers)?;
    // create and start are one command: no exec fifo between them.
    opts.start_on_channel = true;
    let id = &a.create.id;
    // Block the forwarded signals before the container exists, so neither a
    // signal nor the exit of a fast process can be missed.
    let signals = if a.detach {
        None
    } else {
        Some(container::block_signals()?)
    };
    let created = container::create(&root, id, &bundle, &opts)?;
    drop(opts);
    let console = match console {
        Some(sock) => Some(tty::attach(tty::receive_master(&sock)?)?),
        None => None,
    };
    // The lock create took is held until the container is started, so its
    // state is not read back.
    let state = match container::start_created(&root, created) {
        Ok(s) => s,
        Err(e) => {
            let _ = container::delete(&root, id, true);
            return Err(e.into());
        }
    };
    let Some(signals) = signals else {
        return Ok(0);
    };
    let code = container::wait_forwarding(state.init_pid(), &signals)?;
    if let Some(c) = console {
        c.finish();
    }
    if !a.keep {
        container::delete_reaped(&root, &state)?;
    }
    Ok(code.clamp(0, 255) as u8)
}

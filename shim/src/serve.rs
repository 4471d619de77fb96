//! The long-lived shim: a child subreaper serving the task API (as
//! `containerd.task.v2.Task` for containerd 1.6/1.7 and `v3` for 2.x) over
//! ttrpc on the socket `start` bound, with one reaper thread that sees
//! every exit (SIGCHLD is blocked before any thread or process exists).

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, IntoRawFd};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use containerd_shim::protos::shim_sync::create_task;
use containerd_shim::protos::ttrpc::{MethodHandler, Server};
use containerd_shim::Flags;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

use crate::events::Events;
use crate::service::Service;

type Methods = HashMap<String, Box<dyn MethodHandler + Send + Sync>>;

/// The task API under both service names containerd uses.
fn methods(svc: &Arc<Service>) -> (Methods, Methods) {
    let v3 = create_task(svc.clone());
    let v2 = create_task(svc.clone())
        .into_iter()
        .map(|(k, v)| (k.replace("/containerd.task.v3.", "/containerd.task.v2."), v))
        .collect();
    (v3, v2)
}

/// Run the shim until containerd shuts it down.
pub fn serve(flags: &Flags) -> Result<()> {
    // `start` passed the listening socket as stdin.
    let listener = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .context("listening socket")?;
    let null = std::fs::File::open("/dev/null").context("open /dev/null")?;
    nix::unistd::dup2(null.as_raw_fd(), 0).context("stdin to /dev/null")?;
    let socket_path =
        nix::sys::socket::getsockname::<nix::sys::socket::UnixAddr>(listener.as_raw_fd())
            .ok()
            .and_then(|a| a.path().map(|p| p.to_path_buf()));

    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block().context("block SIGCHLD")?;
    nix::sys::prctl::set_child_subreaper(true).context("become a child subreaper")?;

    let ttrpc = std::env::var("TTRPC_ADDRESS").context("TTRPC_ADDRESS is not set")?;
    let events = Events::start(&ttrpc, flags.namespace.clone()).context("containerd's events")?;
    let svc = Arc::new(Service::new(flags.namespace.clone(), events));

    // Exits are applied to the task table on a thread of their own: the
    // reaper must never wait for the task lock, or a Create holding it
    // while containerd-shim's mount helper runs (its exit reaches the mount
    // code only through the reaper's monitor_notify_by_pid) deadlocks with
    // a container exiting at the same moment.
    let (exit_tx, exit_rx) = std::sync::mpsc::channel::<(i32, i32)>();
    let exits = svc.clone();
    std::thread::Builder::new()
        .name("exits".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            for (pid, code) in exit_rx {
                exits.reaped(pid, code);
            }
        })?;
    let reaper = svc.clone();
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC).context("signalfd")?;
    std::thread::Builder::new()
        .name("reaper".into())
        .stack_size(128 * 1024)
        .spawn(move || reap(&sfd, &reaper, &exit_tx))?;
    let oom = svc.clone();
    std::thread::Builder::new()
        .name("oom".into())
        .stack_size(128 * 1024)
        .spawn(move || {
            while oom.oom.wait_change() {
                oom.poll_oom();
            }
        })?;
    // `start` ran this shim in the bundle of the task it was started for.
    let bundle = std::env::current_dir().context("the shim's bundle (cwd)")?;
    let watch = svc.clone();
    let idle_exit = idle_exit();
    std::thread::Builder::new()
        .name("watch".into())
        .stack_size(128 * 1024)
        .spawn(move || loop {
            std::thread::sleep(Duration::from_secs(1));
            watch.poll_oom();
            if orphaned(&watch, &bundle) {
                log::warn!("no task and no bundle {}: exiting", bundle.display());
                watch.shutdown.signal();
            } else if watch.idle_for().is_some_and(|d| d >= idle_exit) {
                log::warn!("no task for {}s: exiting", idle_exit.as_secs());
                watch.shutdown.signal();
            }
        })?;

    let (v3, v2) = methods(&svc);
    let mut server = Server::new()
        .set_thread_count_min(1)
        .set_thread_count_default(2)
        .set_thread_count_max(3)
        .add_listener(listener.into_raw_fd())?
        .register_service(v3)
        .register_service(v2);
    server.start()?;
    log::debug!("skiff shim serving");
    svc.shutdown.wait();
    log::debug!("skiff shim shutting down");
    server.shutdown();
    if let Some(p) = socket_path {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

/// A shim that has had no task for this long exits. containerd sends
/// Create right after `start`, and Shutdown right after the last Delete; a
/// shim left without either lost its containerd in between (a restart that
/// cut off a Create): the new containerd may hold it as a task that never
/// was, and nobody would ever end it. When it exits, containerd cleans up
/// after it as after any dead shim (`shim delete`, bundle removed).
const IDLE_EXIT: Duration = Duration::from_secs(30);

/// [`IDLE_EXIT`], or `SKIFF_SHIM_IDLE_EXIT` seconds when that is set to a
/// positive number (the shim tests wait less).
fn idle_exit() -> Duration {
    std::env::var("SKIFF_SHIM_IDLE_EXIT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map_or(IDLE_EXIT, Duration::from_secs)
}

/// A shim with no task whose bundle is gone will never be used again: that
/// happens when containerd restarts between `start` and Create, forgets
/// the half-made task, and removes its bundle (`shim delete`), so no
/// Shutdown ever comes.
fn orphaned(svc: &Service, bundle: &std::path::Path) -> bool {
    svc.task_count() == 0 && !bundle.exists()
}

/// Reap every child on SIGCHLD: tell the shim crate's monitor (its mount
/// helper waits there), read an init's OOM count, and queue the exit for
/// the service's exits thread. Never waits for the task lock.
fn reap(sfd: &SignalFd, svc: &Service, exits: &std::sync::mpsc::Sender<(i32, i32)>) {
    loop {
        if sfd.read_signal().is_err() {
            std::thread::sleep(Duration::from_millis(10));
        }
        loop {
            let (pid, code) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid.as_raw(), code),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid.as_raw(), 128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            };
            // An OOM kill is counted before the victim exits; read it
            // before systemd can remove the cgroup (see oom.rs).
            svc.oom.reaped(pid, code);
            let _ = containerd_shim::monitor::monitor_notify_by_pid(pid, code);
            let _ = exits.send((pid, code));
        }
    }
}

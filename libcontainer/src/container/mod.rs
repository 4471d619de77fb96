//! The container lifecycle: create, start, state, kill, delete, list, ps and
//! exec, each an operation on a container's state dir under the `--root`.

mod clone;
pub(crate) mod create;
mod exec;
mod handshake;
pub(crate) mod host_check;
mod run;
pub mod state;

use std::io::Read;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill as send_signal, Signal};
use nix::unistd::Pid;
use serde_json::json;

pub use create::{create, write_pid_file, CreateOpts, Created};
pub use exec::{exec, exec_loaded, ExecOpts};
pub use run::{block_signals, wait_forwarding};
pub use state::{State, StateRoot, Status};

use crate::error::{Error, Result};
use crate::hooks::{self, Kind};
use crate::{procfs, sys};

/// The state JSON of the runtime spec (plus runc's rootfs, created, owner),
/// as `skiff state` prints it and hooks receive it.
pub fn state_json(s: &State, status: Status) -> String {
    state_value(s, status).to_string()
}

/// [`state_json`] as a JSON value.
pub fn state_value(s: &State, status: Status) -> serde_json::Value {
    let pid = if status == Status::Stopped { 0 } else { s.pid };
    json!({
        "ociVersion": crate::OCI_VERSION,
        "id": s.id,
        "pid": pid,
        "status": status.as_str(),
        "bundle": s.bundle,
        "rootfs": s.rootfs,
        "created": s.created,
        "owner": s.owner,
        "annotations": s.annotations(),
    })
}

/// The state and current status of container `id`.
pub fn load(root: &StateRoot, id: &str) -> Result<(State, Status)> {
    let s = root.load(id)?;
    let st = state::status_of(root, &s);
    Ok((s, st))
}

/// Let the init of a `created` container run the user process, then run
/// the poststart hooks.
pub fn start(root: &StateRoot, id: &str) -> Result<()> {
    let _lock = root.lock(id)?;
    let (s, status) = load(root, id)?;
    if status != Status::Created {
        return Err(Error::WrongStatus {
            id: id.into(),
            status: status.to_string(),
            msg: "cannot start a container that is not created".into(),
        });
    }
    start_in(root, &s)
}

/// Start the container `create` just made (`run`), under the lock it has
/// held since, without reading its state back; returns the state, and the
/// lock is released.
pub fn start_created(root: &StateRoot, c: Created) -> Result<State> {
    let Created {
        state,
        lock,
        chan,
        start_sent,
    } = c;
    match chan {
        Some(chan) => start_on_channel(&chan, &state, start_sent)?,
        None => start_in(root, &state)?,
    }
    drop(lock);
    Ok(state)
}

/// `start` of a container created with `start_on_channel`: tell init
/// (unless `create` did, `sent`), wait for the channel's EOF (the user
/// process was executed; init's end is close-on-exec) or its failure, then
/// run the poststart hooks.
fn start_on_channel(chan: &crate::process::channel::Channel, s: &State, sent: bool) -> Result<()> {
    use crate::process::channel::Msg;
    if !sent {
        chan.send_to_child(&Msg::Start)?;
    }
    match chan.recv()? {
        None => {}
        Some(Msg::Failed(m)) => return Err(Error::Child(m)),
        Some(m) => return Err(Error::Child(format!("unexpected message from init: {m:?}"))),
    }
    poststart(s);
    Ok(())
}

/// runtime-spec: a failed poststart hook is logged, the others still run
/// and the container keeps running.
fn poststart(s: &State) {
    hooks::run_warn(
        s.config.hooks().as_ref(),
        Kind::Poststart,
        &state_json(s, Status::Running),
        Some(s.bundle.as_path()),
    );
}

/// The steps of `start` once the created container `s` is locked.
fn start_in(root: &StateRoot, s: &State) -> Result<()> {
    let id = &s.id;
    let fifo_path = root.dir(id).join(state::EXEC_FIFO);
    let mut fifo = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo_path)
        .map_err(|e| Error::Io {
            path: fifo_path.clone(),
            source: e,
        })?;
    // The init writes one byte, then keeps its (close-on-exec) write end
    // open until it executes the user process: EOF means it did, and only
    // then may poststart run.
    wait_fifo(&mut fifo, s, true)?;
    std::fs::remove_file(&fifo_path).map_err(|e| Error::Io {
        path: fifo_path.clone(),
        source: e,
    })?;
    wait_fifo(&mut fifo, s, false)?;
    poststart(s);
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;

/// Wait on the exec fifo's read end for the go byte (`want_byte`) or for
/// EOF, checking every 100 ms that the init is still alive.
fn wait_fifo(fifo: &mut std::fs::File, s: &State, want_byte: bool) -> Result<()> {
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => {
                if !procfs::is_alive(s.init_pid(), s.pid_start) {
                    return if want_byte {
                        Err(Error::Child("container init exited before start".into()))
                    } else {
                        Ok(())
                    };
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                return Err(Error::Sys {
                    step: "poll exec fifo".into(),
                    source: e,
                })
            }
        }
        let mut b = [0u8; 4096];
        let len = if want_byte { 1 } else { b.len() };
        match fifo.read(&mut b[..len]) {
            Ok(1) if want_byte => return Ok(()),
            Ok(0) if !want_byte => return Ok(()),
            Ok(n) if !want_byte && b[0] == b'1' => {
                return Err(Error::Child(String::from_utf8_lossy(&b[1..n]).into_owned()))
            }
            Ok(0) => {
                return Err(Error::Child(
                    "container init closed the exec fifo without starting".into(),
                ))
            }
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                return Err(Error::Io {
                    path: "exec.fifo".into(),
                    source: e,
                })
            }
        }
    }
}

/// Send `signal` to the container's init, or with `all` to every process in
/// its pid namespace.
pub fn kill(root: &StateRoot, id: &str, signal: i32, all: bool) -> Result<()> {
    // Locked, so a concurrent delete cannot reap the init (and its pid be
    // reused) between the liveness check and the signal.
    let _lock = root.lock(id)?;
    let (s, status) = load(root, id)?;
    let not_running = || Error::WrongStatus {
        id: id.into(),
        status: Status::Stopped.to_string(),
        msg: "container not running".into(),
    };
    if status == Status::Stopped {
        return Err(not_running());
    }
    let sig = Signal::try_from(signal).ok();
    let targets = if all {
        container_pids(&s)
    } else {
        vec![s.init_pid()]
    };
    for pid in targets {
        let r = match sig {
            Some(sig) => send_signal(pid, sig),
            None => nix::errno::Errno::result(sys::kill_raw(pid, signal)).map(drop),
        };
        // With --all, a process may die (with its init) while we go: fine, as in runc.
        if all && r == Err(nix::errno::Errno::ESRCH) {
            continue;
        }
        // The init died since `load` (a concurrent kill): the container is
        // stopped now, and says so as it would have a moment later.
        if r == Err(nix::errno::Errno::ESRCH) {
            return Err(not_running());
        }
        r.map_err(|e| Error::Sys {
            step: format!("kill {pid}"),
            source: e,
        })?;
    }
    Ok(())
}

/// Does the container have its own pid namespace (so killing all of it is safe)?
fn own_pid_ns(s: &State) -> bool {
    procfs::ns_inode(&s.pid.to_string(), "pid") != procfs::ns_inode("self", "pid")
}

/// Wait up to `timeout` for process `pid` (started at `start`) to be gone.
fn wait_gone(pid: Pid, start: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let Ok(fd) = sys::pidfd_open(pid) else {
        return true;
    };
    while procfs::is_alive(pid, start) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let ms = left.as_millis().min(100) as u16;
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(ms));
    }
    true
}

/// Delete container `id`: a created or stopped one always, a running one
/// only with `force` (it is killed first). Runs the poststop hooks.
pub fn delete(root: &StateRoot, id: &str, force: bool) -> Result<()> {
    // runc: with --force a container that does not exist is not an error.
    let _lock = match root.lock(id) {
        Err(Error::NotExist(_)) if force => return Ok(()),
        l => l?,
    };
    let (s, status) = match load(root, id) {
        Ok(x) => x,
        Err(e @ Error::BadState { .. }) if force => {
            tracing::warn!("{e}; removing the state dir");
            if let Some(r) = root.load_remains(id) {
                end_remains(id, &r)?;
            }
            return root.remove(id);
        }
        // A dir without state: a create that was killed (a running create
        // holds the lock). runc removes it too.
        Err(Error::NotExist(_)) => {
            root.remove(id)?;
            return if force {
                Ok(())
            } else {
                Err(Error::NotExist(id.into()))
            };
        }
        Err(e) => return Err(e),
    };
    match status {
        Status::Stopped => {}
        // We hold the lock, so a `creating` container's create was killed.
        Status::Created | Status::Creating => kill_and_wait(&s)?,
        _ if force => kill_and_wait(&s)?,
        _ => {
            return Err(Error::WrongStatus {
                id: id.into(),
                status: status.to_string(),
                msg: "cannot delete a container that is not stopped (use --force)".into(),
            })
        }
    }
    remove_stopped(root, id, &s)
}

/// Delete the container of a foreground `run` once its init is reaped: its
/// state is the one `run` made, so it is not read back. Nothing to do if
/// it is gone already (a `delete --force` from elsewhere).
pub fn delete_reaped(root: &StateRoot, s: &State) -> Result<()> {
    let _lock = match root.lock(&s.id) {
        Err(Error::NotExist(_)) => return Ok(()),
        l => l?,
    };
    remove_stopped(root, &s.id, s)
}

/// The steps of `delete` once the locked container `s` is stopped: the
/// poststop hooks, the cgroup, the state dir.
fn remove_stopped(root: &StateRoot, id: &str, s: &State) -> Result<()> {
    // A container whose create never finished was never created: no poststop.
    if s.creating {
        tracing::debug!("removing the remains of an unfinished create");
    } else {
        hooks::run_warn(
            s.config.hooks().as_ref(),
            Kind::Poststop,
            &state_json(s, Status::Stopped),
            None,
        );
    }
    if s.systemd {
        systemd_scope(s, id)?.stop()?;
    }
    if let Some(cg) = s.cgroup() {
        cg.destroy()?;
    }
    if let Some(rdt) = s
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.intel_rdt().as_ref())
    {
        crate::resctrl::remove(rdt, id);
    }
    root.remove(id)
}

/// The systemd scope of a container made with the systemd driver.
fn systemd_scope(s: &State, id: &str) -> Result<crate::cgroups::systemd::Scope> {
    let path = s
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned());
    crate::cgroups::systemd::Scope::parse(path.as_deref(), id)
}

/// Every process of the container, by the best means it has: its cgroup,
/// else its pid namespace, else just init.
fn container_pids(s: &State) -> Vec<Pid> {
    if let Some(cg) = s.cgroup() {
        procs_of(&cg)
    } else if own_pid_ns(s) {
        procfs::pids_in_pid_ns_of(s.init_pid())
    } else {
        vec![s.init_pid()]
    }
}

/// The processes in `cgroup` (none if it cannot be read).
fn procs_of(cgroup: &crate::cgroups::Cgroup) -> Vec<Pid> {
    cgroup
        .procs()
        .unwrap_or_default()
        .into_iter()
        .map(Pid::from_raw)
        .collect()
}

fn kill_and_wait(s: &State) -> Result<()> {
    if s.pid <= 0 {
        return Ok(());
    }
    kill_all(
        &s.id,
        s.init_pid(),
        s.pid_start,
        s.cgroup().as_ref(),
        container_pids(s),
    )
}

/// SIGKILL `pids` (thawing `cgroup` first: a frozen process cannot die) and
/// wait until init, the process `init` that started at `start`, is gone.
fn kill_all(
    id: &str,
    init: Pid,
    start: u64,
    cgroup: Option<&crate::cgroups::Cgroup>,
    pids: Vec<Pid>,
) -> Result<()> {
    if let Some(cg) = cgroup {
        let _ = cg.freeze(false);
    }
    for pid in pids {
        let _ = send_signal(pid, Signal::SIGKILL);
    }
    if !wait_gone(init, start, Duration::from_secs(10)) {
        return Err(Error::Child(format!(
            "container {id} init {init} did not die after SIGKILL"
        )));
    }
    Ok(())
}

/// End a container known only by its remains record (its state.json is
/// corrupt): kill what is in its cgroup and init, if init is still the
/// process that was started, then remove the cgroup. No hooks: the config
/// went with the state.
fn end_remains(id: &str, r: &state::Remains) -> Result<()> {
    let cg = crate::cgroups::Cgroup::from_dirs(r.cgroup.clone());
    let init = Pid::from_raw(r.pid);
    let mut pids = cg.as_ref().map(procs_of).unwrap_or_default();
    if procfs::is_alive(init, r.pid_start) {
        pids.push(init);
    }
    kill_all(id, init, r.pid_start, cg.as_ref(), pids)?;
    match cg {
        Some(cg) => cg.destroy(),
        None => Ok(()),
    }
}

/// Every container under `root` with its status. Corrupt states are
/// skipped with a warning, so one broken dir never hides the others.
pub fn list(root: &StateRoot) -> Result<Vec<(State, Status)>> {
    let mut out = Vec::new();
    for id in root.ids()? {
        match load(root, &id) {
            Ok(x) => out.push(x),
            Err(Error::NotExist(_)) => {}
            Err(e) => tracing::warn!("{e}"),
        }
    }
    Ok(out)
}

/// Host pids of the container's processes.
pub fn pids(root: &StateRoot, id: &str) -> Result<Vec<i32>> {
    let (s, status) = load(root, id)?;
    if status == Status::Stopped {
        return Ok(Vec::new());
    }
    Ok(container_pids(&s).into_iter().map(Pid::as_raw).collect())
}

/// Freeze (`pause`) or thaw (`resume`) a running container.
pub fn set_paused(root: &StateRoot, id: &str, pause: bool) -> Result<()> {
    let _lock = root.lock(id)?;
    let (s, status) = load(root, id)?;
    let ok = if pause {
        status == Status::Running
    } else {
        status == Status::Paused
    };
    if !ok {
        let what = if pause {
            "pause a container that is not running"
        } else {
            "resume a container that is not paused"
        };
        return Err(Error::WrongStatus {
            id: id.into(),
            status: status.to_string(),
            msg: format!("cannot {what}"),
        });
    }
    let cg = s.cgroup().ok_or_else(|| Error::Unsupported {
        field: "linux.cgroupsPath".into(),
        msg: "pause and resume need the container's own cgroup (this host has no cgroup hierarchy)"
            .into(),
    })?;
    cg.freeze(pause)
}

/// Apply new resource limits to a live container (`update`).
pub fn update(root: &StateRoot, id: &str, r: &oci_spec::runtime::LinuxResources) -> Result<()> {
    let _lock = root.lock(id)?;
    let (s, status) = load(root, id)?;
    if status == Status::Stopped {
        return Err(Error::WrongStatus {
            id: id.into(),
            status: status.to_string(),
            msg: "cannot update a stopped container".into(),
        });
    }
    crate::cgroups::check_resources(r)?;
    let cg = s.cgroup().ok_or_else(|| Error::Unsupported {
        field: "linux.resources".into(),
        msg: "update needs the container's own cgroup (this host has no cgroup hierarchy)".into(),
    })?;
    if s.systemd {
        systemd_scope(&s, id)?.set_resources(r)?;
    }
    cg.set(r)?;
    if r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        // The new program replaces the old one; the config's rules stay first.
        cg.apply_devices(Some(r))?;
    }
    Ok(())
}

/// The container's statistics in runc's `events --stats` shape, and its
/// cgroup (for OOM counts), or an error if it has no cgroup.
pub fn stats(
    root: &StateRoot,
    id: &str,
) -> Result<(serde_json::Value, crate::cgroups::Cgroup, Status)> {
    let (s, status) = load(root, id)?;
    let cg = s.cgroup().ok_or_else(|| Error::Unsupported {
        field: "linux.cgroupsPath".into(),
        msg: "statistics need the container's own cgroup (this host has no cgroup hierarchy)"
            .into(),
    })?;
    Ok((cg.stats(), cg, status))
}

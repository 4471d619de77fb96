//! skiff's side of init's start-up: `Go`, the cgroup while init builds
//! its rootfs, the limits, the staged state, the runtime hooks, `Ready`.

use std::os::fd::OwnedFd;

use nix::unistd::Pid;
use oci_spec::runtime::Linux;

use super::state::{State, StateRoot};
use super::{state_json, Status};
use crate::cgroups::Cgroup;
use crate::config::Bundle;
use crate::error::{Error, IoContext, Result};
use crate::hooks::{self, Kind};
use crate::process::channel::{self, Msg};
use crate::procfs;

/// Drive init from `Go` to `Ready`: finish its cgroup (`later`) while init
/// builds the rootfs and tell it (on v1 with the `tasks` files to join),
/// then set the limits, record the remains and stage the created state;
/// run the prestart and createRuntime hooks when it asks (its namespaces
/// all exist then, and it is in its cgroup). With `start_early` `Start`
/// follows the limits, before `Ready`. Init's start time is read here
/// unless the caller read it for a save before `Go` (`pid_start` not 0).
pub(super) fn handshake(
    chan: &channel::Channel,
    root: &StateRoot,
    bundle: &Bundle,
    pid: Pid,
    state: &mut State,
    later: Option<&Cgroup>,
    start_early: bool,
) -> Result<()> {
    let id = state.id.as_str();
    let spec = &bundle.spec;
    // runc has no "creating": its prestart, createRuntime and
    // createContainer hooks see "created" (runtime-tools checks prestart's).
    let created = state_json(state, Status::Created);
    chan.send_to_child(&Msg::Go {
        state: created.clone(),
    })
    .map_err(|e| match e {
        // Only the annotations can make the state this large.
        Error::Sys {
            source: nix::errno::Errno::EMSGSIZE,
            ..
        } => Error::Invalid {
            field: "annotations".into(),
            msg: format!(
                "too large: the state JSON for the hooks is {} bytes, more than one message to init holds",
                created.len()
            ),
        },
        e => e,
    })?;
    if state.pid_start == 0 {
        state.pid_start = procfs::start_time(pid);
    }
    if let Some(cg) = later {
        let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
        let join = match cg {
            Cgroup::V1(c) => {
                c.prepare()?;
                Some(crate::cgroups::v1::SelfJoin::open_tasks(c)?)
            }
            Cgroup::V2(_) => None,
        };
        let (tasks, fds) = join.as_ref().map(|j| j.tasks()).unwrap_or_default();
        chan.send_to_child_with_fds(&Msg::Cgroups { tasks }, &fds)?;
        // Init joins meanwhile (v2: it was cloned in), then the limits and
        // device rules are set, as runc orders it; both before `Ready` is
        // read (and before an early `Start`), so before the container's
        // process can start.
        cg.configure(resources)?;
    }
    // Limits and device rules are in place: the process may start as
    // soon as init is ready.
    if start_early {
        chan.send_to_child(&Msg::Start)?;
    }
    // While init builds its rootfs: the remains record then costs `run`
    // nothing (the save after `Ready` finds it written).
    root.save_remains(state)?;
    // And the state once init is ready: only its rename is left then.
    state.creating = false;
    root.stage(state)?;
    let mut step_done = false;
    loop {
        match chan.recv()? {
            Some(Msg::RunHooks) => {
                step_done = true;
                attach_host_resources(spec.linux().as_ref(), id, pid)?;
                let cwd = Some(bundle.path.as_path());
                hooks::run(spec.hooks().as_ref(), Kind::Prestart, &created, cwd)?;
                hooks::run(spec.hooks().as_ref(), Kind::CreateRuntime, &created, cwd)?;
                chan.send(&Msg::HooksDone)?;
            }
            // Init skips the step only when there is nothing to do in it.
            Some(Msg::Ready) if step_done || !bundle.has_runtime_step() => return Ok(()),
            Some(Msg::Failed(msg)) => return Err(Error::Child(msg)),
            Some(m) => return Err(Error::Child(format!("unexpected message from init: {m:?}"))),
            None => {
                return Err(Error::Child(
                    "container init exited before it was ready".into(),
                ))
            }
        }
    }
}

/// Move `linux.netDevices` into the container's network namespace and put
/// init into its Intel RDT group.
fn attach_host_resources(linux: Option<&Linux>, id: &str, pid: Pid) -> Result<()> {
    let Some(linux) = linux else { return Ok(()) };
    if let Some(devs) = linux.net_devices().as_ref().filter(|d| !d.is_empty()) {
        let path = format!("/proc/{pid}/ns/net");
        if procfs::ns_inode(&pid.to_string(), "net") == procfs::ns_inode("self", "net") {
            return Err(Error::Invalid {
                field: "linux.netDevices".into(),
                msg: "the container shares the host's network namespace".into(),
            });
        }
        let netns: OwnedFd = std::fs::File::open(&path).path(&path)?.into();
        crate::netdev::move_devices(devs, &netns)?;
    }
    if let Some(rdt) = linux.intel_rdt() {
        crate::resctrl::apply(rdt, id, pid)?;
    }
    Ok(())
}

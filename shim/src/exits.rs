//! Exits reaped by the shim and OOM kills, applied to the task table and
//! published: an OOM kill before the exit it caused.

use std::time::Duration;

use containerd_shim::protos::events::task::{TaskExit, TaskOOM};
use containerd_shim::protos::protobuf::MessageField;

use crate::container::Container;
use crate::process::{Process, Status};
use crate::service::{now, Service};

impl Service {
    /// A reaped child: if it is one of ours, record the exit and publish
    /// (an OOM kill first, then the exit).
    pub fn reaped(&self, pid: i32, code: i32) {
        // First wait, without the lock, for its output to be taken: a
        // terminal's copied out, the output fifos read empty and to EOF by
        // containerd (at most 2 s, as the Go shim waits for its copy). Only
        // then do Wait and State see the exit and TaskExit go out, so containerd
        // has the whole output of a process that printed and exited at once.
        let waiter = {
            let mut g = self.lock();
            if let Some(c) = g.values().find(|c| c.init.pid == pid && live(&c.init)) {
                kill_rest(c);
            }
            let Some(p) = g.values_mut().find_map(|c| find_pid(c, pid)) else {
                return;
            };
            p.stdio.take()
        };
        let mut waiter = waiter;
        if let Some(s) = waiter.as_mut() {
            s.wait_output(Duration::from_secs(2));
        }
        let mut g = self.lock();
        let at = now();
        for c in g.values_mut() {
            let oom = c.init.pid == pid && self.oom.take_new(&c.id) > 0;
            let cid = c.id.clone();
            let (exec_id, p) = if c.init.pid == pid && live(&c.init) {
                (cid.clone(), &mut c.init)
            } else if let Some((eid, p)) = c.execs.iter_mut().find(|(_, p)| p.pid == pid && live(p))
            {
                (eid.clone(), p)
            } else {
                continue;
            };
            if let Some(s) = waiter.take() {
                p.stdio = Some(s);
            }
            p.exited(code as u32, at.clone());
            if oom {
                self.events.send(TaskOOM {
                    container_id: cid.clone(),
                    ..Default::default()
                });
            }
            self.events.send(TaskExit {
                container_id: cid,
                id: exec_id,
                pid: pid as u32,
                exit_status: code as u32,
                exited_at: MessageField::some(at),
                ..Default::default()
            });
            break;
        }
        self.exited.notify_all();
    }

    /// Publish new OOM kills of live containers (on a memory.events change,
    /// and every second as a fallback).
    pub fn poll_oom(&self) {
        let mut g = self.lock();
        for c in g.values_mut() {
            if live(&c.init) && self.oom.take_new(&c.id) > 0 {
                self.events.send(TaskOOM {
                    container_id: c.id.clone(),
                    ..Default::default()
                });
            }
        }
    }
}

/// The init of `c` has exited: if `c` has no pid namespace of its own,
/// nothing killed the rest of its processes with it (daemons it started,
/// holding its output fifos open): kill them, as the Go shim does.
fn kill_rest(c: &Container) {
    if !c.kill_all_on_exit {
        return;
    }
    let Some(cg) = &c.cgroup else { return };
    for p in cg.procs().unwrap_or_default() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Has `p` started and not yet exited?
pub fn live(p: &Process) -> bool {
    p.pid > 0 && !matches!(p.status, Status::Stopped | Status::Deleted)
}

/// The live process of `c` whose host pid is `pid`.
pub(crate) fn find_pid(c: &mut Container, pid: i32) -> Option<&mut Process> {
    if c.init.pid == pid && live(&c.init) {
        return Some(&mut c.init);
    }
    c.execs.values_mut().find(|p| p.pid == pid && live(p))
}

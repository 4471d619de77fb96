//! The task API: each request maps onto a [`Container`] and a libcontainer
//! call. One lock guards the task table; long calls (create, start, exec)
//! hold it, so an exit reaped meanwhile is applied after the pid is known.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use containerd_shim::protos::api::*;
use containerd_shim::protos::events::task::*;
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::protobuf::{Message, MessageField};
use containerd_shim::protos::shim::oci::ProcessDetails;
use containerd_shim::protos::ttrpc::{self, Code, TtrpcContext};
use containerd_shim::protos::types::task::ProcessInfo;
use containerd_shim::Task;
use libcontainer::container;

use crate::container::Container;
use crate::events::Events;
use crate::exits::live;
use crate::oom::OomWatch;
use crate::options::Options;
use crate::process::{err, IoPaths, Process, Status};
use crate::shutdown::Shutdown;
use crate::status::{lc, not_found, to_status};
use crate::{stats, stats_v1};
use libcontainer::cgroups::Cgroup;

/// The shim's task service.
#[derive(Debug)]
pub struct Service {
    namespace: String,
    tasks: Mutex<HashMap<String, Container>>,
    pub(crate) exited: Condvar,
    pub(crate) events: Events,
    /// Signalled when the last task is gone and containerd asks to shut down.
    pub shutdown: Shutdown,
    /// When the shim last started serving, began or ended a Create, or
    /// deleted a task.
    busy_at: Mutex<Instant>,
    /// Each container's OOM kill count.
    pub(crate) oom: OomWatch,
}

pub(crate) fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
        ..Default::default()
    }
}

impl Service {
    /// A service publishing through `events`.
    pub fn new(namespace: String, events: Events) -> Service {
        Service {
            namespace,
            tasks: Mutex::new(HashMap::new()),
            exited: Condvar::new(),
            events,
            shutdown: Shutdown::default(),
            busy_at: Mutex::new(Instant::now()),
            oom: OomWatch::new(),
        }
    }

    fn touch(&self) {
        *self.busy_at.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// How long the shim has had no task and no Create in progress
    /// (`None` while it has a task). A Create holds the task lock until it
    /// has touched the clock, so it never counts as idle.
    pub fn idle_for(&self) -> Option<Duration> {
        let g = self.lock();
        if !g.is_empty() {
            return None;
        }
        let at = *self.busy_at.lock().unwrap_or_else(|p| p.into_inner());
        Some(at.elapsed())
    }

    /// Create under the task lock `g`.
    fn create_locked(
        &self,
        g: &mut HashMap<String, Container>,
        req: CreateTaskRequest,
        opts: Options,
    ) -> ttrpc::Result<CreateTaskResponse> {
        if g.contains_key(&req.id) {
            return Err(err(
                Code::ALREADY_EXISTS,
                format!("container {} already exists", req.id),
            ));
        }
        let c = crate::container::create(&req, &self.namespace, opts).map_err(to_status)?;
        if let Some(cg) = &c.cgroup {
            self.oom.add(&c.id, c.init.pid, cg);
        }
        let pid = c.init.pid as u32;
        self.events.send(TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: MessageField::some(TaskIO {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
                ..Default::default()
            }),
            pid,
            ..Default::default()
        });
        g.insert(req.id.clone(), c);
        Ok(CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, HashMap<String, Container>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of tasks.
    pub fn task_count(&self) -> usize {
        self.lock().len()
    }
}

/// The process `exec_id` (empty: init) of `c`.
fn process<'a>(c: &'a mut Container, exec_id: &str) -> ttrpc::Result<&'a mut Process> {
    if exec_id.is_empty() {
        return Ok(&mut c.init);
    }
    c.execs
        .get_mut(exec_id)
        .ok_or_else(|| not_found(&format!("exec {exec_id}")))
}

fn task<'a>(g: &'a mut HashMap<String, Container>, id: &str) -> ttrpc::Result<&'a mut Container> {
    g.get_mut(id)
        .ok_or_else(|| not_found(&format!("container {id}")))
}

impl Task for Service {
    fn create(
        &self,
        _: &TtrpcContext,
        req: CreateTaskRequest,
    ) -> ttrpc::Result<CreateTaskResponse> {
        self.touch();
        let opts = Options::from_any(req.options.as_ref()).map_err(to_status)?;
        let mut g = self.lock();
        let r = self.create_locked(&mut g, req, opts);
        self.touch();
        r
    }

    fn start(&self, _: &TtrpcContext, req: StartRequest) -> ttrpc::Result<StartResponse> {
        log::debug!("start {:?}", req);
        let mut g = self.lock();
        let c = task(&mut g, &req.id)?;
        if req.exec_id.is_empty() {
            if c.init.status != Status::Created {
                return Err(err(
                    Code::FAILED_PRECONDITION,
                    format!("container {} is {}: cannot start", req.id, c.init.status),
                ));
            }
            if c.restore_from.is_some() {
                c.restore(&self.namespace).map_err(to_status)?;
                if let Some(cg) = &c.cgroup {
                    self.oom.add(&c.id, c.init.pid, cg);
                }
            } else {
                container::start(&c.root, &c.id).map_err(lc)?;
            }
            c.init.transition(Status::Running)?;
            let pid = c.init.pid as u32;
            self.events.send(TaskStart {
                container_id: req.id.clone(),
                pid,
                ..Default::default()
            });
            return Ok(StartResponse {
                pid,
                ..Default::default()
            });
        }
        if !matches!(c.init.status, Status::Running) {
            return Err(err(
                Code::FAILED_PRECONDITION,
                format!(
                    "container {} is {}: cannot start an exec",
                    req.id, c.init.status
                ),
            ));
        }
        let status = process(c, &req.exec_id)?.status;
        if status != Status::Created {
            return Err(err(
                Code::FAILED_PRECONDITION,
                format!("exec {} is {status}", req.exec_id),
            ));
        }
        let r = c.start_exec(&self.namespace, &req.exec_id);
        let p = process(c, &req.exec_id)?;
        let pid = match r {
            Ok((pid, stdio)) => {
                p.pid = pid;
                p.stdio = Some(stdio);
                pid
            }
            Err(e) => {
                p.exited(255, now());
                self.exited.notify_all();
                return Err(to_status(e));
            }
        };
        p.transition(Status::Running)?;
        self.events.send(TaskExecStarted {
            container_id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            pid: pid as u32,
            ..Default::default()
        });
        Ok(StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    fn delete(&self, _: &TtrpcContext, req: DeleteRequest) -> ttrpc::Result<DeleteResponse> {
        log::debug!("delete {:?}", req);
        let mut g = self.lock();
        let c = task(&mut g, &req.id)?;
        if !req.exec_id.is_empty() {
            let p = process(c, &req.exec_id)?;
            if !matches!(p.status, Status::Stopped | Status::Created) {
                return Err(err(
                    Code::FAILED_PRECONDITION,
                    format!("exec {} is {}: cannot delete", req.exec_id, p.status),
                ));
            }
            let (code, at) = p.exit_pair();
            let pid = p.pid as u32;
            c.execs.remove(&req.exec_id);
            return Ok(DeleteResponse {
                pid,
                exit_status: code,
                exited_at: MessageField::some(at),
                ..Default::default()
            });
        }
        if matches!(
            c.init.status,
            Status::Running | Status::Paused | Status::Deleted
        ) {
            return Err(err(
                Code::FAILED_PRECONDITION,
                format!("container {} is {}: cannot delete", req.id, c.init.status),
            ));
        }
        // Deleted while the teardown runs without the lock: State answers
        // "stopped", Start, Exec and a second Delete refuse, and the exit
        // of a created init killed by the teardown is not published.
        let before = (c.init.status, c.init.exit.clone());
        if c.init.status == Status::Created {
            // Killed by the delete; containerd wants a status anyway.
            c.init.exited(137, now());
        }
        c.init.transition(Status::Deleted)?;
        let teardown = c.teardown();
        drop(g);
        let done = teardown.run();
        let mut g = self.lock();
        let c = task(&mut g, &req.id)?;
        if let Err(e) = done {
            (c.init.status, c.init.exit) = before;
            return Err(to_status(e));
        }
        let (code, at) = c.init.exit_pair();
        let pid = c.init.pid as u32;
        g.remove(&req.id);
        self.oom.remove(&req.id);
        self.touch();
        self.events.send(TaskDelete {
            container_id: req.id.clone(),
            pid,
            exit_status: code,
            exited_at: MessageField::some(at.clone()),
            id: req.id.clone(),
            ..Default::default()
        });
        Ok(DeleteResponse {
            pid,
            exit_status: code,
            exited_at: MessageField::some(at),
            ..Default::default()
        })
    }

    fn pids(&self, _: &TtrpcContext, req: PidsRequest) -> ttrpc::Result<PidsResponse> {
        log::debug!("pids {:?}", req);
        let mut g = self.lock();
        let c = task(&mut g, &req.id)?;
        let pids = container::pids(&c.root, &c.id).map_err(lc)?;
        let mut processes = Vec::new();
        for pid in pids {
            let mut info = ProcessInfo {
                pid: pid as u32,
                ..Default::default()
            };
            if let Some((eid, _)) = c.execs.iter().find(|(_, p)| p.pid == pid) {
                let d = ProcessDetails {
                    exec_id: eid.clone(),
                    ..Default::default()
                };
                info.info = MessageField::some(Any {
                    type_url: "containerd.runc.v1.ProcessDetails".into(),
                    value: d.write_to_bytes().unwrap_or_default(),
                    ..Default::default()
                });
            }
            processes.push(info);
        }
        Ok(PidsResponse {
            processes,
            ..Default::default()
        })
    }

    fn pause(&self, _: &TtrpcContext, req: PauseRequest) -> ttrpc::Result<Empty> {
        self.set_paused(&req.id, true)
    }

    fn resume(&self, _: &TtrpcContext, req: ResumeRequest) -> ttrpc::Result<Empty> {
        self.set_paused(&req.id, false)
    }

    fn checkpoint(&self, _: &TtrpcContext, req: CheckpointTaskRequest) -> ttrpc::Result<Empty> {
        log::debug!("checkpoint {:?}", req);
        let o =
            crate::options::checkpoint_options(req.options.as_ref(), &req.path).map_err(|e| {
                err(
                    Code::INVALID_ARGUMENT,
                    libcontainer::error::one_line(e.as_ref()),
                )
            })?;
        let mut g = self.lock();
        let c = task(&mut g, &req.id)?;
        if !matches!(c.init.status, Status::Running | Status::Paused) {
            return Err(err(
                Code::FAILED_PRECONDITION,
                format!(
                    "container {} is {}: cannot checkpoint",
                    req.id, c.init.status
                ),
            ));
        }
        c.checkpoint(&o).map_err(to_status)?;
        Ok(Empty::new())
    }

    fn kill(&self, _: &TtrpcContext, req: KillRequest) -> ttrpc::Result<Empty> {
        log::debug!("kill {:?}", req);
        let mut g = self.lock();
        let c = task(&mut g, &req.id)?;
        if req.exec_id.is_empty() {
            if c.init.status == Status::Stopped || c.init.status == Status::Deleted {
                if req.all {
                    // Leftovers of a container whose init is gone (shared pid ns).
                    let _ = container::kill(&c.root, &c.id, req.signal as i32, true);
                }
                return Err(err(Code::NOT_FOUND, "process already finished"));
            }
            if req.signal as i32 == libc::SIGKILL {
                self.oom.sigkilled(&c.id);
            }
            container::kill(&c.root, &c.id, req.signal as i32, req.all).map_err(|e| match e {
                // Exited, the exit not yet recorded here (it waits for the
                // output): as the Go shim, "already finished", which
                // containerd's stop takes as done (its CRI refused to
                // remove such a container, "failed precondition").
                libcontainer::Error::WrongStatus { .. } => {
                    err(Code::NOT_FOUND, format!("process already finished: {e}"))
                }
                e => lc(e),
            })?;
            return Ok(Empty::new());
        }
        let p = process(c, &req.exec_id)?;
        if !live(p) {
            return Err(err(Code::NOT_FOUND, "process already finished"));
        }
        let sig = nix::sys::signal::Signal::try_from(req.signal as i32)
            .map_err(|_| err(Code::INVALID_ARGUMENT, format!("bad signal {}", req.signal)))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid), sig)
            .map_err(|e| err(Code::UNKNOWN, format!("kill {}: {e}", p.pid)))?;
        Ok(Empty::new())
    }

    fn exec(&self, _: &TtrpcContext, req: ExecProcessRequest) -> ttrpc::Result<Empty> {
        log::debug!("exec {:?}", req);
        let mut g = self.lock();
        let c = task(&mut g, &req.id)?;
        if c.execs.contains_key(&req.exec_id) || req.exec_id.is_empty() {
            return Err(err(
                Code::ALREADY_EXISTS,
                format!("exec {} already exists", req.exec_id),
            ));
        }
        if !matches!(c.init.status, Status::Running | Status::Created) {
            return Err(err(
                Code::FAILED_PRECONDITION,
                format!("container {} is {}", req.id, c.init.status),
            ));
        }
        let spec: oci_spec::runtime::Process = serde_json::from_slice(
            req.spec
                .as_ref()
                .map(|a| a.value.as_slice())
                .unwrap_or(b"{}"),
        )
        .map_err(|e| err(Code::INVALID_ARGUMENT, format!("exec spec: {e}")))?;
        let mut p = Process::new(IoPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        });
        p.spec = Some(spec);
        c.execs.insert(req.exec_id.clone(), p);
        self.events.send(TaskExecAdded {
            container_id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        });
        Ok(Empty::new())
    }

    fn resize_pty(&self, _: &TtrpcContext, req: ResizePtyRequest) -> ttrpc::Result<Empty> {
        log::debug!("resize_pty {:?}", req);
        let mut g = self.lock();
        let c = task(&mut g, &req.id)?;
        let p = process(c, &req.exec_id)?;
        let console = p
            .stdio
            .as_ref()
            .and_then(|s| s.console.as_ref())
            .ok_or_else(|| err(Code::FAILED_PRECONDITION, "the process has no terminal"))?;
        libcontainer::console::resize(console, req.height as u16, req.width as u16).map_err(lc)?;
        Ok(Empty::new())
    }

    fn close_io(&self, _: &TtrpcContext, req: CloseIORequest) -> ttrpc::Result<Empty> {
        log::debug!("close_io {:?}", req);
        let mut g = self.lock();
        let c = task(&mut g, &req.id)?;
        let p = process(c, &req.exec_id)?;
        if req.stdin {
            if let Some(s) = p.stdio.as_mut() {
                s.close_stdin();
            }
        }
        Ok(Empty::new())
    }

    fn update(&self, _: &TtrpcContext, req: UpdateTaskRequest) -> ttrpc::Result<Empty> {
        log::debug!("update {:?}", req);
        let mut g = self.lock();
        let c = task(&mut g, &req.id)?;
        let r: oci_spec::runtime::LinuxResources = serde_json::from_slice(
            req.resources
                .as_ref()
                .map(|a| a.value.as_slice())
                .unwrap_or(b"{}"),
        )
        .map_err(|e| err(Code::INVALID_ARGUMENT, format!("resources: {e}")))?;
        c.update(&r).map_err(to_status)?;
        Ok(Empty::new())
    }

    fn wait(&self, _: &TtrpcContext, req: WaitRequest) -> ttrpc::Result<WaitResponse> {
        log::debug!("wait {:?}", req);
        let mut g = self.lock();
        loop {
            let c = task(&mut g, &req.id)?;
            let p = process(c, &req.exec_id)?;
            if let Some(e) = &p.exit {
                return Ok(WaitResponse {
                    exit_status: e.code,
                    exited_at: MessageField::some(e.at.clone()),
                    ..Default::default()
                });
            }
            g = self.exited.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn stats(&self, _: &TtrpcContext, req: StatsRequest) -> ttrpc::Result<StatsResponse> {
        let mut g = self.lock();
        let c = task(&mut g, &req.id)?;
        let cg = c
            .cgroup
            .as_ref()
            .ok_or_else(|| err(Code::UNIMPLEMENTED, "the container has no cgroup"))?;
        let any = match cg {
            Cgroup::V2(cg) => stats::to_any(&stats::metrics(cg)),
            Cgroup::V1(_) => stats_v1::to_any(&stats_v1::metrics(&cg.stats())),
        }
        .map_err(to_status)?;
        Ok(StatsResponse {
            stats: MessageField::some(any),
            ..Default::default()
        })
    }

    fn connect(&self, _: &TtrpcContext, req: ConnectRequest) -> ttrpc::Result<ConnectResponse> {
        let mut g = self.lock();
        let task_pid = g.get_mut(&req.id).map_or(0, |c| c.init.pid as u32);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    fn shutdown(&self, _: &TtrpcContext, req: ShutdownRequest) -> ttrpc::Result<Empty> {
        log::debug!("shutdown {:?}", req);
        if req.now || self.task_count() == 0 {
            self.shutdown.signal();
        }
        Ok(Empty::new())
    }

    fn state(&self, _: &TtrpcContext, req: StateRequest) -> ttrpc::Result<StateResponse> {
        log::debug!("state {:?}", req);
        let mut g = self.lock();
        let c = task(&mut g, &req.id)?;
        let bundle = c.bundle.to_string_lossy().into_owned();
        let paused = c.init.status;
        let p = process(c, &req.exec_id)?;
        let mut status = p.status;
        if req.exec_id.is_empty() {
            status = paused;
        }
        let (code, at) = p.exit_pair();
        Ok(StateResponse {
            id: if req.exec_id.is_empty() {
                req.id.clone()
            } else {
                req.exec_id.clone()
            },
            bundle,
            pid: p.pid as u32,
            status: status.to_proto().into(),
            stdin: p.paths.stdin.clone(),
            stdout: p.paths.stdout.clone(),
            stderr: p.paths.stderr.clone(),
            terminal: p.paths.terminal,
            exit_status: code,
            exited_at: MessageField::from_option(p.exit.as_ref().map(|_| at)),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        })
    }
}

impl Service {
    fn set_paused(&self, id: &str, pause: bool) -> ttrpc::Result<Empty> {
        let mut g = self.lock();
        let c = task(&mut g, id)?;
        let to = if pause {
            Status::Paused
        } else {
            Status::Running
        };
        if !c.init.status.can_become(to) || c.init.status == Status::Created {
            return Err(err(
                Code::FAILED_PRECONDITION,
                format!("container {id} is {}: cannot become {to}", c.init.status),
            ));
        }
        container::set_paused(&c.root, &c.id, pause).map_err(lc)?;
        c.init.transition(to)?;
        if pause {
            self.events.send(TaskPaused {
                container_id: id.to_string(),
                ..Default::default()
            });
        } else {
            self.events.send(TaskResumed {
                container_id: id.to_string(),
                ..Default::default()
            });
        }
        Ok(Empty::new())
    }
}

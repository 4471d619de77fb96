//! One task (container) of the shim: its rootfs mounts, its libcontainer
//! state, its init and exec processes, and the calls that build them.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use containerd_shim::protos::api::CreateTaskRequest;
use containerd_shim::protos::ttrpc::Code;
use libcontainer::cgroups::Cgroup;
use libcontainer::checkpoint::{self, CheckpointOpts, CriuOpts, RestoreOpts};
use libcontainer::config::Bundle;
use libcontainer::container::{self, CreateOpts, ExecOpts, StateRoot};

use crate::helper;
use crate::io;
use crate::logbin;
use crate::options::Options;
use crate::process::{IoPaths, Process};

/// One container.
#[derive(Debug)]
pub struct Container {
    /// Container id.
    pub id: String,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// libcontainer's state root for it.
    pub root: StateRoot,
    /// The init process.
    pub init: Process,
    /// Exec processes by exec id.
    pub execs: HashMap<String, Process>,
    /// Its cgroup (for stats, OOM).
    pub cgroup: Option<Cgroup>,
    /// Did the shim mount `<bundle>/rootfs`?
    pub mounted_rootfs: bool,
    /// The options it was created with.
    pub opts: Options,
    /// It has no pid namespace of its own (the host's, or one joined by
    /// path): when its init exits, the rest of its processes are killed,
    /// as the Go shim does (their output fifos would stay open forever).
    pub kill_all_on_exit: bool,
    /// The CRIU images it is to be restored from at Start (created from
    /// containerd's checkpoint; no process yet).
    pub restore_from: Option<PathBuf>,
}

/// Does `spec` leave the container without a pid namespace of its own?
fn shares_pid_ns(spec: &oci_spec::runtime::Spec) -> bool {
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
    !namespaces
        .into_iter()
        .flatten()
        .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid && n.path().is_none())
}

/// The fds a create or exec helper must keep: the process's io as given to
/// libcontainer (stdio, or the console stream).
fn keep_fds(
    stdio: Option<[std::os::fd::RawFd; 3]>,
    console: Option<&std::os::fd::OwnedFd>,
) -> Vec<std::os::fd::RawFd> {
    use std::os::fd::AsRawFd;
    let mut keep: Vec<_> = stdio.map(Vec::from).unwrap_or_default();
    keep.extend(console.map(|f| f.as_raw_fd()));
    keep
}

/// Mount containerd's rootfs mounts on `<bundle>/rootfs`.
pub fn mount_rootfs(req: &CreateTaskRequest, bundle: &Path) -> Result<bool> {
    if req.rootfs.is_empty() {
        return Ok(false);
    }
    let target = bundle.join("rootfs");
    std::fs::create_dir_all(&target).with_context(|| format!("mkdir {}", target.display()))?;
    for m in &req.rootfs {
        let typ = (!m.type_.is_empty()).then_some(m.type_.as_str());
        let src = (!m.source.is_empty()).then_some(m.source.as_str());
        if let Err(e) = containerd_shim::mount::mount_rootfs(typ, src, &m.options, &target) {
            let _ = unmount_rootfs(bundle);
            return Err(anyhow::anyhow!(
                "mount {} ({}) on {}: {e}",
                m.source,
                m.type_,
                target.display()
            ));
        }
    }
    Ok(true)
}

/// Unmount everything under `<bundle>/rootfs` (idempotent).
pub fn unmount_rootfs(bundle: &Path) -> Result<()> {
    let target = bundle.join("rootfs");
    let t = target.to_string_lossy();
    containerd_shim::mount::umount_recursive(Some(&t), libc::MNT_DETACH)
        .map_err(|e| anyhow::anyhow!("unmount {t}: {e}"))
}

/// Create the container from `req`: mount, load the bundle, set up io,
/// and fork the init (waiting in `created`).
pub fn create(req: &CreateTaskRequest, namespace: &str, opts: Options) -> Result<Container> {
    let bundle = PathBuf::from(&req.bundle);
    opts.save(&bundle)?;
    let mounted = mount_rootfs(req, &bundle)?;
    match create_mounted(req, namespace, opts, &bundle, mounted) {
        Ok(c) => Ok(c),
        Err(e) => {
            if mounted {
                let _ = unmount_rootfs(&bundle);
            }
            Err(e)
        }
    }
}

fn create_mounted(
    req: &CreateTaskRequest,
    namespace: &str,
    opts: Options,
    bundle: &Path,
    mounted: bool,
) -> Result<Container> {
    let loaded = Bundle::load(bundle)?;
    let root = StateRoot::open(&opts.state_root(namespace))?;
    let paths = IoPaths {
        stdin: req.stdin.clone(),
        stdout: req.stdout.clone(),
        stderr: req.stderr.clone(),
        terminal: req.terminal,
    };
    if !req.checkpoint.is_empty() {
        // Restored at Start, as the Go shim does.
        anyhow::ensure!(
            req.parent_checkpoint.is_empty(),
            "restore from a parent checkpoint is not supported by the shim"
        );
        return Ok(Container {
            id: req.id.clone(),
            bundle: bundle.to_path_buf(),
            root,
            init: Process::new(paths),
            execs: HashMap::new(),
            cgroup: None,
            mounted_rootfs: mounted,
            opts,
            kill_all_on_exit: shares_pid_ns(&loaded.spec),
            restore_from: Some(PathBuf::from(&req.checkpoint)),
        });
    }
    let env = logbin::Env {
        id: req.id.clone(),
        namespace: namespace.to_string(),
    };
    let prepared = io::prepare(&paths, (opts.io_uid, opts.io_gid), &env)?;
    let systemd = opts.systemd_driver(&loaded.spec);
    let copts = CreateOpts {
        console_stream: prepared
            .console_theirs
            .as_ref()
            .map(|fd| fd.try_clone())
            .transpose()?,
        no_pivot: opts.no_pivot_root,
        no_new_keyring: opts.no_new_keyring,
        systemd_cgroup: systemd,
        stdio: prepared.raw(),
        ..Default::default()
    };
    // libcontainer joins a shared pid namespace with setns(CLONE_NEWPID)
    // and forks with clone3: both in the one-thread helper (see helper.rs).
    let keep = keep_fds(copts.stdio, copts.console_stream.as_ref());
    helper::run(&keep, || {
        container::create(&root, &req.id, &loaded, &copts).map(|c| c.state.pid)
    })?;
    drop(copts);
    let state = match root.load(&req.id) {
        Ok(s) => s,
        Err(e) => {
            let _ = delete(&root, &req.id);
            return Err(e.into());
        }
    };
    let stdio = match prepared.finish() {
        Ok(s) => s,
        Err(e) => {
            let _ = delete(&root, &req.id);
            return Err(e);
        }
    };
    let mut init = Process::new(paths);
    init.pid = state.pid;
    init.stdio = Some(stdio);
    let cgroup = state.cgroup();
    Ok(Container {
        id: req.id.clone(),
        bundle: bundle.to_path_buf(),
        root,
        init,
        execs: HashMap::new(),
        cgroup,
        mounted_rootfs: mounted,
        opts,
        kill_all_on_exit: shares_pid_ns(&loaded.spec),
        restore_from: None,
    })
}

impl Container {
    /// Restore the init from the CRIU images Create recorded (containerd's
    /// checkpoint), with its stdio opened now in place of the dumped one;
    /// the restored init runs when this returns.
    pub fn restore(&mut self, namespace: &str) -> Result<()> {
        let images = self.restore_from.clone().context("nothing to restore")?;
        let loaded = Bundle::load(&self.bundle)?;
        let env = logbin::Env {
            id: self.id.clone(),
            namespace: namespace.to_string(),
        };
        let prepared = io::prepare(&self.init.paths, (self.opts.io_uid, self.opts.io_gid), &env)?;
        let systemd = self.opts.systemd_driver(&loaded.spec);
        let (root, id) = (&self.root, self.id.as_str());
        let stdio = match &prepared.child {
            Some([a, b, c]) => Some([a.try_clone()?, b.try_clone()?, c.try_clone()?]),
            None => None,
        };
        // A terminal: CRIU's new pty master comes back as create's does.
        let console = prepared
            .console_theirs
            .as_ref()
            .map(|fd| fd.try_clone())
            .transpose()?;
        let keep = keep_fds(
            stdio
                .as_ref()
                .map(|s| [s[0].as_raw_fd(), s[1].as_raw_fd(), s[2].as_raw_fd()]),
            console.as_ref(),
        );
        helper::run(&keep, move || {
            let o = RestoreOpts {
                criu: CriuOpts {
                    image_path: images,
                    ..Default::default()
                },
                systemd_cgroup: systemd,
                stdio,
                console_stream: console,
                ..Default::default()
            };
            checkpoint::restore(root, id, &loaded, &o).map(|s| s.pid)
        })?;
        let state = root.load(id)?;
        self.init.stdio = Some(prepared.finish()?);
        self.init.pid = state.pid;
        self.cgroup = state.cgroup();
        self.restore_from = None;
        Ok(())
    }

    /// Checkpoint the running container into `o.criu.image_path`
    /// (containerd's task Checkpoint); unless it is left running, CRIU
    /// ends its processes and its libcontainer state goes, as with runc.
    pub fn checkpoint(&self, o: &CheckpointOpts) -> Result<()> {
        let (root, id) = (&self.root, self.id.as_str());
        helper::run(&[], || checkpoint::checkpoint(root, id, o).map(|()| 0))?;
        Ok(())
    }

    /// Start the exec `exec_id` (recorded by Exec): returns its pid once it
    /// runs, with the shim's side of its io.
    pub fn start_exec(&self, namespace: &str, exec_id: &str) -> Result<(i32, io::Stdio)> {
        let p = self.execs.get(exec_id).context("exec not found")?;
        let spec = p.spec.clone().context("exec has no process spec")?;
        let env = logbin::Env {
            id: self.id.clone(),
            namespace: namespace.to_string(),
        };
        let prepared = io::prepare(&p.paths, (self.opts.io_uid, self.opts.io_gid), &env)?;
        let opts = ExecOpts {
            process: spec,
            user: None,
            extra_groups: Vec::new(),
            console_socket: None,
            pid_file: None,
            preserve_fds: 0,
            stdio: prepared.raw(),
            console_stream: prepared
                .console_theirs
                .as_ref()
                .map(|fd| fd.try_clone().map(Arc::new))
                .transpose()?,
            ignore_paused: false,
            sub_cgroup: None,
        };
        let (root, id) = (&self.root, self.id.as_str());
        let keep = keep_fds(opts.stdio, opts.console_stream.as_deref());
        let pid = helper::run(&keep, || {
            container::exec(root, id, &opts).map(|p| p.as_raw())
        })?;
        drop(opts);
        Ok((pid, prepared.finish()?))
    }

    /// What deleting it takes, to be done without the task table's lock
    /// (see [`Teardown`]).
    pub fn teardown(&self) -> Teardown {
        Teardown {
            root: self.root.clone(),
            id: self.id.clone(),
            bundle: self.mounted_rootfs.then(|| self.bundle.clone()),
        }
    }

    /// Change the container's resources (libcontainer's update).
    pub fn update(&self, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        let (root, id) = (&self.root, self.id.as_str());
        helper::run(&[], || container::update(root, id, resources).map(|()| 0))?;
        Ok(())
    }
}

/// A container's deletion, detached from the task table: the service
/// runs it with the lock released, so that a State asked meanwhile still
/// finds the task (stopped) rather than waiting and then finding nothing,
/// as with the Go shim, which keeps the container in its table until its
/// delete is done (containerd's CRI takes "not found" during its exit
/// handling to mean there is nothing to stop).
pub struct Teardown {
    root: StateRoot,
    id: String,
    /// The bundle, where the shim mounted `<bundle>/rootfs`.
    bundle: Option<PathBuf>,
}

impl Teardown {
    /// Delete the libcontainer state (killing what is left), then unmount.
    /// A state that is already gone is no error: a checkpoint that ended
    /// the container deleted it (runc's shim ignores "does not exist"
    /// too), and a container waiting to be restored has none yet.
    pub fn run(self) -> Result<()> {
        let r = match delete(&self.root, &self.id) {
            Err(e)
                if e.downcast_ref::<helper::Failed>()
                    .is_some_and(|f| f.code == Code::NOT_FOUND) =>
            {
                Ok(())
            }
            r => r,
        };
        if let Some(bundle) = &self.bundle {
            unmount_rootfs(bundle)?;
        }
        r
    }
}

/// libcontainer's delete (force: killing what is left), in a helper like
/// create and exec: with the systemd driver it talks D-Bus, whose client
/// starts threads (async-io's reactor) that would stay in the shim holding
/// their locks, and every later helper forked from the shim would inherit
/// those locks held by no thread and hang at its first D-Bus call (a pod's
/// second container after its first one was deleted).
fn delete(root: &StateRoot, id: &str) -> Result<()> {
    helper::run(&[], || container::delete(root, id, true).map(|()| 0))?;
    Ok(())
}

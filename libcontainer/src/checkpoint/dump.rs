//! `skiff checkpoint`: dump a running container's process tree with CRIU,
//! then (unless it is left running or this is a pre-dump) delete the
//! container, as runc does.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

use super::rpc::{Features, Opts, PageServer, Req, ReqType};
use super::swrk::{self, Swrk};
use super::{externals, open_dir, with_log, CriuOpts, DESCRIPTORS};
use crate::container::{self, StateRoot, Status};
use crate::error::{Error, IoContext, Result};

/// The options of `skiff checkpoint`, as runc names them.
#[derive(Debug, Clone, Default)]
pub struct CheckpointOpts {
    /// What checkpoint and restore share.
    pub criu: CriuOpts,
    /// `--parent-path`: the previous (pre-dump) images, relative to the
    /// images directory.
    pub parent_path: Option<PathBuf>,
    /// `--leave-running`.
    pub leave_running: bool,
    /// `--pre-dump`: dump the memory only; the container keeps running.
    pub pre_dump: bool,
    /// `--page-server ADDRESS:PORT`: send the pages there, or with
    /// `--lazy-pages` serve them from there.
    pub page_server: Option<(String, i32)>,
    /// `--status-fd`: with `--lazy-pages`, a zero byte is written to it
    /// once the page server is ready (runc's way, from CRIU's
    /// `status-ready` notification).
    pub status_fd: Option<Arc<OwnedFd>>,
}

/// Checkpoint container `id` into `o.criu.image_path`.
pub fn checkpoint(root: &StateRoot, id: &str, o: &CheckpointOpts) -> Result<()> {
    let lock = root.lock(id)?;
    let (s, status) = container::load(root, id)?;
    if !matches!(status, Status::Running | Status::Paused) {
        return Err(Error::WrongStatus {
            id: id.into(),
            status: status.to_string(),
            msg: "cannot checkpoint a container that is not running".into(),
        });
    }
    let criu = o.criu.binary();
    swrk::version(&criu)?;
    o.criu.check_lazy(&criu)?;
    if o.pre_dump {
        let f = swrk::features(
            &criu,
            Features {
                mem_track: Some(true),
                ..Default::default()
            },
        )?;
        if f.mem_track != Some(true) {
            return Err(Error::Criu {
                op: "pre-dump",
                msg: "this kernel or CRIU cannot track memory changes (soft-dirty bits)".into(),
            });
        }
    }
    let images = open_dir(&o.criu.image_path, "--image-path")?;
    let work_path = o
        .criu
        .work_path
        .clone()
        .unwrap_or_else(|| root.dir(id).join("criu.work"));
    let work = open_dir(&work_path, "--work-path")?;
    let pid = s.init_pid();
    let (descriptors, external_files) = externals::stdio(pid.as_raw());
    let desc_path = o.criu.image_path.join(DESCRIPTORS);
    std::fs::write(
        &desc_path,
        serde_json::to_vec(&descriptors).unwrap_or_default(),
    )
    .path(&desc_path)?;

    let (op, typ, log) = if o.pre_dump {
        ("pre-dump", ReqType::PreDump, "pre-dump.log")
    } else {
        ("dump", ReqType::Dump, "dump.log")
    };
    let mut opts: Opts = o.criu.common(&images, &work, log, &s.rootfs)?;
    opts.pid = Some(pid.as_raw());
    opts.leave_running = Some(o.leave_running || o.pre_dump);
    opts.parent_img = o
        .parent_path
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    opts.track_mem = Some(o.pre_dump || o.parent_path.is_some());
    opts.freeze_cgroup = s.cgroup().as_ref().and_then(externals::freezer);
    opts.ext_mnt = externals::bind_mounts(&s.config, &s.bundle)
        .into_iter()
        .map(|(dest, _)| super::rpc::ExtMountMap {
            key: dest.clone(),
            val: dest,
        })
        .collect();
    opts.ps = o.page_server.as_ref().map(|(address, port)| PageServer {
        address: Some(address.clone()),
        port: Some(*port),
    });
    opts.external = externals::external_namespaces(&s.config)?;
    opts.external.extend(external_files);
    let req = Req {
        r#type: typ as i32,
        opts: Some(opts),
        ..Default::default()
    };
    let mut w = Swrk::start(&criu, op, &[images.as_fd(), work.as_fd()])?;
    let mut status = o.status_fd.clone();
    let res = w.call(&req, |script, _, _| {
        if script == "status-ready" {
            if let Some(fd) = status.take() {
                nix::unistd::write(fd.as_fd(), &[0])
                    .map_err(|e| Error::Sys {
                        step: "write to --status-fd".into(),
                        source: e,
                    })
                    .map(drop)?;
            }
        }
        Ok(())
    });
    let done = w.finish();
    res.and(done)
        .map_err(|e| with_log(e, &work_path.join(log)))?;
    drop(lock);
    if !o.pre_dump && !o.leave_running {
        // CRIU has killed the tree: what is left is the container's record.
        container::delete(root, id, true)?;
    }
    Ok(())
}

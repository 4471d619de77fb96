//! `skiff restore`: a container from a bundle and CRIU's images. CRIU runs
//! in a private mount namespace of skiff's (the rootfs bound on itself and
//! the mountpoints made there never reach the caller), inside the
//! container's new cgroup, and restores the tree as skiff's child.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::rpc::{ExtMountMap, InheritFd, Opts, Req, ReqType};
use super::swrk::{self, Swrk};
use super::{externals, open_dir, with_log, CriuOpts, DESCRIPTORS};
use crate::cgroups::{self, Placement};
use crate::config::Bundle;
use crate::container::create::{initial_state, place_init, write_pid_file};
use crate::container::{state_json, State, StateRoot, Status};
use crate::error::{Error, IoContext, Result, SysContext};
use crate::hooks::{self, Kind};
use crate::process::tty;
use crate::{procfs, resolve};

/// The options of `skiff restore`, as runc names them.
#[derive(Debug, Default)]
pub struct RestoreOpts {
    /// What checkpoint and restore share.
    pub criu: CriuOpts,
    /// `--pid-file`.
    pub pid_file: Option<PathBuf>,
    /// `--systemd-cgroup`.
    pub systemd_cgroup: bool,
    /// `--lsm-profile`.
    pub lsm_profile: Option<String>,
    /// `--lsm-mount-context`.
    pub lsm_mount_context: Option<String>,
    /// fds to stand in for the dumped init's stdio pipes (the shim's);
    /// default: skiff's own stdin, stdout and stderr.
    pub stdio: Option<[OwnedFd; 3]>,
    /// `--console-socket`: where the restored terminal's master is sent.
    pub console_socket: Option<PathBuf>,
    /// Instead of `console_socket`, a connected socket for it (the
    /// foreground CLI's own).
    pub console_stream: Option<OwnedFd>,
}

/// Restore container `id` from `bundle` and the images in
/// `o.criu.image_path`; the restored init is skiff's child. On failure
/// nothing is left: the restored tree is killed, the cgroup and state dir
/// removed.
pub fn restore(root: &StateRoot, id: &str, bundle: &Bundle, o: &RestoreOpts) -> Result<State> {
    let spec = &bundle.spec;
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal != (o.console_socket.is_some() || o.console_stream.is_some()) {
        return Err(Error::Invalid {
            field: "--console-socket".into(),
            msg: if terminal {
                "process.terminal is true: the restored terminal needs a console socket".into()
            } else {
                "only allowed when process.terminal is true".into()
            },
        });
    }
    let console = match (&o.console_socket, &o.console_stream) {
        (Some(p), _) => Some(tty::connect(p)?),
        (None, Some(s)) => Some(s.try_clone().path("console socket")?),
        (None, None) => None,
    };
    let images = std::fs::File::open(&o.criu.image_path)
        .map(OwnedFd::from)
        .map_err(|e| Error::Invalid {
            field: "--image-path".into(),
            msg: format!("{}: {e}", o.criu.image_path.display()),
        })?;
    let descriptors = read_descriptors(&o.criu.image_path)?;
    crate::container::host_check::check(bundle)?;
    swrk::version(&o.criu.binary())?;
    o.criu.check_lazy(&o.criu.binary())?;
    let placement = cgroups::for_container(spec, id, o.systemd_cgroup)?;
    let lock = root.reserve(id)?;
    let mut restored = None;
    let res = restore_in(
        root,
        id,
        bundle,
        o,
        &placement,
        &images,
        &descriptors,
        console.as_ref().map(|c| c.as_fd()),
        &mut restored,
    );
    if res.is_err() {
        if let Some(pid) = restored {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        placement.undo();
        let _ = root.remove(id);
    }
    drop(lock);
    res
}

/// The init's stdio as the dump saw it.
fn read_descriptors(images: &Path) -> Result<Vec<String>> {
    let path = images.join(DESCRIPTORS);
    let text = std::fs::read(&path).map_err(|e| Error::Invalid {
        field: "--image-path".into(),
        msg: format!(
            "{}: {e} (not a checkpoint of skiff's or runc's)",
            path.display()
        ),
    })?;
    serde_json::from_slice(&text).map_err(|e| Error::Parse {
        path,
        msg: e.to_string(),
    })
}

/// A private mount namespace for CRIU, slave to the caller's so nothing
/// goes back, with the rootfs bound on itself (CRIU's root must be a
/// mount point).
fn private_mounts(rootfs: &Path) -> Result<()> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNS)
        .step(|| "unshare a mount namespace for criu".into())?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .step(|| "make / rslave for criu".into())?;
    nix::mount::mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .step(|| format!("bind {} on itself for criu", rootfs.display()))
}

/// Make the mountpoints of the config's mounts in the rootfs (a fresh
/// rootfs lacks those create made), except below tmpfs mounts, whose
/// contents CRIU restores. `binds`: the config's bind mounts (destination,
/// host source).
fn mountpoints(bundle: &Bundle, binds: &[(String, PathBuf)]) -> Result<()> {
    let root: OwnedFd = std::fs::File::open(&bundle.rootfs)
        .path(&bundle.rootfs)?
        .into();
    let mounts = bundle.spec.mounts().clone().unwrap_or_default();
    let tmpfs: Vec<&Path> = mounts
        .iter()
        .filter(|m| m.typ().as_deref() == Some("tmpfs"))
        .map(|m| m.destination().as_path())
        .collect();
    for m in &mounts {
        let dest = m.destination();
        if tmpfs.iter().any(|t| dest.starts_with(t) && dest != *t) {
            continue;
        }
        let src_is_file = binds
            .iter()
            .any(|(d, s)| Path::new(d) == dest && s.metadata().is_ok_and(|md| !md.is_dir()));
        if src_is_file {
            resolve::create_file(root.as_fd(), dest)?;
        } else {
            resolve::mkdir_all(root.as_fd(), dest)?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn restore_in(
    root: &StateRoot,
    id: &str,
    bundle: &Bundle,
    o: &RestoreOpts,
    placement: &Placement,
    images: &OwnedFd,
    descriptors: &[String],
    console: Option<BorrowedFd>,
    restored: &mut Option<Pid>,
) -> Result<State> {
    let spec = &bundle.spec;
    let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
    let mut state = initial_state(id, bundle, placement);
    root.save(&state)?;
    if let Placement::Fs(c) = placement {
        c.create(resources)?;
    }
    private_mounts(&bundle.rootfs)?;
    let binds = externals::bind_mounts(spec, &bundle.path);
    mountpoints(bundle, &binds)?;
    let work_path = o
        .criu
        .work_path
        .clone()
        .unwrap_or_else(|| o.criu.image_path.clone());
    let work = open_dir(&work_path, "--work-path")?;
    let namespaces = externals::joined_namespaces(spec)
        .into_iter()
        .map(|(path, kind, key)| {
            std::fs::File::open(&path)
                .map(|f| (OwnedFd::from(f), key))
                .map_err(|e| Error::Invalid {
                    field: format!("linux.namespaces[{kind}].path"),
                    msg: format!("{}: {e}", path.display()),
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let stdio: [BorrowedFd; 3] = match &o.stdio {
        Some([a, b, c]) => [a.as_fd(), b.as_fd(), c.as_fd()],
        None => [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()],
    };
    let mut opts: Opts = o
        .criu
        .common(images, &work, "restore.log", &bundle.rootfs)?;
    opts.rst_sibling = Some(true);
    opts.lsm_profile = o.lsm_profile.clone();
    opts.lsm_mount_context = o.lsm_mount_context.clone();
    opts.ext_mnt = binds
        .into_iter()
        .map(|(dest, src)| ExtMountMap {
            key: dest,
            val: src.to_string_lossy().into_owned(),
        })
        .collect();
    use std::os::fd::AsRawFd;
    opts.inherit_fd = namespaces
        .iter()
        .map(|(fd, key)| InheritFd {
            key: (*key).into(),
            fd: fd.as_raw_fd(),
        })
        .chain(
            descriptors
                .iter()
                .zip(stdio)
                .filter(|(d, _)| externals::inherited(d))
                .map(|(d, fd)| InheritFd {
                    key: d.clone(),
                    fd: fd.as_raw_fd(),
                }),
        )
        .collect();
    let mut inherit: Vec<BorrowedFd> = vec![images.as_fd(), work.as_fd()];
    inherit.extend(namespaces.iter().map(|(fd, _)| fd.as_fd()));
    inherit.extend(stdio);
    let mut w = Swrk::start(&o.criu.binary(), "restore", &inherit)?;
    // CRIU restores the tree into the cgroup it is in: the container's.
    let criu_pid = Pid::from_raw(w.pid());
    if let Placement::Fs(c) = placement {
        c.join(criu_pid.as_raw())?;
    }
    let cgroup = place_init(placement, criu_pid, resources)?;
    if matches!(placement, Placement::Systemd(_)) {
        state.set_cgroup(cgroup.as_ref());
        root.save(&state)?;
    }
    opts.cg_root = cgroup
        .as_ref()
        .map(externals::cgroup_roots)
        .unwrap_or_default();
    let req = Req {
        r#type: ReqType::Restore as i32,
        opts: Some(opts),
        ..Default::default()
    };
    let log = work_path.join("restore.log");
    let res = w.call(&req, |script, pid, fd| {
        match script {
            // The namespaces exist, nothing runs yet: runc runs the
            // prestart and createRuntime hooks here.
            "setup-namespaces" => {
                let mut s = state.clone();
                s.pid = pid;
                let json = state_json(&s, Status::Created);
                let cwd = Some(bundle.path.as_path());
                hooks::run(spec.hooks().as_ref(), Kind::Prestart, &json, cwd)?;
                hooks::run(spec.hooks().as_ref(), Kind::CreateRuntime, &json, cwd)?;
            }
            "post-restore" => *restored = Some(Pid::from_raw(pid)),
            // The dumped terminal's new master (the old one stayed with
            // whoever held it): to the console socket, as create sends it.
            "orphan-pts-master" => {
                let (Some(sock), Some(master)) = (console, fd) else {
                    return Err(Error::Criu {
                        op: "restore",
                        msg: "sent a pty master with no fd or no console socket to take it".into(),
                    });
                };
                tty::send_master(sock, master.as_fd())?;
            }
            _ => {}
        }
        Ok(())
    });
    let done = w.finish();
    let resp = res
        .and_then(|r| done.map(|_| r))
        .map_err(|e| with_log(e, &log))?;
    let pid = resp
        .restore
        .map(|r| Pid::from_raw(r.pid))
        .or(*restored)
        .ok_or_else(|| Error::Criu {
            op: "restore",
            msg: "its answer names no restored process".into(),
        })?;
    *restored = Some(pid);
    state.pid = pid.as_raw();
    state.pid_start = procfs::start_time(pid);
    state.creating = false;
    root.save(&state)?;
    if let Some(p) = &o.pid_file {
        write_pid_file(p, pid)?;
    }
    Ok(state)
}

//! The parent side of `create`: reserve the id, fork init with one clone3,
//! map ids, run the runtime-namespace hooks, and record the state.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType, LinuxResources};

use super::clone::{clone_into, Cloned};
use super::state::{Lock, State, StateRoot, EXEC_FIFO};
use crate::cgroups::{self, Cgroup, Placement};
use crate::config::{ns_proc_name, Bundle};
use crate::error::{Error, IoContext, Result, SysContext};
use crate::process::channel;
use crate::process::init::{self, InitArgs};
use crate::process::tty;
use crate::{rootfs, timefmt};

/// Options of `create` (and `run`), as runc names them.
#[derive(Debug, Default)]
pub struct CreateOpts {
    /// `--console-socket`.
    pub console_socket: Option<PathBuf>,
    /// An already connected socket to send the pty master on (foreground
    /// `run` with a terminal, where skiff copies the pty itself).
    pub console_stream: Option<OwnedFd>,
    /// `--pid-file`.
    pub pid_file: Option<PathBuf>,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// `--no-new-keyring`: keep the caller's session keyring.
    pub no_new_keyring: bool,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
    /// `--systemd-cgroup`: place the container in a systemd scope.
    pub systemd_cgroup: bool,
    /// Number of socket-activation fds (LISTEN_FDS) passed after stdio.
    pub listen_fds: u32,
    /// Rootless mode (`--rootless`, by default when not root): cgroups
    /// only where delegated to the caller, runc's rootless config checks.
    pub rootless: bool,
    /// fds to become the container process's stdin, stdout and stderr
    /// instead of the caller's own (the containerd shim's fifos or pipes).
    /// They must stay open until create returns.
    pub stdio: Option<[std::os::fd::RawFd; 3]>,
    /// `run`: no exec fifo; [`super::start_created`] starts init through
    /// the channel, which [`Created`] keeps. Until then the container's
    /// status reads `running` (there is no fifo to say `created`). Not with
    /// a seccomp filter: it is in before `start`, and a profile may not
    /// allow the channel's recvmsg (the fifo needs openat and write, as
    /// runc's).
    pub start_on_channel: bool,
}

/// A container whose init is waiting for `start`. It holds the
/// container's lock until it is dropped or started
/// ([`super::start_created`]).
pub struct Created {
    /// The recorded state.
    pub state: State,
    /// The container's lock, taken when its id was reserved.
    pub(super) lock: Lock,
    /// The channel to init, with [`CreateOpts::start_on_channel`].
    pub(super) chan: Option<channel::Channel>,
    /// `Start` is already on the channel (see `create_in`).
    pub(super) start_sent: bool,
}

const NS_ORDER: [(LinuxNamespaceType, CloneFlags); 8] = [
    (LinuxNamespaceType::User, CloneFlags::CLONE_NEWUSER),
    (LinuxNamespaceType::Pid, CloneFlags::CLONE_NEWPID),
    (LinuxNamespaceType::Mount, CloneFlags::CLONE_NEWNS),
    (LinuxNamespaceType::Network, CloneFlags::CLONE_NEWNET),
    (LinuxNamespaceType::Uts, CloneFlags::CLONE_NEWUTS),
    (LinuxNamespaceType::Ipc, CloneFlags::CLONE_NEWIPC),
    (LinuxNamespaceType::Cgroup, CloneFlags::CLONE_NEWCGROUP),
    (LinuxNamespaceType::Time, CloneFlags::empty()),
];
const CLONE_NEWTIME: i32 = 0x80;

/// Create container `id` from `bundle` under `root`. On any failure nothing
/// is left behind: the init is killed and the state dir removed.
pub fn create(root: &StateRoot, id: &str, bundle: &Bundle, opts: &CreateOpts) -> Result<Created> {
    super::host_check::check(bundle)?;
    rootfs::check_propagation(&bundle.spec)?;
    // Held until the state is saved, so a concurrent delete waits.
    let lock = root.reserve(id)?;
    let mut child = None;
    let placement = cgroups::for_container(&bundle.spec, id, opts.systemd_cgroup);
    let placement = match placement.and_then(|p| match opts.rootless {
        true => {
            crate::idmap::check_rootless(&bundle.spec).and(cgroups::if_delegated(p, &bundle.spec))
        }
        false => Ok(p),
    }) {
        Ok(c) => c,
        Err(e) => {
            let _ = root.remove(id);
            return Err(e);
        }
    };
    let res = create_in(
        root,
        id,
        bundle,
        opts,
        &placement,
        &mut child,
        lock.raw_fd(),
    );
    match res {
        Ok((state, chan, start_sent)) => Ok(Created {
            state,
            lock,
            chan,
            start_sent,
        }),
        Err(e) => {
            if let Some(pid) = child {
                let _ = kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
            }
            placement.undo();
            let _ = root.remove(id);
            Err(e)
        }
    }
}

/// The namespaces of the config, sorted by how they come about.
struct NsPlan {
    /// Joined by path, user namespace first (pid and time aside).
    join: Vec<(CloneFlags, OwnedFd)>,
    /// Created new (by clone3, or by init's unshare).
    new: CloneFlags,
    /// A pid namespace to join: skiff enters it before the clone.
    pid_join: Option<OwnedFd>,
    /// A new time namespace: skiff unshares it before the clone.
    time_new: bool,
}

impl NsPlan {
    fn of(bundle: &Bundle) -> Result<NsPlan> {
        let mut plan = NsPlan {
            join: Vec::new(),
            new: CloneFlags::empty(),
            pid_join: None,
            time_new: false,
        };
        for (typ, flag) in NS_ORDER {
            let Some(ns) = bundle.namespace(typ) else {
                continue;
            };
            match (ns.path(), typ) {
                (Some(p), LinuxNamespaceType::Pid) => plan.pid_join = Some(open_ns(p, typ)?),
                (Some(p), LinuxNamespaceType::Time) => plan.join.push((
                    CloneFlags::from_bits_retain(CLONE_NEWTIME),
                    open_ns(p, typ)?,
                )),
                (Some(p), _) => plan.join.push((flag, open_ns(p, typ)?)),
                (None, LinuxNamespaceType::Time) => plan.time_new = true,
                (None, _) => plan.new |= flag,
            }
        }
        Ok(plan)
    }

    fn new_userns(&self) -> bool {
        self.new.contains(CloneFlags::CLONE_NEWUSER)
    }

    fn in_userns(&self) -> bool {
        self.new_userns()
            || self
                .join
                .iter()
                .any(|(f, _)| *f == CloneFlags::CLONE_NEWUSER)
    }

    /// The flags for clone3 and those init unshares. One clone3 creates
    /// every new namespace, unless some must be joined first: then the
    /// child joins them and unshares the rest itself. When init is moved
    /// into its cgroup after the clone (`moved_later`: the systemd driver's
    /// scope exists only then, cgroup v1 has no CLONE_INTO_CGROUP), init
    /// makes its cgroup namespace once it is in it (rooted there).
    fn clone_and_unshare(&self, moved_later: bool) -> (CloneFlags, CloneFlags) {
        let (mut clone, mut unshare) = if self.join.is_empty() {
            (self.new, CloneFlags::empty())
        } else {
            (
                self.new & CloneFlags::CLONE_NEWPID,
                self.new - CloneFlags::CLONE_NEWPID,
            )
        };
        if moved_later && clone.contains(CloneFlags::CLONE_NEWCGROUP) {
            clone.remove(CloneFlags::CLONE_NEWCGROUP);
            unshare.insert(CloneFlags::CLONE_NEWCGROUP);
        }
        (clone, unshare)
    }

    /// Enter the pid namespace to join and make the new time namespace, so
    /// the clone lands in them. Returns skiff's own pid namespace, to go
    /// back to right after the clone: a thread whose children's pid
    /// namespace is not its own cannot create threads (EINVAL), which the
    /// systemd driver's D-Bus connection needs.
    fn enter_before_clone(&self, spec: &oci_spec::runtime::Spec) -> Result<Option<std::fs::File>> {
        let mut own_pid_ns = None;
        if let Some(fd) = &self.pid_join {
            let own = "/proc/thread-self/ns/pid";
            own_pid_ns = Some(std::fs::File::open(own).path(own)?);
            nix::sched::setns(fd.as_fd(), CloneFlags::CLONE_NEWPID)
                .step(|| "linux.namespaces: join pid namespace".into())?;
        }
        if self.time_new {
            nix::sched::unshare(CloneFlags::from_bits_retain(CLONE_NEWTIME))
                .step(|| "linux.namespaces: new time namespace".into())?;
            write_time_offsets(spec)?;
        }
        Ok(own_pid_ns)
    }
}

/// Make the exec fifo in the state dir and open it O_PATH for init.
fn make_exec_fifo(
    root: &StateRoot,
    id: &str,
    linux: Option<&Linux>,
    rootless: bool,
) -> Result<OwnedFd> {
    let fifo_path = root.dir(id).join(EXEC_FIFO);
    nix::unistd::mkfifo(&fifo_path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .step(|| format!("mkfifo {}", fifo_path.display()))?;
    // The init opens it as the container's root, which may be another host
    // uid in a user namespace: give the fifo to that uid (as runc does).
    let host_root = |maps: Option<&Vec<LinuxIdMapping>>| {
        maps.into_iter()
            .flatten()
            .find(|m| m.container_id() == 0)
            .map(|m| m.host_id())
    };
    let uid = host_root(linux.and_then(|l| l.uid_mappings().as_ref()));
    let gid = host_root(linux.and_then(|l| l.gid_mappings().as_ref()));
    if uid.is_some() || gid.is_some() {
        match nix::unistd::chown(
            &fifo_path,
            uid.map(nix::unistd::Uid::from_raw),
            gid.map(nix::unistd::Gid::from_raw),
        ) {
            // Rootless, with container root mapped to a subordinate id: the
            // caller cannot give the fifo away, so let any uid open it for
            // writing. Only init can reach it: the state dir is private and
            // init reopens it through its O_PATH fd.
            Err(nix::errno::Errno::EPERM) if rootless => nix::sys::stat::fchmodat(
                None,
                &fifo_path,
                nix::sys::stat::Mode::from_bits_truncate(0o622),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            ),
            r => r,
        }
        .step(|| format!("chown {}", fifo_path.display()))?;
    }
    crate::sys::open_path(&fifo_path).step(|| format!("open {} O_PATH", fifo_path.display()))
}

/// The socket init sends the pty master on, if any.
fn console_socket(opts: &CreateOpts) -> Result<Option<OwnedFd>> {
    match &opts.console_socket {
        Some(p) => Ok(Some(tty::connect(p)?)),
        None => opts
            .console_stream
            .as_ref()
            .map(|fd| fd.try_clone().path("console socket"))
            .transpose(),
    }
}

/// The state saved before anything outside the state dir exists (and
/// again with the init's pid), so a create killed at any point can be
/// deleted.
pub(crate) fn initial_state(id: &str, bundle: &Bundle, placement: &Placement) -> State {
    State {
        id: id.to_string(),
        pid: 0,
        pid_start: 0,
        bundle: bundle.path.clone(),
        rootfs: bundle.rootfs.clone(),
        created: timefmt::now_rfc3339(),
        owner: String::new(),
        config: bundle.spec.clone(),
        cgroup: match placement {
            Placement::Fs(Cgroup::V2(c)) => Some(c.dir.clone()),
            _ => None,
        },
        cgroup_paths: match placement {
            Placement::Fs(Cgroup::V1(c)) => c.dirs.clone(),
            _ => Vec::new(),
        },
        systemd: matches!(placement, Placement::Systemd(_)),
        creating: true,
    }
}

/// LISTEN_FDS/LISTEN_PID for socket activation.
fn listen_env(listen_fds: u32) -> Vec<String> {
    if listen_fds == 0 {
        return Vec::new();
    }
    vec![
        format!("LISTEN_FDS={listen_fds}"),
        "LISTEN_PID=1".to_string(),
    ]
}

/// Put init `pid` in its systemd scope (a cgroupfs cgroup it was cloned
/// into already) and return the container's cgroup.
pub(crate) fn place_init(
    placement: &Placement,
    pid: Pid,
    resources: Option<&LinuxResources>,
) -> Result<Option<Cgroup>> {
    Ok(match placement {
        Placement::None => None,
        Placement::Fs(c) => Some(c.clone()),
        Placement::Systemd(scope) => {
            let cg = scope.start(pid, resources)?;
            cg.adopt(pid.as_raw())?;
            // What systemd has no property for goes to the files directly.
            cg.configure(resources)?;
            Some(cg)
        }
    })
}

/// The steps of `create` once the id is reserved and the cgroup placement
/// known; `child` is set as soon as init exists, for the caller's cleanup.
fn create_in(
    root: &StateRoot,
    id: &str,
    bundle: &Bundle,
    opts: &CreateOpts,
    placement: &Placement,
    child: &mut Option<Pid>,
    lock_fd: std::os::fd::RawFd,
) -> Result<(State, Option<channel::Channel>, bool)> {
    let spec = &bundle.spec;
    let linux = spec.linux().as_ref();
    let on_channel = opts.start_on_channel && linux.and_then(|l| l.seccomp().as_ref()).is_none();
    let fifo = (!on_channel)
        .then(|| make_exec_fifo(root, id, linux, opts.rootless))
        .transpose()?;
    let console_socket = console_socket(opts)?;
    // `run` with nothing to do between init's `Ready` and its start (no
    // pid file to write, no terminal to attach, no runtime step): `Start`
    // goes on the channel once the limits are set, and init does not wait
    // for skiff to read `Ready` (the created state is put in place while
    // the process starts; the lock keeps other commands out till then).
    let start_early = on_channel
        && opts.pid_file.is_none()
        && console_socket.is_none()
        && !bundle.has_runtime_step();
    let ns = NsPlan::of(bundle)?;
    let own_pid_ns = ns.enter_before_clone(spec)?;
    let host_binds = rootfs::host_binds::prepare(spec, &bundle.path, ns.in_userns())?;
    let seccomp = linux.and_then(|l| l.seccomp().as_ref());
    let seccomp_listener = crate::security::seccomp::notify::listener_of(seccomp)?
        .map(|l| crate::security::seccomp::notify::connect(&l))
        .transpose()?;
    let (parent_chan, child_chan) = channel::pair()?;
    let resources = linux.and_then(|l| l.resources().as_ref());
    let mut state = initial_state(id, bundle, placement);
    if !matches!(placement, Placement::None) {
        root.save(&state)?;
    }
    // Only what the clone needs of the cgroup is made before it: on v2 the
    // directory, on v1 the unified one of a hybrid host (init is cloned into
    // it). The v1 hierarchies (a mkdir takes 20-220 us each) are made while
    // init builds the rootfs; init waits for them and on v1 moves itself in
    // before the hooks. The limits follow meanwhile (see `handshake`).
    let later = match placement {
        Placement::Fs(c) => Some(c),
        _ => None,
    };
    let unified = match later {
        Some(Cgroup::V1(c)) => c.make_unified()?.map(|dir| {
            Cgroup::V2(crate::cgroups::v2::Cgroup {
                dir: dir.to_path_buf(),
            })
        }),
        _ => None,
    };
    let (clone_cgroup, cgroup_fd) = match (later, &unified) {
        (Some(Cgroup::V1(_)), Some(u)) => (Some(u), u.open()?),
        (Some(c @ Cgroup::V2(v2)), _) => (Some(c), Some(v2.make()?)),
        _ => (None, None),
    };
    // Without CLONE_INTO_CGROUP init is moved in after the clone: its
    // cgroup namespace must come after that.
    let moved_later = matches!(
        placement,
        Placement::Systemd(_) | Placement::Fs(Cgroup::V1(_))
    );
    let (clone_flags, unshare) = ns.clone_and_unshare(moved_later);
    let (new_userns, in_userns) = (ns.new_userns(), ns.in_userns());
    let pid = match clone_into(clone_flags.bits() as u64, clone_cgroup, cgroup_fd.as_ref())? {
        // Never a v1 cgroup to join here: init joins those later.
        Cloned::Child(_) => {
            drop(parent_chan);
            init::main(InitArgs {
                lock_fd,
                cgroup_later: later.is_some(),
                bundle,
                chan: child_chan,
                fifo,
                console_socket,
                join: ns.join,
                unshare,
                in_userns,
                no_pivot: opts.no_pivot,
                keyring: (!opts.no_new_keyring).then(|| id.to_string()),
                preserve_fds: opts.preserve_fds + opts.listen_fds,
                extra_env: listen_env(opts.listen_fds),
                host_binds,
                seccomp_listener,
                stdio: opts.stdio,
            })
        }
        Cloned::Parent(pid) => pid,
    };
    *child = Some(pid);
    if let Some(fd) = &own_pid_ns {
        nix::sched::setns(fd.as_fd(), CloneFlags::CLONE_NEWPID)
            .step(|| "return to our own pid namespace".into())?;
    }
    state.pid = pid.as_raw();
    // Read before a save that names init; otherwise once init has `Go`
    // (see `handshake`), as it waits for nothing else.
    if matches!(placement, Placement::None | Placement::Systemd(_)) {
        state.pid_start = crate::procfs::start_time(pid);
    }
    // Until init is ready it dies with us (PR_SET_PDEATHSIG), and a delete
    // after a killed create empties the cgroup recorded by the first save:
    // the pid needs no save of its own then (one file fewer per container,
    // ~0.1 ms where the state root is on disk). Without a cgroup it is the
    // only record of init.
    if matches!(placement, Placement::None) {
        root.save(&state)?;
    }
    drop(child_chan);
    drop((fifo, console_socket, ns.join, host_binds, seccomp_listener));
    if new_userns {
        let maps = |m: Option<&Vec<LinuxIdMapping>>| m.cloned().unwrap_or_default();
        crate::idmap::write_maps(
            pid,
            &maps(linux.and_then(|l| l.uid_mappings().as_ref())),
            &maps(linux.and_then(|l| l.gid_mappings().as_ref())),
        )?;
    }
    let cgroup = place_init(placement, pid, resources)?;
    if matches!(placement, Placement::Systemd(_)) {
        state.set_cgroup(cgroup.as_ref());
        root.save(&state)?;
    }
    super::handshake::handshake(
        &parent_chan,
        root,
        bundle,
        pid,
        &mut state,
        later,
        start_early,
    )?;
    root.commit(&state)?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    Ok((state, on_channel.then_some(parent_chan), start_early))
}

fn open_ns(path: &Path, typ: LinuxNamespaceType) -> Result<OwnedFd> {
    std::fs::File::open(path)
        .map(OwnedFd::from)
        .map_err(|e| Error::Invalid {
            field: format!("linux.namespaces[{}].path", ns_proc_name(typ)),
            msg: format!("{}: {e}", path.display()),
        })
}

fn write_time_offsets(spec: &oci_spec::runtime::Spec) -> Result<()> {
    let Some(offsets) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, o) in offsets {
        text.push_str(&format!(
            "{clock} {} {}\n",
            o.secs().unwrap_or(0),
            o.nanosecs().unwrap_or(0)
        ));
    }
    std::fs::write("/proc/self/timens_offsets", text).map_err(|e| Error::Invalid {
        field: "linux.timeOffsets".into(),
        msg: e.to_string(),
    })
}

/// Write `pid` to `path` atomically, as runc does.
pub fn write_pid_file(path: &Path, pid: Pid) -> Result<()> {
    let abs = std::path::absolute(path).path(path)?;
    let tmp = abs.with_file_name(format!(
        ".{}.tmp",
        abs.file_name().and_then(|n| n.to_str()).unwrap_or("pid")
    ));
    std::fs::write(&tmp, pid.to_string()).path(&tmp)?;
    std::fs::rename(&tmp, &abs).path(abs)
}

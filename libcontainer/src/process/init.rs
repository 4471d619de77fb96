//! The container's init: the child side of `create`. It is a fork of skiff
//! (never re-executed), so it already holds the parsed config. It joins or
//! creates the namespaces, builds the rootfs, reports `Ready`, waits on the
//! exec fifo for `start`, then becomes the user process.

use std::convert::Infallible;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::{setns, unshare, CloneFlags};

use super::attrs::Attrs;
use super::channel::{Channel, Msg};
use super::setup::{become_ns_root, Final};
use crate::config::Bundle;
use crate::error::{Error, Result, SysContext};
use crate::hooks::{self, Kind};
use crate::rootfs;

/// What the init child needs, all opened by the parent before the clone.
pub struct InitArgs<'a> {
    /// The parent's container lock: closed at once, so that a create
    /// killed later does not leave the container locked by its init.
    pub lock_fd: std::os::fd::RawFd,
    /// init was cloned before the container's cgroup was finished (on v2
    /// into its directory, on v1 into the unified one of a hybrid host, if
    /// any). skiff finishes it while init builds the rootfs and says so
    /// ([`Msg::Cgroups`], on v1 with the `tasks` files); init waits for
    /// that, on v1 moves itself in and then makes its cgroup namespace,
    /// before the hooks run.
    pub cgroup_later: bool,
    /// The validated bundle.
    pub bundle: &'a Bundle,
    /// The child end of the channel.
    pub chan: Channel,
    /// O_PATH fd of the exec fifo; none when `start` comes on the channel
    /// ([`Msg::Start`], foreground `run`).
    pub fifo: Option<OwnedFd>,
    /// Connected console socket, when `--console-socket` was given.
    pub console_socket: Option<OwnedFd>,
    /// Namespaces to join, user namespace first.
    pub join: Vec<(CloneFlags, OwnedFd)>,
    /// Namespaces still to create after joining (not created by clone).
    pub unshare: CloneFlags,
    /// Is the container in any user namespace (new or joined)?
    pub in_userns: bool,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// Name of the new session keyring (none with `--no-new-keyring`).
    pub keyring: Option<String>,
    /// `--preserve-fds` (plus LISTEN_FDS).
    pub preserve_fds: u32,
    /// Extra env (LISTEN_FDS/LISTEN_PID) for the process.
    pub extra_env: Vec<String>,
    /// Bind mounts cloned by the parent (id-mapped ones, and every bind in
    /// a user namespace), attached during the rootfs setup.
    pub host_binds: Vec<rootfs::host_binds::HostBind>,
    /// Socket connected to `linux.seccomp.listenerPath` (SCMP_ACT_NOTIFY).
    pub seccomp_listener: Option<OwnedFd>,
    /// fds to become the process's stdin, stdout and stderr.
    pub stdio: Option<[std::os::fd::RawFd; 3]>,
}

/// Run init; on failure report the error on the channel and exit 1.
pub fn main(args: InitArgs) -> ! {
    let _ = nix::unistd::close(args.lock_fd);
    let chan = args.chan.clone_fd();
    let err = match run(args) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    if matches!(&err, Error::Child(m) if m == RUNTIME_GONE) {
        std::process::exit(1)
    }
    // After Ready, nobody reads the channel any more: report on stderr
    // (the container's), as runc does.
    let after_ready = READY_SENT.load(std::sync::atomic::Ordering::Relaxed);
    match chan.as_ref().filter(|_| !after_ready) {
        Some(c) if c.send(&Msg::Failed(err.to_string())).is_ok() => {}
        _ => {
            let _ = writeln!(std::io::stderr(), "skiff init: {err}");
        }
    }
    std::process::exit(1)
}

/// Set once `Ready` is sent: later errors go to stderr.
static READY_SENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The error when skiff closed the channel: it has failed and reported
/// already, so init exits without a word.
const RUNTIME_GONE: &str = "runtime went away";

fn wait_for(chan: &Channel, want: &Msg) -> Result<Msg> {
    match chan.recv()? {
        Some(m) if std::mem::discriminant(&m) == std::mem::discriminant(want) => Ok(m),
        Some(m) => Err(Error::Child(format!("unexpected message {m:?}"))),
        None => Err(Error::Child(RUNTIME_GONE.into())),
    }
}

/// Wait for the container's cgroup ([`Msg::Cgroups`]), move into its v1
/// hierarchies, then make the cgroup namespace if it is `cgroupns` (so it
/// is rooted there).
fn join_cgroup(chan: &Channel, cgroupns: CloneFlags) -> Result<()> {
    match chan.recv_with_fds()? {
        Some((Msg::Cgroups { tasks }, fds)) => {
            crate::cgroups::v1::SelfJoin::received(tasks, fds)?.join_self()?
        }
        Some((m, _)) => return Err(Error::Child(format!("unexpected message {m:?}"))),
        None => return Err(Error::Child(RUNTIME_GONE.into())),
    }
    if !cgroupns.is_empty() {
        unshare(cgroupns).step(|| "linux.namespaces: unshare cgroup".into())?;
    }
    Ok(())
}

/// Until it is ready, init dies with the `create` that made it (and, as
/// pid 1 of its pid namespace, takes its createContainer hooks along).
fn die_with_parent(on: bool) -> Result<()> {
    let sig = on.then_some(nix::sys::signal::Signal::SIGKILL);
    nix::sys::prctl::set_pdeathsig(sig).step(|| "prctl PR_SET_PDEATHSIG".into())
}

fn run(mut a: InitArgs) -> Result<Infallible> {
    die_with_parent(true)?;
    let spec = &a.bundle.spec;
    super::setup::install_stdio(a.stdio)?;
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal {
        super::setup::null_stdio()?;
    }
    let go = Msg::Go {
        state: String::new(),
    };
    let Msg::Go { state } = wait_for(&a.chan, &go)? else {
        return Err(Error::Child("expected Go".into()));
    };
    for (flag, fd) in &a.join {
        setns(fd.as_fd(), *flag).step(|| format!("linux.namespaces: join {flag:?}"))?;
    }
    // With the cgroup joined later, its namespace comes after the move.
    let cgroupns_later = match a.cgroup_later {
        true => a.unshare & CloneFlags::CLONE_NEWCGROUP,
        false => CloneFlags::empty(),
    };
    let now = a.unshare - cgroupns_later;
    if !now.is_empty() {
        unshare(now).step(|| format!("linux.namespaces: unshare {now:?}"))?;
    }
    // A v1 move is checked against init's ids: made before it becomes
    // root of a user namespace (rootless, a subordinate uid may not write
    // the caller's tasks files), else as late as it may be (before the
    // hooks, or once the root is final), for skiff to make the cgroup
    // meanwhile.
    if a.cgroup_later && a.in_userns {
        join_cgroup(&a.chan, cgroupns_later)?;
    }
    if a.in_userns {
        become_ns_root()?;
        // Changing credentials cleared the parent-death signal.
        die_with_parent(true)?;
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    if let Some(name) = &a.keyring {
        match crate::sys::join_session_keyring(name) {
            // Like runc: kernels or sandboxes without keyrings are not an error.
            Err(nix::errno::Errno::ENOSYS | nix::errno::Errno::EPERM) | Ok(()) => {}
            Err(e) => return Err(e).step(|| "join a new session keyring".into()),
        }
    }
    let process = spec.process().as_ref().ok_or_else(|| Error::Invalid {
        field: "process".into(),
        msg: "missing".into(),
    })?;
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|e| {
            Error::Invalid {
                field: "process.oomScoreAdj".into(),
                // runc fails here too: lowering it needs CAP_SYS_RESOURCE on the host.
                msg: match e.kind() {
                    std::io::ErrorKind::PermissionDenied => {
                        format!("{adj}: {e} (lowering it needs CAP_SYS_RESOURCE on the host)")
                    }
                    _ => format!("{adj}: {e}"),
                },
            }
        })?;
    }
    let uts_new = a
        .bundle
        .namespace(oci_spec::runtime::LinuxNamespaceType::Uts)
        .is_some();
    if let Some(h) = spec.hostname().as_deref().filter(|_| uts_new) {
        nix::unistd::sethostname(h).step(|| "hostname: sethostname".into())?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|_| uts_new) {
        set_domainname(d)?;
    }
    // Never touch the caller's mounts: without a mount namespace of its own
    // (new or joined) the container gets no rootfs set-up at all, as in runc.
    let own_mounts = a
        .bundle
        .namespace(oci_spec::runtime::LinuxNamespaceType::Mount)
        .is_some();
    let mut prepared = if own_mounts {
        rootfs::prepare(
            spec,
            &a.bundle.rootfs,
            &a.bundle.path,
            a.in_userns,
            std::mem::take(&mut a.host_binds),
        )?
    } else {
        rootfs::prepare_shared(spec, &a.bundle.rootfs)?
    };
    let (master, tty) = prepared.console.take().unzip();
    if let Some(master) = &master {
        let sock = a.console_socket.as_ref().ok_or_else(|| Error::Invalid {
            field: "process.terminal".into(),
            msg: "a terminal needs --console-socket".into(),
        })?;
        super::tty::send_master(sock.as_fd(), master.as_fd())?;
    }
    drop(master);
    // Hooks see init in its cgroup. Without any, init moves in only once
    // its root is final, which gives skiff longer to make the cgroup.
    let runtime_step = a.bundle.has_runtime_step();
    let join_late = !runtime_step && !hooks::any(spec.hooks().as_ref(), Kind::CreateContainer);
    if a.cgroup_later && !a.in_userns && !join_late {
        join_cgroup(&a.chan, cgroupns_later)?;
    }
    if runtime_step {
        a.chan.send(&Msg::RunHooks)?;
        wait_for(&a.chan, &Msg::HooksDone)?;
    }
    // runc runs them in the rootfs (as the container's mount namespace
    // sees it), so a relative path in a hook resolves there.
    let rootfs_dir = own_mounts.then_some(a.bundle.rootfs.as_path());
    hooks::run(
        spec.hooks().as_ref(),
        Kind::CreateContainer,
        &state,
        rootfs_dir,
    )?;
    // Without a mount namespace the chroot has no /proc of its own: the
    // exec fifo is reopened through the caller's, opened here.
    let mut host_proc = None;
    if own_mounts {
        rootfs::enter(prepared.root.as_fd(), &a.bundle.rootfs, a.no_pivot)?;
    } else {
        host_proc = Some(OwnedFd::from(std::fs::File::open("/proc").map_err(
            |e| Error::Io {
                path: "/proc".into(),
                source: e,
            },
        )?));
        rootfs::chroot_only(prepared.root.as_fd())?;
    }
    drop(prepared.root);
    rootfs::finish(spec, own_mounts)?;
    if a.cgroup_later && !a.in_userns && join_late {
        join_cgroup(&a.chan, cgroupns_later)?;
    }
    let mut process = process.clone();
    if !a.extra_env.is_empty() {
        let mut env = process.env().clone().unwrap_or_default();
        env.extend(a.extra_env.iter().cloned());
        process.set_env(Some(env));
    }
    let mut fin = Final::resolve(&process, None, &[])?;
    fin.preserve_fds = a.preserve_fds;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    fin.seccomp = crate::security::seccomp::for_init(seccomp, a.seccomp_listener, &state)?;
    fin.tty = tty;
    fin.apply_rlimits()?;
    Attrs::resolve(&process, spec.linux().as_ref())?.apply()?;
    fin.enter_cwd()?;
    // The filter goes in now (with its notify fd to the agent), before
    // `create` returns, as runc's; the user switch waits for `start`.
    fin.prepare()?;
    die_with_parent(false)?;
    a.chan.send(&Msg::Ready)?;
    READY_SENT.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut started = match a.fifo.take() {
        Some(fifo) => Started::Fifo(go_on_fifo(&fifo, host_proc.as_ref())?),
        None => {
            wait_for(&a.chan, &Msg::Start)?;
            Started::Channel
        }
    };
    // As runc: the startContainer hooks run as the container's user, with
    // its capabilities and (without no_new_privs) under its seccomp filter.
    let become_then_hooks = fin
        .switch_user()
        .and_then(|()| hooks::run(spec.hooks().as_ref(), Kind::StartContainer, &state, None));
    let err = match become_then_hooks {
        Ok(()) => match fin.exec() {
            Ok(never) => match never {},
            Err(e) => e,
        },
        Err(e) => e,
    };
    match &mut started {
        Started::Fifo(f) => {
            let _ = f.write_all(format!("1{err}").as_bytes());
        }
        Started::Channel => {
            let _ = a.chan.send(&Msg::Failed(err.to_string()));
        }
    }
    Err(err)
}

/// How `start` reached init, and how init reports a failure after it: on
/// the exec fifo (write end open until execve), or on the channel (closed
/// at execve too).
enum Started {
    Fifo(std::fs::File),
    Channel,
}

/// Block until `start` opens the exec fifo (O_PATH `fifo`) for reading,
/// then tell it we go; returns the write end.
fn go_on_fifo(fifo: &OwnedFd, host_proc: Option<&OwnedFd>) -> Result<std::fs::File> {
    let fifo_path = PathBuf::from(format!("/proc/self/fd/{}", fifo.as_raw_fd()));
    // The seccomp filter may be in already: plain openat, as runc's open,
    // which every profile that runs runc allows (older ones lack openat2).
    let opened = match host_proc {
        Some(proc) => crate::sys::openat(
            proc.as_fd(),
            std::path::Path::new(&format!("self/fd/{}", fifo.as_raw_fd())),
            libc::O_WRONLY | libc::O_CLOEXEC,
        )
        .map(std::fs::File::from)
        .map_err(std::io::Error::from),
        None => std::fs::OpenOptions::new().write(true).open(&fifo_path),
    };
    let mut f = opened.map_err(|e| Error::Io {
        path: fifo_path.clone(),
        source: e,
    })?;
    f.write_all(b"0").map_err(|e| Error::Io {
        path: fifo_path,
        source: e,
    })?;
    // It stays open until execve closes it: `start` waits for that EOF, or
    // reads the error written here when a hook or the exec fails.
    Ok(f)
}

fn set_domainname(name: &str) -> Result<()> {
    std::fs::write("/proc/sys/kernel/domainname", name).map_err(|e| Error::Invalid {
        field: "domainname".into(),
        msg: e.to_string(),
    })
}

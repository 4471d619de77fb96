//! The last steps before a container process executes its program, shared
//! by init and exec: rlimits, terminal, user and capabilities,
//! no_new_privs, umask, cwd check, signals, fds, execve.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use oci_spec::runtime::{PosixRlimitType, Process};

use crate::error::{Error, Result, SysContext};
use crate::resolve;
use crate::security::caps::{self, CapSets};
use crate::security::seccomp::load as seccomp;
use crate::sys;
use crate::user;

/// The signals this thread ignores, from its status in the container's
/// `/proc` when that is a real procfs no mount redirects (see
/// [`resolve::open_proc`]); all of them when it cannot be read (no `/proc`
/// in the container), so that every one is reset. One read instead of an
/// rt_sigaction per signal.
fn ignored_signals() -> u64 {
    use std::io::Read;
    let read = || -> Option<u64> {
        let root = std::fs::File::open("/").ok()?;
        let fd = resolve::open_proc(root.as_fd(), "thread-self/status", libc::O_RDONLY).ok()?;
        let mut text = String::new();
        std::fs::File::from(fd).read_to_string(&mut text).ok()?;
        crate::procfs::parse_sig_ign(&text)
    };
    read().unwrap_or(u64::MAX)
}

/// A process ready to be executed: everything resolved, nothing left to parse.
#[derive(Debug)]
pub struct Final {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    cwd: PathBuf,
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    caps: CapSets,
    no_new_privs: bool,
    umask: u32,
    rlimits: Vec<(Resource, u64, u64)>,
    /// The terminal to make stdio and the controlling tty.
    pub tty: Option<OwnedFd>,
    /// fds 3..3+preserve_fds stay open.
    pub preserve_fds: u32,
    /// Whether setgroups(2) is allowed (not in a user namespace with setgroups denied).
    setgroups: bool,
    /// The seccomp filter to install (`linux.seccomp`), set by init or exec.
    pub seccomp: Option<seccomp::Prepared>,
}

fn cstring(field: &str, s: &[u8]) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Invalid {
        field: field.into(),
        msg: "contains a NUL byte".into(),
    })
}

fn resource(t: PosixRlimitType) -> Resource {
    match t {
        PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

/// Find `prog` as execve would inside the current root: a path with a `/`
/// as it is, otherwise the first executable match in `PATH` from `env`.
fn lookup(prog: &str, env: &[String]) -> Result<PathBuf> {
    let not_found = || Error::Invalid {
        field: "process.args[0]".into(),
        msg: format!("exec: {prog:?}: executable file not found in $PATH"),
    };
    let executable = |p: &Path| {
        nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok()
            && std::fs::metadata(p).is_ok_and(|m| m.is_file())
    };
    if prog.contains('/') {
        let p = PathBuf::from(prog);
        return match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => Ok(p),
            Ok(_) => Err(Error::Invalid {
                field: "process.args[0]".into(),
                msg: format!("exec: {prog:?}: is not a file"),
            }),
            Err(e) => Err(Error::Invalid {
                field: "process.args[0]".into(),
                msg: format!("exec: {prog:?}: {e}"),
            }),
        };
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .map(|d| Path::new(if d.is_empty() { "." } else { d }).join(prog))
        .find(|p| executable(p))
        .ok_or_else(not_found)
}

/// Become uid/gid 0 of the user namespace just created or joined.
pub fn become_ns_root() -> Result<()> {
    use nix::unistd::{setresgid, setresuid, Gid, Uid};
    let (g, u) = (Gid::from_raw(0), Uid::from_raw(0));
    setresgid(g, g, g).step(|| "setresgid 0 in the user namespace".into())?;
    setresuid(u, u, u).step(|| "setresuid 0 in the user namespace".into())
}

impl Final {
    /// Resolve `process` inside the current root (after pivot_root or setns):
    /// the program in PATH, HOME from the container's /etc/passwd, the
    /// capability sets. `user_spec` (exec's `--user name`) overrides the
    /// numeric ids; `extra_groups` are added to additionalGids.
    pub fn resolve(
        process: &Process,
        user_spec: Option<&str>,
        extra_groups: &[String],
    ) -> Result<Final> {
        let mut env: Vec<String> = process.env().clone().unwrap_or_default();
        let passwd = std::fs::read_to_string("/etc/passwd")
            .map(|t| user::parse_passwd(&t))
            .unwrap_or_default();
        let groups_db = std::fs::read_to_string("/etc/group")
            .map(|t| user::parse_group(&t))
            .unwrap_or_default();
        let u = process.user();
        let (uid, gid, mut groups, home) = match user_spec {
            Some(spec) => {
                let eu = user::resolve(spec, &passwd, &groups_db)?;
                (eu.uid, eu.gid, eu.sgids, eu.home)
            }
            None => {
                let home = passwd
                    .iter()
                    .find(|p| p.uid == u.uid())
                    .map_or_else(|| "/".to_string(), |p| p.home.clone());
                (u.uid(), u.gid(), Vec::new(), home)
            }
        };
        groups.extend(u.additional_gids().iter().flatten());
        groups.extend(user::resolve_groups(extra_groups, &groups_db)?);
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!("HOME={home}"));
        }
        let args = process.args().as_deref().unwrap_or_default();
        let prog = args.first().ok_or_else(|| Error::Invalid {
            field: "process.args".into(),
            msg: "empty".into(),
        })?;
        let path = lookup(prog, &env)?;
        let argv = args
            .iter()
            .map(|a| cstring("process.args", a.as_bytes()))
            .collect::<Result<_>>()?;
        let envp = env
            .iter()
            .map(|e| cstring("process.env", e.as_bytes()))
            .collect::<Result<_>>()?;
        let rlimits = process
            .rlimits()
            .iter()
            .flatten()
            .map(|r| (resource(r.typ()), r.soft(), r.hard()))
            .collect();
        Ok(Final {
            path: cstring("process.args[0]", path.as_os_str().as_bytes())?,
            argv,
            envp,
            cwd: process.cwd().clone(),
            uid,
            gid,
            groups,
            caps: CapSets::new(process.capabilities().as_ref()),
            no_new_privs: process.no_new_privileges().unwrap_or(false),
            umask: u.umask().unwrap_or(0o022),
            rlimits,
            tty: None,
            preserve_fds: 0,
            // Outside a user namespace this file always says "allow".
            setgroups: std::fs::read_to_string("/proc/self/setgroups")
                .map_or(true, |s| s.trim() == "allow"),
            seccomp: None,
        })
    }

    /// Apply the rlimits (while still privileged, so hard limits can rise).
    pub fn apply_rlimits(&self) -> Result<()> {
        for (r, soft, hard) in &self.rlimits {
            setrlimit(*r, *soft, *hard).step(|| format!("process.rlimits: setrlimit {r:?}"))?;
        }
        Ok(())
    }

    /// Chdir to the process cwd (still as root, so any directory is reachable).
    pub fn enter_cwd(&self) -> Result<()> {
        nix::unistd::chdir(&self.cwd).step(|| format!("process.cwd: chdir {}", self.cwd.display()))
    }

    /// Become the container process, all but the last step: [`Final::prepare`]
    /// then [`Final::switch_user`]. Exec runs this, then [`Final::exec`].
    pub fn become_process(&mut self) -> Result<()> {
        self.prepare()?;
        self.switch_user()
    }

    /// The steps before the user switch, still as root: terminal, bounding
    /// set, cwd check, signals, close-on-exec, umask, and the seccomp filter
    /// unless it waits for execve. Init runs this during `create`, so an
    /// agent at `listenerPath` has its notify fd before `create` returns,
    /// as with runc.
    pub fn prepare(&mut self) -> Result<()> {
        // A session of its own, terminal or not, as runc's init and exec
        // processes have: CRIU dumps only trees whose session leader is
        // inside the container's pid namespace.
        nix::unistd::setsid().step(|| "setsid".into())?;
        if let Some(tty) = &self.tty {
            sys::set_controlling_tty(tty.as_fd()).step(|| "set controlling terminal".into())?;
            for fd in 0..3 {
                nix::unistd::dup2(tty.as_raw_fd(), fd)
                    .step(|| format!("dup2 terminal to fd {fd}"))?;
            }
        }
        if self.tty.is_some() {
            give_terminal_to(self.uid);
        }
        caps::drop_bounding(&self.caps)?;
        // CVE-2024-21626: the cwd must be inside the container's root, never
        // a directory reached through a leaked host fd.
        let cwd = sys::raw_getcwd().step(|| "getcwd".into())?;
        if cwd.first() != Some(&b'/') {
            return Err(Error::Invalid {
                field: "process.cwd".into(),
                msg: format!(
                    "current working directory {} is outside the container",
                    String::from_utf8_lossy(&cwd)
                ),
            });
        }
        sys::reset_signal_dispositions(ignored_signals());
        sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
            .step(|| "reset signal mask".into())?;
        sys::cloexec_from(3 + self.preserve_fds).step(|| "close fds".into())?;
        for fd in 3..3 + self.preserve_fds {
            let _ = nix::fcntl::fcntl(
                fd as i32,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            );
        }
        sys::set_umask(self.umask);
        // seccomp without no_new_privs needs CAP_SYS_ADMIN, which the user
        // switch drops: load it now, as runc does. After it skiff makes only
        // the calls runc makes from there (sendmsg of a notify fd and of
        // Ready, the exec fifo's open and write, setgroups, setres[ug]id,
        // capget/capset, prctl) and execve, so a profile that allows what
        // runc needs works; notifying sendmsg or write is refused when the
        // profile is compiled. With no_new_privs the filter goes in last,
        // just before execve, unless an agent waits for its notify fd.
        let now = self
            .seccomp
            .as_ref()
            .is_some_and(|f| !self.no_new_privs || f.notifies());
        if now {
            if let Some(f) = self.seccomp.take() {
                f.load()?;
            }
        }
        Ok(())
    }

    /// The user switch: groups, ids and capabilities, then no_new_privs.
    /// Call after [`Final::prepare`].
    pub fn switch_user(&self) -> Result<()> {
        caps::switch_user(self.uid, self.gid, &self.groups, &self.caps, self.setgroups)?;
        if self.no_new_privs {
            nix::sys::prctl::set_no_new_privs().step(|| "process.noNewPrivileges: prctl".into())?;
        }
        Ok(())
    }

    /// Load the seccomp filter if it is still to go in (no_new_privs on)
    /// and execute the program. Call after [`Final::switch_user`];
    /// returns only on error.
    pub fn exec(mut self) -> Result<Infallible> {
        if let Some(f) = self.seccomp.take() {
            f.load()?;
        }
        let e = nix::unistd::execve(&self.path, &self.argv, &self.envp).unwrap_err();
        Err(Error::Sys {
            step: format!("exec {}", self.path.to_string_lossy()),
            source: e,
        })
    }
}

/// Make the terminal on stdio owned by `uid`, so a process that is not
/// root can use its own terminal (runc's fixStdioPermissions: the uid
/// only, the group stays devpts's `tty`). Only the pty skiff made is
/// changed, never a file or pipe of the caller's; a terminal whose owner
/// cannot be changed here (unmapped in a user namespace) is left as it is.
fn give_terminal_to(uid: u32) {
    for fd in 0..3 {
        let Ok(st) = nix::sys::stat::fstat(fd) else {
            continue;
        };
        if st.st_uid == uid || !nix::unistd::isatty(fd).unwrap_or(false) {
            continue;
        }
        let _ = nix::unistd::fchown(fd, Some(nix::unistd::Uid::from_raw(uid)), None);
    }
}

/// Point stdin, stdout and stderr at /dev/null. A terminal container's init
/// does this first (as runc's does): its stdio becomes the pty at exec, and
/// until then it must not hold the caller's (`out=$(skiff create ...)`
/// would never see EOF).
pub fn null_stdio() -> Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| Error::Io {
            path: "/dev/null".into(),
            source: e,
        })?;
    for fd in 0..3 {
        nix::unistd::dup2(null.as_raw_fd(), fd).step(|| format!("dup2 /dev/null to fd {fd}"))?;
    }
    Ok(())
}

/// Make `fds` (stdin, stdout, stderr) the process's fds 0, 1 and 2, as the
/// caller of create or exec asked (the containerd shim passes its fifos or
/// pipes this way); `None` keeps the caller's own stdio.
pub fn install_stdio(fds: Option<[std::os::fd::RawFd; 3]>) -> Result<()> {
    let Some(fds) = fds else {
        return Ok(());
    };
    // Move them above 2 first, so one never overwrites another.
    let mut high = [0; 3];
    for (i, fd) in fds.iter().enumerate() {
        high[i] = nix::fcntl::fcntl(*fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))
            .step(|| format!("dup stdio fd {fd}"))?;
    }
    for (i, fd) in high.iter().enumerate() {
        nix::unistd::dup2(*fd, i as i32).step(|| format!("dup2 stdio to fd {i}"))?;
    }
    Ok(())
}

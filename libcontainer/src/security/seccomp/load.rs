//! From a [`Filter`] to an installed filter: libseccomp builds the BPF
//! program (before any privilege is dropped, while the process may still
//! allocate freely), and [`Prepared::load`] installs it with one seccomp(2)
//! call carrying the OCI flags, then hands a notify fd to its [`Sink`].

use std::io::{Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;

use libseccomp::{ScmpAction, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};

use super::{notify, Action, Filter, Op};
use crate::error::{Error, Result, SysContext};
use crate::process::channel::Channel;
use crate::sys::seccomp as sys;

/// The kernel's SECCOMP_RET_* value of an action (for availability probes).
pub fn ret_action(a: Action) -> u32 {
    match a {
        Action::KillProcess => 0x8000_0000,
        Action::KillThread => 0,
        Action::Trap => 0x0003_0000,
        Action::Errno(_) => 0x0005_0000,
        Action::Notify => 0x7fc0_0000,
        Action::Trace(_) => 0x7ff0_0000,
        Action::Log => 0x7ffc_0000,
        Action::Allow => 0x7fff_0000,
    }
}

/// Each requested flag with the bits that probe it (WAIT_KILLABLE_RECV is
/// only valid together with NEW_LISTENER).
pub fn flag_bits(f: &Filter) -> Vec<(u32, &'static str)> {
    let mut v = Vec::new();
    if f.flags.log {
        v.push((sys::FLAG_LOG, "SECCOMP_FILTER_FLAG_LOG"));
    }
    if f.flags.spec_allow {
        v.push((sys::FLAG_SPEC_ALLOW, "SECCOMP_FILTER_FLAG_SPEC_ALLOW"));
    }
    if f.flags.wait_killable_recv {
        v.push((
            sys::FLAG_WAIT_KILLABLE_RECV | sys::FLAG_NEW_LISTENER,
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        ));
    }
    v
}

/// The flags seccomp(2) gets. WAIT_KILLABLE_RECV only means something for
/// a filter with a listener (the kernel refuses it otherwise), so without
/// SCMP_ACT_NOTIFY it is dropped.
fn load_flags(f: &Filter) -> u32 {
    let mut flags = 0;
    if f.flags.log {
        flags |= sys::FLAG_LOG;
    }
    if f.flags.spec_allow {
        flags |= sys::FLAG_SPEC_ALLOW;
    }
    if f.uses_notify() {
        flags |= sys::FLAG_NEW_LISTENER;
        if f.flags.wait_killable_recv {
            flags |= sys::FLAG_WAIT_KILLABLE_RECV;
        }
    }
    flags
}

fn scmp_action(a: Action) -> ScmpAction {
    match a {
        Action::KillProcess => ScmpAction::KillProcess,
        Action::KillThread => ScmpAction::KillThread,
        Action::Trap => ScmpAction::Trap,
        Action::Errno(e) => ScmpAction::Errno(i32::from(e)),
        Action::Trace(t) => ScmpAction::Trace(t),
        Action::Log => ScmpAction::Log,
        Action::Allow => ScmpAction::Allow,
        Action::Notify => ScmpAction::Notify,
    }
}

fn scmp_op(op: Op, value: u64) -> ScmpCompareOp {
    match op {
        Op::Ne => ScmpCompareOp::NotEqual,
        Op::Lt => ScmpCompareOp::Less,
        Op::Le => ScmpCompareOp::LessOrEqual,
        Op::Eq => ScmpCompareOp::Equal,
        Op::Ge => ScmpCompareOp::GreaterEqual,
        Op::Gt => ScmpCompareOp::Greater,
        Op::MaskedEq => ScmpCompareOp::MaskedEqual(value),
    }
}

fn lib_err(field: String) -> impl FnOnce(libseccomp::error::SeccompError) -> Error {
    move |e| Error::Invalid {
        field,
        msg: format!("libseccomp: {e}"),
    }
}

/// Build the BPF program of `f` with libseccomp.
pub fn bpf(f: &Filter) -> Result<Vec<libc::sock_filter>> {
    let mut ctx = ScmpFilterContext::new(scmp_action(f.default))
        .map_err(lib_err("linux.seccomp.defaultAction".into()))?;
    for (i, a) in f.archs.iter().enumerate() {
        match ctx.add_arch(*a) {
            Ok(_) => {}
            // The native architecture is in already.
            Err(e) if e.errno() == Some(libseccomp::error::SeccompErrno::EEXIST) => {}
            Err(e) => return Err(lib_err(format!("linux.seccomp.architectures[{i}]"))(e)),
        }
    }
    for r in &f.rules {
        let field = format!("linux.seccomp.syscalls[{}]", r.origin);
        let conds: Vec<ScmpArgCompare> = r
            .conds
            .iter()
            .map(|c| {
                let (datum, op) = match c.op {
                    // (arg & value) == valueTwo
                    Op::MaskedEq => (c.value_two, scmp_op(c.op, c.value)),
                    o => (c.value, scmp_op(o, 0)),
                };
                ScmpArgCompare::new(c.index, op, datum)
            })
            .collect();
        let action = scmp_action(r.action);
        if conds.is_empty() {
            ctx.add_rule(action, r.nr)
        } else {
            ctx.add_rule_conditional(action, r.nr, &conds)
        }
        .map_err(lib_err(format!("{field} ({})", r.name)))?;
    }
    let mem = memfd_create(c"skiff-seccomp", MemFdCreateFlag::MFD_CLOEXEC)
        .step(|| "linux.seccomp: memfd_create".into())?;
    let mut file = std::fs::File::from(mem);
    ctx.export_bpf(&file)
        .map_err(lib_err("linux.seccomp".into()))?;
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|e| Error::Io {
            path: "memfd:skiff-seccomp".into(),
            source: e,
        })?;
    Ok(bytes
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

/// Where the notify fd goes once the filter is loaded.
#[derive(Debug)]
pub enum Sink {
    /// A socket already connected to `listenerPath` (by `skiff create`,
    /// before the container's root was entered) and the container process
    /// state to send with the fd.
    Listener {
        /// The connected socket.
        sock: OwnedFd,
        /// ContainerProcessState JSON.
        state: Vec<u8>,
    },
    /// The parent (`skiff exec`), over the channel: it connects and sends.
    Parent(Channel),
}

/// A filter ready to load: its program, flags and notify sink.
pub struct Prepared {
    prog: Vec<libc::sock_filter>,
    flags: u32,
    sink: Option<Sink>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("instructions", &self.prog.len())
            .field("flags", &self.flags)
            .field("sink", &self.sink)
            .finish()
    }
}

impl Prepared {
    /// Build the program of `f`; `sink` is needed when `f` uses NOTIFY.
    pub fn new(f: &Filter, sink: Option<Sink>) -> Result<Prepared> {
        if f.uses_notify() && sink.is_none() {
            return Err(Error::Invalid {
                field: "linux.seccomp.listenerPath".into(),
                msg: "no listener to send the notify fd to".into(),
            });
        }
        let mut prog = Vec::new();
        if super::enosys::wanted(f) {
            prog = super::enosys::stub(&super::enosys::last_syscalls(f));
        }
        prog.extend(bpf(f)?);
        Ok(Prepared {
            prog,
            flags: load_flags(f),
            sink: if f.uses_notify() { sink } else { None },
        })
    }

    /// Does loading hand a notify fd to an agent?
    pub fn notifies(&self) -> bool {
        self.sink.is_some()
    }

    /// Install the filter on the calling thread; hand the notify fd over
    /// right away (the only syscall the runtime makes before it, sendmsg,
    /// cannot be notified: [`super::compile`] refuses that).
    pub fn load(self) -> Result<()> {
        let fd = sys::load_filter(&self.prog, self.flags)
            .step(|| "linux.seccomp: load the filter".into())?;
        match (fd, self.sink) {
            (Some(fd), Some(Sink::Listener { sock, state })) => notify::send(&sock, &state, &fd),
            (Some(fd), Some(Sink::Parent(chan))) => chan.send_with_fd(
                &crate::process::channel::Msg::SeccompFd,
                Some(std::os::fd::AsRawFd::as_raw_fd(&fd)),
            ),
            _ => Ok(()),
        }
    }
}

//! seccomp for `linux.seccomp`: [`compile`] turns the OCI profile into a
//! [`Filter`] (a pure translation, errors naming the field), [`load`] turns
//! that into BPF with libseccomp and installs it in the container process,
//! and [`notify`] hands a SCMP_ACT_NOTIFY listener fd to the `listenerPath`
//! agent as runc does.

pub(crate) mod enosys;
pub(crate) mod load;
pub mod names;
pub(crate) mod notify;

use std::path::PathBuf;

use libseccomp::{ScmpArch, ScmpSyscall};
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag};
use oci_spec::runtime::{LinuxSeccompOperator, LinuxSyscall};

use crate::error::{Error, Result};

/// What the filter does with a matching syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// SCMP_ACT_KILL_PROCESS: the whole process dies of SIGSYS.
    KillProcess,
    /// SCMP_ACT_KILL_THREAD (and the old SCMP_ACT_KILL): the thread dies.
    KillThread,
    /// SCMP_ACT_TRAP: SIGSYS is delivered.
    Trap,
    /// SCMP_ACT_ERRNO: the syscall fails with this errno.
    Errno(u16),
    /// SCMP_ACT_TRACE: a ptrace tracer is notified with this value.
    Trace(u16),
    /// SCMP_ACT_LOG: allowed, and logged.
    Log,
    /// SCMP_ACT_ALLOW.
    Allow,
    /// SCMP_ACT_NOTIFY: a user-space agent decides.
    Notify,
}

/// A comparison operator on a syscall argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `>=`
    Ge,
    /// `>`
    Gt,
    /// `(arg & value) == valueTwo`
    MaskedEq,
}

/// One argument comparison of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cond {
    /// Argument index, 0 to 5.
    pub index: u32,
    /// The operator.
    pub op: Op,
    /// `value` (the mask for [`Op::MaskedEq`]).
    pub value: u64,
    /// `valueTwo` (the compared value for [`Op::MaskedEq`]).
    pub value_two: u64,
}

/// One libseccomp rule: `action` when syscall `nr` matches every condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Index in `linux.seccomp.syscalls`, for error messages.
    pub origin: usize,
    /// The syscall name as given.
    pub name: String,
    /// Its number on the native architecture.
    pub nr: i32,
    /// What to do.
    pub action: Action,
    /// Conditions, all of which must hold.
    pub conds: Vec<Cond>,
}

/// Filter flags (SECCOMP_FILTER_FLAG_*). TSYNC needs nothing: the
/// container process is single-threaded when the filter is loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// SECCOMP_FILTER_FLAG_LOG.
    pub log: bool,
    /// SECCOMP_FILTER_FLAG_SPEC_ALLOW.
    pub spec_allow: bool,
    /// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV.
    pub wait_killable_recv: bool,
}

/// Where the notify fd goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// `listenerPath`: the agent's unix socket on the host.
    pub path: PathBuf,
    /// `listenerMetadata`, passed on verbatim.
    pub metadata: Option<String>,
}

/// A compiled profile: everything needed to build the BPF program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Action for syscalls no rule matches.
    pub default: Action,
    /// Extra architectures (the native one is always included).
    pub archs: Vec<ScmpArch>,
    /// Load flags.
    pub flags: Flags,
    /// The rules, in profile order.
    pub rules: Vec<Rule>,
    /// Syscall names unknown to libseccomp on this architecture (skipped).
    pub skipped: Vec<String>,
    /// Every syscall name the profile gives, whatever its action: the
    /// highest of them per architecture bounds the -ENOSYS stub.
    pub named: Vec<String>,
    /// The notify agent, when any rule uses SCMP_ACT_NOTIFY.
    pub listener: Option<Listener>,
}

impl Filter {
    /// Does any rule notify a user-space agent?
    pub fn uses_notify(&self) -> bool {
        self.default == Action::Notify || self.rules.iter().any(|r| r.action == Action::Notify)
    }
}

fn invalid(field: impl Into<String>, msg: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.into(),
        msg: msg.into(),
    }
}

/// The errno (or trace value) of an ERRNO/TRACE action: `ret`, default EPERM
/// as runc; it must fit the 16-bit SECCOMP_RET_DATA.
fn action(field: &str, a: LinuxSeccompAction, ret: Option<u32>) -> Result<Action> {
    let data = || {
        let v = ret.unwrap_or(libc::EPERM as u32);
        u16::try_from(v).map_err(|_| invalid(field, format!("{v} does not fit in 16 bits")))
    };
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            Action::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => Action::KillProcess,
        LinuxSeccompAction::ScmpActTrap => Action::Trap,
        LinuxSeccompAction::ScmpActErrno => Action::Errno(data()?),
        LinuxSeccompAction::ScmpActTrace => Action::Trace(data()?),
        LinuxSeccompAction::ScmpActLog => Action::Log,
        LinuxSeccompAction::ScmpActAllow => Action::Allow,
        LinuxSeccompAction::ScmpActNotify => Action::Notify,
    })
}

fn op(o: LinuxSeccompOperator) -> Op {
    match o {
        LinuxSeccompOperator::ScmpCmpNe => Op::Ne,
        LinuxSeccompOperator::ScmpCmpLt => Op::Lt,
        LinuxSeccompOperator::ScmpCmpLe => Op::Le,
        LinuxSeccompOperator::ScmpCmpEq => Op::Eq,
        LinuxSeccompOperator::ScmpCmpGe => Op::Ge,
        LinuxSeccompOperator::ScmpCmpGt => Op::Gt,
        LinuxSeccompOperator::ScmpCmpMaskedEq => Op::MaskedEq,
    }
}

/// The libseccomp architecture of an OCI name.
pub fn arch(a: Arch) -> ScmpArch {
    match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// Syscalls skiff itself makes after loading the filter (sendmsg hands the
/// notify fd over, write reports a failed exec to `start`): notifying them
/// would wait for an agent that has no fd yet, or answer for the runtime.
const RUNTIME_SYSCALLS: [&str; 2] = ["sendmsg", "write"];

fn rules_of(i: usize, call: &LinuxSyscall, default: Action, out: &mut Filter) -> Result<()> {
    let field = format!("linux.seccomp.syscalls[{i}]");
    if call.names().is_empty() {
        return Err(invalid(format!("{field}.names"), "must name a syscall"));
    }
    let act = action(
        &format!("{field}.errnoRet"),
        call.action(),
        call.errno_ret(),
    )?;
    let mut conds = Vec::new();
    for (j, a) in call.args().iter().flatten().enumerate() {
        let index = u32::try_from(a.index())
            .ok()
            .filter(|x| *x < 6)
            .ok_or_else(|| {
                invalid(
                    format!("{field}.args[{j}].index"),
                    format!("{} is not a syscall argument index (0 to 5)", a.index()),
                )
            })?;
        conds.push(Cond {
            index,
            op: op(a.op()),
            value: a.value(),
            value_two: a.value_two().unwrap_or(0),
        });
    }
    // libseccomp takes one comparison per argument in a rule: when an
    // argument is compared twice, each comparison becomes its own rule
    // (they then match if any holds), as runc does.
    let repeated = conds
        .iter()
        .enumerate()
        .any(|(k, c)| conds[..k].iter().any(|d| d.index == c.index));
    let groups: Vec<Vec<Cond>> = if repeated {
        conds.iter().map(|c| vec![*c]).collect()
    } else {
        vec![conds]
    };
    for name in call.names() {
        if act == Action::Notify && RUNTIME_SYSCALLS.contains(&name.as_str()) {
            return Err(invalid(
                format!("{field}.action"),
                format!("SCMP_ACT_NOTIFY cannot be used for {name}: the runtime needs it after the filter is loaded"),
            ));
        }
        out.named.push(name.clone());
        let Ok(sys) = ScmpSyscall::from_name(name) else {
            // As runc: a name libseccomp does not know on this architecture
            // is skipped (with a warning from `check`/`for_exec`).
            out.skipped.push(name.clone());
            continue;
        };
        if act == default {
            // Same as the default action: a no-op rule libseccomp refuses.
            continue;
        }
        for g in &groups {
            out.rules.push(Rule {
                origin: i,
                name: name.clone(),
                nr: i32::from(sys),
                action: act,
                conds: g.clone(),
            });
        }
    }
    Ok(())
}

/// Translate `linux.seccomp` into a [`Filter`]. Pure: no kernel is asked
/// (syscall names are resolved from libseccomp's tables), so it can run in
/// validation and in a fuzzer. Errors name the field.
pub fn compile(s: &LinuxSeccomp) -> Result<Filter> {
    let default = action(
        "linux.seccomp.defaultErrnoRet",
        s.default_action(),
        s.default_errno_ret(),
    )?;
    if default == Action::Notify {
        return Err(invalid(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action (skiff's own last syscalls would wait for the agent)",
        ));
    }
    let mut flags = Flags::default();
    for f in s.flags().iter().flatten() {
        match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => flags.log = true,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => flags.spec_allow = true,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                flags.wait_killable_recv = true
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {}
        }
    }
    let mut archs: Vec<ScmpArch> = Vec::new();
    for a in s.architectures().iter().flatten() {
        let a = arch(*a);
        if !archs.contains(&a) {
            archs.push(a);
        }
    }
    let mut out = Filter {
        default,
        archs,
        flags,
        rules: Vec::new(),
        skipped: Vec::new(),
        named: Vec::new(),
        listener: None,
    };
    for (i, call) in s.syscalls().iter().flatten().enumerate() {
        rules_of(i, call, default, &mut out)?;
    }
    let notify = s
        .syscalls()
        .iter()
        .flatten()
        .any(|c| c.action() == LinuxSeccompAction::ScmpActNotify);
    if notify {
        let path = s.listener_path().as_ref().ok_or_else(|| {
            invalid(
                "linux.seccomp.listenerPath",
                "SCMP_ACT_NOTIFY needs a listenerPath to send the notify fd to",
            )
        })?;
        if !path.is_absolute() {
            return Err(invalid(
                "linux.seccomp.listenerPath",
                format!("{} is not an absolute path", path.display()),
            ));
        }
        out.listener = Some(Listener {
            path: path.clone(),
            metadata: s.listener_metadata().clone().filter(|m| !m.is_empty()),
        });
    }
    Ok(out)
}

fn warn_skipped(f: &Filter) {
    for name in &f.skipped {
        tracing::warn!("linux.seccomp: unknown syscall {name:?} skipped");
    }
}

/// Validate `linux.seccomp` for this host: compile it, and check that the
/// kernel has every action and flag it uses.
pub fn check(s: &LinuxSeccomp) -> Result<()> {
    let f = compile(s)?;
    warn_skipped(&f);
    let mut used: Vec<(String, Action)> = vec![("linux.seccomp.defaultAction".into(), f.default)];
    used.extend(f.rules.iter().map(|r| {
        (
            format!("linux.seccomp.syscalls[{}].action", r.origin),
            r.action,
        )
    }));
    for (field, a) in used {
        if !crate::sys::seccomp::action_available(load::ret_action(a)) {
            return Err(Error::Unsupported {
                field,
                msg: format!("{} is not supported by this kernel", names::action_name(a)),
            });
        }
    }
    for (flag, name) in load::flag_bits(&f) {
        if !crate::sys::seccomp::flags_supported(flag) {
            return Err(Error::Unsupported {
                field: "linux.seccomp.flags".into(),
                msg: format!("{name} is not supported by this kernel"),
            });
        }
    }
    Ok(())
}

/// The `linux.seccomp` section of `skiff features`, in runc's shape: the
/// actions the kernel has, every operator, the architectures libseccomp
/// knows, and the flags the kernel accepts.
pub fn features() -> serde_json::Value {
    let actions: Vec<&str> = names::ACTIONS
        .iter()
        .copied()
        .filter(|name| {
            let oci: LinuxSeccompAction = match name.parse() {
                Ok(a) => a,
                Err(_) => return false,
            };
            action("", oci, None)
                .is_ok_and(|a| crate::sys::seccomp::action_available(load::ret_action(a)))
        })
        .collect();
    let archs: Vec<&str> = names::ARCHS
        .iter()
        .copied()
        .filter(|name| {
            let Ok(a) = name.parse::<Arch>() else {
                return false;
            };
            libseccomp::ScmpFilterContext::new(libseccomp::ScmpAction::Allow).is_ok_and(
                |mut ctx| {
                    let a = arch(a);
                    a == ScmpArch::native() || ctx.add_arch(a).is_ok()
                },
            )
        })
        .collect();
    let probe = [
        (1, names::FLAGS[0]),
        (crate::sys::seccomp::FLAG_LOG, names::FLAGS[1]),
        (crate::sys::seccomp::FLAG_SPEC_ALLOW, names::FLAGS[2]),
        (
            crate::sys::seccomp::FLAG_WAIT_KILLABLE_RECV | crate::sys::seccomp::FLAG_NEW_LISTENER,
            names::FLAGS[3],
        ),
    ];
    let supported: Vec<&str> = probe
        .iter()
        .filter(|(bits, _)| crate::sys::seccomp::flags_supported(*bits))
        .map(|(_, n)| *n)
        .collect();
    serde_json::json!({
        "enabled": true,
        "actions": actions,
        "operators": names::OPERATORS,
        "archs": archs,
        "knownFlags": names::FLAGS,
        "supportedFlags": supported,
    })
}

/// The filter of container init: a notify fd goes to `listener` (connected
/// to listenerPath by `skiff create` while it could still reach the host
/// path) with `state`, the container's state JSON (status `creating`).
pub(crate) fn for_init(
    s: Option<&LinuxSeccomp>,
    listener: Option<std::os::fd::OwnedFd>,
    state: &str,
) -> Result<Option<load::Prepared>> {
    let Some(s) = s else { return Ok(None) };
    let f = compile(s)?;
    let sink = match (listener, &f.listener) {
        (Some(sock), Some(l)) => {
            let state: serde_json::Value = serde_json::from_str(state)
                .map_err(|e| Error::Child(format!("container state: {e}")))?;
            let pid = state["pid"].as_i64().unwrap_or_default();
            let ps = notify::process_state(state, pid, l.metadata.as_deref());
            Some(load::Sink::Listener {
                sock,
                state: ps.to_string().into_bytes(),
            })
        }
        _ => None,
    };
    load::Prepared::new(&f, sink).map(Some)
}

/// The filter of an exec'd process: a notify fd goes to the parent over
/// `chan`, which sends it to listenerPath.
pub(crate) fn for_exec(
    s: Option<&LinuxSeccomp>,
    chan: Option<crate::process::channel::Channel>,
) -> Result<Option<load::Prepared>> {
    let Some(s) = s else { return Ok(None) };
    let f = compile(s)?;
    warn_skipped(&f);
    load::Prepared::new(&f, chan.map(load::Sink::Parent)).map(Some)
}

#[cfg(test)]
mod tests;

//! The cgroup v2 device controller: an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE` attached to the container's cgroup.
//!
//! cgroup v2 has no `devices.allow`/`devices.deny` files; instead the kernel
//! runs the programs attached to the cgroup (and its ancestors) on every
//! mknod/open of a device node, and the access is granted only if all return 1.
//!
//! Semantics are the OCI/runc ones: the rules of `linux.resources.devices`
//! are read in order, the last rule that matches a device decides, and a
//! device no rule matches is denied. The decision is made per access bit:
//! opening `c 1:3` for read and write needs the last rule matching "read" and
//! the last rule matching "write" to both be allow rules, so a later
//! `deny c 1:3 w` takes write access away from an earlier `allow c 1:3 rw`.
//!
//! The generated program walks the rules from last to first:
//!
//! ```text
//!   r2 = ctx.access_type & 0xffff   // device type
//!   r3 = ctx.access_type >> 16      // requested access bits still undecided
//!   r4 = ctx.major; r5 = ctx.minor
//!   for each rule, last first, if type/major/minor match:
//!     deny:  if r3 & rule.access != 0 { return 0 }
//!     allow: r3 &= !rule.access; if r3 == 0 { return 1 }
//!   return 0
//! ```
//!
//! A rule that matches every device with every access (`a *:* rwm`) ends the
//! walk: the rules before it can never be reached (and the kernel's verifier
//! rejects unreachable instructions).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::{Error, Result, SysContext};
use crate::sys::bpf::{self, Insn};

// BPF_DEVCG_DEV_* and BPF_DEVCG_ACC_*.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;
const ACC_ALL: i32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// The program's license (no GPL-only helper is called).
const LICENSE: &std::ffi::CStr = c"Apache";
/// The name `bpftool prog` shows.
const PROG_NAME: &str = "skiff_devices";

// Registers: r0 is the return value, r1 the context on entry (a scratch
// register once the context is read).
const R0: u8 = 0;
const R1: u8 = 1;
const R_TYPE: u8 = 2;
const R_ACCESS: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;

// The only opcodes the generator emits (ALU32 ops zero the upper half of dst).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX|BPF_MEM|BPF_W: dst = *(u32 *)(src + off)
const ALU32_AND_K: u8 = 0x54; // BPF_ALU|BPF_AND|BPF_K: dst &= imm
const ALU32_RSH_K: u8 = 0x74; // BPF_ALU|BPF_RSH|BPF_K: dst >>= imm
const ALU32_MOV_K: u8 = 0xb4; // BPF_ALU|BPF_MOV|BPF_K: dst = imm
const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU|BPF_MOV|BPF_X: dst = src
const JMP_JEQ_K: u8 = 0x15; // BPF_JMP|BPF_JEQ|BPF_K: if dst == imm, skip off insns
const JMP_JNE_K: u8 = 0x55; // BPF_JMP|BPF_JNE|BPF_K: if dst != imm, skip off insns
const JMP_EXIT: u8 = 0x95; // BPF_JMP|BPF_EXIT: return r0

/// Install a device filter on the cgroup open at `dir` (an `O_DIRECTORY` fd
/// of the cgroup v2 dir), replacing any program skiff attached before (never
/// one more program appended per update).
///
/// The rules are checked before anything is loaded: an invalid rule is an
/// [`Error::Invalid`] naming `linux.resources.devices[i]`. Every
/// `BPF_CGROUP_DEVICE` program attached directly to this cgroup is replaced,
/// as runc does: with `BPF_F_REPLACE` in one step when there is one, otherwise
/// the new program is attached first and the old ones detached after, so the
/// cgroup is never left without a filter. Programs the caller may not open
/// (an LSM policy, say) are left in place: they can only restrict further.
pub fn apply(dir: BorrowedFd<'_>, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let insns = program(rules)?;
    let prog = load(&insns)?;
    let attached = bpf::prog_query(dir, bpf::ATTACH_CGROUP_DEVICE)
        .step(|| "bpf prog query (cgroup device programs)".into())?;
    let old = open_programs(&attached.ids)?;
    let attach = |flags: u32, replace: Option<BorrowedFd>| {
        bpf::prog_attach(dir, prog.as_fd(), bpf::ATTACH_CGROUP_DEVICE, flags, replace)
    };

    if !attached.ids.is_empty() && attached.flags & bpf::F_ALLOW_MULTI == 0 {
        // Someone attached a program without BPF_F_ALLOW_MULTI: the kernel refuses
        // a multi attach next to it (EPERM), but attaching with the same flags
        // atomically replaces that single program.
        tracing::debug!(flags = attached.flags, "replacing non-multi device filter");
        return attach(attached.flags, None)
            .step(|| "bpf prog attach (cgroup device, replacing a non-multi program)".into());
    }
    if let [(id, only)] = old.as_slice() {
        match attach(bpf::F_ALLOW_MULTI | bpf::F_REPLACE, Some(only.as_fd())) {
            Ok(()) => return Ok(()),
            // Kernels before 5.6 have no BPF_F_REPLACE: attach, then detach below.
            Err(Errno::EINVAL) => tracing::debug!(id, "BPF_F_REPLACE unsupported"),
            Err(e) => {
                return Err(e).step(|| format!("bpf prog attach (cgroup device, replacing {id})"))
            }
        }
    }
    attach(bpf::F_ALLOW_MULTI, None)
        .step(|| "bpf prog attach (cgroup device, BPF_F_ALLOW_MULTI)".into())?;
    if old.len() > 1 {
        tracing::info!(count = old.len(), "removing extra device filters");
    }
    for (id, fd) in &old {
        match bpf::prog_detach(dir, fd.as_fd(), bpf::ATTACH_CGROUP_DEVICE) {
            // ENOENT: somebody detached it already.
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e).step(|| format!("bpf prog detach (old device filter {id})")),
        }
    }
    Ok(())
}

/// runc's default device rules: `mknod` of any device (the devices themselves
/// stay unusable), plus full access to null, zero, full, random, urandom, tty,
/// the pseudo-terminals (`136:*`, ptmx) and tun.
pub fn default_allowed() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{B, C};
    let rwm = "rwm";
    [
        (C, None, None, "m"),
        (B, None, None, "m"),
        (C, Some(1), Some(3), rwm),    // /dev/null
        (C, Some(1), Some(8), rwm),    // /dev/random
        (C, Some(1), Some(7), rwm),    // /dev/full
        (C, Some(5), Some(0), rwm),    // /dev/tty
        (C, Some(1), Some(5), rwm),    // /dev/zero
        (C, Some(1), Some(9), rwm),    // /dev/urandom
        (C, Some(136), None, rwm),     // /dev/pts/*
        (C, Some(5), Some(2), rwm),    // /dev/ptmx
        (C, Some(10), Some(200), rwm), // /dev/net/tun
    ]
    .into_iter()
    .map(|(typ, major, minor, access)| {
        let mut rule = LinuxDeviceCgroup::default();
        rule.set_allow(true)
            .set_typ(Some(typ))
            .set_major(major)
            .set_minor(minor)
            .set_access(Some(access.to_string()));
        rule
    })
    .collect()
}

/// Open the programs with these ids, skipping the ones that are gone (ENOENT)
/// or that we may not open (EPERM/EACCES from an LSM, like runc does).
fn open_programs(ids: &[u32]) -> Result<Vec<(u32, OwnedFd)>> {
    let mut progs = Vec::with_capacity(ids.len());
    for &id in ids {
        match bpf::prog_get_fd_by_id(id) {
            Ok(fd) => progs.push((id, fd)),
            Err(e @ (Errno::ENOENT | Errno::EPERM | Errno::EACCES)) => {
                tracing::debug!(id, error = %e, "leaving a device filter we cannot open");
            }
            Err(e) => return Err(e).step(|| format!("bpf prog get fd by id {id}")),
        }
    }
    Ok(progs)
}

/// Load the program; on failure load it again with the verifier's log, to
/// report why it was refused.
fn load(insns: &[Insn]) -> Result<OwnedFd> {
    let load = |log: Option<&mut [u8]>| {
        bpf::prog_load(bpf::PROG_TYPE_CGROUP_DEVICE, insns, LICENSE, PROG_NAME, log)
    };
    match load(None) {
        Ok(fd) => return Ok(fd),
        Err(Errno::EPERM) => {
            // Kernels before 5.11 charge programs to RLIMIT_MEMLOCK (runc #2167).
            // Like runc, lift it: the limit is inherited by children forked later.
            use nix::sys::resource::{setrlimit, Resource, RLIM_INFINITY};
            let _ = setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY);
        }
        Err(_) => {}
    }
    let mut log = vec![0u8; 1 << 16];
    load(Some(&mut log)).map_err(|source| {
        let len = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        let text = String::from_utf8_lossy(&log[..len]);
        // The end of the log says what the verifier did not like.
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(8)..].join(" | ");
        let n = insns.len();
        let step = match tail.is_empty() {
            true => format!("bpf prog load (device filter, {n} insns)"),
            false => format!("bpf prog load (device filter, {n} insns): verifier: {tail}"),
        };
        Error::Sys { step, source }
    })
}

/// One validated rule. `None` in `typ`/`major`/`minor` matches anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rule {
    allow: bool,
    typ: Option<i32>,
    major: Option<i32>,
    minor: Option<i32>,
    access: i32,
}

/// Check rule `i`. `Ok(None)` for a rule that can never match a device.
fn parse_rule(i: usize, d: &LinuxDeviceCgroup) -> Result<Option<Rule>> {
    let invalid = |name: &str, msg: String| Error::Invalid {
        field: format!("linux.resources.devices[{i}].{name}"),
        msg,
    };
    let typ = match d.typ() {
        None | Some(LinuxDeviceType::A) => None,
        Some(LinuxDeviceType::B) => Some(DEV_BLOCK),
        Some(LinuxDeviceType::C) => Some(DEV_CHAR),
        Some(t) => {
            return Err(invalid(
                "type",
                format!("{:?} is not a device cgroup type (a, b or c)", t.as_str()),
            ))
        }
    };
    let access = match d.access().as_deref() {
        None => ACC_ALL,
        Some("") => return Err(invalid("access", "must not be empty".into())),
        Some(s) => s.chars().try_fold(0, |acc, c| match c {
            'r' => Ok(acc | ACC_READ),
            'w' => Ok(acc | ACC_WRITE),
            'm' => Ok(acc | ACC_MKNOD),
            _ => Err(invalid("access", format!("{s:?}: only r, w and m allowed"))),
        })?,
    };
    let mut never = false;
    let mut number = |name: &str, v: Option<i64>| -> Result<Option<i32>> {
        match v {
            // -1 is runc's internal spelling of a wildcard; accept it too.
            None | Some(-1) => Ok(None),
            Some(n) if !(0..=i64::from(u32::MAX)).contains(&n) => {
                Err(invalid(name, format!("{n} is not in 0..={}", u32::MAX)))
            }
            Some(n) => {
                // Linux majors have 12 bits and minors 20: no device has a bigger one.
                never |= n > i64::from(i32::MAX);
                Ok(i32::try_from(n).ok())
            }
        }
    };
    let major = number("major", d.major())?;
    let minor = number("minor", d.minor())?;
    if never {
        return Ok(None);
    }
    let allow = d.allow();
    Ok(Some(Rule {
        allow,
        typ,
        major,
        minor,
        access,
    }))
}

/// Validate `rules` and compile them (see the module doc for the program's shape).
fn program(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>> {
    let mut parsed = Vec::with_capacity(rules.len());
    for (i, d) in rules.iter().enumerate() {
        parsed.extend(parse_rule(i, d)?);
    }
    let mut p = Builder::default();
    // struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
    p.load_ctx(R_TYPE, 0);
    p.and(R_TYPE, 0xffff);
    p.load_ctx(R_ACCESS, 0);
    p.rsh(R_ACCESS, 16);
    p.load_ctx(R_MAJOR, 4);
    p.load_ctx(R_MINOR, 8);
    for rule in parsed.iter().rev() {
        p.rule(rule);
        if (rule.typ, rule.major, rule.minor, rule.access) == (None, None, None, ACC_ALL) {
            // It matches everything and returns: earlier rules are unreachable.
            return Ok(p.insns);
        }
    }
    p.ret(0);
    Ok(p.insns)
}

/// A tiny eBPF assembler: just what the device filter needs.
#[derive(Default)]
struct Builder {
    insns: Vec<Insn>,
}

impl Builder {
    /// `dst = *(u32 *)(ctx + off)`; only valid while r1 still holds the context.
    fn load_ctx(&mut self, dst: u8, off: i16) {
        self.insns.push(Insn::new(LDX_MEM_W, dst, R1, off, 0));
    }

    /// `dst &= imm` (32-bit).
    fn and(&mut self, dst: u8, imm: i32) {
        self.insns.push(Insn::new(ALU32_AND_K, dst, 0, 0, imm));
    }

    /// `dst >>= imm` (32-bit).
    fn rsh(&mut self, dst: u8, imm: i32) {
        self.insns.push(Insn::new(ALU32_RSH_K, dst, 0, 0, imm));
    }

    /// `dst = src` (32-bit).
    fn mov(&mut self, dst: u8, src: u8) {
        self.insns.push(Insn::new(ALU32_MOV_X, dst, src, 0, 0));
    }

    /// `return value`.
    fn ret(&mut self, value: i32) {
        self.insns.push(Insn::new(ALU32_MOV_K, R0, 0, 0, value));
        self.insns.push(Insn::new(JMP_EXIT, 0, 0, 0, 0));
    }

    /// A conditional jump whose target is patched by [`Builder::land`]; returns its index.
    fn jump(&mut self, code: u8, reg: u8, imm: i32) -> usize {
        self.insns.push(Insn::new(code, reg, 0, 0, imm));
        self.insns.len() - 1
    }

    /// Point the jumps at `from` to the next instruction to be emitted.
    fn land(&mut self, from: &[usize]) {
        let here = self.insns.len();
        for &at in from {
            // A rule block is at most 9 instructions: the distance always fits.
            self.insns[at].set_off((here - at - 1) as i16);
        }
    }

    /// The block of one rule: falls through to the next block if it does not decide.
    fn rule(&mut self, rule: &Rule) {
        let mut next = Vec::new();
        let checks = [
            (R_TYPE, rule.typ),
            (R_MAJOR, rule.major),
            (R_MINOR, rule.minor),
        ];
        for (reg, value) in checks {
            if let Some(v) = value {
                next.push(self.jump(JMP_JNE_K, reg, v));
            }
        }
        match (rule.allow, rule.access == ACC_ALL) {
            // Every requested bit is this rule's to decide.
            (allow, true) => self.ret(i32::from(allow)),
            // The requested bits it covers are allowed; others stay undecided.
            (true, false) => {
                self.and(R_ACCESS, !rule.access);
                next.push(self.jump(JMP_JNE_K, R_ACCESS, 0));
                self.ret(1);
            }
            // Denied if it covers any undecided requested bit.
            (false, false) => {
                self.mov(R1, R_ACCESS);
                self.and(R1, rule.access);
                next.push(self.jump(JMP_JEQ_K, R1, 0));
                self.ret(0);
            }
        }
        self.land(&next);
    }
}

#[cfg(test)]
#[path = "devices_tests.rs"]
mod tests;

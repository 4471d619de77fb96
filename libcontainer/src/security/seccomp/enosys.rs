//! runc's -ENOSYS stub: a syscall newer than every syscall the profile
//! names (for that architecture) is answered with ENOSYS instead of the
//! profile's default action, so that glibc, Go and others see "not
//! implemented" and fall back (clone3 to clone, faccessat2 to faccessat, ...)
//! instead of failing on EPERM or dying.
//!
//! The stub is a few classic-BPF instructions put in front of libseccomp's
//! program: for each architecture of the filter, load the syscall number
//! and return ENOSYS when it is above that architecture's highest named
//! syscall; anything else runs the libseccomp program unchanged.

use libseccomp::{ScmpArch, ScmpSyscall};

use super::{Action, Filter};

const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const BPF_JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const BPF_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
/// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
/// SECCOMP_RET_ERRNO.
const RET_ERRNO: u32 = 0x0005_0000;
/// x32 syscalls arrive as AUDIT_ARCH_X86_64 with this bit set: never
/// answered by the stub (they are left to the profile).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The AUDIT_ARCH_* value the kernel reports for `a`, where the stub
/// supports it (x32 shares x86_64's value and is left out).
fn audit_arch(a: ScmpArch) -> Option<u32> {
    const B64: u32 = 0x8000_0000;
    const LE: u32 = 0x4000_0000;
    Some(match a {
        ScmpArch::X8664 => 62 | B64 | LE,
        ScmpArch::X86 => 3 | LE,
        ScmpArch::Aarch64 => 183 | B64 | LE,
        ScmpArch::Arm => 40 | LE,
        ScmpArch::Ppc64Le => 21 | B64 | LE,
        ScmpArch::Ppc64 => 21 | B64,
        ScmpArch::Ppc => 20,
        ScmpArch::S390X => 22 | B64,
        ScmpArch::S390 => 22,
        ScmpArch::Riscv64 => 243 | B64 | LE,
        ScmpArch::Loongarch64 => 258 | B64 | LE,
        _ => return None,
    })
}

/// Each architecture of `f` (the native one first) with the highest
/// syscall number the profile names on it.
pub fn last_syscalls(f: &Filter) -> Vec<(u32, u32)> {
    let native = ScmpArch::native();
    let mut archs = vec![native];
    archs.extend(f.archs.iter().copied().filter(|a| *a != native));
    let mut out = Vec::new();
    for a in archs {
        let Some(token) = audit_arch(a) else { continue };
        let max = f
            .named
            .iter()
            .filter_map(|n| ScmpSyscall::from_name_by_arch(n, a).ok())
            .map(i32::from)
            .filter(|nr| *nr >= 0)
            .max();
        if let Some(max) = max {
            if !out.iter().any(|(t, _)| *t == token) {
                out.push((token, max as u32));
            }
        }
    }
    out
}

/// Does `f` get the stub? Not when its default lets everything through
/// (Allow, Log) or already answers ENOSYS, as runc.
pub fn wanted(f: &Filter) -> bool {
    !matches!(f.default, Action::Allow | Action::Log)
        && f.default != Action::Errno(libc::ENOSYS as u16)
}

fn ins(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The stub for `last` (from [`last_syscalls`]), to be put in front of
/// the libseccomp program. Empty when there is nothing to check.
pub fn stub(last: &[(u32, u32)]) -> Vec<libc::sock_filter> {
    if last.is_empty() {
        return Vec::new();
    }
    // ld arch; per arch 4 instructions; ja over the return; ret ENOSYS.
    let n = last.len();
    let enosys = 1 + 4 * n + 1;
    let program = enosys + 1;
    let mut v = vec![ins(BPF_LD_W_ABS, 0, 0, OFF_ARCH)];
    for (token, max) in last {
        // Jump offsets count from the next instruction; they fit in a u8
        // as long as there are fewer than 60 architectures (there are ~20).
        let at = v.len();
        v.push(ins(BPF_JEQ_K, 0, 3, *token));
        v.push(ins(BPF_LD_W_ABS, 0, 0, OFF_NR));
        let rel = |to: usize, from: usize| (to - from - 1) as u8;
        v.push(ins(BPF_JGE_K, rel(program, at + 2), 0, X32_SYSCALL_BIT));
        v.push(ins(
            BPF_JGT_K,
            rel(enosys, at + 3),
            rel(program, at + 3),
            *max,
        ));
    }
    v.push(ins(BPF_JA, 0, 0, 1));
    v.push(ins(BPF_RET_K, 0, 0, RET_ERRNO | libc::ENOSYS as u32));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny classic-BPF interpreter, enough for the stub's instructions.
    fn run(prog: &[libc::sock_filter], arch: u32, nr: u32) -> Option<u32> {
        let mut pc = 0;
        let mut acc = 0;
        while pc < prog.len() {
            let i = prog[pc];
            pc += 1;
            match i.code {
                BPF_LD_W_ABS => acc = if i.k == OFF_ARCH { arch } else { nr },
                BPF_JEQ_K => pc += usize::from(if acc == i.k { i.jt } else { i.jf }),
                BPF_JGE_K => pc += usize::from(if acc >= i.k { i.jt } else { i.jf }),
                BPF_JGT_K => pc += usize::from(if acc > i.k { i.jt } else { i.jf }),
                BPF_JA => pc += i.k as usize,
                BPF_RET_K => return Some(i.k),
                c => panic!("unexpected instruction {c:#x}"),
            }
        }
        None // fell through: the libseccomp program runs
    }

    #[test]
    fn stub_answers_enosys_above_the_last_named_syscall() {
        let x86_64 = audit_arch(ScmpArch::X8664).unwrap();
        let aarch64 = audit_arch(ScmpArch::Aarch64).unwrap();
        let s = stub(&[(x86_64, 300), (aarch64, 200)]);
        let enosys = Some(RET_ERRNO | libc::ENOSYS as u32);
        assert_eq!(run(&s, x86_64, 300), None);
        assert_eq!(run(&s, x86_64, 301), enosys);
        assert_eq!(run(&s, x86_64, 435), enosys);
        assert_eq!(run(&s, x86_64, 0), None);
        assert_eq!(run(&s, x86_64, X32_SYSCALL_BIT | 5), None);
        assert_eq!(run(&s, aarch64, 200), None);
        assert_eq!(run(&s, aarch64, 201), enosys);
        assert_eq!(run(&s, 3 | 0x4000_0000, 1000), None, "other arch");
        assert!(stub(&[]).is_empty());
    }

    #[test]
    fn allow_and_enosys_defaults_get_no_stub() {
        let mut f = Filter {
            default: Action::Allow,
            archs: vec![],
            flags: Default::default(),
            rules: vec![],
            skipped: vec![],
            named: vec![],
            listener: None,
        };
        assert!(!wanted(&f));
        f.default = Action::Errno(libc::ENOSYS as u16);
        assert!(!wanted(&f));
        f.default = Action::Errno(libc::EPERM as u16);
        assert!(wanted(&f));
        f.default = Action::KillProcess;
        assert!(wanted(&f));
    }
}

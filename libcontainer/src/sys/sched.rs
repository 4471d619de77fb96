//! Scheduling, I/O priority and NUMA memory policy syscalls that nix lacks.

use nix::errno::Errno;

use super::SysResult;

/// `struct sched_attr` (SCHED_ATTR_SIZE_VER1, 56 bytes).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SchedAttr {
    /// Size of this struct, filled in by [`sched_setattr`].
    pub size: u32,
    /// SCHED_* policy number.
    pub policy: u32,
    /// SCHED_FLAG_* bits.
    pub flags: u64,
    /// Nice value (SCHED_OTHER, SCHED_BATCH).
    pub nice: i32,
    /// Static priority (SCHED_FIFO, SCHED_RR).
    pub priority: u32,
    /// SCHED_DEADLINE runtime in ns.
    pub runtime: u64,
    /// SCHED_DEADLINE deadline in ns.
    pub deadline: u64,
    /// SCHED_DEADLINE period in ns.
    pub period: u64,
    /// Utilisation clamp minimum.
    pub util_min: u32,
    /// Utilisation clamp maximum.
    pub util_max: u32,
}

/// `sched_setattr(0, attr, 0)`: set the calling thread's scheduling policy.
pub fn sched_setattr(attr: &SchedAttr) -> SysResult<()> {
    let mut a = *attr;
    a.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: `a` is a valid, initialised sched_attr whose size field is
    // correct; the kernel only reads it during the call.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &a as *const SchedAttr, 0) };
    Errno::result(ret).map(drop)
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, value)`: the calling process's I/O priority.
pub fn ioprio_set(value: i32) -> SysResult<()> {
    const IOPRIO_WHO_PROCESS: i32 = 1;
    // SAFETY: plain integer arguments, no memory is passed.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    Errno::result(ret).map(drop)
}

/// `set_mempolicy(mode, nodemask, maxnode)`: the calling thread's NUMA policy.
/// `mask` holds the node bits; an empty mask passes NULL.
pub fn set_mempolicy(mode: i32, mask: &[u64]) -> SysResult<()> {
    let (ptr, maxnode) = if mask.is_empty() {
        (std::ptr::null(), 0)
    } else {
        // The kernel reads maxnode - 1 bits.
        (mask.as_ptr(), mask.len() as u64 * 64 + 1)
    };
    // SAFETY: `ptr` is NULL or points to `mask`, which holds (maxnode - 1)
    // bits and outlives the call; the kernel only reads it.
    let ret = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) };
    Errno::result(ret).map(drop)
}

//! Safe wrappers around the few `bpf(2)` commands the cgroup v2 device
//! filter needs: load a program, attach/detach it to a cgroup, list the
//! programs attached to a cgroup and open a program by id.
//!
//! `union bpf_attr` is modelled as one `#[repr(C)]` struct per command, laid
//! out like the kernel's anonymous struct for that command and zero-padded to
//! [`ATTR_SIZE`] bytes. The kernel accepts a larger `bpf_attr` than it knows
//! as long as the tail is zero, and some commands write results back into
//! fields past the ones we use (`BPF_PROG_QUERY` writes `query.revision` at
//! offset 56 on 6.x kernels, `BPF_PROG_LOAD` writes `log_true_size`), so the
//! buffer handed to the kernel must always be the full size.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use super::SysResult;

/// Bytes of every `bpf_attr` passed to the kernel: more than any kernel's
/// `sizeof(union bpf_attr)` so far (144 on 6.1), the tail stays zero.
const ATTR_SIZE: usize = 256;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;

/// `BPF_PROG_TYPE_CGROUP_DEVICE`.
pub const PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// `BPF_CGROUP_DEVICE` attach type.
pub const ATTACH_CGROUP_DEVICE: u32 = 6;
/// `BPF_F_ALLOW_MULTI`: several programs may be attached, all must allow.
pub const F_ALLOW_MULTI: u32 = 2;
/// `BPF_F_REPLACE`: atomically replace the program given as `replace`.
pub const F_REPLACE: u32 = 4;

/// One eBPF instruction (`struct bpf_insn`, 8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    /// `dst_reg:4, src_reg:4` as a C bitfield: dst in the low nibble on
    /// little-endian hosts, in the high nibble on big-endian ones.
    regs: u8,
    off: i16,
    imm: i32,
}

const _: () = assert!(std::mem::size_of::<Insn>() == 8);

impl Insn {
    /// An instruction from its opcode, registers (0..=10), offset and immediate.
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        let regs = if cfg!(target_endian = "little") {
            (dst & 0xf) | (src << 4)
        } else {
            (dst << 4) | (src & 0xf)
        };
        Insn {
            code,
            regs,
            off,
            imm,
        }
    }

    /// Change the offset: used to patch a jump once its target is known.
    pub fn set_off(&mut self, off: i16) {
        self.off = off;
    }
}

/// Decoding, for tests that interpret generated programs.
#[cfg(test)]
impl Insn {
    /// The opcode.
    pub fn code(&self) -> u8 {
        self.code
    }

    /// The destination register.
    pub fn dst(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs & 0xf
        } else {
            self.regs >> 4
        }
    }

    /// The source register.
    pub fn src(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs >> 4
        } else {
            self.regs & 0xf
        }
    }

    /// The offset (memory access or jump distance).
    pub fn off(&self) -> i16 {
        self.off
    }

    /// The immediate.
    pub fn imm(&self) -> i32 {
        self.imm
    }
}

/// The `BPF_PROG_LOAD` part of `union bpf_attr`.
#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    _zero: [u8; ATTR_SIZE - 64],
}

/// The `BPF_PROG_ATTACH` / `BPF_PROG_DETACH` part of `union bpf_attr`.
#[repr(C)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    _zero: [u8; ATTR_SIZE - 20],
}

/// The `BPF_PROG_QUERY` part of `union bpf_attr`.
#[repr(C)]
struct ProgQueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _zero: [u8; ATTR_SIZE - 28],
}

/// The `BPF_PROG_GET_FD_BY_ID` part of `union bpf_attr`.
#[repr(C)]
struct GetIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
    _zero: [u8; ATTR_SIZE - 12],
}

const _: () = {
    assert!(std::mem::size_of::<ProgLoadAttr>() == ATTR_SIZE);
    assert!(std::mem::offset_of!(ProgLoadAttr, prog_name) == 48);
    assert!(std::mem::size_of::<ProgAttachAttr>() == ATTR_SIZE);
    assert!(std::mem::size_of::<ProgQueryAttr>() == ATTR_SIZE);
    assert!(std::mem::offset_of!(ProgQueryAttr, prog_cnt) == 24);
    assert!(std::mem::size_of::<GetIdAttr>() == ATTR_SIZE);
};

/// `bpf(cmd, attr, ATTR_SIZE)`; the result is the syscall's non-negative return.
///
/// Private: callers pass one of the attr structs above, whose pointers (if any)
/// they keep alive for the call.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> SysResult<libc::c_long> {
    debug_assert_eq!(std::mem::size_of::<T>(), ATTR_SIZE);
    loop {
        // SAFETY: `attr` is an exclusively borrowed, fully initialised ATTR_SIZE-byte
        // bpf_attr that the kernel may read and write; every pointer stored in it
        // refers to memory the caller keeps alive (and writable where the kernel
        // writes) until this call returns.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                attr as *mut T as *mut libc::c_void,
                ATTR_SIZE,
            )
        };
        if ret >= 0 {
            return Ok(ret);
        }
        match Errno::last() {
            Errno::EINTR | Errno::EAGAIN => continue,
            e => return Err(e),
        }
    }
}

/// Own the fd the kernel just returned.
fn owned_fd(ret: libc::c_long) -> OwnedFd {
    // SAFETY: `ret` is a new fd the kernel returned to us (bpf(2) fds are
    // close-on-exec); nobody else owns it.
    unsafe { OwnedFd::from_raw_fd(ret as RawFd) }
}

/// `BPF_PROG_LOAD`: load `insns` as a program of `prog_type` named `name`
/// (at most 15 bytes of `[A-Za-z0-9_.]`, longer names are cut).
///
/// With `log`, the verifier writes its log (level 1) there; the kernel fails the
/// load with `ENOSPC` if the log does not fit.
pub fn prog_load(
    prog_type: u32,
    insns: &[Insn],
    license: &CStr,
    name: &str,
    log: Option<&mut [u8]>,
) -> SysResult<OwnedFd> {
    let insn_cnt = u32::try_from(insns.len()).map_err(|_| Errno::E2BIG)?;
    let mut prog_name = [0u8; 16];
    for (d, s) in prog_name.iter_mut().zip(name.bytes().take(15)) {
        *d = s;
    }
    let (log_level, log_size, log_buf) = match log {
        Some(buf) if !buf.is_empty() => (
            1,
            u32::try_from(buf.len()).unwrap_or(u32::MAX),
            buf.as_mut_ptr() as u64,
        ),
        _ => (0, 0, 0),
    };
    let mut attr = ProgLoadAttr {
        prog_type,
        insn_cnt,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level,
        log_size,
        log_buf,
        kern_version: 0,
        prog_flags: 0,
        prog_name,
        _zero: [0; ATTR_SIZE - 64],
    };
    bpf(BPF_PROG_LOAD, &mut attr).map(owned_fd)
}

/// `BPF_PROG_ATTACH`: attach `prog` to the cgroup `target` with `flags`; with
/// `replace` (and [`F_REPLACE`] in `flags`), atomically in place of that program.
pub fn prog_attach(
    target: BorrowedFd,
    prog: BorrowedFd,
    attach_type: u32,
    flags: u32,
    replace: Option<BorrowedFd>,
) -> SysResult<()> {
    let mut attr = ProgAttachAttr {
        target_fd: target.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        attach_flags: flags,
        replace_bpf_fd: replace.map_or(0, |fd| fd.as_raw_fd() as u32),
        _zero: [0; ATTR_SIZE - 20],
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(drop)
}

/// `BPF_PROG_DETACH`: detach `prog` from the cgroup `target`.
pub fn prog_detach(target: BorrowedFd, prog: BorrowedFd, attach_type: u32) -> SysResult<()> {
    let mut attr = ProgAttachAttr {
        target_fd: target.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        attach_flags: 0,
        replace_bpf_fd: 0,
        _zero: [0; ATTR_SIZE - 20],
    };
    bpf(BPF_PROG_DETACH, &mut attr).map(drop)
}

/// The programs attached directly (not inherited) to a cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// The flags they were attached with (`BPF_F_ALLOW_*`).
    pub flags: u32,
    /// Their ids, in the order the kernel runs them.
    pub ids: Vec<u32>,
}

/// `BPF_PROG_QUERY`: the programs of `attach_type` attached to the cgroup `target`.
pub fn prog_query(target: BorrowedFd, attach_type: u32) -> SysResult<Attached> {
    // 64 is the kernel's limit of programs per cgroup and attach type; should it
    // grow, ENOSPC tells the real count and we retry with room for it.
    let mut ids = vec![0u32; 64];
    for _ in 0..10 {
        let mut attr = ProgQueryAttr {
            target_fd: target.as_raw_fd() as u32,
            attach_type,
            query_flags: 0,
            attach_flags: 0,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            _zero: [0; ATTR_SIZE - 28],
        };
        match bpf(BPF_PROG_QUERY, &mut attr) {
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(Attached {
                    flags: attr.attach_flags,
                    ids,
                });
            }
            Err(Errno::ENOSPC) => ids.resize(attr.prog_cnt as usize, 0),
            Err(e) => return Err(e),
        }
    }
    Err(Errno::EAGAIN)
}

/// `BPF_PROG_GET_FD_BY_ID`: open the loaded program with this id.
pub fn prog_get_fd_by_id(id: u32) -> SysResult<OwnedFd> {
    let mut attr = GetIdAttr {
        prog_id: id,
        next_id: 0,
        open_flags: 0,
        _zero: [0; ATTR_SIZE - 12],
    };
    bpf(BPF_PROG_GET_FD_BY_ID, &mut attr).map(owned_fd)
}

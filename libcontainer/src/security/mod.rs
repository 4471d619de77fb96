//! Process hardening: capabilities, no_new_privs, seccomp and the sealed runtime binary.

pub mod caps;
pub mod exeseal;
pub mod lsm;
pub mod seccomp;

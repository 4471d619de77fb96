//! Process hardening: capabilities, no_new_privs and the sealed runtime binary.

pub mod caps;
pub mod exeseal;
pub mod lsm;

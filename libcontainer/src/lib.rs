//! libcontainer: skiff's container library.
//!
//! It takes an OCI bundle (runtime-spec 1.2) through its whole lifecycle:
//! [`container::create`], [`container::start`], [`container::kill`],
//! [`container::delete`] and [`container::exec`]. The `skiff` CLI and the
//! containerd shim are thin callers of this API.

pub mod cgroups;
pub mod checkpoint;
pub mod config;
pub mod console;
pub mod container;
pub mod error;
pub mod features;
pub mod fuzzing;
pub mod hooks;
pub mod host_report;
pub mod idmap;
mod netdev;
pub mod procfs;
mod resctrl;
mod resolve;
pub mod signal;
pub mod timefmt;
pub mod user;

mod process;
mod rootfs;
mod security;
mod sys;

pub use error::{Error, Result};
pub use security::exeseal;
pub use security::seccomp;
/// `pidfd_open(2)`, for callers that wait on a process they did not fork.
pub use sys::pidfd_open;

/// The runtime-spec version skiff implements.
pub const OCI_VERSION: &str = "1.2.0";

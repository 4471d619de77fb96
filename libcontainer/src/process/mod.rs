//! The processes skiff forks into containers: init (`create`) and exec.

pub mod attrs;
pub mod channel;
pub mod exec;
pub mod init;
pub mod setup;
pub mod tty;

//! The one error type of libcontainer: every variant names the file, field,
//! container or syscall step that failed, so the CLI can print one clear line.

use std::path::PathBuf;

use nix::errno::Errno;

/// Everything that can go wrong while building or managing a container.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read, written or created.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// config.json could not be parsed (the message carries line and column).
    #[error("{path}: {msg}")]
    Parse {
        /// The file that failed to parse.
        path: PathBuf,
        /// What was wrong, with the position.
        msg: String,
    },
    /// A config field has a value skiff cannot use.
    #[error("{field}: {msg}")]
    Invalid {
        /// The field, as a JSON path such as `linux.namespaces[2].type`.
        field: String,
        /// What is wrong with it.
        msg: String,
    },
    /// A config field asks for something skiff cannot provide on this host.
    #[error("{field}: {msg}")]
    Unsupported {
        /// The field, as a JSON path.
        field: String,
        /// Why it is not supported.
        msg: String,
    },
    /// The container id is not valid.
    #[error(
        "invalid container id {0:?}: only [A-Za-z0-9_+.-] is allowed, and not \".\" or \"..\""
    )]
    BadId(String),
    /// No container with this id.
    #[error("container {0} does not exist")]
    NotExist(String),
    /// A container with this id exists already.
    #[error("container {0} already exists")]
    Exists(String),
    /// The operation is not allowed in the container's current status.
    #[error("container {id} is {status}: {msg}")]
    WrongStatus {
        /// The container id.
        id: String,
        /// Its current status.
        status: String,
        /// What could not be done.
        msg: String,
    },
    /// A syscall failed at a named step.
    #[error("{step}: {source}")]
    Sys {
        /// What skiff was doing, e.g. `mount /proc`.
        step: String,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// A hook failed or timed out.
    #[error("{kind} hook {path}: {msg}")]
    Hook {
        /// The hook kind, e.g. `createRuntime`.
        kind: &'static str,
        /// The hook binary.
        path: PathBuf,
        /// What happened.
        msg: String,
    },
    /// A signal name or number that does not exist.
    #[error("unknown signal {0:?}")]
    BadSignal(String),
    /// A user or group that cannot be resolved in the container.
    #[error("unable to find {what} {name}: no matching entry in the container's {file}")]
    NoUser {
        /// `user` or `group`.
        what: &'static str,
        /// The name asked for.
        name: String,
        /// `/etc/passwd` or `/etc/group`.
        file: &'static str,
    },
    /// The container's init or exec process reported an error.
    #[error("{0}")]
    Child(String),
    /// The state file of a container is unreadable or corrupt.
    #[error("container {id}: state {path} is corrupt: {msg}")]
    BadState {
        /// The container id.
        id: String,
        /// The state file.
        path: PathBuf,
        /// What was wrong.
        msg: String,
    },
    /// CRIU is missing, too old, or failed a checkpoint or restore.
    #[error("criu {op}: {msg}")]
    Criu {
        /// What was asked of it (version, dump, pre-dump, restore).
        op: &'static str,
        /// What went wrong, with its log file where there is one.
        msg: String,
    },
}

/// libcontainer's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Attach a step name to a failed syscall.
pub trait SysContext<T> {
    /// Turn an errno into [`Error::Sys`] naming `step`.
    fn step(self, step: impl FnOnce() -> String) -> Result<T>;
}

impl<T> SysContext<T> for std::result::Result<T, Errno> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Sys {
            step: step(),
            source,
        })
    }
}

/// Attach a path to a failed I/O operation.
pub trait IoContext<T> {
    /// Turn an I/O error into [`Error::Io`] naming `path`.
    fn path(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn path(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.into(),
            source,
        })
    }
}

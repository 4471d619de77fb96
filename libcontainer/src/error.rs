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

/// `err` and its causes on one line, `outer: cause: ...`, as runc prints an
/// error. A cause is left out when the error before it already ends with its
/// text: [`Error`]'s messages carry their errno or I/O error, which is also
/// their source, and `{:#}` of an `anyhow::Error` printed it twice.
pub fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut prev = line.clone();
    let mut cause = err.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !prev.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        prev = text;
        cause = e.source();
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context around an error, as anyhow's `.context()` makes one.
    #[derive(Debug, thiserror::Error)]
    #[error("create container c1")]
    struct Ctx(#[source] Error);

    #[test]
    fn one_line_prints_each_cause_once() {
        let e = Ctx(Error::Sys {
            step: "send on channel".into(),
            source: Errno::EMSGSIZE,
        });
        assert_eq!(
            one_line(&e),
            "create container c1: send on channel: EMSGSIZE: Message too long"
        );
        let e = Ctx(Error::Io {
            path: "/b/config.json".into(),
            source: std::io::Error::other("two\nlines"),
        });
        assert_eq!(
            one_line(&e),
            "create container c1: /b/config.json: two lines"
        );
        // A cause that its error does not repeat is printed.
        assert_eq!(
            one_line(&Ctx(Error::Child("x".into()))),
            "create container c1: x"
        );
    }
}

//! One process of a task (the container's init or an exec): an explicit
//! state machine (created, running, paused, stopped, deleted) whose illegal
//! transitions are gRPC FailedPrecondition errors, its exit and its io.

use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::ttrpc::{self, Code};
use containerd_shim::protos::types::task::Status as ProtoStatus;

use crate::io::Stdio;

/// Where a process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Created, not started (an init waiting on its exec fifo, or an exec
    /// that is only recorded).
    Created,
    /// Running.
    Running,
    /// Frozen (init only: the whole container).
    Paused,
    /// Exited; the exit status is known.
    Stopped,
    /// Deleted: gone from the shim's point of view.
    Deleted,
}

impl Status {
    /// The containerd status.
    pub fn to_proto(self) -> ProtoStatus {
        match self {
            Status::Created => ProtoStatus::CREATED,
            Status::Running => ProtoStatus::RUNNING,
            Status::Paused => ProtoStatus::PAUSED,
            Status::Stopped | Status::Deleted => ProtoStatus::STOPPED,
        }
    }

    /// May a process go from `self` to `to`?
    pub fn can_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Created, Running)
                | (Created, Stopped)
                | (Created, Deleted)
                | (Running, Paused)
                | (Running, Stopped)
                | (Paused, Running)
                | (Paused, Stopped)
                | (Stopped, Deleted)
        )
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
            Status::Deleted => "deleted",
        };
        f.write_str(s)
    }
}

/// A gRPC error with `code`.
pub fn err(code: Code, msg: impl Into<String>) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, msg.into()))
}

/// How a process ended.
#[derive(Debug, Clone)]
pub struct Exit {
    /// Exit status as a shell shows it (128+N for signal N).
    pub code: u32,
    /// When the shim reaped it.
    pub at: Timestamp,
}

/// The io paths containerd gave for a process.
#[derive(Debug, Clone, Default)]
pub struct IoPaths {
    /// stdin fifo (or empty).
    pub stdin: String,
    /// stdout fifo, `binary://` or `file://` URI (or empty).
    pub stdout: String,
    /// stderr, like stdout.
    pub stderr: String,
    /// Whether the process has a terminal.
    pub terminal: bool,
}

/// One process.
#[derive(Debug)]
pub struct Process {
    /// Host pid (0 before an exec is started).
    pub pid: i32,
    /// Its state.
    pub status: Status,
    /// Its exit, once stopped.
    pub exit: Option<Exit>,
    /// The io it was given.
    pub paths: IoPaths,
    /// The shim's side of its io.
    pub stdio: Option<Stdio>,
    /// An exec's process spec, until it is started.
    pub spec: Option<oci_spec::runtime::Process>,
}

impl Process {
    /// A process in state `Created`.
    pub fn new(paths: IoPaths) -> Process {
        Process {
            pid: 0,
            status: Status::Created,
            exit: None,
            paths,
            stdio: None,
            spec: None,
        }
    }

    /// Move to `to`, or a FailedPrecondition error naming both states.
    pub fn transition(&mut self, to: Status) -> ttrpc::Result<()> {
        if !self.status.can_become(to) {
            return Err(err(
                Code::FAILED_PRECONDITION,
                format!("process is {}: cannot become {to}", self.status),
            ));
        }
        self.status = to;
        Ok(())
    }

    /// Record the exit (from any live state).
    pub fn exited(&mut self, code: u32, at: Timestamp) {
        if matches!(self.status, Status::Stopped | Status::Deleted) {
            return;
        }
        self.status = Status::Stopped;
        self.exit = Some(Exit { code, at });
        if let Some(io) = &mut self.stdio {
            io.close_stdin();
        }
    }

    /// Exit status and time, zero while running.
    pub fn exit_pair(&self) -> (u32, Timestamp) {
        self.exit
            .as_ref()
            .map(|e| (e.code, e.at.clone()))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_transitions() {
        let mut p = Process::new(IoPaths::default());
        p.transition(Status::Running).unwrap();
        p.transition(Status::Paused).unwrap();
        p.transition(Status::Running).unwrap();
        p.exited(137, Timestamp::default());
        assert_eq!(p.status, Status::Stopped);
        assert_eq!(p.exit_pair().0, 137);
        p.transition(Status::Deleted).unwrap();
    }

    #[test]
    fn illegal_transitions_are_failed_precondition() {
        let mut p = Process::new(IoPaths::default());
        let e = p.transition(Status::Paused).unwrap_err();
        match e {
            ttrpc::Error::RpcStatus(s) => {
                assert_eq!(s.code(), Code::FAILED_PRECONDITION);
                assert!(s.message().contains("created"), "{}", s.message());
            }
            other => panic!("unexpected {other:?}"),
        }
        p.exited(0, Timestamp::default());
        assert!(p.transition(Status::Running).is_err());
        assert!(p.transition(Status::Paused).is_err());
        p.transition(Status::Deleted).unwrap();
        assert!(p.transition(Status::Deleted).is_err());
    }

    #[test]
    fn exit_is_recorded_once() {
        let mut p = Process::new(IoPaths::default());
        p.transition(Status::Running).unwrap();
        p.exited(1, Timestamp::default());
        p.exited(2, Timestamp::default());
        assert_eq!(p.exit_pair().0, 1);
        assert_eq!(p.status.to_proto(), ProtoStatus::STOPPED);
    }
}

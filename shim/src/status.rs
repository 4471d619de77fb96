//! Errors as the gRPC statuses containerd reads: the code from the error's
//! kind, the message on one line.

use containerd_shim::protos::ttrpc::{self, Code};

use crate::helper;
use crate::process::err;

/// libcontainer and io errors as gRPC statuses.
pub(crate) fn to_status(e: anyhow::Error) -> ttrpc::Error {
    let code = if let Some(f) = e.downcast_ref::<helper::Failed>() {
        f.code
    } else {
        e.downcast_ref::<libcontainer::Error>()
            .map_or(Code::UNKNOWN, helper::code_of)
    };
    err(code, libcontainer::error::one_line(e.as_ref()))
}

/// A libcontainer error as a gRPC status.
pub(crate) fn lc(e: libcontainer::Error) -> ttrpc::Error {
    to_status(e.into())
}

/// NOT_FOUND naming `what`.
pub(crate) fn not_found(what: &str) -> ttrpc::Error {
    err(Code::NOT_FOUND, format!("{what}: not found"))
}

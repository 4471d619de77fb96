//! `containerd-shim-skiff-v2`: the containerd shim v2 for skiff. containerd
//! runs it as runtime type `io.containerd.skiff.v2`. It runs containers
//! through libcontainer in-process; one long-lived shim serves every
//! container of a pod.

mod bootstrap;
mod container;
mod events;
mod exits;
mod helper;
mod io;
mod logbin;
mod logfifo;
mod oom;
mod oom_v1;
mod options;
mod process;
mod serve;
mod service;
mod stats;
mod stats_v1;

use std::io::Write;

use anyhow::Result;
use containerd_shim::protos::protobuf::Message;
use containerd_shim::protos::types::introspection::RuntimeInfo;

/// The runtime type containerd knows this shim by.
const RUNTIME: &str = "io.containerd.skiff.v2";

fn run() -> Result<()> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let flags = containerd_shim::parse(&args[1..]).map_err(|e| anyhow::anyhow!("{e}"))?;
    if flags.version {
        println!("containerd-shim-skiff-v2 {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    if flags.info {
        let info = RuntimeInfo {
            name: RUNTIME.into(),
            ..Default::default()
        };
        std::io::stdout().write_all(&info.write_to_bytes()?)?;
        return Ok(());
    }
    if flags.namespace.is_empty() {
        anyhow::bail!("-namespace is required");
    }
    match flags.action.as_str() {
        "start" => bootstrap::start(&flags),
        "delete" => bootstrap::delete(&flags),
        _ => {
            // Logs (and panics) go to containerd's `log` fifo in the bundle.
            logfifo::init(flags.debug);
            std::panic::set_hook(Box::new(|p| log::error!("skiff shim panic: {p}")));
            // CVE-2019-5736: every container process is forked from the
            // shim, so the shim runs from a read-only sealed copy of itself
            // (one re-exec); /proc/PID/exe can never be opened for writing.
            let r = libcontainer::exeseal::ensure_sealed()
                .map_err(anyhow::Error::from)
                .and_then(|()| serve::serve(&flags));
            if let Err(e) = &r {
                log::error!("skiff shim: {e:#}");
            }
            r
        }
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("containerd-shim-skiff-v2: {e:#}");
        std::process::exit(1);
    }
}

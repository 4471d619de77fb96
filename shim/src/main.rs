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
mod shutdown;
mod stats;
mod stats_v1;
mod status;

use std::io::Write;

use anyhow::Result;
use containerd_shim::protos::protobuf::Message;
use containerd_shim::protos::types::introspection::{RuntimeInfo, RuntimeVersion};

/// The runtime type containerd knows this shim by.
const RUNTIME: &str = "io.containerd.skiff.v2";
/// The type URL containerd registers runtime-spec's Features under.
const FEATURES_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/features/Features";

/// What `-info` prints: the name, version and features (runc's
/// `features` JSON, as an Any of runtime-spec's type). containerd 2.x's CRI
/// enables recursive read-only mounts and user namespaces for a handler
/// only when its features say so.
fn runtime_info() -> Result<RuntimeInfo> {
    let features = containerd_shim::protos::protobuf::well_known_types::any::Any {
        type_url: FEATURES_TYPE.into(),
        value: serde_json::to_vec(&libcontainer::features::features())?,
        ..Default::default()
    };
    let version = RuntimeVersion {
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    };
    Ok(RuntimeInfo {
        name: RUNTIME.into(),
        version: Some(version).into(),
        features: Some(features).into(),
        ..Default::default()
    })
}

fn run() -> Result<()> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let flags = containerd_shim::parse(&args[1..]).map_err(|e| anyhow::anyhow!("{e}"))?;
    if flags.version {
        println!("containerd-shim-skiff-v2 {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    if flags.info {
        let info = runtime_info()?;
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
                log::error!("skiff shim: {}", libcontainer::error::one_line(e.as_ref()));
            }
            r
        }
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!(
            "containerd-shim-skiff-v2: {}",
            libcontainer::error::one_line(e.as_ref())
        );
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_carries_the_features_containerd_reads() {
        let info = runtime_info().unwrap();
        assert_eq!(info.name, RUNTIME);
        let any = info.features.as_ref().unwrap();
        assert_eq!(
            any.type_url,
            "types.containerd.io/opencontainers/runtime-spec/1/features/Features"
        );
        let f: serde_json::Value = serde_json::from_slice(&any.value).unwrap();
        let opts = f["mountOptions"].as_array().unwrap();
        assert!(opts.iter().any(|o| o == "rro"), "{f}");
        // The bytes containerd decodes are the protobuf of all of it.
        let bytes = info.write_to_bytes().unwrap();
        let back = RuntimeInfo::parse_from_bytes(&bytes).unwrap();
        assert_eq!(back.features.value, any.value);
    }
}

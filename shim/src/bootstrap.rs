//! The short-lived shim invocations: `start` (find or spawn the long-lived
//! shim of the container's group and print its address) and `delete`
//! (clean up after a shim that died).

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use containerd_shim::protos::bootstrap_api::{BootstrapParams, BootstrapResult};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::protobuf::{Message, MessageField};
use containerd_shim::{DeleteResponse, Flags};
use libcontainer::container::{self, StateRoot};

use crate::options::Options;

/// Annotations that put a container in its pod's shim.
const GROUP_ANNOTATIONS: [&str; 2] = [
    "io.kubernetes.cri.sandbox-id",
    "io.containerd.runc.v2.group",
];

/// The shim group of the container whose bundle is `bundle`: its sandbox
/// id or group annotation, else its own id.
pub fn group_of(bundle: &Path, id: &str) -> String {
    let ann = std::fs::read_to_string(bundle.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .map(|v| v["annotations"].clone())
        .unwrap_or_default();
    GROUP_ANNOTATIONS
        .iter()
        .find_map(|k| ann[*k].as_str().filter(|s| !s.is_empty()))
        .unwrap_or(id)
        .to_string()
}

fn bundle_dir(flags: &Flags) -> Result<PathBuf> {
    if flags.bundle.is_empty() {
        std::env::current_dir().context("current dir")
    } else {
        Ok(PathBuf::from(&flags.bundle))
    }
}

/// `start`: print the address of the group's shim, spawning it if needed.
pub fn start(flags: &Flags) -> Result<()> {
    let mut input = Vec::new();
    let stdin = std::io::stdin();
    if !std::io::IsTerminal::is_terminal(&stdin) {
        stdin.lock().read_to_end(&mut input).context("read stdin")?;
    }
    // containerd 2.3+ sends BootstrapParams; older ones maybe runc options.
    let params = BootstrapParams::parse_from_bytes(&input)
        .ok()
        .filter(|p| p.instance_id == flags.id && p.namespace == flags.namespace);
    let opts = match &params {
        Some(_) => Options::default(),
        None => Any::parse_from_bytes(&input)
            .ok()
            .and_then(|a| Options::from_any(Some(&a)).ok())
            .unwrap_or_default(),
    };
    let ttrpc_address = match &params {
        Some(p) => p.containerd_ttrpc_address.clone(),
        None => std::env::var("TTRPC_ADDRESS").unwrap_or_default(),
    };
    let bundle = bundle_dir(flags)?;
    let group = group_of(&bundle, &flags.id);
    let address = containerd_shim::socket_address(&flags.address, &flags.namespace, &group);
    let path = address.trim_start_matches("unix://").to_string();
    if let Some(listener) = bind(&path)? {
        let pid = spawn(flags, &bundle, listener, &ttrpc_address)?;
        if let Err(e) = containerd_shim::cgroup::set_cgroup_and_oom_score(pid, &opts.shim_cgroup) {
            anyhow::bail!("ShimCgroup {:?}: {e}", opts.shim_cgroup);
        }
        let _ = std::fs::write(bundle.join("shim.pid"), pid.to_string());
    }
    std::fs::write(bundle.join("address"), &address).context("write address file")?;
    let mut out = std::io::stdout().lock();
    match params {
        Some(_) => {
            let r = BootstrapResult {
                version: 3,
                address,
                protocol: "ttrpc".into(),
                ..Default::default()
            };
            out.write_all(&r.write_to_bytes()?)?;
        }
        None => out.write_all(address.as_bytes())?,
    }
    out.flush()?;
    Ok(())
}

/// Bind the group's socket, or `None` when a live shim already serves it.
fn bind(path: &str) -> Result<Option<UnixListener>> {
    if let Some(dir) = Path::new(path).parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("mkdir {}", dir.display()))?;
    }
    match UnixListener::bind(path) {
        Ok(l) => return Ok(Some(l)),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {}
        Err(e) => return Err(e).with_context(|| format!("bind {path}")),
    }
    if UnixStream::connect(path).is_ok() {
        return Ok(None);
    }
    // A dead shim's socket: take it over.
    std::fs::remove_file(path).with_context(|| format!("remove stale {path}"))?;
    UnixListener::bind(path)
        .map(Some)
        .with_context(|| format!("bind {path}"))
}

/// Start the long-lived shim with the listening socket as its stdin, in its
/// own process group (so signals to containerd's group miss it).
fn spawn(flags: &Flags, bundle: &Path, listener: UnixListener, ttrpc: &str) -> Result<u32> {
    let exe = std::env::current_exe().context("shim executable")?;
    let mut cmd = Command::new(exe);
    cmd.current_dir(bundle)
        .args([
            "-namespace",
            &flags.namespace,
            "-id",
            &flags.id,
            "-address",
            &flags.address,
        ])
        .env("TTRPC_ADDRESS", ttrpc)
        // One malloc arena for all the shim's threads: they are mostly idle,
        // and per-thread arenas cost resident memory.
        .env("MALLOC_ARENA_MAX", "1")
        .stdin(Stdio::from(OwnedFd::from(listener)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    if !flags.publish_binary.is_empty() {
        cmd.args(["-publish-binary", &flags.publish_binary]);
    }
    if flags.debug {
        cmd.arg("-debug");
    }
    let child = cmd.spawn().context("spawn the shim")?;
    Ok(child.id())
}

/// `delete`: the shim of this task died. Kill and delete the container,
/// unmount its rootfs and report it as killed.
pub fn delete(flags: &Flags) -> Result<()> {
    let bundle = bundle_dir(flags)?;
    let opts = Options::load(&bundle);
    let mut pid = 0;
    if let Ok(root) = StateRoot::open(&opts.state_root(&flags.namespace)) {
        if let Ok((s, _)) = container::load(&root, &flags.id) {
            pid = s.pid as u32;
        }
        if let Err(e) = container::delete(&root, &flags.id, true) {
            log::warn!("delete {}: {e}", flags.id);
        }
    }
    crate::container::unmount_rootfs(&bundle)?;
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let resp = DeleteResponse {
        pid,
        exit_status: 128 + libc::SIGKILL as u32,
        exited_at: MessageField::some(Timestamp {
            seconds: d.as_secs() as i64,
            nanos: d.subsec_nanos() as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&resp.write_to_bytes()?)?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_sandbox_annotation() {
        let dir = std::env::temp_dir().join(format!("skiff-grp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(group_of(&dir, "c1"), "c1");
        std::fs::write(
            dir.join("config.json"),
            r#"{"annotations":{"io.kubernetes.cri.sandbox-id":"pod1"}}"#,
        )
        .unwrap();
        assert_eq!(group_of(&dir, "c1"), "pod1");
        std::fs::write(
            dir.join("config.json"),
            r#"{"annotations":{"io.containerd.runc.v2.group":"g"}}"#,
        )
        .unwrap();
        assert_eq!(group_of(&dir, "c1"), "g");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

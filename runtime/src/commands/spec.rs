//! `spec`: write runc's default config.json (or its rootless variant).

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

const CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// The config `runc spec` writes, with skiff's spec version and hostname.
/// Like runc, it has a cgroup namespace only on a pure cgroup v2 host
/// (`cgroup_ns`).
fn default_spec(cgroup_ns: bool) -> Value {
    let mut spec = json!({
        "ociVersion": libcontainer::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": CAPS, "effective": CAPS, "permitted": CAPS, "ambient": CAPS},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "skiff",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                            "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    if !cgroup_ns {
        if let Some(ns) = spec["linux"]["namespaces"].as_array_mut() {
            ns.retain(|n| n["type"] != "cgroup");
        }
    }
    spec
}

/// runc's rootless changes: a user namespace mapping the caller, no network
/// namespace, /sys bound instead of mounted, no uid=/gid= mount options,
/// no resources (runc's specconv.ToRootless).
fn make_rootless(spec: &mut Value) {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let linux = &mut spec["linux"];
    if let Some(ns) = linux["namespaces"].as_array_mut() {
        ns.retain(|n| n["type"] != "network" && n["type"] != "user");
        ns.push(json!({"type": "user"}));
    }
    linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    if let Some(l) = linux.as_object_mut() {
        l.remove("resources");
    }
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        for m in mounts.iter_mut() {
            if m["destination"] == "/sys" {
                *m = json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            } else if let Some(opts) = m["options"].as_array_mut() {
                opts.retain(|o| {
                    !o.as_str()
                        .is_some_and(|s| s.starts_with("gid=") || s.starts_with("uid="))
                });
            }
        }
    }
}

/// `skiff spec`.
pub fn spec(bundle: &Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("{}: file exists; remove it first", path.display());
    }
    let mut spec = default_spec(libcontainer::cgroups::v2::is_v2_host());
    if rootless {
        make_rootless(&mut spec);
    }
    let text = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_rootless_specs_parse() {
        let s: oci_spec::runtime::Spec = serde_json::from_value(default_spec(true)).unwrap();
        assert_eq!(s.hostname().as_deref(), Some("skiff"));
        let cgroup_ns = |v: &Value| {
            v["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["type"] == "cgroup")
        };
        assert!(cgroup_ns(&default_spec(true)));
        assert!(
            !cgroup_ns(&default_spec(false)),
            "runc adds it on cgroup v2 only"
        );
        let mut r = default_spec(true);
        make_rootless(&mut r);
        let r: oci_spec::runtime::Spec = serde_json::from_value(r).unwrap();
        let linux = r.linux().as_ref().unwrap();
        assert_eq!(linux.uid_mappings().as_ref().unwrap().len(), 1);
        assert!(linux.resources().is_none());
        let ns = linux.namespaces().as_ref().unwrap();
        assert!(ns
            .iter()
            .all(|n| n.typ() != oci_spec::runtime::LinuxNamespaceType::Network));
        let users = ns
            .iter()
            .filter(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
            .count();
        assert_eq!(users, 1);
        let m = &linux.uid_mappings().as_ref().unwrap()[0];
        let euid = nix::unistd::geteuid().as_raw();
        assert_eq!((m.container_id(), m.host_id(), m.size()), (0, euid, 1));
        for mount in r.mounts().as_ref().unwrap() {
            let opts = mount.options().clone().unwrap_or_default();
            assert!(
                opts.iter()
                    .all(|o| !o.starts_with("gid=") && !o.starts_with("uid=")),
                "{mount:?}"
            );
            if mount.destination() == std::path::Path::new("/sys") {
                assert_eq!(mount.typ().as_deref(), Some("none"));
                assert!(opts.contains(&"rbind".to_string()));
            }
        }
    }
}

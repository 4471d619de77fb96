//! What `skiff features` reports: the runtime-spec features.md document,
//! claiming only what this build implements.

use serde_json::{json, Value};

use crate::config::known_options;

/// The features document.
pub fn features() -> Value {
    let mut caps: Vec<String> = caps::runtime::thread_all_supported()
        .iter()
        .map(|c| c.to_string())
        .collect();
    caps.sort();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": known_options(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": { "v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": true },
            "seccomp": crate::security::seccomp::features(),
            // What this host can use: AppArmor needs the LSM enabled, Intel
            // RDT needs resctrl mounted; SELinux labels are applied when
            // SELinux is enabled and ignored with a warning otherwise.
            "apparmor": { "enabled": crate::security::lsm::apparmor_enabled() },
            "selinux": { "enabled": true },
            "intelRdt": { "enabled": crate::resctrl::available() },
            "mountExtensions": { "idmap": { "enabled": true } }
        },
        "annotations": {
            "io.github.skiff.version": env!("CARGO_PKG_VERSION"),
            "io.github.skiff.cgroup.driver": cgroup_driver(),
            "io.github.skiff.cgroup.controllers": cgroup_controllers().join(" ")
        }
    })
}

/// The cgroup driver skiff uses on this host: `v2`, `v1` or `none`.
fn cgroup_driver() -> &'static str {
    if crate::cgroups::v2::is_v2_host() {
        "v2"
    } else if crate::cgroups::v1::is_v1_host() {
        "v1"
    } else {
        "none"
    }
}

/// The controllers that driver has here.
fn cgroup_controllers() -> Vec<String> {
    if crate::cgroups::v1::is_v1_host() {
        crate::cgroups::v1::available_controllers()
    } else {
        crate::cgroups::v2::available_controllers()
    }
}

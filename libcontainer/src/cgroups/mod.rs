//! The seam for the cgroup v2 manager.
//!
//! Until the manager exists, skiff runs containers in its own cgroup and
//! refuses any config that asks for a resource limit, so nothing is silently
//! left unenforced.

use oci_spec::runtime::LinuxResources;

use crate::error::{Error, Result};

/// Fail with a clear error if `r` asks for any limit that needs a cgroup.
///
/// Device rules are the one exception: runc's and podman's default configs
/// always carry a deny-all rule, and the devices a container can open are
/// already limited to the nodes skiff creates in its /dev.
pub fn check_resources(r: &LinuxResources) -> Result<()> {
    let asks = [
        ("memory", r.memory().is_some()),
        ("cpu", r.cpu().is_some()),
        ("pids", r.pids().is_some()),
        ("blockIO", r.block_io().is_some()),
        (
            "hugepageLimits",
            r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()),
        ),
        ("network", r.network().is_some()),
        ("rdma", r.rdma().as_ref().is_some_and(|h| !h.is_empty())),
        (
            "unified",
            r.unified().as_ref().is_some_and(|h| !h.is_empty()),
        ),
    ];
    if let Some((name, _)) = asks.iter().find(|(_, set)| *set) {
        return Err(Error::Unsupported {
            field: format!("linux.resources.{name}"),
            msg: "resource limits need the cgroup v2 manager, which this skiff build does not have yet".into(),
        });
    }
    if r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        tracing::debug!(
            "linux.resources.devices: no device cgroup yet; access is limited to the nodes in /dev"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_refused_devices_are_not() {
        let r: LinuxResources =
            serde_json::from_str(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#).unwrap();
        assert!(check_resources(&r).is_ok());
        let r: LinuxResources = serde_json::from_str(r#"{"pids":{"limit":10}}"#).unwrap();
        let e = check_resources(&r).unwrap_err().to_string();
        assert!(e.starts_with("linux.resources.pids:"), "{e}");
    }
}

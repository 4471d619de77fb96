//! Resource control: the cgroup v2 manager and the checks made before a
//! container is built.

pub mod systemd;
pub mod v2;

use oci_spec::runtime::{LinuxResources, Spec};

pub use v2::Cgroup;

use crate::error::{Error, Result};

/// The controllers each `linux.resources` field needs.
fn wanted(r: &LinuxResources) -> Vec<(&'static str, &'static str)> {
    let mut w = Vec::new();
    if let Some(m) = r.memory() {
        if m.limit().is_some() || m.reservation().is_some() || m.swap().is_some() {
            w.push(("memory", "memory"));
        }
    }
    if let Some(c) = r.cpu() {
        if c.shares().is_some()
            || c.quota().is_some()
            || c.period().is_some()
            || c.burst().is_some()
            || c.idle().is_some()
        {
            w.push(("cpu", "cpu"));
        }
        if c.cpus().as_deref().is_some_and(|s| !s.is_empty())
            || c.mems().as_deref().is_some_and(|s| !s.is_empty())
        {
            w.push(("cpu", "cpuset"));
        }
    }
    if r.pids().is_some() {
        w.push(("pids", "pids"));
    }
    if r.block_io().is_some() {
        w.push(("blockIO", "io"));
    }
    if r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
        w.push(("hugepageLimits", "hugetlb"));
    }
    if r.rdma().as_ref().is_some_and(|h| !h.is_empty()) {
        w.push(("rdma", "rdma"));
    }
    w
}

/// Fail with a clear error naming the field and the controller if `r`
/// asks for a limit this host cannot enforce (no cgroup v2, or the
/// controller is missing). Device rules are always accepted: on a host
/// without cgroup v2 the container's /dev only holds the nodes skiff made.
pub fn check_resources(r: &LinuxResources) -> Result<()> {
    let available = v2::available_controllers();
    for (field, ctrl) in wanted(r) {
        if !available.iter().any(|a| a == ctrl) {
            let why = if v2::is_v2_host() {
                "is not enabled on this host"
            } else {
                "needs cgroup v2, which this host does not have"
            };
            return Err(Error::Unsupported {
                field: format!("linux.resources.{field}"),
                msg: format!("the {ctrl} controller {why}"),
            });
        }
    }
    for k in r.unified().iter().flat_map(|u| u.keys()) {
        if !v2::is_v2_host() {
            return Err(Error::Unsupported {
                field: format!("linux.resources.unified[{k:?}]"),
                msg: "needs cgroup v2, which this host does not have".into(),
            });
        }
        v2::check_unified(k, &available)?;
    }
    Ok(())
}

/// How a new container gets its cgroup.
#[derive(Debug)]
pub enum Placement {
    /// No cgroup v2 here: the container stays in skiff's own cgroup.
    None,
    /// The fs driver: this directory, made before the clone.
    Fs(Cgroup),
    /// The systemd driver (`--systemd-cgroup`): a transient scope made
    /// for the init's pid right after the clone.
    Systemd(systemd::Scope),
}

impl Placement {
    /// Undo a placement after a failed create (nothing if not made yet).
    pub fn undo(&self) {
        match self {
            Placement::None => {}
            Placement::Fs(c) => {
                let _ = c.destroy();
            }
            Placement::Systemd(s) => {
                let _ = s.stop();
                if let Ok(c) = s.cgroup() {
                    let _ = c.destroy();
                }
            }
        }
    }
}

/// The placement of a new container: on a cgroup v2 host always (runc's
/// default path when none is given), through systemd with `systemd`.
pub fn for_container(spec: &Spec, id: &str, systemd: bool) -> Result<Placement> {
    if !v2::is_v2_host() {
        tracing::debug!("no cgroup v2 hierarchy: the container stays in skiff's cgroup");
        return Ok(Placement::None);
    }
    let path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_deref());
    if systemd {
        let p = path.map(|p| p.to_string_lossy().into_owned());
        return systemd::Scope::parse(p.as_deref(), id).map(Placement::Systemd);
    }
    Cgroup::resolve(path, id).map(Placement::Fs)
}

/// Does `r` ask for any limit (anything but device rules)?
fn wants_limits(r: Option<&LinuxResources>) -> Option<String> {
    let r = r?;
    if let Some((field, _)) = wanted(r).first() {
        return Some((*field).to_string());
    }
    r.unified()
        .as_ref()
        .and_then(|u| u.keys().next())
        .map(|k| format!("unified[{k:?}]"))
}

/// Rootless: keep `placement` only where the caller may use that cgroup
/// (it was delegated, e.g. by systemd's `Delegate=yes`, or chowned by
/// root); otherwise the container stays in the caller's own cgroup, with a
/// note in the debug log. Limits without a delegated cgroup are refused,
/// as runc refuses them in rootless mode. The systemd driver would need
/// the user's own systemd instance (runc talks to it over the session bus),
/// which skiff does not drive yet: that is refused in one line.
pub fn if_delegated(placement: Placement, spec: &Spec) -> Result<Placement> {
    let cg = match &placement {
        Placement::None => return Ok(placement),
        Placement::Fs(cg) => cg,
        Placement::Systemd(_) => {
            return Err(Error::Unsupported {
                field: "--systemd-cgroup".into(),
                msg: "rootless containers with the systemd cgroup driver (the user's systemd instance) are not supported yet; use the cgroupfs driver with a delegated cgroup".into(),
            })
        }
    };
    let Err(why) = v2::delegation(cg) else {
        return Ok(placement);
    };
    let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
    if let Some(field) = wants_limits(resources) {
        return Err(Error::Unsupported {
            field: format!("linux.resources.{field}"),
            msg: format!(
                "rootless: limits need a cgroup delegated to uid {}, and {why}",
                nix::unistd::geteuid()
            ),
        });
    }
    tracing::debug!(
        "rootless: not using cgroup {} ({why}): the container stays in skiff's cgroup",
        cg.dir.display()
    );
    Ok(Placement::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_host_refuses_limits_by_name() {
        if v2::is_v2_host() {
            skiff_conformance::skip!("this host has cgroup v2");
        }
        let r: LinuxResources =
            serde_json::from_str(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#).unwrap();
        assert!(check_resources(&r).is_ok());
        let r: LinuxResources = serde_json::from_str(r#"{"pids":{"limit":10}}"#).unwrap();
        let e = check_resources(&r).unwrap_err().to_string();
        assert!(
            e.starts_with("linux.resources.pids:") && e.contains("pids controller"),
            "{e}"
        );
    }

    #[test]
    fn limits_named_for_rootless() {
        assert_eq!(wants_limits(None), None);
        let r: LinuxResources =
            serde_json::from_str(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#).unwrap();
        assert_eq!(wants_limits(Some(&r)), None);
        let r: LinuxResources = serde_json::from_str(r#"{"memory":{"limit":1048576}}"#).unwrap();
        assert_eq!(wants_limits(Some(&r)).as_deref(), Some("memory"));
        let r: LinuxResources = serde_json::from_str(r#"{"unified":{"pids.max":"5"}}"#).unwrap();
        assert_eq!(
            wants_limits(Some(&r)).as_deref(),
            Some("unified[\"pids.max\"]")
        );
    }
}

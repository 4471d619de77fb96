//! Resource control: the cgroup v2 and v1 managers and the checks made
//! before a container is built.

mod handle;
pub mod systemd;
pub mod v1;
pub mod v2;

use oci_spec::runtime::{LinuxResources, Spec};

pub use handle::Cgroup;

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
/// asks for a limit this host cannot enforce (no cgroup at all, or the
/// controller is missing). Device rules are always accepted: on a host
/// without a devices controller the container's /dev only holds the nodes
/// skiff made.
pub fn check_resources(r: &LinuxResources) -> Result<()> {
    check_memory_values(r)?;
    let v1 = v1::is_v1_host();
    let available = if v1 {
        v1::available_controllers()
    } else {
        v2::available_controllers()
    };
    for (field, ctrl) in wanted(r) {
        // v1 calls v2's io controller blkio.
        let ctrl = if v1 && ctrl == "io" { "blkio" } else { ctrl };
        if !available.iter().any(|a| a == ctrl) {
            let why = if v2::is_v2_host() || v1 {
                "is not enabled on this host"
            } else {
                "needs a cgroup hierarchy, which this host does not have"
            };
            return Err(Error::Unsupported {
                field: format!("linux.resources.{field}"),
                msg: format!("the {ctrl} controller {why}"),
            });
        }
    }
    for k in r.unified().iter().flat_map(|u| u.keys()) {
        if !v2::is_v2_host() {
            return Err(Error::Invalid {
                field: format!("linux.resources.unified[{k:?}]"),
                msg: "invalid configuration: cannot use unified on cgroup v1".into(),
            });
        }
        v2::check_unified(k, &available)?;
    }
    Ok(())
}

/// A container's whole device rule list: deny all, the config's rules,
/// then runc's default allow-list (on by default: a config without rules
/// still gets the defaults behind a deny-all).
pub(crate) fn device_rules(
    r: Option<&LinuxResources>,
) -> Vec<oci_spec::runtime::LinuxDeviceCgroup> {
    let mut rules = vec![v2::deny_all()];
    rules.extend(r.and_then(|r| r.devices().clone()).unwrap_or_default());
    rules.extend(v2::devices::default_allowed());
    rules
}

/// Every sub-cgroup directory below `dir`, parents before children.
pub(crate) fn descendants(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(e.path());
                todo.push(e.path());
            }
        }
    }
    out.sort_by_key(|p| p.components().count());
    out
}

/// Make the cgroup directory `dir` (its parent exists) unless it is there.
pub(crate) fn mkdir_once(dir: &std::path::Path) -> Result<()> {
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(Error::Io {
            path: dir.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Try to remove the cgroup `dir` alone: true if it is gone (removed, or
/// not there); false if it is still there (busy, or it has sub-cgroups).
pub(crate) fn rmdir_done(dir: &std::path::Path) -> bool {
    match std::fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// The pids in `dir` and its sub-cgroups (cgroup.procs of each, as runc's
/// GetAllPids); a directory that does not exist holds none.
pub(crate) fn procs_below(dir: &std::path::Path) -> Result<Vec<i32>> {
    let mut pids = Vec::new();
    for d in std::iter::once(dir.to_path_buf()).chain(descendants(dir)) {
        let p = d.join("cgroup.procs");
        match std::fs::read_to_string(&p) {
            Ok(t) => pids.extend(t.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::Io { path: p, source: e }),
        }
    }
    Ok(pids)
}

/// Memory byte counts are -1 (unlimited) or not negative: the kernel
/// refuses other negative values on v1 and v2 alike (runc fails writing
/// them); swap counts memory plus swap, so it is not below the limit.
fn check_memory_values(r: &LinuxResources) -> Result<()> {
    let Some(m) = r.memory() else { return Ok(()) };
    if let (Some(l), Some(s)) = (m.limit(), m.swap()) {
        if s >= 0 && l >= 0 && s < l {
            return Err(Error::Invalid {
                field: "linux.resources.memory.swap".into(),
                msg: "must be at least memory.limit (it counts memory plus swap)".into(),
            });
        }
    }
    let fields = [
        ("limit", m.limit()),
        ("reservation", m.reservation()),
        ("swap", m.swap()),
        ("kernel", m.kernel()),
        ("kernelTCP", m.kernel_tcp()),
    ];
    for (name, v) in fields {
        if let Some(v) = v.filter(|v| *v < -1) {
            return Err(Error::Invalid {
                field: format!("linux.resources.memory.{name}"),
                msg: format!("{v} is neither -1 (unlimited) nor a byte count"),
            });
        }
    }
    Ok(())
}

/// How a new container gets its cgroup.
#[derive(Debug)]
pub enum Placement {
    /// No cgroup hierarchy here: the container stays in skiff's own cgroup.
    None,
    /// The fs driver: this directory, made before the clone.
    Fs(Cgroup),
    /// The systemd driver (`--systemd-cgroup`): a transient scope made
    /// for the init's pid right after the clone.
    Systemd(systemd::Scope),
}

impl Placement {
    /// Undo a placement after a failed create whose init is dead already
    /// (nothing if not made yet). A cgroup that still holds processes was
    /// someone else's (create refuses a busy cgroup): it is left alone.
    pub fn undo(&self) {
        match self {
            Placement::None => {}
            Placement::Fs(c) => {
                if c.procs().is_ok_and(|p| p.is_empty()) {
                    let _ = c.destroy();
                }
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

/// The placement of a new container: always where the host has cgroups
/// (runc's default path when none is given), through systemd with
/// `systemd`.
pub fn for_container(spec: &Spec, id: &str, systemd: bool) -> Result<Placement> {
    let path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_deref());
    if !v2::is_v2_host() {
        if !v1::is_v1_host() {
            tracing::debug!("no cgroup hierarchy: the container stays in skiff's cgroup");
            return Ok(Placement::None);
        }
        if !systemd {
            return v1::Cgroup::resolve(path, id).map(|c| Placement::Fs(Cgroup::V1(c)));
        }
    }
    if systemd {
        let p = path.map(|p| p.to_string_lossy().into_owned());
        return systemd::Scope::parse(p.as_deref(), id).map(Placement::Systemd);
    }
    v2::Cgroup::resolve(path, id).map(|c| Placement::Fs(Cgroup::V2(c)))
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
    let delegated = match cg {
        Cgroup::V2(c) => v2::delegation(c),
        Cgroup::V1(_) => Err("cgroup v1 hierarchies are not delegated to users".to_string()),
    };
    let Err(why) = delegated else {
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
        cg.display()
    );
    Ok(Placement::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_host_takes_limits_and_refuses_unified_by_name() {
        if !v1::is_v1_host() {
            skiff_conformance::skip!("this host has no cgroup v1 hierarchies");
        }
        let r: LinuxResources =
            serde_json::from_str(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#).unwrap();
        assert!(check_resources(&r).is_ok());
        let r: LinuxResources = serde_json::from_str(r#"{"memory":{"limit":1048576}}"#).unwrap();
        assert!(check_resources(&r).is_ok());
        let r: LinuxResources = serde_json::from_str(r#"{"unified":{"pids.max":"5"}}"#).unwrap();
        let e = check_resources(&r).unwrap_err().to_string();
        assert_eq!(
            e,
            "linux.resources.unified[\"pids.max\"]: invalid configuration: cannot use unified on cgroup v1"
        );
    }

    #[test]
    fn negative_memory_values_other_than_unlimited_are_refused() {
        let r: LinuxResources = serde_json::from_str(r#"{"memory":{"limit":-5}}"#).unwrap();
        let e = check_resources(&r).unwrap_err().to_string();
        assert!(e.starts_with("linux.resources.memory.limit: -5"), "{e}");
        let r: LinuxResources = serde_json::from_str(r#"{"memory":{"swap":-2}}"#).unwrap();
        assert!(check_memory_values(&r).is_err());
        let r: LinuxResources =
            serde_json::from_str(r#"{"memory":{"limit":-1,"swap":-1}}"#).unwrap();
        assert!(check_memory_values(&r).is_ok());
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

//! Checks on a parsed spec that runc makes before touching anything, so bad
//! input fails early with the field named and nothing left behind.

use std::collections::HashSet;

use oci_spec::runtime::LinuxNamespaceType;

use super::Bundle;
use crate::cgroups;
use crate::error::{Error, Result};

fn invalid(field: impl Into<String>, msg: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.into(),
        msg: msg.into(),
    }
}

/// Validate everything skiff checks up front.
pub fn validate(bundle: &Bundle) -> Result<()> {
    let spec = &bundle.spec;
    check_version(spec.version())?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "missing"))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(invalid("process.args", "must name the program to run"));
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(
            "process.cwd",
            format!("{:?} is not an absolute path", process.cwd()),
        ));
    }
    for (i, e) in process.env().iter().flatten().enumerate() {
        if !e.contains('=') {
            return Err(invalid(
                format!("process.env[{i}]"),
                format!("{e:?} is not KEY=VALUE"),
            ));
        }
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            return Err(invalid(
                format!("mounts[{i}].destination"),
                format!("{:?} is not an absolute path", m.destination()),
            ));
        }
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| invalid("linux", "missing"))?;
    let mut seen = HashSet::new();
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(invalid(
                format!("linux.namespaces[{i}]"),
                format!("duplicate namespace {:?}", ns.typ()),
            ));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(invalid(
                    format!("linux.namespaces[{i}].path"),
                    "must be absolute",
                ));
            }
            if let Err(e) = std::fs::metadata(p) {
                return Err(invalid(
                    format!("linux.namespaces[{i}].path"),
                    format!("{}: {e}", p.display()),
                ));
            }
        }
    }
    let new_ns = |t| {
        linux
            .namespaces()
            .iter()
            .flatten()
            .any(|n| n.typ() == t && n.path().is_none())
    };
    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if new_ns(LinuxNamespaceType::User) {
        if linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty())
            || linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty())
        {
            return Err(invalid(
                "linux.uidMappings",
                "a new user namespace needs uidMappings and gidMappings",
            ));
        }
    } else if has_maps {
        return Err(invalid(
            "linux.uidMappings",
            "mappings need a new user namespace",
        ));
    }
    // Like runc, a namespace joined by path counts as private here.
    let has_ns = |t| linux.namespaces().iter().flatten().any(|n| n.typ() == t);
    if !has_ns(LinuxNamespaceType::Mount) {
        // The container shares the caller's mounts: nothing may be masked
        // or remounted there (runc's check and words).
        let paths = [
            ("linux.maskedPaths", linux.masked_paths()),
            ("linux.readonlyPaths", linux.readonly_paths()),
        ];
        if let Some((field, _)) = paths
            .iter()
            .find(|(_, p)| p.as_ref().is_some_and(|p| !p.is_empty()))
        {
            return Err(invalid(
                *field,
                "unable to restrict sys entries without a private MNT namespace",
            ));
        }
    }
    if spec.hostname().is_some() && !has_ns(LinuxNamespaceType::Uts) {
        return Err(invalid(
            "hostname",
            "setting a hostname needs a new uts namespace",
        ));
    }
    if spec.domainname().is_some() && !has_ns(LinuxNamespaceType::Uts) {
        return Err(invalid(
            "domainname",
            "setting a domainname needs a new uts namespace",
        ));
    }
    if linux.time_offsets().is_some() && !new_ns(LinuxNamespaceType::Time) {
        return Err(invalid(
            "linux.timeOffsets",
            "time offsets need a new time namespace",
        ));
    }
    for key in linux.sysctl().iter().flat_map(|s| s.keys()) {
        check_sysctl(key, &has_ns)?;
        // runc and crun: the sysctl and the field would both set it.
        let field = match key.replace('/', ".").as_str() {
            "kernel.hostname" if spec.hostname().is_some() => "hostname",
            "kernel.domainname" if spec.domainname().is_some() => "domainname",
            _ => continue,
        };
        return Err(invalid(
            format!("linux.sysctl[{key:?}]"),
            format!("conflicts with the {field:?} field"),
        ));
    }
    if let Some(s) = linux.seccomp() {
        crate::security::seccomp::check(s)?;
    }
    super::mount_idmap::check(spec)?;
    super::net::check_net_devices(linux, &has_ns)?;
    if let Some(r) = linux.resources() {
        cgroups::check_resources(r)?;
    }
    Ok(())
}

fn check_version(v: &str) -> Result<()> {
    let mut parts = v.split(['.', '-', '+']);
    let major = parts.next().and_then(|m| m.parse::<u32>().ok());
    let minor = parts.next().and_then(|m| m.parse::<u32>().ok());
    match (major, minor) {
        (Some(1), Some(_)) => Ok(()),
        _ => Err(invalid(
            "ociVersion",
            format!(
                "unsupported version {v:?}: skiff supports runtime-spec 1.0.0 to {}",
                crate::OCI_VERSION
            ),
        )),
    }
}

fn check_sysctl(key: &str, has_ns: &dyn Fn(LinuxNamespaceType) -> bool) -> Result<()> {
    let field = format!("linux.sysctl[{key:?}]");
    if key.is_empty() || key.contains("..") || key.starts_with(['.', '/']) {
        return Err(invalid(field, "not a valid sysctl name"));
    }
    let key = key.replace('/', ".");
    let key = key.as_str();
    let ipc = key.starts_with("fs.mqueue.")
        || matches!(
            key,
            "kernel.msgmax"
                | "kernel.msgmnb"
                | "kernel.msgmni"
                | "kernel.sem"
                | "kernel.shmall"
                | "kernel.shmmax"
                | "kernel.shmmni"
                | "kernel.shm_rmid_forced"
        );
    if ipc {
        return if has_ns(LinuxNamespaceType::Ipc) {
            Ok(())
        } else {
            Err(invalid(field, "needs a private ipc namespace"))
        };
    }
    if key.starts_with("net.") {
        return if has_ns(LinuxNamespaceType::Network) {
            Ok(())
        } else {
            Err(invalid(field, "needs a private network namespace"))
        };
    }
    if matches!(key, "kernel.hostname" | "kernel.domainname") {
        return if has_ns(LinuxNamespaceType::Uts) {
            Ok(())
        } else {
            Err(invalid(field, "needs a private uts namespace"))
        };
    }
    Err(invalid(
        field,
        "is not namespaced: it would change the host",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(check_version("1.0.0").is_ok());
        assert!(check_version("1.2.0").is_ok());
        assert!(check_version("1.0.2-dev").is_ok());
        assert!(check_version("0.1.0").is_err());
        assert!(check_version("2.0.0").is_err());
        assert!(check_version("").is_err());
    }

    #[test]
    fn sysctls() {
        let all = |_| true;
        let none = |_| false;
        assert!(check_sysctl("net.ipv4.ip_forward", &all).is_ok());
        assert!(check_sysctl("net.ipv4.ip_forward", &none).is_err());
        assert!(check_sysctl("kernel.shmmax", &all).is_ok());
        assert!(check_sysctl("fs.mqueue.msg_max", &none).is_err());
        assert!(check_sysctl("vm.swappiness", &all).is_err());
        assert!(check_sysctl("kernel.hostname", &all).is_ok());
        assert!(check_sysctl("kernel.domainname", &none).is_err());
        assert!(check_sysctl("net/ipv4/ip_forward", &all).is_ok());
        assert!(check_sysctl("net.ipv4/../../vm", &all).is_err());
    }
}

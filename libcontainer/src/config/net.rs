//! Checks on `linux.netDevices`: host devices moved into the container's
//! network namespace.

use oci_spec::runtime::{Linux, LinuxNamespaceType};

use crate::error::{Error, Result};

/// Is `name` usable as a network interface name (as the kernel's dev_valid_name)?
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name.contains(['/', ':'])
        && !name.chars().any(char::is_whitespace)
}

/// Validate `linux.netDevices`: a network namespace of the container's own,
/// valid and distinct names, and host devices that exist.
pub fn check_net_devices(linux: &Linux, has_ns: &dyn Fn(LinuxNamespaceType) -> bool) -> Result<()> {
    let Some(devs) = linux.net_devices().as_ref().filter(|d| !d.is_empty()) else {
        return Ok(());
    };
    if !has_ns(LinuxNamespaceType::Network) {
        return Err(Error::Invalid {
            field: "linux.netDevices".into(),
            msg: "moving network devices needs a network namespace of the container".into(),
        });
    }
    let mut targets = std::collections::HashSet::new();
    let mut names: Vec<&String> = devs.keys().collect();
    names.sort();
    for host in names {
        let field = format!("linux.netDevices[{host:?}]");
        if !valid_ifname(host) {
            return Err(Error::Invalid {
                field,
                msg: "not a valid interface name".into(),
            });
        }
        let target = devs[host].name().as_deref().unwrap_or(host);
        if !valid_ifname(target) {
            return Err(Error::Invalid {
                field: format!("{field}.name"),
                msg: format!("{target:?} is not a valid interface name"),
            });
        }
        if !targets.insert(target) {
            return Err(Error::Invalid {
                field: format!("{field}.name"),
                msg: format!("{target:?} is used twice"),
            });
        }
        if nix::net::if_::if_nametoindex(host.as_str()).is_err() {
            return Err(Error::Invalid {
                field,
                msg: "no such network device on the host".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        assert!(valid_ifname("eth0"));
        assert!(valid_ifname("a-b.c_d"));
        assert!(!valid_ifname(""));
        assert!(!valid_ifname("."));
        assert!(!valid_ifname("a/b"));
        assert!(!valid_ifname("a:b"));
        assert!(!valid_ifname("a b"));
        assert!(!valid_ifname("0123456789abcdef"));
    }
}

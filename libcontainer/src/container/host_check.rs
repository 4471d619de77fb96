//! Checks of a valid config against this host, made by `create` before it
//! sets anything up: the LSMs and resctrl the config asks for must be
//! there. The config layer itself stays free of host lookups.

use oci_spec::runtime::Spec;

use crate::config::Bundle;
use crate::error::{Error, Result};
use crate::process::attrs::Attrs;

/// Refuse what this host cannot give `bundle`'s container; warn about
/// SELinux labels on a host without SELinux (runc ignores them too).
pub fn check(bundle: &Bundle) -> Result<()> {
    let spec: &Spec = &bundle.spec;
    let (Some(process), Some(linux)) = (spec.process(), spec.linux()) else {
        return Ok(());
    };
    let labels = [
        process.selinux_label().as_deref(),
        linux.mount_label().as_deref(),
    ];
    if labels.iter().flatten().any(|l| !l.is_empty()) && !crate::security::lsm::selinux_enabled() {
        tracing::warn!("SELinux is disabled on this host: process.selinuxLabel and linux.mountLabel are ignored");
    }
    Attrs::resolve(process, Some(linux))?.check_host()?;
    if linux.intel_rdt().is_some() && !crate::resctrl::available() {
        return Err(Error::Unsupported {
            field: "linux.intelRdt".into(),
            msg: "resctrl is not mounted at /sys/fs/resctrl (no Intel RDT on this host)".into(),
        });
    }
    Ok(())
}

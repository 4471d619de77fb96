//! Loading config.json once and validating it, with errors that name the field.

pub mod mount_idmap;
mod mount_opts;
mod net;
mod sanity;
mod validate;

use std::path::{Path, PathBuf};

pub use mount_opts::{known_options, MountOptions, Propagation};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, IoContext, Result};

/// A validated bundle: its absolute path, its absolute rootfs and the parsed spec.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle directory, absolute.
    pub path: PathBuf,
    /// The root filesystem, absolute.
    pub rootfs: PathBuf,
    /// The parsed config.json.
    pub spec: Spec,
}

impl Bundle {
    /// Read `<bundle>/config.json`, parse it and validate it.
    pub fn load(bundle: &Path) -> Result<Bundle> {
        let path = std::path::absolute(bundle).path(bundle)?;
        let meta = std::fs::metadata(&path).path(&path)?;
        if !meta.is_dir() {
            return Err(Error::Invalid {
                field: "bundle".into(),
                msg: format!("{} is not a directory", path.display()),
            });
        }
        let cfg = path.join("config.json");
        let text = std::fs::read_to_string(&cfg).path(&cfg)?;
        let spec = match parse(&text, &cfg) {
            Ok(spec) => spec,
            Err(e) => {
                // Capabilities unknown to skiff are dropped with a warning
                // (runc and crun do so; configs written for newer kernels
                // rely on it). An unknown seccomp name is reported by field;
                // runc's architecture aliases are accepted.
                let text = without_unknown_caps(&text).unwrap_or(text);
                match parse(&text, &cfg) {
                    Ok(spec) => spec,
                    Err(_) => crate::security::seccomp::names::recover(&text)?.ok_or(e)?,
                }
            }
        };
        let root = spec.root().as_ref().ok_or_else(|| Error::Invalid {
            field: "root".into(),
            msg: "missing".into(),
        })?;
        let rootfs = path.join(root.path());
        let rootfs = std::fs::canonicalize(&rootfs).map_err(|e| Error::Invalid {
            field: "root.path".into(),
            msg: format!("{}: {e}", rootfs.display()),
        })?;
        let bundle = Bundle { path, rootfs, spec };
        bundle.validate()?;
        Ok(bundle)
    }

    /// Every check skiff makes before it builds anything (load runs it).
    pub fn validate(&self) -> Result<()> {
        validate::validate(self)?;
        sanity::check(&self.spec)
    }

    /// The namespace entry of `typ`, if the config lists one.
    pub fn namespace(&self, typ: LinuxNamespaceType) -> Option<&oci_spec::runtime::LinuxNamespace> {
        namespace_of(&self.spec, typ)
    }

    /// Has `create` work to do in the runtime namespace while init waits
    /// in its new namespaces: prestart or createRuntime hooks,
    /// `linux.netDevices` to move, an `linux.intelRdt` group to join.
    /// Without any, init does not stop for it (one round trip fewer).
    pub fn has_runtime_step(&self) -> bool {
        let hooks = self.spec.hooks().as_ref();
        let some = |v: Option<&Vec<oci_spec::runtime::Hook>>| v.is_some_and(|v| !v.is_empty());
        let linux = self.spec.linux().as_ref();
        hooks.is_some_and(|h| some(h.prestart().as_ref()) || some(h.create_runtime().as_ref()))
            || linux.is_some_and(|l| {
                l.net_devices().as_ref().is_some_and(|d| !d.is_empty()) || l.intel_rdt().is_some()
            })
    }
}

/// `text` (config.json) without the capability names skiff does not know,
/// each dropped with a warning; `None` when there were none (or the text is
/// not JSON).
fn without_unknown_caps(text: &str) -> Option<String> {
    let mut v: serde_json::Value = serde_json::from_str(text).ok()?;
    let caps = v.pointer_mut("/process/capabilities")?;
    (!drop_unknown_caps(caps).is_empty()).then(|| v.to_string())
}

/// Remove from a `capabilities` object (its five sets) every name skiff
/// does not know, warning once per name as runc does; returns the names.
pub fn drop_unknown_caps(caps: &mut serde_json::Value) -> Vec<String> {
    let mut dropped: Vec<String> = Vec::new();
    let sets = caps
        .as_object_mut()
        .into_iter()
        .flat_map(|o| o.values_mut());
    for set in sets.filter_map(|s| s.as_array_mut()) {
        set.retain(|c| {
            let Some(name) = c.as_str() else { return true };
            let known = serde_json::from_value::<oci_spec::runtime::Capability>(c.clone()).is_ok();
            if !known && !dropped.iter().any(|d| d == name) {
                tracing::warn!("process.capabilities: unknown capability {name:?} ignored");
                dropped.push(name.to_string());
            }
            known
        });
    }
    dropped
}

/// Parse the text of `config.json` (read from `path`). The error names the
/// JSON path of the offending field, e.g. `process.args: invalid type: ...`.
pub fn parse(text: &str, path: &Path) -> Result<Spec> {
    let mut de = serde_json::Deserializer::from_str(text);
    let spec = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let msg = if field == "." {
            format!("invalid JSON: {inner}")
        } else {
            format!("{field}: invalid JSON: {inner}")
        };
        Error::Parse {
            path: path.to_path_buf(),
            msg,
        }
    })?;
    de.end().map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        msg: format!("invalid JSON: {e}"),
    })?;
    Ok(spec)
}

/// The namespace entry of `typ` in `spec`, if listed.
pub fn namespace_of(
    spec: &Spec,
    typ: LinuxNamespaceType,
) -> Option<&oci_spec::runtime::LinuxNamespace> {
    spec.linux()
        .as_ref()?
        .namespaces()
        .as_ref()?
        .iter()
        .find(|n| n.typ() == typ)
}

/// The kernel's name of a namespace type, as in /proc/PID/ns/NAME.
pub fn ns_proc_name(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

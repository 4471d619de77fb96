//! Checks against hostile or malformed values that the kernel would reject
//! late (or, worse, accept): paths with `..`, id mappings that overlap or
//! overflow, duplicate or inverted rlimits, hooks that cannot run, strings
//! with NUL bytes. Each error names the field, so a bad config fails before
//! anything is built.

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path};

use oci_spec::runtime::{Hook, LinuxIdMapping, Spec};

use crate::error::{Error, Result};

/// The kernel accepts at most this many lines in a uid_map or gid_map.
const MAX_ID_MAP_LINES: usize = 340;
/// `HOST_NAME_MAX` (also the limit of a domain name in the uts namespace).
const HOST_NAME_MAX: usize = 64;

fn invalid(field: impl Into<String>, msg: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.into(),
        msg: msg.into(),
    }
}

/// Run every check of this module on `spec`.
pub fn check(spec: &Spec) -> Result<()> {
    if spec
        .root()
        .as_ref()
        .is_some_and(|r| r.path().as_os_str().is_empty())
    {
        return Err(invalid("root.path", "must not be empty"));
    }
    check_process(spec)?;
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        clean_abs(&format!("mounts[{i}].destination"), m.destination())?;
    }
    for (name, value) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        if let Some(v) = value {
            if v.len() > HOST_NAME_MAX || v.contains('\0') {
                return Err(invalid(
                    name,
                    format!("must be at most {HOST_NAME_MAX} bytes without NUL"),
                ));
            }
        }
    }
    if let Some(linux) = spec.linux() {
        for (field, paths) in [
            ("linux.maskedPaths", linux.masked_paths()),
            ("linux.readonlyPaths", linux.readonly_paths()),
        ] {
            for (i, p) in paths.iter().flatten().enumerate() {
                clean_abs(&format!("{field}[{i}]"), Path::new(p))?;
            }
        }
        for (i, d) in linux.devices().iter().flatten().enumerate() {
            clean_abs(&format!("linux.devices[{i}].path"), d.path())?;
            if d.major() < 0 || d.minor() < 0 {
                return Err(invalid(
                    format!("linux.devices[{i}]"),
                    "major and minor must not be negative",
                ));
            }
        }
        if let Some(p) = linux.cgroups_path() {
            if p.components().any(|c| c == Component::ParentDir) {
                return Err(invalid("linux.cgroupsPath", "must not contain \"..\""));
            }
        }
        check_id_maps("linux.uidMappings", linux.uid_mappings().as_deref())?;
        check_id_maps("linux.gidMappings", linux.gid_mappings().as_deref())?;
    }
    check_hooks(spec)
}

/// `path` must be absolute and must not contain a `..` component.
fn clean_abs(field: &str, path: &Path) -> Result<()> {
    if !path.is_absolute() {
        return Err(invalid(
            field,
            format!("{:?} is not an absolute path", path),
        ));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(invalid(
            field,
            format!("{:?} must not contain \"..\"", path),
        ));
    }
    Ok(())
}

fn check_process(spec: &Spec) -> Result<()> {
    let Some(process) = spec.process() else {
        return Ok(());
    };
    if process.cwd().is_absolute() {
        clean_abs("process.cwd", process.cwd())?;
    }
    for (field, list) in [
        ("process.args", process.args()),
        ("process.env", process.env()),
    ] {
        for (i, s) in list.iter().flatten().enumerate() {
            if s.contains('\0') {
                return Err(invalid(format!("{field}[{i}]"), "contains a NUL byte"));
            }
        }
    }
    let mut seen = Vec::new();
    for (i, r) in process.rlimits().iter().flatten().enumerate() {
        if seen.contains(&r.typ()) {
            return Err(invalid(
                format!("process.rlimits[{i}]"),
                format!("duplicate rlimit {:?}", r.typ()),
            ));
        }
        seen.push(r.typ());
        if r.soft() > r.hard() {
            return Err(invalid(
                format!("process.rlimits[{i}]"),
                format!("soft limit {} is above hard limit {}", r.soft(), r.hard()),
            ));
        }
    }
    Ok(())
}

/// Mappings must be non-empty ranges inside the 32-bit id space, at most
/// 340 of them, and must overlap neither inside nor outside the container.
fn check_id_maps(field: &str, maps: Option<&[LinuxIdMapping]>) -> Result<()> {
    let maps = maps.unwrap_or_default();
    if maps.len() > MAX_ID_MAP_LINES {
        return Err(invalid(
            field,
            format!(
                "{} ranges: the kernel takes at most {MAX_ID_MAP_LINES}",
                maps.len()
            ),
        ));
    }
    let end = |start: u32, size: u32| u64::from(start) + u64::from(size);
    for (i, m) in maps.iter().enumerate() {
        let f = format!("{field}[{i}]");
        if m.size() == 0 {
            return Err(invalid(f, "size must not be 0"));
        }
        if end(m.container_id(), m.size()) > 1 << 32 || end(m.host_id(), m.size()) > 1 << 32 {
            return Err(invalid(f, "range goes past the largest id 4294967295"));
        }
        for (j, o) in maps[..i].iter().enumerate() {
            let overlap =
                |a: u32, b: u32| u64::from(a) < end(b, o.size()) && u64::from(b) < end(a, m.size());
            if overlap(m.container_id(), o.container_id()) || overlap(m.host_id(), o.host_id()) {
                return Err(invalid(f, format!("overlaps {field}[{j}]")));
            }
        }
    }
    Ok(())
}

fn check_hooks(spec: &Spec) -> Result<()> {
    let Some(hooks) = spec.hooks() else {
        return Ok(());
    };
    // startContainer hooks resolve in the container: only their form is checked.
    let kinds: [(&str, &Option<Vec<Hook>>, bool); 6] = [
        ("prestart", hooks.prestart(), true),
        ("createRuntime", hooks.create_runtime(), true),
        ("createContainer", hooks.create_container(), true),
        ("startContainer", hooks.start_container(), false),
        ("poststart", hooks.poststart(), true),
        ("poststop", hooks.poststop(), true),
    ];
    for (kind, list, on_host) in kinds {
        for (i, h) in list.iter().flatten().enumerate() {
            let field = format!("hooks.{kind}[{i}]");
            if h.timeout().is_some_and(|t| t <= 0) {
                return Err(invalid(format!("{field}.timeout"), "must be above 0"));
            }
            let path = h.path();
            if !path.is_absolute() {
                return Err(invalid(
                    format!("{field}.path"),
                    format!("{:?} is not an absolute path", path),
                ));
            }
            if !on_host {
                continue;
            }
            match std::fs::metadata(path) {
                Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {}
                Ok(_) => {
                    return Err(invalid(
                        format!("{field}.path"),
                        format!("{} is not an executable file", path.display()),
                    ))
                }
                Err(e) => {
                    return Err(invalid(
                        format!("{field}.path"),
                        format!("{}: {e}", path.display()),
                    ))
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(c: u32, h: u32, s: u32) -> LinuxIdMapping {
        serde_json::from_value(serde_json::json!({"containerID": c, "hostID": h, "size": s}))
            .unwrap()
    }

    #[test]
    fn id_maps() {
        let ok = [map(0, 1000, 1), map(1, 100000, 65536)];
        assert!(check_id_maps("m", Some(&ok)).is_ok());
        let cases = [
            (vec![map(0, 1000, 0)], "m[0]: size"),
            (vec![map(u32::MAX, 1000, 2)], "m[0]: range"),
            (vec![map(0, u32::MAX, 2)], "m[0]: range"),
            (vec![map(0, 0, 10), map(9, 100, 1)], "m[1]: overlaps m[0]"),
            (vec![map(0, 0, 10), map(10, 5, 1)], "m[1]: overlaps m[0]"),
        ];
        for (maps, want) in cases {
            let e = check_id_maps("m", Some(&maps)).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e} does not start with {want}");
        }
        assert!(check_id_maps("m", Some(&[map(0, 0, 10), map(10, 10, 1)])).is_ok());
        let many: Vec<_> = (0..341).map(|i| map(i, i, 1)).collect();
        assert!(check_id_maps("m", Some(&many)).is_err());
    }

    #[test]
    fn clean_paths() {
        assert!(clean_abs("f", Path::new("/a/b")).is_ok());
        assert!(clean_abs("f", Path::new("/a/./b")).is_ok());
        assert!(clean_abs("f", Path::new("a/b")).is_err());
        assert!(clean_abs("f", Path::new("/a/../b")).is_err());
        assert!(clean_abs("f", Path::new("")).is_err());
    }
}

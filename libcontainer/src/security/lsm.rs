//! Linux security module labels: the AppArmor profile and the SELinux
//! process label a container process gets at exec, and SELinux mount labels.

use std::io::Write;
use std::os::fd::AsFd;

use nix::errno::Errno;

use crate::error::{Error, Result, SysContext};
use crate::resolve::open_proc;

/// Is AppArmor enabled on this host?
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.starts_with('Y'))
}

/// Is SELinux enabled (selinuxfs mounted) on this host?
pub fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

/// Write `value` to the first of `files` (relative to /proc) that exists,
/// through the verified procfs of the current root.
fn write_attr(field: &str, files: &[&str], value: &str) -> Result<()> {
    let root = std::fs::File::open("/").map_err(|e| Error::Io {
        path: "/".into(),
        source: e,
    })?;
    let mut last = Errno::ENOENT;
    for f in files {
        match open_proc(root.as_fd(), f, libc::O_WRONLY) {
            Ok(fd) => {
                let mut file = std::fs::File::from(fd);
                return file
                    .write_all(value.as_bytes())
                    .map_err(|e| Error::Invalid {
                        field: field.into(),
                        msg: format!("write /proc/{f}: {e}"),
                    });
            }
            Err(Errno::ENOENT) => continue,
            Err(e) => last = e,
        }
    }
    Err(last).step(|| format!("{field}: open /proc/{}", files[0]))
}

/// Make the next execve switch to AppArmor profile `profile`.
pub fn apparmor_exec(profile: &str) -> Result<()> {
    write_attr(
        "process.apparmorProfile",
        &["thread-self/attr/apparmor/exec", "thread-self/attr/exec"],
        &format!("exec {profile}"),
    )
}

/// Make the next execve run with SELinux label `label`; a warning and
/// nothing else when SELinux is disabled (as runc does).
pub fn selinux_exec(label: &str) -> Result<()> {
    if !selinux_enabled() {
        tracing::warn!("process.selinuxLabel {label:?} ignored: SELinux is disabled on this host");
        return Ok(());
    }
    write_attr(
        "process.selinuxLabel",
        &["thread-self/attr/selinux/exec", "thread-self/attr/exec"],
        label,
    )
}

/// The mount data for a mount that takes a context, with `linux.mountLabel`
/// added when SELinux is enabled (otherwise unchanged, with a warning once).
pub fn with_mount_label(data: &str, label: Option<&str>) -> Option<String> {
    let label = label.filter(|l| !l.is_empty())?;
    if !selinux_enabled() {
        return None;
    }
    let ctx = format!("context=\"{label}\"");
    Some(if data.is_empty() {
        ctx
    } else {
        format!("{data},{ctx}")
    })
}

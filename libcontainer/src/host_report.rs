//! `skiff check`: can this host run containers well, and what would help?
//! Each check probes the host itself (files under /proc and /sys, the
//! syscalls skiff needs, the tools it calls) and comes out OK, WARN or
//! FAIL with the one fix that helps. FAIL means a default container cannot
//! run here.

use std::path::Path;

use serde::Serialize;

use crate::cgroups::{v1, v2};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Works.
    Ok,
    /// Containers run, but something is missing or off.
    Warn,
    /// A default container cannot run.
    Fail,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        })
    }
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// How it came out.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// The one change that helps (WARN and FAIL only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(name: &'static str, status: Status, detail: String, fix: Option<&str>) -> Check {
    Check {
        name,
        status,
        detail,
        fix: fix.filter(|_| status != Status::Ok).map(String::from),
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Every check, for the calling user (`rootless`: not root).
pub fn run(rootless: bool) -> Vec<Check> {
    vec![
        cgroups(rootless),
        user_namespaces(rootless),
        seccomp(),
        lsm(),
        overlayfs(),
        syscalls(),
        criu(),
        subordinate_ids(rootless),
        systemd(),
    ]
}

/// Does the report allow a default container (no FAIL)?
pub fn can_run(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.status != Status::Fail)
}

/// A legacy or hybrid host: skiff's v1 driver.
fn cgroups_v1(unified: bool, rootless: bool) -> Check {
    if !v1::is_v1_host() {
        return check(
            "cgroup",
            Status::Warn,
            "no cgroup hierarchy mounted: containers run in skiff's own cgroup and limits are refused".into(),
            Some("mount cgroup2 on /sys/fs/cgroup"),
        );
    }
    let layout = if unified {
        "v1 hybrid (v1 controllers, cgroup2 at /sys/fs/cgroup/unified)"
    } else {
        "v1 legacy"
    };
    let ctrls = v1::available_controllers();
    let detail = format!("{layout}, v1 driver, controllers: {}", ctrls.join(" "));
    if rootless {
        return check(
            "cgroup",
            Status::Warn,
            format!("{detail}; cgroup v1 is not delegated to users: rootless containers run without limits, and limits are refused"),
            Some("boot with systemd.unified_cgroup_hierarchy=1 (pure cgroup v2) to delegate cgroups"),
        );
    }
    let missing: Vec<&str> = [
        "cpu", "cpuacct", "memory", "pids", "blkio", "cpuset", "devices", "freezer",
    ]
    .into_iter()
    .filter(|c| !ctrls.iter().any(|a| a == c))
    .collect();
    if missing.is_empty() {
        check("cgroup", Status::Ok, detail, None)
    } else {
        check(
            "cgroup",
            Status::Warn,
            format!("{detail}; not mounted: {}", missing.join(" ")),
            Some("mount the missing v1 controllers under /sys/fs/cgroup"),
        )
    }
}

fn cgroups(rootless: bool) -> Check {
    let unified = Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists();
    if !v2::is_v2_host() {
        return cgroups_v1(unified, rootless);
    }
    let ctrls = v2::available_controllers();
    let missing: Vec<&str> = ["cpu", "memory", "pids", "io", "cpuset"]
        .into_iter()
        .filter(|c| !ctrls.iter().any(|a| a == c))
        .collect();
    let mut detail = format!("v2, controllers: {}", ctrls.join(" "));
    if rootless {
        let rel = v2::own_cgroup().unwrap_or_default();
        let own = format!("/{}", rel.display());
        let procs = Path::new(v2::MOUNT).join(rel).join("cgroup.procs");
        if nix::unistd::access(&procs, nix::unistd::AccessFlags::W_OK).is_err() {
            return check(
                "cgroup",
                Status::Warn,
                format!("{detail}; {own} is not delegated to this user: containers run without limits, and limits are refused"),
                Some("run under a delegated cgroup: systemd-run --user --scope -p Delegate=yes skiff ..."),
            );
        }
        detail.push_str(&format!("; {own} is delegated to this user"));
    }
    if missing.is_empty() {
        check("cgroup", Status::Ok, detail, None)
    } else {
        check(
            "cgroup",
            Status::Warn,
            format!("{detail}; missing: {}", missing.join(" ")),
            Some("enable the missing controllers in the parent cgroups' cgroup.subtree_control"),
        )
    }
}

fn user_namespaces(rootless: bool) -> Check {
    let max = read("/proc/sys/user/max_user_namespaces").and_then(|s| s.parse::<u64>().ok());
    let clone = read("/proc/sys/kernel/unprivileged_userns_clone");
    let aa = read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
    let mut detail = format!(
        "max_user_namespaces={}",
        max.map_or("?".into(), |m| m.to_string())
    );
    if let Some(c) = &clone {
        detail.push_str(&format!(", unprivileged_userns_clone={c}"));
    }
    if let Some(a) = &aa {
        detail.push_str(&format!(", apparmor_restrict_unprivileged_userns={a}"));
    }
    let bad = if rootless { Status::Fail } else { Status::Warn };
    if max == Some(0) {
        return check(
            "user namespaces",
            bad,
            format!("{detail}: containers with a user namespace fail"),
            Some("sysctl -w user.max_user_namespaces=15000"),
        );
    }
    if rootless && clone.as_deref() == Some("0") {
        return check(
            "user namespaces",
            Status::Fail,
            format!("{detail}: unprivileged users cannot create user namespaces"),
            Some("sysctl -w kernel.unprivileged_userns_clone=1"),
        );
    }
    if rootless && aa.as_deref() == Some("1") {
        return check(
            "user namespaces",
            Status::Fail,
            format!("{detail}: AppArmor denies unprivileged user namespaces"),
            Some("sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile for skiff that allows userns"),
        );
    }
    check("user namespaces", Status::Ok, detail, None)
}

fn seccomp() -> Check {
    let lib = libseccomp::ScmpVersion::current()
        .map(|v| format!("libseccomp {}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_else(|_| "libseccomp ?".into());
    let Some(actions) = read("/proc/sys/kernel/seccomp/actions_avail") else {
        return check(
            "seccomp",
            Status::Warn,
            format!("{lib}; the kernel has no seccomp filters: a config with linux.seccomp fails"),
            Some("use a kernel built with CONFIG_SECCOMP_FILTER"),
        );
    };
    let have: Vec<&str> = actions.split_whitespace().collect();
    let missing: Vec<&str> = [
        "kill_process",
        "kill_thread",
        "trap",
        "errno",
        "user_notif",
        "trace",
        "log",
        "allow",
    ]
    .into_iter()
    .filter(|a| !have.contains(a))
    .collect();
    if missing.is_empty() {
        check(
            "seccomp",
            Status::Ok,
            format!("{lib}; actions: {actions}"),
            None,
        )
    } else {
        check(
            "seccomp",
            Status::Warn,
            format!("{lib}; the kernel lacks the actions {}", missing.join(" ")),
            Some("use a newer kernel (user_notif needs 5.0, kill_process 4.14)"),
        )
    }
}

fn lsm() -> Check {
    let aa = crate::security::lsm::apparmor_enabled();
    let se = crate::security::lsm::selinux_enabled();
    let word = |on: bool| if on { "enabled" } else { "not enabled" };
    let mut detail = format!("AppArmor {}, SELinux {}", word(aa), word(se));
    if !aa {
        detail.push_str(" (process.apparmorProfile is refused here)");
    }
    check("LSM", Status::Ok, detail, None)
}

fn kernel_release() -> (u32, u32, String) {
    let rel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut parts = rel.split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor, rel)
}

fn overlayfs() -> Check {
    let fs = read("/proc/filesystems").unwrap_or_default();
    let has = fs
        .lines()
        .any(|l| l.split_whitespace().last() == Some("overlay"));
    let (major, minor, rel) = kernel_release();
    let idmap = (major, minor) >= (5, 19);
    let idmap_word = if idmap { "yes" } else { "no" };
    if has {
        check(
            "overlayfs",
            Status::Ok,
            format!("available; id-mapped mounts on it: {idmap_word} (kernel {rel})"),
            None,
        )
    } else {
        check(
            "overlayfs",
            Status::Warn,
            "not in /proc/filesystems (not loaded yet, or not built): overlay mounts fail".into(),
            Some("modprobe overlay"),
        )
    }
}

fn syscalls() -> Check {
    use nix::errno::Errno;
    let mut missing = Vec::new();
    if crate::sys::pidfd_open(nix::unistd::getpid()).is_err() {
        missing.push("pidfd_open (5.3)");
    }
    let root = std::fs::File::open("/")
        .map_err(|_| Errno::EBADF)
        .and_then(|r| {
            crate::sys::openat2(
                std::os::fd::AsFd::as_fd(&r),
                Path::new("."),
                libc::O_PATH | libc::O_CLOEXEC,
                0,
                crate::sys::RESOLVE_IN_ROOT,
            )
        });
    if root.is_err() {
        missing.push("openat2 (5.6)");
    }
    if !crate::sys::has_clone3() {
        missing.push("clone3 (5.3)");
    }
    let (major, minor, rel) = kernel_release();
    let into_cgroup = (major, minor) >= (5, 7) && v2::is_v2_host();
    if missing.is_empty() {
        check(
            "syscalls",
            Status::Ok,
            format!(
                "pidfd_open, openat2, clone3 present; CLONE_INTO_CGROUP {} (kernel {rel})",
                if into_cgroup {
                    "used"
                } else {
                    "not available: init is moved into its cgroup after the clone"
                }
            ),
            None,
        )
    } else {
        check(
            "syscalls",
            Status::Fail,
            format!("missing: {} (kernel {rel})", missing.join(", ")),
            Some("use a kernel of 5.6 or newer"),
        )
    }
}

fn criu() -> Check {
    let Ok(out) = std::process::Command::new("criu").arg("--version").output() else {
        return check(
            "criu",
            Status::Warn,
            "not installed: skiff checkpoint/restore needs it".into(),
            Some("apt-get install criu"),
        );
    };
    let v = String::from_utf8_lossy(&out.stdout);
    let v = v.lines().next().unwrap_or("").trim();
    let v = format!("criu {}", v.strip_prefix("Version:").unwrap_or(v).trim());
    // `criu check` probes the kernel features a dump and restore need.
    let checked = std::process::Command::new("criu").arg("check").output();
    match checked {
        Ok(c) if c.status.success() => check(
            "criu",
            Status::Ok,
            format!("{v}: criu check passes, checkpoint/restore available"),
            None,
        ),
        Ok(c) => {
            let text = String::from_utf8_lossy(&c.stderr).into_owned()
                + &String::from_utf8_lossy(&c.stdout);
            let why = text
                .lines()
                .find(|l| l.contains("Error") && !l.contains("exited, status="))
                .unwrap_or("no reason given")
                .trim()
                .to_string();
            check(
                "criu",
                Status::Warn,
                format!("{v} cannot run on kernel {}: {why}", kernel_release().2),
                Some("install a CRIU release that supports this kernel"),
            )
        }
        Err(e) => check(
            "criu",
            Status::Warn,
            format!("{v}: criu check: {e}"),
            Some("apt-get install --reinstall criu"),
        ),
    }
}

fn subordinate_ids(rootless: bool) -> Check {
    let on_path = |tool: &str| {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false)
    };
    let tools = on_path("newuidmap") && on_path("newgidmap");
    let uid = nix::unistd::getuid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_default();
    // The ranges skiff itself would use for this user (idmap).
    let (subuids, subgids) = crate::idmap::own_subids();
    let ranges = !subuids.is_empty() && !subgids.is_empty();
    let tools_word = if tools { "present" } else { "missing" };
    let detail = format!(
        "newuidmap/newgidmap {tools_word}; /etc/subuid and /etc/subgid {} a range for {name}",
        if ranges { "give" } else { "do not give" }
    );
    match (rootless, tools, ranges) {
        (_, false, _) => check(
            "rootless ids",
            Status::Warn,
            format!("{detail}: rootless containers can map only the user's own id"),
            Some("apt-get install uidmap"),
        ),
        (true, true, false) => check(
            "rootless ids",
            Status::Warn,
            format!("{detail}: containers can map only your own id"),
            Some("add NAME:100000:65536 lines for this user to /etc/subuid and /etc/subgid"),
        ),
        _ => check("rootless ids", Status::Ok, detail, None),
    }
}

fn systemd() -> Check {
    let booted = Path::new("/run/systemd/system").is_dir();
    let bus = Path::new("/run/dbus/system_bus_socket").exists();
    if booted && bus {
        check(
            "systemd",
            Status::Ok,
            "systemd is init and its bus is up: --systemd-cgroup works".into(),
            None,
        )
    } else {
        check(
            "systemd",
            Status::Warn,
            format!(
                "systemd {}, system bus {}: --systemd-cgroup (podman's and Kubernetes' systemd driver) fails",
                if booted { "is init" } else { "is not init" },
                if bus { "up" } else { "not found" }
            ),
            Some("use the cgroupfs driver (the default) on this host"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_has_a_fix_unless_ok() {
        let checks = run(!nix::unistd::geteuid().is_root());
        assert_eq!(checks.len(), 9);
        for c in &checks {
            assert_eq!(c.status == Status::Ok, c.fix.is_none(), "{c:?}");
            assert!(!c.detail.is_empty(), "{c:?}");
        }
        assert_eq!(
            can_run(&checks),
            checks.iter().all(|c| c.status != Status::Fail)
        );
    }
}

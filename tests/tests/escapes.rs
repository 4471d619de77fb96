//! Regression tests for the container-escape advisories of 2019-2025 that
//! security.rs does not cover yet: each must fail if the protection goes.

use serde_json::json;
use skiff_conformance::*;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn mount_points() -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .collect()
}

/// The children of `pid` (from /proc/PID/task/*/children).
fn children(pid: u32) -> Vec<i64> {
    let mut v = Vec::new();
    for t in fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = fs::read_to_string(t.path().join("children")).unwrap_or_default();
        v.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<i64>().ok()),
        );
    }
    v
}

#[test]
fn exec_child_runs_from_a_read_only_sealed_binary() {
    require_root!();
    // CVE-2019-5736 during exec: while `skiff exec`'s child is inside the
    // container (before it executes the program), /proc/<child>/exe must
    // be on a read-only mount, so a container process that grabs it cannot
    // reopen it for writing later. The child is held inside the container by
    // making the container's /etc/passwd a fifo that it reads.
    let rt = Runtime::new();
    let b = Bundle::with_args(&["sleep", "1000"]);
    let id = unique_id("cve5736-exec");
    rt.start_container(&b, &id);
    let passwd = b.rootfs().join("etc/passwd");
    fs::remove_file(&passwd).unwrap();
    nix::unistd::mkfifo(&passwd, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let mut exec = rt.command(&["exec", &id, "true"]);
    exec.stdout(Stdio::null()).stderr(Stdio::null());
    let mut skiff = exec.spawn().expect("spawn skiff exec");
    let mut child = None;
    assert!(
        poll_until(Duration::from_secs(10), || {
            child = children(skiff.id()).first().copied();
            child.is_some()
        }),
        "skiff exec has no child"
    );
    let child = child.unwrap();
    let exe = format!("/proc/{child}/exe");
    let st = nix::sys::statvfs::statvfs(exe.as_str()).expect("statvfs exe");
    let ro = st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY);
    let write = fs::OpenOptions::new().write(true).open(&exe);
    // Unblock the child: open the fifo for writing and close it (EOF).
    drop(fs::OpenOptions::new().write(true).open(&passwd));
    let _ = wait_timeout(&mut skiff, Duration::from_secs(10));
    rt.delete_force(&id);
    assert!(ro, "{exe} ({}) is not on a read-only mount", readlink(&exe));
    assert!(write.is_err(), "{exe} could be opened for writing");
}

#[test]
fn masked_path_refuses_a_dev_null_that_is_a_regular_file() {
    require_root!();
    // CVE-2025-31133: /dev/null replaced (here by a bind mount of a host
    // file) must never be what masked paths are bound from.
    let rt = Runtime::new();
    let host = TempDir::new("skiff-fakenull");
    let fake = host.path().join("null");
    fs::write(&fake, "not null").unwrap();
    let mut b = Bundle::sh("cat /proc/kcore | head -c 1 | wc -c");
    b.add_bind(&fake, "/dev/null", &["bind"]);
    b.config_mut()["linux"]["maskedPaths"] = json!(["/proc/kcore"]);
    let id = unique_id("cve31133-file");
    let out = rt.run(&b, &id, &[]);
    assert_clean_failure(&out, "/dev/null", &rt, &id, &b);
    assert_eq!(fs::read_to_string(&fake).unwrap(), "not null");
}

/// A bundle whose /dev is a bind mount of `rootfs/fakedev`, in which
/// `name` is a symlink to `target`.
fn bundle_with_dev_symlink(script: &str, name: &str, target: &str) -> Bundle {
    let mut b = Bundle::sh(script);
    let dev = b.rootfs().join("fakedev");
    fs::create_dir_all(&dev).unwrap();
    symlink(target, dev.join(name)).unwrap();
    if name != "null" {
        let mode = nix::sys::stat::Mode::from_bits_truncate(0o666);
        nix::sys::stat::mknod(
            &dev.join("null"),
            nix::sys::stat::SFlag::S_IFCHR,
            mode,
            libc::makedev(1, 3),
        )
        .unwrap();
    }
    // Replace the /dev tmpfs in place, so /dev/pts etc. still mount on top.
    let mounts = b.config_mut()["mounts"].as_array_mut().unwrap();
    let i = mounts
        .iter()
        .position(|m| m["destination"] == "/dev")
        .unwrap();
    mounts[i] = json!({"destination": "/dev", "type": "bind",
        "source": dev.to_str().unwrap(), "options": ["rbind"]});
    b
}

#[test]
fn masked_path_refuses_a_dev_null_that_is_a_symlink() {
    require_root!();
    // CVE-2025-31133: /dev/null is a symlink to a procfs file the attacker
    // wants writable; binding "it" over a masked path would expose that file.
    let rt = Runtime::new();
    let b = bundle_with_dev_symlink("true", "null", "/proc/sys/kernel/core_pattern");
    let mut b = b;
    b.config_mut()["linux"]["maskedPaths"] = json!(["/proc/kcore"]);
    let id = unique_id("cve31133-link");
    let out = rt.run(&b, &id, &[]);
    assert_clean_failure(&out, "/dev/null", &rt, &id, &b);
}

#[test]
fn console_bind_target_symlink_is_not_followed() {
    require_root!();
    // CVE-2025-52565: /dev/console is a symlink to a procfs file; the pty
    // must not be bound over the symlink's target.
    let rt = Runtime::new();
    let host = TempDir::new("skiff-consolevictim");
    let victim = host.path().join("victim");
    fs::write(&victim, "host").unwrap();
    let mut b = bundle_with_dev_symlink(
        "stat -c '%F' /dev/console; cat /victim",
        "console",
        "/victim",
    );
    b.add_bind(&victim, "/victim", &["bind"]);
    b.set_terminal(true);
    let console = ConsoleSocket::new();
    let id = unique_id("cve52565");
    let out = rt.create(&b, &id, &["--console-socket", &console.path_str()]);
    if out.status.success() {
        // Accepted: then /dev/console must be the pty, and /victim untouched.
        let (_master, _) = console.recv_fd(Duration::from_secs(5)).expect("pty master");
        let pid = rt.pid(&id);
        let mi = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
        let victim_mounts = mi
            .lines()
            .filter(|l| l.split(' ').nth(4) == Some("/victim"))
            .count();
        rt.delete_force(&id);
        assert_eq!(
            victim_mounts, 1,
            "something was mounted over /victim:\n{mi}"
        );
    } else {
        assert_clean_failure(&out, "console", &rt, &id, &b);
    }
    assert_eq!(fs::read_to_string(&victim).unwrap(), "host");
}

#[test]
fn sysctl_write_through_an_overmounted_proc_file_is_refused() {
    require_root!();
    // CVE-2025-52881: a proc file of the container is overmounted with the
    // host's /proc/sys/net/ipv4/ip_forward, so a write to the container's
    // sysctl would change the host. We write the host's current value, so
    // even a regression would not change anything; the write must be refused.
    let rt = Runtime::new();
    let host_value = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let mut b = Bundle::sh("true");
    b.add_bind(
        Path::new("/proc/sys/net/ipv4/ip_forward"),
        "/proc/sys/net/ipv4/conf/all/forwarding",
        &["bind"],
    );
    b.config_mut()["linux"]["sysctl"] = json!({"net.ipv4.conf.all.forwarding": host_value.trim()});
    let id = unique_id("cve52881");
    let out = rt.run(&b, &id, &[]);
    assert_clean_failure(&out, "redirected", &rt, &id, &b);
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_value
    );
}

/// A rootfs whose `name` (proc or sys) is a symlink to `target`: the mount
/// lands inside the rootfs or create fails, never on the host.
fn special_dir_symlink(name: &str, target: &str, tag: &str) {
    let rt = Runtime::new();
    let mut b = Bundle::sh("true");
    let p = b.rootfs().join(name);
    fs::remove_dir(&p).unwrap();
    symlink(target, &p).unwrap();
    b.config_mut()["process"]["args"] = json!(["true"]);
    let before = mount_points();
    let id = unique_id(tag);
    let out = rt.run(&b, &id, &[]);
    let after = mount_points();
    let new: Vec<&String> = after.iter().filter(|m| !before.contains(m)).collect();
    assert!(new.is_empty(), "host mounts appeared: {new:?}");
    if !out.status.success() {
        assert_clean_failure(&out, name, &rt, &id, &b);
    } else {
        assert_no_leftovers(&rt, &id, &b);
    }
}

#[test]
fn proc_and_sys_symlinks_never_mount_on_the_host() {
    require_root!();
    let etc_before = fs::read_dir("/etc").unwrap().count();
    special_dir_symlink("proc", "/etc", "proc-etc");
    special_dir_symlink("proc", "../../../../../../etc", "proc-dotdot");
    special_dir_symlink("sys", "/tmp", "sys-tmp");
    special_dir_symlink("sys", "..", "sys-up");
    assert_eq!(fs::read_dir("/etc").unwrap().count(), etc_before);
    // Nothing is mounted on the host's /etc or /tmp.
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
    for p in ["/etc", "/tmp"] {
        assert!(
            !mi.lines()
                .any(|l| l.split(' ').nth(4) == Some(p) && l.contains(" - proc ")),
            "proc mounted on host {p}"
        );
    }
    let _ = Command::new("true").status();
}

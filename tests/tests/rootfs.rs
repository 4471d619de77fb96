//! The container's filesystem: root, mounts, masked and read-only paths,
//! /dev, sysctls and propagation.

use serde_json::json;
use skiff_conformance::*;
use std::fs;

/// The mountinfo line (as printed inside the container) whose mount point is `point`.
fn mount_line<'a>(mountinfo: &'a str, point: &str) -> &'a str {
    mountinfo
        .lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some(point))
        .unwrap_or_else(|| panic!("no mount at {point}:\n{mountinfo}"))
}

/// Per-mount options (field 6) of a mountinfo line.
fn mount_opts(line: &str) -> Vec<String> {
    line.split(' ')
        .nth(5)
        .unwrap_or("")
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// Super-block options (last field) of a mountinfo line.
fn super_opts(line: &str) -> Vec<String> {
    line.rsplit(' ')
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::to_owned)
        .collect()
}

#[test]
fn readonly_root() {
    if !preflight("readonly_root") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::sh(
        "touch /should-fail 2>/dev/null && echo root-writable; \
         touch /dev/shm/ok && echo shm-writable; cat /proc/self/mountinfo",
    );
    bundle.config_mut()["root"]["readonly"] = json!(true);
    let out = rt.run_ok(&bundle);
    assert!(!out.contains("root-writable"), "{out}");
    assert!(out.contains("shm-writable"), "{out}");
    assert!(mount_opts(mount_line(&out, "/")).contains(&"ro".to_owned()));
    assert!(!bundle.rootfs().join("should-fail").exists());
}

#[test]
fn masked_paths_hide_files_and_dirs() {
    if !preflight("masked_paths_hide_files_and_dirs") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::sh(
        "echo \"file=[$(cat /secret.txt)]\"; echo \"dir=[$(ls -A /secretdir)]\"; \
         echo \"other=[$(cat /visible.txt)]\"; touch /secretdir/new 2>/dev/null && echo dir-writable; \
         stat -c '%F %t:%T' /secret.txt",
    );
    let root = bundle.rootfs();
    fs::write(root.join("secret.txt"), "TOP-SECRET").unwrap();
    fs::create_dir(root.join("secretdir")).unwrap();
    fs::write(root.join("secretdir/inner.txt"), "inner").unwrap();
    fs::write(root.join("visible.txt"), "visible").unwrap();
    bundle.config_mut()["linux"]["maskedPaths"] = json!([
        "/secret.txt",
        "/secretdir",
        "/does/not/exist",
        "/proc/kcore"
    ]);
    let out = rt.run_ok(&bundle);
    assert!(out.contains("file=[]"), "{out}");
    assert!(out.contains("dir=[]"), "{out}");
    assert!(out.contains("other=[visible]"), "{out}");
    assert!(
        !out.contains("dir-writable"),
        "masked dir is writable: {out}"
    );
    assert!(out.contains("character special file 1:3"), "{out}");
    assert_eq!(
        fs::read_to_string(root.join("secret.txt")).unwrap(),
        "TOP-SECRET"
    );
    assert!(!root.join("secretdir/new").exists());
}

#[test]
fn readonly_paths_cannot_be_written() {
    if !preflight("readonly_paths_cannot_be_written") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::sh(
        "touch /rodir/x 2>/dev/null && echo rodir-writable; \
         touch /rwdir/x && echo rwdir-writable; \
         cat /rodir/keep; echo; cat /proc/self/mountinfo",
    );
    let root = bundle.rootfs();
    fs::create_dir(root.join("rodir")).unwrap();
    fs::write(root.join("rodir/keep"), "kept").unwrap();
    fs::create_dir(root.join("rwdir")).unwrap();
    bundle.config_mut()["linux"]["readonlyPaths"] =
        json!(["/rodir", "/proc/sys", "/does/not/exist"]);
    let out = rt.run_ok(&bundle);
    assert!(!out.contains("rodir-writable"), "{out}");
    assert!(out.contains("rwdir-writable"), "{out}");
    assert!(out.lines().any(|l| l == "kept"), "{out}");
    let ro = "ro".to_owned();
    assert!(
        mount_opts(mount_line(&out, "/rodir")).contains(&ro),
        "{out}"
    );
    assert!(
        mount_opts(mount_line(&out, "/proc/sys")).contains(&ro),
        "{out}"
    );
    assert!(!root.join("rodir/x").exists());
}

#[test]
fn default_devices() {
    if !preflight("default_devices") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::sh(
        "for d in null zero full random urandom tty; do stat -c \"$d %F %t:%T\" /dev/$d; done; \
         for l in fd stdin stdout stderr ptmx; do echo \"$l -> $(readlink /dev/$l)\"; done; \
         stat -c 'ptsptmx %F %t:%T' /dev/pts/ptmx; \
         echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | od -An -tx1; \
         echo x > /dev/full 2>/dev/null || echo full-enospc; \
         echo missing=$(ls /dev/sda /dev/kmsg /dev/mem 2>&1 | grep -c 'No such file'); \
         cat /proc/self/mountinfo",
    );
    let out = rt.run_ok(&bundle);
    for want in [
        "null character special file 1:3",
        "zero character special file 1:5",
        "full character special file 1:7",
        "random character special file 1:8",
        "urandom character special file 1:9",
        "tty character special file 5:0",
        "fd -> /proc/self/fd",
        "stdin -> /proc/self/fd/0",
        "stdout -> /proc/self/fd/1",
        "stderr -> /proc/self/fd/2",
        "ptmx -> pts/ptmx",
        "ptsptmx character special file 5:2",
        "null-ok",
        " 00 00 00 00",
        "full-enospc",
        "missing=3",
    ] {
        assert!(
            out.lines().any(|l| l == want),
            "missing {want:?} in:\n{out}"
        );
    }
    assert!(mount_line(&out, "/dev").contains(" - tmpfs "), "{out}");
    assert!(mount_line(&out, "/dev/shm").contains(" - tmpfs "), "{out}");
    assert!(mount_line(&out, "/dev/pts").contains(" - devpts "), "{out}");
}

#[test]
fn bind_mounts_ro_and_rw() {
    if !preflight("bind_mounts_ro_and_rw") {
        return;
    }
    let rt = Runtime::new();
    let host = TempDir::new("skiff-bindsrc");
    fs::write(host.path().join("data.txt"), "from-host").unwrap();
    let host_rw = TempDir::new("skiff-bindrw");
    let mut bundle = Bundle::sh(
        "cat /data/data.txt; echo; touch /data/new 2>/dev/null && echo ro-writable; \
         echo written-inside > /rw/out.txt; grep -E ' /(data|rw) ' /proc/self/mountinfo",
    );
    bundle.add_bind(host.path(), "/data", &["rbind", "ro", "nosuid", "nodev"]);
    bundle.add_bind(host_rw.path(), "/rw", &["bind"]);
    let out = rt.run_ok(&bundle);
    assert!(out.lines().any(|l| l == "from-host"), "{out}");
    assert!(!out.contains("ro-writable"), "{out}");
    assert!(!host.path().join("new").exists());
    assert_eq!(
        fs::read_to_string(host_rw.path().join("out.txt")).unwrap_or_default(),
        "written-inside\n"
    );
    let data = mount_opts(mount_line(&out, "/data"));
    for o in ["ro", "nosuid", "nodev"] {
        assert!(data.contains(&o.to_owned()), "/data lacks {o}: {out}");
    }
    assert!(mount_opts(mount_line(&out, "/rw")).contains(&"rw".to_owned()));
    // Nothing is mounted on the host side.
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!info.contains(&bundle.rootfs().to_string_lossy().into_owned()));
}

#[test]
fn tmpfs_mount_with_options() {
    if !preflight("tmpfs_mount_with_options") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::sh(
        "stat -c '%a' /scratch; grep ' /scratch ' /proc/self/mountinfo; \
         stat -c '%a' /deep/new/mount",
    );
    bundle.add_mount(
        "/scratch",
        "tmpfs",
        "tmpfs",
        &["nosuid", "nodev", "noexec", "size=1m", "mode=700"],
    );
    bundle.add_mount("/deep/new/mount", "tmpfs", "tmpfs", &["mode=755"]);
    let out = rt.run_ok(&bundle);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"700"), "{out}");
    let line = mount_line(&out, "/scratch");
    let opts = mount_opts(line);
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(opts.contains(&o.to_owned()), "/scratch lacks {o}: {line}");
    }
    assert!(line.contains(" - tmpfs "), "{line}");
    assert!(
        super_opts(line).contains(&"size=1024k".to_owned()),
        "{line}"
    );
    assert_eq!(
        lines.last(),
        Some(&"755"),
        "missing destination not created: {out}"
    );
    assert!(bundle.rootfs().join("deep/new/mount").is_dir());
}

#[test]
fn rootfs_propagation() {
    if !preflight("rootfs_propagation") {
        return;
    }
    let rt = Runtime::new();
    // All eight values run (unbindable used to fail binding the rootfs).
    let props = [
        ("private", false),
        ("rprivate", false),
        ("slave", false),
        ("rslave", false),
        ("shared", true),
        ("rshared", true),
        ("unbindable", false),
        ("runbindable", false),
    ];
    for (prop, want_shared) in props {
        let mut bundle = Bundle::with_args(&["cat", "/proc/self/mountinfo"]);
        bundle.config_mut()["linux"]["rootfsPropagation"] = json!(prop);
        let out = rt.run_ok(&bundle);
        let root = mount_line(&out, "/");
        // Optional fields sit between the options (field 6) and " - ".
        let optional = root
            .split(" - ")
            .next()
            .unwrap_or("")
            .split(' ')
            .skip(6)
            .collect::<Vec<_>>();
        let shared = optional.iter().any(|f| f.starts_with("shared:"));
        let slave = optional.iter().any(|f| f.starts_with("master:"));
        assert_eq!(shared, want_shared, "rootfsPropagation {prop}: {root}");
        if prop.ends_with("private") {
            assert!(!slave, "rootfsPropagation {prop}: {root}");
        }
        let unbindable = optional.contains(&"unbindable");
        assert_eq!(
            unbindable,
            prop.ends_with("unbindable"),
            "rootfsPropagation {prop}: {root}"
        );
    }
}

#[test]
fn net_sysctl_is_set_in_the_container_only() {
    if !preflight("net_sysctl_is_set_in_the_container_only") {
        return;
    }
    let rt = Runtime::new();
    let host_fwd = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let want_fwd = if host_fwd.trim() == "1" { "0" } else { "1" };
    let mut bundle = Bundle::with_args(&["cat", "/proc/sys/net/ipv4/ip_forward"]);
    bundle.config_mut()["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": want_fwd });
    let out = rt.run_ok(&bundle);
    assert_eq!(out, format!("{want_fwd}\n"));
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd
    );
}

#[test]
fn uts_sysctl_is_set_in_the_container_only() {
    if !preflight("uts_sysctl_is_set_in_the_container_only") {
        return;
    }
    // runc accepts kernel.domainname with a UTS namespace (and no
    // conflicting `domainname` field).
    let rt = Runtime::new();
    let host_dom = fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    let mut bundle = Bundle::with_args(&["cat", "/proc/sys/kernel/domainname"]);
    bundle.config_mut()["linux"]["sysctl"] = json!({ "kernel.domainname": "sysctl.test" });
    let out = rt.run_ok(&bundle);
    assert_eq!(out, "sysctl.test\n");
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/domainname").unwrap(),
        host_dom
    );
}

#[test]
fn proc_sys_and_cgroup_mounts() {
    if !preflight("proc_sys_and_cgroup_mounts") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::sh(
        "echo pid1=$$; ls /proc | grep -c '^[0-9][0-9]*$'; grep -E ' /(proc|sys|dev/mqueue) ' /proc/self/mountinfo",
    );
    let out = rt.run_ok(&bundle);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "pid1=1", "not in a new pid namespace: {out}");
    let procs: usize = lines[1].parse().unwrap_or(999);
    assert!(procs <= 3, "host processes visible in /proc: {out}");
    assert!(mount_line(&out, "/proc").contains(" - proc "));
    let sys = mount_line(&out, "/sys");
    assert!(
        sys.contains(" - sysfs ") && mount_opts(sys).contains(&"ro".to_owned()),
        "{sys}"
    );
    assert!(mount_line(&out, "/dev/mqueue").contains(" - mqueue "));
}

#[test]
fn no_pivot_and_no_new_keyring_flags() {
    if !preflight("no_pivot_and_no_new_keyring_flags") {
        return;
    }
    let rt = Runtime::new();
    let bundle =
        Bundle::sh("(cd ../../../../..; ls -a | tr '\\n' ' '); echo; ls -a / | tr '\\n' ' '; echo");
    fs::write(bundle.rootfs().join("container-canary"), "").unwrap();
    let id = unique_id("nopivot");
    let out = rt.run(&bundle, &id, &["--no-pivot", "--no-new-keyring"]);
    assert_success(&out, "run --no-pivot --no-new-keyring");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0], lines[1], "`..` escapes the chroot: {text}");
    assert!(lines[1].contains("container-canary"), "{text}");
    assert_no_leftovers(&rt, &id, &bundle);
}

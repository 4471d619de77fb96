//! runc parity for config details: unknown capabilities are warned about
//! and dropped, a hostname sysctl that conflicts with `hostname` is
//! refused, a mount over a dangling symlink is made where the link points
//! (inside the rootfs), and hooks get runc's environment, cwd and fds.

use serde_json::json;
use skiff_conformance::*;
use std::fs;

#[test]
fn unknown_capabilities_are_dropped_with_a_warning() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::sh("grep CapBnd /proc/self/status");
    for set in ["bounding", "effective", "permitted"] {
        b.config_mut()["process"]["capabilities"][set] = json!(["CAP_KILL", "CAP_UNKNOWN"]);
    }
    let out = rt.run_bundle(&b);
    assert_success(&out, "run with CAP_UNKNOWN");
    assert!(
        stdout(&out).contains(&format!("{:016x}", 1u64 << 5 /* CAP_KILL */)),
        "{}",
        describe(&out)
    );
    let warned = stderr(&out);
    assert!(
        warned.contains("CAP_UNKNOWN") && warned.contains("warn"),
        "no warning naming the capability: {}",
        describe(&out)
    );

    let b = Bundle::with_args(&["sleep", "1000"]);
    let id = unique_id("cap-exec");
    rt.start_container(&b, &id);
    let out = rt.exec_with(&["--cap", "CAP_NOT_A_CAP"], &id, &["true"]);
    assert_success(&out, "exec --cap CAP_NOT_A_CAP");
    assert!(stderr(&out).contains("CAP_NOT_A_CAP"), "{}", describe(&out));
    assert_success(&rt.delete_force(&id), "delete -f");
}

#[test]
fn hostname_sysctl_conflicting_with_hostname_is_refused() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::sh("hostname");
    b.config_mut()["linux"]["sysctl"] = json!({"kernel.hostname": "other"});
    let id = unique_id("sysctl-host");
    let out = rt.create(&b, &id, &[]);
    assert_clean_failure(&out, "kernel.hostname", &rt, &id, &b);
    assert!(stderr(&out).contains("hostname"), "{}", describe(&out));
}

#[test]
fn mount_on_a_dangling_symlink_is_made_inside_the_rootfs() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::sh("cat /proc/self/mountinfo; ls -d /data/deep/mnt");
    // Absolute and relative dangling links; both must land in the rootfs.
    std::os::unix::fs::symlink("/data/deep/mnt", b.rootfs().join("abs")).unwrap();
    std::os::unix::fs::symlink("../data/rel", b.rootfs().join("tmp/rel")).unwrap();
    b.add_mount("/abs", "tmpfs", "tmpfs", &["size=1m"]);
    b.add_mount("/tmp/rel", "tmpfs", "tmpfs", &["size=1m"]);
    let out = rt.run_bundle(&b);
    assert_success(&out, "run with mounts on dangling symlinks");
    let o = stdout(&out);
    assert!(o.contains(" /data/deep/mnt "), "{o}");
    assert!(o.contains(" /data/rel "), "{o}");
    assert!(b.rootfs().join("data/deep/mnt").is_dir());
    assert!(b.rootfs().join("data/rel").is_dir());
    assert!(
        !std::path::Path::new("/data/deep/mnt").exists(),
        "created on the host"
    );
}

#[test]
fn hooks_get_runc_env_cwd_fds_and_user() {
    require_root!();
    let rt = Runtime::new();
    let dir = TempDir::new("skiff-parity-hooks");
    let d = dir.path().display().to_string();
    // The startContainer hook runs as uid 1000 and writes here too.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let mut b = Bundle::with_args(&["true"]);
    b.config_mut()["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.add_bind(dir.path(), &d, &["rbind"]);
    // A createContainer hook that writes to a relative path: it starts in
    // the rootfs, so the file lands there.
    write_executable(
        &dir.path().join("cc.sh"),
        &format!("#!/bin/sh\npwd > '{d}/cc.cwd'\ntouch ./cc-was-here\n"),
    );
    write_executable(
        &dir.path().join("env.sh"),
        &format!("#!/bin/sh\nenv > \"{d}/$1.env\"\npwd > \"{d}/$1.cwd\"\n"),
    );
    write_executable(
        &dir.path().join("start.sh"),
        &format!("#!/bin/sh\nls /proc/self/fd > '{d}/start.fds'\nid -u > '{d}/start.uid'\n"),
    );
    write_executable(&dir.path().join("fail.sh"), "#!/bin/sh\nexit 3\n");
    let env_hook = dir.path().join("env.sh").display().to_string();
    let fail_hook = dir.path().join("fail.sh").display().to_string();
    b.add_hook("createRuntime", &env_hook, &["env.sh", "cr"], None);
    b.add_hook(
        "createContainer",
        &dir.path().join("cc.sh").display().to_string(),
        &["cc.sh"],
        None,
    );
    b.add_hook(
        "startContainer",
        &dir.path().join("start.sh").display().to_string(),
        &["start.sh"],
        None,
    );
    // A failing poststart hook does not stop the ones after it.
    b.add_hook("poststart", &fail_hook, &["fail.sh"], None);
    b.add_hook("poststart", &env_hook, &["env.sh", "ps"], None);
    let id = unique_id("parity-hooks");
    let out = rt.run(&b, &id, &[]);
    assert_success(&out, "run with hooks");
    let read = |f: &str| fs::read_to_string(dir.path().join(f)).unwrap_or_default();
    // No `env` in the hook: it inherits the runtime's environment (PATH).
    assert!(
        read("cr.env").contains("PATH="),
        "createRuntime env: {:?}",
        read("cr.env")
    );
    // The runtime's hooks start in the bundle, createContainer in the rootfs.
    let canon = |p: &std::path::Path| fs::canonicalize(p).unwrap();
    assert_eq!(read("cr.cwd").trim(), canon(b.path()).display().to_string());
    assert_eq!(
        read("cc.cwd").trim(),
        canon(&b.rootfs()).display().to_string()
    );
    assert!(
        b.rootfs().join("cc-was-here").exists(),
        "relative path of a createContainer hook"
    );
    assert!(
        read("ps.env").contains("PATH="),
        "second poststart hook did not run"
    );
    // startContainer: as the container's user, with stdio and nothing else
    // (ls's own directory fd is the one extra entry).
    assert_eq!(read("start.uid").trim(), "1000");
    let fds: Vec<String> = read("start.fds")
        .split_whitespace()
        .map(String::from)
        .collect();
    assert!(
        fds.len() <= 4 && fds[..3] == ["0", "1", "2"],
        "startContainer fds: {fds:?}"
    );
}

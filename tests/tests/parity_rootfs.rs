//! runc parity for the root filesystem: a config without a mount namespace
//! never touches the caller's mounts. Every run here happens inside
//! `unshare --mount --propagation private`, so a regression cannot take the
//! host's root away.

use serde_json::json;
use skiff_conformance::*;
use std::process::Command;

/// `skiff --root R <args>` inside a private mount namespace, followed (in
/// the same namespace) by a check that the caller's root is untouched: its
/// /usr/bin and its mount of / are what they were before.
fn in_private_mount_ns(rt: &Runtime, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
        .arg(
            r#"before=$(awk '$5 == "/" {print $4, $10}' /proc/self/mountinfo)
"$@"; rc=$?
after=$(awk '$5 == "/" {print $4, $10}' /proc/self/mountinfo)
[ -x /usr/bin/env ] && [ "$before" = "$after" ] && echo CALLER-ROOT-INTACT
exit $rc"#,
        )
        .arg("sh")
        .arg(skiff_bin())
        .arg("--root")
        .arg(rt.root())
        .args(args);
    output_with_timeout(&mut cmd, DEFAULT_TIMEOUT)
}

fn without_mount_ns() -> Bundle {
    let mut b = Bundle::sh("echo container-ran; test -e /rootfs-marker && echo in-rootfs");
    std::fs::write(b.rootfs().join("rootfs-marker"), "").unwrap();
    b.remove_namespace("mount");
    let linux = &mut b.config_mut()["linux"];
    linux["maskedPaths"] = json!([]);
    linux["readonlyPaths"] = json!([]);
    b
}

#[test]
fn no_mount_namespace_keeps_the_callers_root() {
    require_root!();
    let rt = Runtime::new();
    let b = without_mount_ns();
    b.save();
    let id = unique_id("nomntns");
    rt.track(&id);
    let bundle = b.path().to_string_lossy().into_owned();
    let out = in_private_mount_ns(&rt, &["run", "--bundle", &bundle, &id]);
    let o = stdout(&out);
    assert_success(&out, "run without a mount namespace");
    assert!(o.contains("CALLER-ROOT-INTACT"), "{}", describe(&out));
    // No mount is made; the process gets root.path by chroot alone.
    assert!(
        o.contains("container-ran") && o.contains("in-rootfs"),
        "{}",
        describe(&out)
    );
    assert_no_leftovers(&rt, &id, &b);
}

#[test]
fn no_mount_namespace_with_masked_paths_is_refused_as_runc() {
    require_root!();
    let rt = Runtime::new();
    for field in ["maskedPaths", "readonlyPaths"] {
        let mut b = without_mount_ns();
        b.config_mut()["linux"][field] = json!(["/proc/kcore"]);
        b.save();
        let id = unique_id("nomntns-masked");
        rt.track(&id);
        let bundle = b.path().to_string_lossy().into_owned();
        let out = in_private_mount_ns(&rt, &["create", "--bundle", &bundle, &id]);
        assert!(
            stdout(&out).contains("CALLER-ROOT-INTACT"),
            "{}",
            describe(&out)
        );
        assert!(
            !out.status.success(),
            "create must fail: {}",
            describe(&out)
        );
        let err = stderr(&out);
        assert!(
            err.contains(&format!("linux.{field}"))
                && err.contains("unable to restrict sys entries without a private MNT namespace")
                && err.lines().count() == 1,
            "{}",
            describe(&out)
        );
        assert_no_leftovers(&rt, &id, &b);
    }
}

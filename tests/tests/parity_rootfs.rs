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

/// critest's "mount with 'rshared' should support propagation from host to
/// container and vice versa", without containerd: root propagation rshared
/// and a volume bound `rbind,rshared`. Run inside a private mount namespace
/// that plays the host, with a shared tmpfs as the volume's source.
#[test]
fn rshared_volume_propagates_both_ways() {
    require_root!();
    let rt = Runtime::new();
    let vol = TempDir::new("skiff-rshared");
    let v = vol.path().display().to_string();
    let mut b = Bundle::sh(
        "mount -t tmpfs -o size=1m from-container /vol/c && touch /vol/c/made-inside; \
         i=0; while [ ! -e /vol/h/from-host ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; \
         ls /vol/h; grep ' /vol ' /proc/self/mountinfo",
    );
    b.config_mut()["linux"]["rootfsPropagation"] = json!("rshared");
    b.add_bind(vol.path(), "/vol", &["rbind", "rshared", "rw"]);
    // mount(2) in the container needs CAP_SYS_ADMIN.
    for set in ["bounding", "effective", "permitted"] {
        b.config_mut()["process"]["capabilities"][set] = json!(["CAP_SYS_ADMIN"]);
    }
    b.save();
    let id = unique_id("rshared");
    rt.track(&id);
    let script = r#"set -e
mount -t tmpfs -o size=1m vol "$V"; mount --make-shared "$V"; mkdir "$V/c" "$V/h"
"$S" --root "$R" run -d --bundle "$B" "$ID" </dev/null >/dev/null 2>&1
i=0; until grep -q " $V/c " /proc/self/mountinfo || [ $i -ge 100 ]; do sleep 0.05; i=$((i+1)); done
grep -q " $V/c " /proc/self/mountinfo && echo HOST-SEES-CONTAINER-MOUNT
[ -e "$V/c/made-inside" ] && echo HOST-SEES-FILE
mount -t tmpfs -o size=1m from-host "$V/h"; touch "$V/h/from-host"
i=0; while [ "$("$S" --root "$R" state "$ID" | grep -c stopped)" = 0 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
"$S" --root "$R" delete -f "$ID""#;
    let mut cmd = std::process::Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "/bin/sh",
        "-c",
        script,
    ])
    .env("V", &v)
    .env("S", skiff_bin())
    .env("R", rt.root())
    .env("B", b.path())
    .env("ID", &id);
    let out = output_with_timeout(&mut cmd, DEFAULT_TIMEOUT);
    let o = stdout(&out);
    assert!(
        o.contains("HOST-SEES-CONTAINER-MOUNT"),
        "container to host: {}",
        describe(&out)
    );
    assert!(o.contains("HOST-SEES-FILE"), "{}", describe(&out));
    assert_no_leftovers(&rt, &id, &b);
}

//! runc parity for mounts: bind sources of a user-namespaced container are
//! opened as host root, a read-only bind of /dev works, --no-pivot cannot
//! mount a fresh /proc, and /proc must be an ordinary directory.

use serde_json::json;
use skiff_conformance::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

fn in_userns(b: &mut Bundle) {
    b.set_namespace("user", None);
    let map = json!([{"containerID": 0, "hostID": 400000, "size": 65536}]);
    b.config_mut()["linux"]["uidMappings"] = map.clone();
    b.config_mut()["linux"]["gidMappings"] = map;
}

#[test]
fn userns_bind_source_out_of_reach_of_the_namespace_root() {
    require_root!();
    let rt = Runtime::new();
    // runc's "userns with inaccessible mount": a 0700 host directory the
    // namespace's root (host uid 400000) cannot enter.
    let host = TempDir::new("skiff-inaccessible");
    let private = host.path().join("private");
    let source = private.join("shared");
    fs::create_dir_all(&source).unwrap();
    fs::write(source.join("data"), "reachable-through-the-bind\n").unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    let mut b = Bundle::sh("cat /mnt/data");
    in_userns(&mut b);
    b.add_bind(&source, "/mnt", &["bind", "ro"]);
    let out = rt.run_bundle(&b);
    assert_success(&out, "run with an inaccessible bind source");
    assert!(
        stdout(&out).contains("reachable-through-the-bind"),
        "{}",
        describe(&out)
    );
}

#[test]
fn read_only_bind_of_dev_works() {
    require_root!();
    let rt = Runtime::new();
    let mut b =
        Bundle::sh("test -c /dev/null && echo dev-ok; touch /dev/x 2>/dev/null || echo dev-ro");
    b.add_bind(std::path::Path::new("/dev"), "/dev", &["rbind", "ro"]);
    let out = rt.run_bundle(&b);
    assert_success(&out, "run with /dev bound read-only");
    let o = stdout(&out);
    assert!(
        o.contains("dev-ok") && o.contains("dev-ro"),
        "{}",
        describe(&out)
    );
}

/// --no-pivot detaches the full procfs/sysfs mounts outside the rootfs in
/// the container's mount namespace (runc's best-effort guard against a
/// fresh /proc revealing what the masks hide). What can be seen from here:
/// the container runs with its masks, and the caller's mounts are untouched.
/// That a fresh procfs is then refused: [`no_pivot_does_not_expose_bare_proc`].
#[test]
fn no_pivot_keeps_masks_and_the_callers_mounts() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::sh("cat /proc/kcore 2>/dev/null | head -c 1 | wc -c; echo ran");
    in_userns(&mut b);
    b.save();
    let id = unique_id("nopivot-proc");
    // --no-pivot moves the rootfs over /: only inside a mount namespace of
    // the test's own, in case it ever reached the caller's.
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
        .arg(r#"before=$(grep -c . /proc/self/mountinfo); "$@" || exit $?; after=$(grep -c . /proc/self/mountinfo); [ "$before" = "$after" ] && echo CALLER-MOUNTS-INTACT"#)
        .arg("sh")
        .arg(skiff_bin())
        .arg("--root")
        .arg(rt.root())
        .args(["run", "--no-pivot", "--bundle"])
        .arg(b.path())
        .arg(&id);
    rt.track(&id);
    let out = output_with_timeout(&mut cmd, DEFAULT_TIMEOUT);
    assert_success(&out, "run --no-pivot");
    let o = stdout(&out);
    assert!(
        o.starts_with("0\nran\n"),
        "masked /proc/kcore readable: {}",
        describe(&out)
    );
    assert!(o.contains("CALLER-MOUNTS-INTACT"), "{}", describe(&out));
}

/// runc's "runc run --no-pivot must not expose bare /proc": in a user and
/// mount namespace of its own, the container's masked /proc is locked, so
/// the kernel allows a new procfs only if a full one is visible somewhere
/// in the namespace, as the host's /proc would be under --no-pivot. skiff
/// detaches it, so the mount is refused. (Checked by hand: with that step
/// skipped, the same container prints EXPOSED.)
#[test]
fn no_pivot_does_not_expose_bare_proc() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::sh(
        "unshare -mrpf sh -c 'mount -t proc none /proc && echo EXPOSED || echo REFUSED'",
    );
    for set in ["bounding", "permitted", "effective"] {
        if let Some(caps) = b.config_mut()["process"]["capabilities"][set].as_array_mut() {
            caps.push(json!("CAP_SETFCAP"));
        }
    }
    b.save();
    for no_pivot in [false, true] {
        let id = unique_id("nopivot-bare");
        let mut cmd = std::process::Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private"])
            .arg(skiff_bin())
            .arg("--root")
            .arg(rt.root())
            .arg("run");
        if no_pivot {
            cmd.arg("--no-pivot");
        }
        cmd.arg("--bundle").arg(b.path()).arg(&id);
        rt.track(&id);
        let out = output_with_timeout(&mut cmd, DEFAULT_TIMEOUT);
        assert_success(&out, &format!("run (no_pivot {no_pivot})"));
        let o = stdout(&out);
        assert!(
            o.contains("REFUSED") && !o.contains("EXPOSED"),
            "no_pivot {no_pivot}: a fresh procfs was mounted: {}",
            describe(&out)
        );
    }
}

#[test]
fn proc_on_a_symlink_is_refused_as_runc() {
    require_root!();
    let rt = Runtime::new();
    let b = Bundle::sh("true");
    let p = b.rootfs().join("proc");
    fs::remove_dir(&p).unwrap();
    std::os::unix::fs::symlink("/tmp", &p).unwrap();
    let id = unique_id("proc-symlink");
    let out = rt.create(&b, &id, &[]);
    assert_clean_failure(&out, "must be mounted on ordinary directory", &rt, &id, &b);
}

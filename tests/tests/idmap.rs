//! id-mapped bind mounts: `mounts[].uidMappings`/`gidMappings`, and the
//! `idmap` option with the container's own user namespace mappings.

use serde_json::json;
use skiff_conformance::*;
use std::fs;
use std::os::unix::fs::chown;

/// A host directory with a root-owned file and a file owned by 5:5.
fn source_dir() -> TempDir {
    let d = TempDir::new("skiff-idmap-src");
    fs::write(d.path().join("root-owned"), "r").unwrap();
    fs::write(d.path().join("u5"), "5").unwrap();
    chown(d.path().join("u5"), Some(5), Some(5)).unwrap();
    d
}

fn idmap_mount(src: &TempDir, extra: serde_json::Value) -> serde_json::Value {
    let mut m = json!({
        "destination": "/data", "type": "bind",
        "source": src.path().to_str().unwrap(), "options": ["bind"]
    });
    for (k, v) in extra.as_object().unwrap() {
        m[k] = v.clone();
    }
    m
}

#[test]
fn explicit_mappings_shift_file_owners() {
    require_root!();
    let rt = Runtime::new();
    let src = source_dir();
    let mut b = Bundle::sh(
        "stat -c '%u:%g %n' /data/root-owned /data/u5; touch /data/new 2>/dev/null || echo refused",
    );
    b.config_mut()["mounts"]
        .as_array_mut()
        .unwrap()
        .push(idmap_mount(
            &src,
            json!({
                "uidMappings": [{"containerID": 0, "hostID": 1234, "size": 10}],
                "gidMappings": [{"containerID": 0, "hostID": 4321, "size": 10}]
            }),
        ));
    let out = rt.run_ok(&b);
    // Container root (uid 0) has no id in this mount's mapping: it cannot
    // create files there (EOVERFLOW).
    assert_eq!(
        out, "1234:4321 /data/root-owned\n1239:4326 /data/u5\nrefused\n",
        "{out}"
    );
    assert!(!src.path().join("new").exists());
    // The host's view is unchanged.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(src.path().join("root-owned")).unwrap().uid(),
        0
    );
    assert_eq!(fs::metadata(src.path().join("u5")).unwrap().uid(), 5);
}

#[test]
fn idmap_option_uses_the_container_user_namespace() {
    require_root!();
    let rt = Runtime::new();
    let src = source_dir();
    let mut b = Bundle::sh("stat -c '%u:%g %n' /data/root-owned /data/u5; id -u");
    b.set_namespace("user", None);
    let map = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    b.config_mut()["linux"]["uidMappings"] = map.clone();
    b.config_mut()["linux"]["gidMappings"] = map;
    fs::create_dir(b.rootfs().join("data")).unwrap();
    let mut m = idmap_mount(&src, json!({}));
    m["options"] = json!(["bind", "idmap"]);
    b.config_mut()["mounts"].as_array_mut().unwrap().push(m);
    let out = rt.run_ok(&b);
    // On disk 0 and 5; inside the container's user namespace they are 0 and
    // 5 again, because the mount shifts them by the same mapping.
    assert_eq!(out, "0:0 /data/root-owned\n5:5 /data/u5\n0\n", "{out}");
}

#[test]
fn bad_idmap_mounts_are_refused() {
    require_root!();
    let rt = Runtime::new();
    let src = source_dir();
    for (tag, m, needle) in [
        (
            "idmap-uidonly",
            idmap_mount(
                &src,
                json!({"uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}),
            ),
            "needs both uidMappings and gidMappings",
        ),
        (
            "idmap-tmpfs",
            json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                   "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}],
                   "gidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}),
            "must be bind mounts",
        ),
        (
            "idmap-nouserns",
            json!({"destination": "/data", "type": "bind", "source": src.path().to_str().unwrap(),
                   "options": ["bind", "idmap"]}),
            "needs both uidMappings and gidMappings",
        ),
    ] {
        let mut b = Bundle::sh("true");
        b.config_mut()["mounts"].as_array_mut().unwrap().push(m);
        let id = unique_id(tag);
        let out = rt.create(&b, &id, &[]);
        let line = assert_error_line(&out, needle);
        assert!(line.contains("mounts["), "{line}");
        assert_no_leftovers(&rt, &id, &b);
    }
}

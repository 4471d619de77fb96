//! Rootless skiff: an unprivileged user, made for the test (with its own
//! /etc/subuid and /etc/subgid ranges, removed again even when a test fails),
//! runs containers in a user namespace with its state under XDG_RUNTIME_DIR.

mod rootless_user;

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use rootless_user::{User, SUB_COUNT};
use serde_json::{json, Value};
use skiff_conformance::{
    assert_error_line, assert_success, describe, output_with_timeout, poll_until, skiff_bin, skip,
    stdout, unique_id, TempDir, DEFAULT_TIMEOUT,
};

fn map_lines(text: &str) -> Vec<Vec<u64>> {
    text.lines()
        .map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .filter(|v: &Vec<u64>| !v.is_empty())
        .collect()
}

#[test]
fn rootless_spec_matches_runc() {
    let Some(user) = User::new("rootless_spec_matches_runc") else {
        return;
    };
    let spec = user.spec_rootless();
    let linux = &spec["linux"];
    let ns: Vec<&str> = linux["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    assert!(ns.contains(&"user") && !ns.contains(&"network"), "{ns:?}");
    assert_eq!(
        linux["uidMappings"],
        json!([{"containerID": 0, "hostID": user.uid, "size": 1}])
    );
    assert_eq!(
        linux["gidMappings"],
        json!([{"containerID": 0, "hostID": user.gid, "size": 1}])
    );
    assert!(linux.get("resources").is_none(), "{linux}");
    for m in spec["mounts"].as_array().unwrap() {
        let opts: Vec<&str> = m["options"]
            .as_array()
            .map(|o| o.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert!(
            opts.iter()
                .all(|o| !o.starts_with("gid=") && !o.starts_with("uid=")),
            "{m}"
        );
        if m["destination"] == "/sys" {
            assert_eq!(m["type"], "none", "{m}");
            assert_eq!(m["source"], "/sys", "{m}");
            assert!(opts.contains(&"rbind"), "{m}");
        }
    }
    user.remove_and_check();
}

#[test]
fn rootless_lifecycle_with_own_id() {
    let Some(user) = User::new("rootless_lifecycle_with_own_id") else {
        return;
    };
    let bundle = user.bundle("sleep 1000");
    let id = unique_id("rl");
    let out = user.with_bundle("create", &bundle, &id, &[]);
    assert_success(&out, "rootless create");
    // The state lives under $XDG_RUNTIME_DIR/skiff (0700 + sticky, as runc).
    let root = user.state_root();
    assert!(
        root.join(&id).join("state.json").is_file(),
        "no state under {}",
        root.display()
    );
    assert_eq!(fs::metadata(&root).unwrap().mode() & 0o7777, 0o1700);
    assert!(!Path::new("/run/skiff").join(&id).exists());
    let st = user.state(&id);
    assert_eq!(st["status"], "created");
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(
        fs::metadata(format!("/proc/{pid}")).unwrap().uid(),
        user.uid,
        "init runs as the user on the host"
    );
    assert_success(&user.skiff(&["start", &id]), "start");
    assert_eq!(user.state(&id)["status"], "running");
    let out = user.skiff(&[
        "exec",
        &id,
        "sh",
        "-c",
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups",
    ]);
    assert_success(&out, "exec");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..2], ["0", "0"], "{text}");
    assert_eq!(
        map_lines(&lines[2..4].join("\n")),
        vec![
            vec![0, u64::from(user.uid), 1],
            vec![0, u64::from(user.gid), 1]
        ],
        "{text}"
    );
    assert_eq!(lines.get(4), Some(&"deny"), "{text}");
    // exec lands in the container's pid namespace.
    let out = user.skiff(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo $$; cat /proc/1/cmdline | tr '\\0' ' '",
    ]);
    assert_success(&out, "exec in the pid namespace");
    assert!(stdout(&out).contains("sleep 1000"), "{}", describe(&out));
    assert_success(&user.skiff(&["kill", &id, "KILL"]), "kill");
    assert!(
        poll_until(Duration::from_secs(5), || user.state(&id)["status"]
            == "stopped"),
        "not stopped after kill"
    );
    assert_success(&user.skiff(&["delete", &id]), "delete");
    assert!(!root.join(&id).exists());
    user.remove_and_check();
}

#[test]
fn rootless_several_ranges_use_newuidmap() {
    let Some(user) = User::new("rootless_several_ranges_use_newuidmap") else {
        return;
    };
    if !Path::new("/usr/bin/newuidmap").exists() {
        skip!("newuidmap missing (uidmap package)");
    }
    let script = "cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/owned; \
                  chown 1000:1000 /tmp/owned && stat -c %u:%g /tmp/owned";
    let mut bundle = user.bundle(script);
    let (uid, gid, sub) = (user.uid, user.gid, user.sub);
    for set in ["bounding", "effective", "permitted"] {
        bundle.config_mut()["process"]["capabilities"][set] = json!(["CAP_CHOWN"]);
    }
    bundle.config_mut()["linux"]["uidMappings"] = json!([
        {"containerID": 0, "hostID": uid, "size": 1},
        {"containerID": 1, "hostID": sub, "size": SUB_COUNT}
    ]);
    bundle.config_mut()["linux"]["gidMappings"] = json!([
        {"containerID": 0, "hostID": gid, "size": 1},
        {"containerID": 1, "hostID": sub, "size": SUB_COUNT}
    ]);
    let id = unique_id("rlmulti");
    let out = user.with_bundle("run", &bundle, &id, &[]);
    assert_success(&out, "run with several ranges");
    let text = stdout(&out);
    let maps = map_lines(&text);
    let want_u = [
        vec![0, u64::from(uid), 1],
        vec![1, u64::from(sub), u64::from(SUB_COUNT)],
    ];
    let want_g = [
        vec![0, u64::from(gid), 1],
        vec![1, u64::from(sub), u64::from(SUB_COUNT)],
    ];
    assert_eq!(maps[..2], want_u[..], "{text}");
    assert_eq!(maps[2..4], want_g[..], "{text}");
    assert!(text.lines().any(|l| l == "1000:1000"), "{text}");
    let host = fs::metadata(bundle.rootfs().join("tmp/owned")).expect("file made in the container");
    assert_eq!((host.uid(), host.gid()), (sub + 999, sub + 999));

    // Container root on a subordinate id: the caller cannot chown the exec
    // fifo to it, and create/start still work.
    let mut bundle = user.bundle("id -u; cat /proc/self/uid_map");
    bundle.config_mut()["linux"]["uidMappings"] =
        json!([{"containerID": 0, "hostID": sub, "size": SUB_COUNT}]);
    bundle.config_mut()["linux"]["gidMappings"] =
        json!([{"containerID": 0, "hostID": sub, "size": SUB_COUNT}]);
    let id = unique_id("rlsub");
    assert_success(
        &user.with_bundle("create", &bundle, &id, &[]),
        "create, root on a subuid",
    );
    let pid = user.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(fs::metadata(format!("/proc/{pid}")).unwrap().uid(), sub);
    assert_success(&user.skiff(&["start", &id]), "start, root on a subuid");
    assert!(poll_until(Duration::from_secs(5), || user.state(&id)
        ["status"]
        == "stopped"));
    assert_success(&user.skiff(&["delete", &id]), "delete");

    // A range /etc/subuid does not grant: newuidmap's refusal, in one line.
    let mut bundle = user.bundle("true");
    bundle.config_mut()["linux"]["uidMappings"] =
        json!([{"containerID": 0, "hostID": sub + SUB_COUNT, "size": 10}]);
    let id = unique_id("rlbad");
    let out = user.with_bundle("run", &bundle, &id, &[]);
    let line = assert_error_line(&out, "linux.uidMappings");
    assert!(line.contains("newuidmap"), "{line}");
    user.remove_and_check();
}

#[test]
fn rootless_refusals_are_runcs() {
    let Some(user) = User::new("rootless_refusals_are_runcs") else {
        return;
    };
    // No user namespace: runc's "rootless container requires user namespaces".
    let mut bundle = user.bundle("true");
    let c = bundle.config_mut();
    c["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]);
    c["linux"].as_object_mut().unwrap().remove("uidMappings");
    c["linux"].as_object_mut().unwrap().remove("gidMappings");
    let out = user.with_bundle("run", &bundle, &unique_id("rlnous"), &[]);
    assert_error_line(&out, "linux.namespaces");

    // Lowering oom_score_adj needs CAP_SYS_RESOURCE on the host (runc fails too).
    let mut bundle = user.bundle("true");
    bundle.config_mut()["process"]["oomScoreAdj"] = json!(-500);
    let out = user.with_bundle("run", &bundle, &unique_id("rloom"), &[]);
    let line = assert_error_line(&out, "process.oomScoreAdj");
    assert!(line.contains("CAP_SYS_RESOURCE"), "{line}");
    // Raising it is allowed.
    let mut bundle = user.bundle("cat /proc/self/oom_score_adj");
    bundle.config_mut()["process"]["oomScoreAdj"] = json!(500);
    let out = user.with_bundle("run", &bundle, &unique_id("rloomup"), &[]);
    assert_success(&out, "raise oom_score_adj");
    assert_eq!(stdout(&out).trim(), "500");

    // A hard rlimit above the caller's.
    let limits = fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let hard = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|h| h.parse::<u64>().ok());
    if let Some(hard) = hard {
        let mut bundle = user.bundle("true");
        bundle.config_mut()["process"]["rlimits"] =
            json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": hard + 1}]);
        let out = user.with_bundle("run", &bundle, &unique_id("rlnofile"), &[]);
        assert_error_line(&out, "process.rlimits");
    }

    // A limit with no delegated cgroup is refused, naming the field (on a
    // host without cgroup v2 it needs cgroup v2 anyway); device rules and
    // a cgroupsPath without limits are fine.
    let mut bundle = user.bundle("true");
    bundle.config_mut()["linux"]["resources"] = json!({"pids": {"limit": 10}});
    let out = user.with_bundle("run", &bundle, &unique_id("rlpids"), &[]);
    assert_error_line(&out, "linux.resources.pids");
    let mut bundle = user.bundle("echo ok");
    bundle.config_mut()["linux"]["resources"] =
        json!({"devices": [{"allow": false, "access": "rwm"}]});
    bundle.config_mut()["linux"]["cgroupsPath"] = json!("skiff-rootless");
    let out = user.with_bundle("run", &bundle, &unique_id("rlcg"), &[]);
    assert_success(&out, "rootless run with a cgroupsPath and device rules");
    assert_eq!(stdout(&out).trim(), "ok");
    user.remove_and_check();
}

#[test]
fn rootless_binary_cannot_be_overwritten() {
    let Some(user) = User::new("rootless_binary_cannot_be_overwritten") else {
        return;
    };
    // A skiff the user owns (say ~/bin/skiff): container root is that user,
    // so skiff must run from a sealed copy.
    let own = TempDir::new("skiff-rlown");
    let bin = own.path().join("skiff");
    fs::copy(skiff_bin(), &bin).unwrap();
    let before = fs::read(&bin).unwrap();
    for p in [own.path(), bin.as_path()] {
        std::os::unix::fs::chown(p, Some(user.uid), None).unwrap();
    }
    let bundle = user.bundle("sleep 1000");
    bundle.save();
    let id = unique_id("rlexe");
    user.ids.borrow_mut().push(id.clone());
    let b = bundle.path().to_string_lossy().into_owned();
    let out = output_with_timeout(
        &mut user.command(&bin.to_string_lossy(), &["create", "--bundle", &b, &id]),
        DEFAULT_TIMEOUT,
    );
    assert_success(&out, "create with a user-owned skiff");
    let pid = user.state(&id)["pid"].as_i64().unwrap();
    let exe = format!("/proc/{pid}/exe");
    let link = skiff_conformance::readlink(&exe);
    assert!(
        link.starts_with("/memfd:skiff"),
        "init runs {link}, not a sealed copy"
    );
    // Even root cannot write through it: the copy is a write-sealed memfd.
    let attempt = fs::OpenOptions::new()
        .write(true)
        .open(&exe)
        .and_then(|mut f| f.write_all(b"x"));
    assert!(
        attempt.is_err(),
        "wrote through {exe} ({})",
        skiff_conformance::readlink(&exe)
    );
    // And as the user, through the shell a container process would use.
    let out = output_with_timeout(
        &mut user.command("sh", &["-c", &format!("printf x >> {exe}")]),
        DEFAULT_TIMEOUT,
    );
    assert!(!out.status.success(), "the user wrote through {exe}");
    assert_eq!(
        fs::read(&bin).unwrap(),
        before,
        "the skiff binary was modified"
    );

    // The root-owned 0755 binary is not writable by any id the container
    // holds: skiff runs it as it is, and the user still cannot write it.
    let id2 = unique_id("rlexe2");
    assert_success(&user.with_bundle("create", &bundle, &id2, &[]), "create");
    let pid = user.state(&id2)["pid"].as_i64().unwrap();
    let exe = format!("/proc/{pid}/exe");
    assert_eq!(
        skiff_conformance::readlink(&exe),
        user.bin().to_string_lossy()
    );
    let out = output_with_timeout(
        &mut user.command("sh", &["-c", &format!("printf x >> {exe}")]),
        DEFAULT_TIMEOUT,
    );
    assert!(!out.status.success(), "the user wrote through {exe}");
    for i in [&id, &id2] {
        assert_success(&user.skiff(&["delete", "--force", i]), "delete --force");
    }
    user.remove_and_check();
}

#[test]
fn rootless_sysfs_without_netns_is_bound() {
    let Some(user) = User::new("rootless_sysfs_without_netns_is_bound") else {
        return;
    };
    // runc's default /sys mount (type sysfs) in a rootless config without a
    // network namespace: the kernel refuses sysfs, so the host's is bound.
    let mut bundle =
        user.bundle("ls /sys/class >/dev/null && echo listed; touch /sys/x 2>/dev/null || echo ro");
    for m in bundle.config_mut()["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/sys" {
            *m = json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                        "options": ["nosuid", "noexec", "nodev", "ro"]});
        }
    }
    let out = user.with_bundle("run", &bundle, &unique_id("rlsys"), &[]);
    assert_success(&out, "rootless run with a sysfs mount");
    assert_eq!(stdout(&out).lines().collect::<Vec<_>>(), ["listed", "ro"]);
    user.remove_and_check();
}

//! `skiff check`: the host report, checked against facts the test finds on
//! its own (the cgroup filesystem type, /proc/filesystems, criu on PATH).

use serde_json::Value;
use skiff_conformance::*;
use std::process::Command;

const NAMES: [&str; 9] = [
    "cgroup",
    "user namespaces",
    "seccomp",
    "LSM",
    "overlayfs",
    "syscalls",
    "criu",
    "rootless ids",
    "systemd",
];

fn report(rt: &Runtime) -> (Value, i32) {
    let out = rt.skiff(&["check", "--format", "json"]);
    let doc: Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("check --format json: {e}: {}", describe(&out)));
    (doc, exit_code(&out))
}

fn item<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no check {name:?} in {doc}"))
}

#[test]
fn check_reports_every_item_and_exits_by_the_verdict() {
    require_root!();
    let rt = Runtime::new();
    let (doc, code) = report(&rt);
    // This host runs the whole conformance suite: a default container runs.
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["ok"], true, "{doc}");
    for name in NAMES {
        let c = item(&doc, name);
        let status = c["status"].as_str().unwrap_or("");
        assert!(["ok", "warn", "fail"].contains(&status), "{c}");
        assert_eq!(
            status == "ok",
            c["fix"].is_null(),
            "a fix for every non-OK item only: {c}"
        );
        assert!(c["detail"].as_str().is_some_and(|d| !d.is_empty()), "{c}");
    }
    let table = rt.skiff(&["check"]);
    assert_success(&table, "check");
    let t = stdout(&table);
    for name in NAMES {
        assert!(
            t.lines().any(|l| l.starts_with(name)),
            "{name} missing: {t}"
        );
    }
    assert!(t.contains("this host can run containers"), "{t}");
}

#[test]
fn check_agrees_with_what_the_host_has() {
    require_root!();
    let rt = Runtime::new();
    let (doc, _) = report(&rt);
    let fstype = output_with_timeout(
        Command::new("stat").args(["-f", "-c", "%T", "/sys/fs/cgroup"]),
        DEFAULT_TIMEOUT,
    );
    let v2 = stdout(&fstype).trim() == "cgroup2fs";
    let cg = item(&doc, "cgroup");
    let detail = cg["detail"].as_str().unwrap_or("");
    assert_eq!(detail.starts_with("v2"), v2, "{cg}");
    let v1 = !v2
        && std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains(" - cgroup ") && l.contains(",memory"));
    assert_eq!(detail.starts_with("v1"), v1, "{cg}");
    let overlay = std::fs::read_to_string("/proc/filesystems")
        .unwrap_or_default()
        .lines()
        .any(|l| l.ends_with("\toverlay"));
    let ov = item(&doc, "overlayfs");
    assert_eq!(ov["status"] == "ok", overlay, "{ov}");
    let criu = Command::new("criu")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let c = item(&doc, "criu");
    assert_eq!(
        c["detail"].as_str().unwrap_or("").starts_with("criu "),
        criu,
        "{c}"
    );
}

//! Namespaces beyond the defaults: a user namespace with id mappings, a
//! namespace joined by path, and a time namespace with offsets.

use serde_json::json;
use skiff_conformance::*;

#[test]
fn user_namespace_maps_container_root() {
    if !preflight("user_namespace_maps_container_root") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::sh(
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; grep CapEff /proc/self/status",
    );
    bundle.set_namespace("user", None);
    let map = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    bundle.config_mut()["linux"]["uidMappings"] = map.clone();
    bundle.config_mut()["linux"]["gidMappings"] = map;
    let text = rt.run_ok(&bundle);
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines.first().map(|l| l[0]),
        Some("0"),
        "uid in the container: {text}"
    );
    assert_eq!(
        lines.get(1).map(|l| l[0]),
        Some("0"),
        "gid in the container: {text}"
    );
    assert_eq!(
        lines.get(2),
        Some(&vec!["0", "200000", "65536"]),
        "uid_map: {text}"
    );
    assert_eq!(
        lines.get(3),
        Some(&vec!["0", "200000", "65536"]),
        "gid_map: {text}"
    );
    // The configured capabilities still hold inside the user namespace.
    let eff = text
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(str::trim)
        .expect("CapEff line");
    assert_ne!(
        eff, "0000000000000000",
        "no capabilities inside the user namespace: {text}"
    );
}

#[test]
fn user_namespace_init_is_unprivileged_on_the_host() {
    if !preflight("user_namespace_init_is_unprivileged_on_the_host") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::with_args(&["sleep", "1000"]);
    bundle.set_namespace("user", None);
    let map = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    bundle.config_mut()["linux"]["uidMappings"] = map.clone();
    bundle.config_mut()["linux"]["gidMappings"] = map;
    let id = unique_id("userns");
    let pid = rt.start_container(&bundle, &id);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let uid = parse_status(&status)
        .get("Uid")
        .cloned()
        .unwrap_or_default();
    assert!(
        uid.split_whitespace().all(|u| u == "300000"),
        "host uids of init: {uid}"
    );
    assert_ne!(
        ns_inode(pid, "user"),
        ns_inode(std::process::id() as i64, "user")
    );
    assert_success(&rt.delete_force(&id), "delete --force");
    assert_no_leftovers(&rt, &id, &bundle);
}

#[test]
fn namespace_joined_by_path() {
    if !preflight("namespace_joined_by_path") {
        return;
    }
    let rt = Runtime::new();
    let first = Bundle::with_args(&["sleep", "1000"]);
    let a = unique_id("nsowner");
    let apid = rt.start_container(&first, &a);
    let mut second = Bundle::with_args(&["sleep", "1000"]);
    second.set_namespace("network", Some(&format!("/proc/{apid}/ns/net")));
    second.set_namespace("uts", Some(&format!("/proc/{apid}/ns/uts")));
    second
        .config_mut()
        .as_object_mut()
        .map(|o| o.remove("hostname"));
    let b = unique_id("nsjoiner");
    let bpid = rt.start_container(&second, &b);
    for ns in ["net", "uts"] {
        assert_eq!(ns_inode(bpid, ns), ns_inode(apid, ns), "{ns} not joined");
    }
    assert_ne!(
        ns_inode(bpid, "mnt"),
        ns_inode(apid, "mnt"),
        "mnt must stay private"
    );
    assert_ne!(
        ns_inode(bpid, "pid"),
        ns_inode(apid, "pid"),
        "pid must stay private"
    );
    assert_success(&rt.delete_force(&b), "delete --force joiner");
    assert_success(&rt.delete_force(&a), "delete --force owner");
    assert_no_leftovers(&rt, &a, &first);
    assert_no_leftovers(&rt, &b, &second);
}

#[test]
fn time_namespace_offsets_apply() {
    if !preflight("time_namespace_offsets_apply") {
        return;
    }
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        skip!("kernel without time namespaces");
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::sh("cat /proc/uptime");
    bundle.set_namespace("time", None);
    bundle.config_mut()["linux"]["timeOffsets"] =
        json!({"boottime": {"secs": 1_000_000, "nanosecs": 0}});
    let text = rt.run_ok(&bundle);
    let inside: f64 = text
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("uptime");
    let host: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|v| v.parse().ok()))
        .expect("host uptime");
    assert!(
        inside > host + 999_000.0,
        "uptime inside {inside}, host {host}"
    );
}

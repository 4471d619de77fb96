//! Per-process kernel attributes: personality, scheduler, I/O priority,
//! NUMA memory policy, LSM labels; and the host-resource fields
//! (netDevices, intelRdt) where this host can check them.

use serde_json::json;
use skiff_conformance::*;

/// Show, from inside the container: machine, personality, nice, policy,
/// I/O class, and the NUMA policy of the first mapping.
const SHOW: &str = r#"uname -m; cat /proc/self/personality; awk '{print "nice=" $19, "policy=" $41}' /proc/self/stat; ionice; head -n 1 /proc/self/numa_maps | cut -d' ' -f2"#;

/// `uname -m` in a container: native, and under personality LINUX32.
const MACHINE: &str = std::env::consts::ARCH;
#[cfg(target_arch = "x86_64")]
const MACHINE32: &str = "i686";
#[cfg(target_arch = "aarch64")]
const MACHINE32: &str = "armv8l";

fn run_with(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let rt = Runtime::new();
    let mut b = Bundle::sh(SHOW);
    edit(b.config_mut());
    rt.run_ok(&b)
}

#[test]
fn personality_linux32_and_flags() {
    require_root!();
    let out = run_with(|c| {
        c["linux"]["personality"] = json!({"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]})
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], MACHINE32, "{out}");
    // PER_LINUX32 (0x8) | ADDR_NO_RANDOMIZE (0x40000)
    assert_eq!(lines[1], "00040008", "{out}");
}

#[test]
fn default_personality_is_linux() {
    require_root!();
    let out = run_with(|_| {});
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], MACHINE, "{out}");
    assert_eq!(lines[1], "00000000", "{out}");
    assert_eq!(lines[2], "nice=0 policy=0", "{out}");
    assert_eq!(lines[4], "default", "{out}");
}

#[test]
fn scheduler_ioprio_and_memory_policy() {
    require_root!();
    let out = run_with(|c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
        c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[2], "nice=7 policy=3", "{out}");
    assert_eq!(lines[3], "idle", "{out}");
    assert_eq!(lines[4], "bind:0", "{out}");
    let out = run_with(|c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_IDLE"});
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
        c["linux"]["memoryPolicy"] =
            json!({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]});
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[2], "nice=0 policy=5", "{out}");
    assert_eq!(lines[3], "best-effort: prio 6", "{out}");
    assert!(
        lines[4].starts_with("interleave=static:0") || lines[4].starts_with("interleave:0"),
        "{out}"
    );
}

#[test]
fn exec_gets_its_own_scheduler_and_ioprio() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::with_args(&["sleep", "30"]);
    b.config_mut()["linux"]["personality"] = json!({"domain": "LINUX32"});
    let id = unique_id("attrs-exec");
    rt.start_container(&b, &id);
    let mut process = b.config()["process"].clone();
    process["args"] = json!(["sh", "-c", SHOW]);
    process["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 3});
    process["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 2});
    let pj = b.path().join("process.json");
    std::fs::write(&pj, process.to_string()).unwrap();
    let out = rt.exec_with(&["--process", pj.to_str().unwrap()], &id, &[]);
    assert_success(&out, "exec");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    // linux.personality applies to every process of the container.
    assert_eq!(lines[0], MACHINE32, "{text}");
    assert_eq!(lines[2], "nice=3 policy=3", "{text}");
    assert_eq!(lines[3], "best-effort: prio 2", "{text}");
    // A bad value is refused before anything runs, naming the field.
    process["scheduler"] = json!({"policy": "SCHED_OTHER", "nice": 40});
    std::fs::write(&pj, process.to_string()).unwrap();
    let out = rt.exec_with(&["--process", pj.to_str().unwrap()], &id, &[]);
    assert_error_line(&out, "process.scheduler.nice");
    rt.delete_force(&id);
}

fn refused(tag: &str, needle: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let rt = Runtime::new();
    let mut b = Bundle::sh("true");
    edit(b.config_mut());
    let id = unique_id(tag);
    let out = rt.create(&b, &id, &[]);
    assert_clean_failure(&out, needle, &rt, &id, &b);
}

#[test]
fn bad_attribute_values_are_refused() {
    require_root!();
    refused("sched-nice", "process.scheduler.nice", |c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "nice": 20})
    });
    refused("sched-prio", "process.scheduler.priority", |c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "priority": 5})
    });
    refused("sched-rtprio", "process.scheduler.priority", |c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_FIFO", "priority": 0})
    });
    refused("sched-dl", "process.scheduler", |c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "runtime": 1000})
    });
    refused("ioprio", "process.ioPriority.priority", |c| {
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_RT", "priority": 8})
    });
    refused("mpol-nodes", "linux.memoryPolicy.nodes", |c| {
        c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "3-1"})
    });
    refused("mpol-empty", "linux.memoryPolicy.nodes", |c| {
        c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND"})
    });
    refused("mpol-local", "linux.memoryPolicy.nodes", |c| {
        c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_LOCAL", "nodes": "0"})
    });
    refused("pers-flag", "linux.personality.flags[0]", |c| {
        c["linux"]["personality"] = json!({"domain": "LINUX", "flags": ["NO_SUCH_FLAG"]})
    });
}

#[test]
fn net_devices_are_checked_before_anything_is_built() {
    require_root!();
    refused(
        "netdev-missing",
        "skiffnodev0\\\"]: no such network device",
        |c| c["linux"]["netDevices"] = json!({"skiffnodev0": {}}),
    );
    refused("netdev-name", "is not a valid interface name", |c| {
        c["linux"]["netDevices"] = json!({"lo": {"name": "bad/name"}})
    });
    refused("netdev-hostns", "linux.netDevices", |c| {
        c["linux"]["netDevices"] = json!({"lo": {}});
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
    });
}

#[test]
fn intel_rdt_without_resctrl_is_a_clear_error() {
    require_root!();
    let mounted = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(" - resctrl ");
    if mounted {
        skip!("resctrl is mounted here");
    }
    refused("rdt", "linux.intelRdt", |c| {
        c["linux"]["intelRdt"] = json!({"closID": "skiff", "l3CacheSchema": "L3:0=f"})
    });
}

#[test]
fn apparmor_profile_without_apparmor_is_a_clear_error() {
    require_root!();
    let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.starts_with('Y'));
    if enabled {
        // The VM suite (integration/vm/suite-security.sh) covers the enabled case.
        skip!("AppArmor is enabled here");
    }
    refused("apparmor", "process.apparmorProfile", |c| {
        c["process"]["apparmorProfile"] = json!("skiff-test")
    });
}

#[test]
fn selinux_labels_are_a_no_op_when_selinux_is_disabled() {
    require_root!();
    if std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        skip!("SELinux is enabled here");
    }
    let rt = Runtime::new();
    let mut b = Bundle::sh("echo ok; grep -c context= /proc/self/mountinfo || true");
    b.config_mut()["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0:c1,c2");
    b.config_mut()["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0:c1,c2");
    let id = unique_id("selinux");
    let out = rt.run(&b, &id, &[]);
    assert_success(&out, "run with SELinux labels");
    assert_eq!(stdout(&out), "ok\n0\n", "{}", describe(&out));
    assert!(
        stderr(&out).contains("SELinux is disabled"),
        "no warning: {}",
        describe(&out)
    );
}

#[test]
fn features_match_what_this_host_supports() {
    require_root!();
    let rt = Runtime::new();
    let out = rt.skiff(&["features"]);
    assert_success(&out, "features");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.starts_with('Y'));
    let resctrl = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(" - resctrl ");
    assert_eq!(v["linux"]["apparmor"]["enabled"], json!(apparmor), "{v}");
    assert_eq!(v["linux"]["intelRdt"]["enabled"], json!(resctrl), "{v}");
    assert_eq!(
        v["linux"]["mountExtensions"]["idmap"]["enabled"],
        json!(true),
        "{v}"
    );
    let opts = v["mountOptions"].as_array().unwrap();
    assert!(
        opts.contains(&json!("idmap")) && opts.contains(&json!("ridmap")),
        "{v}"
    );
}

//! Bad bundles and arguments: each fails with one clear line and leaves
//! nothing behind.

use serde_json::json;
use skiff_conformance::*;
use std::fs;

/// `create` of `bundle` (saved as is) must fail cleanly mentioning `needle`;
/// `run` of the same must too.
fn create_and_run_fail(bundle: &Bundle, needle: &str, tag: &str) {
    let rt = Runtime::new();
    let id = unique_id(tag);
    let out = rt.create(bundle, &id, &[]);
    assert_clean_failure(&out, needle, &rt, &id, bundle);
    let id = unique_id(tag);
    let out = rt.run(bundle, &id, &[]);
    assert_clean_failure(&out, needle, &rt, &id, bundle);
}

/// Like [`create_and_run_fail`] but for a config.json written by hand.
fn raw_config_fails(text: &str, needle: &str, tag: &str) {
    let rt = Runtime::new();
    let bundle = Bundle::new();
    let b = bundle.path().to_string_lossy().into_owned();
    for cmd in ["create", "run"] {
        fs::write(bundle.config_path(), text).unwrap();
        let id = unique_id(tag);
        rt.track(&id);
        let out = rt.skiff(&[cmd, "--bundle", &b, &id]);
        assert_clean_failure(&out, needle, &rt, &id, &bundle);
    }
}

#[test]
fn missing_bundle_directory() {
    if !preflight("missing_bundle_directory") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::new();
    let missing = format!("{}-missing", bundle.path().display());
    let id = unique_id("nobundle");
    rt.track(&id);
    let out = rt.skiff(&["create", "--bundle", &missing, &id]);
    assert_clean_failure(&out, &missing, &rt, &id, &bundle);
    let out = rt.skiff(&["run", "-b", &missing, &id]);
    assert_clean_failure(&out, &missing, &rt, &id, &bundle);
}

#[test]
fn missing_config_json() {
    if !preflight("missing_config_json") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::new();
    let b = bundle.path().to_string_lossy().into_owned();
    let id = unique_id("noconfig");
    rt.track(&id);
    let out = rt.skiff(&["create", "--bundle", &b, &id]);
    assert_clean_failure(&out, "config.json", &rt, &id, &bundle);
}

#[test]
fn invalid_json_reports_line_and_column() {
    if !preflight("invalid_json_reports_line_and_column") {
        return;
    }
    raw_config_fails(
        "{\n  \"ociVersion\": \"1.2.0\",\n    x\n}\n",
        "line 3 column 5",
        "badjson",
    );
}

#[test]
fn wrong_json_type_is_reported() {
    if !preflight("wrong_json_type_is_reported") {
        return;
    }
    let mut cfg = default_config();
    cfg["process"]["args"] = json!("sh -c true");
    raw_config_fails(
        &serde_json::to_string_pretty(&cfg).unwrap(),
        "line",
        "badtype",
    );
}

#[test]
fn unsupported_oci_version() {
    if !preflight("unsupported_oci_version") {
        return;
    }
    let mut bundle = Bundle::with_args(&["true"]);
    bundle.config_mut()["ociVersion"] = json!("2.0.0");
    create_and_run_fail(&bundle, "ociVersion", "oci2");
}

#[test]
fn resources_are_rejected() {
    if !preflight("resources_are_rejected") {
        return;
    }
    // Refused only where skiff cannot apply it: a limit for a controller
    // this host has neither in cgroup v2 nor mounted as a v1 hierarchy.
    let v2 = fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").unwrap_or_default();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let has = |c: &str| {
        v2.split_whitespace().any(|x| x == c)
            || mounts.lines().any(|l| {
                l.contains(" - cgroup ")
                    && l.rsplit(' ')
                        .next()
                        .is_some_and(|o| o.split(',').any(|x| x == c))
            })
    };
    let limit = if !has("hugetlb") {
        json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]})
    } else if !has("rdma") {
        json!({"rdma": {"mlx5_0": {"hcaHandles": 3}}})
    } else {
        skip!(
            "this host has the hugetlb and rdma controllers: the limits are applied, not refused"
        );
    };
    let mut bundle = Bundle::with_args(&["true"]);
    bundle.config_mut()["linux"]["resources"] = limit;
    create_and_run_fail(&bundle, "linux.resources", "resources");
}

#[test]
fn empty_args_are_rejected() {
    if !preflight("empty_args_are_rejected") {
        return;
    }
    let mut bundle = Bundle::new();
    bundle.set_args(&[]);
    create_and_run_fail(&bundle, "args", "noargs");
}

#[test]
fn relative_cwd_is_rejected() {
    if !preflight("relative_cwd_is_rejected") {
        return;
    }
    let mut bundle = Bundle::with_args(&["true"]);
    bundle.config_mut()["process"]["cwd"] = json!("tmp");
    create_and_run_fail(&bundle, "cwd", "relcwd");
}

#[test]
fn missing_rootfs_is_rejected() {
    if !preflight("missing_rootfs_is_rejected") {
        return;
    }
    let mut bundle = Bundle::with_args(&["true"]);
    bundle.config_mut()["root"]["path"] = json!("no-such-rootfs");
    create_and_run_fail(&bundle, "no-such-rootfs", "norootfs");
}

#[test]
fn missing_executable_fails_cleanly() {
    if !preflight("missing_executable_fails_cleanly") {
        return;
    }
    let bundle = Bundle::with_args(&["/bin/no-such-binary"]);
    // create succeeds or fails depending on when the lookup happens; run
    // must fail either way and leave nothing.
    let rt = Runtime::new();
    let id = unique_id("noexe");
    let out = rt.run(&bundle, &id, &[]);
    assert_clean_failure(&out, "no-such-binary", &rt, &id, &bundle);
}

#[test]
fn unknown_namespace_type() {
    if !preflight("unknown_namespace_type") {
        return;
    }
    let mut bundle = Bundle::with_args(&["true"]);
    bundle.set_namespace("bogusns", None);
    create_and_run_fail(&bundle, "bogusns", "badns");
}

#[test]
fn net_sysctl_without_netns() {
    if !preflight("net_sysctl_without_netns") {
        return;
    }
    let mut bundle = Bundle::with_args(&["true"]);
    bundle.remove_namespace("network");
    bundle.config_mut()["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    let before = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    create_and_run_fail(&bundle, "net.ipv4.ip_forward", "sysctlhost");
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        before,
        "the host sysctl was changed"
    );
}

#[test]
fn bad_signal_is_rejected() {
    if !preflight("bad_signal_is_rejected") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::with_args(&["sleep", "1000"]);
    let id = unique_id("badsig");
    let pid = rt.start_container(&bundle, &id);
    for sig in ["SIGNOPE", "NOPE", "999", "SIGKILLX"] {
        let out = rt.kill(&id, sig);
        assert_error_line(&out, "signal");
        assert_eq!(exit_code(&out), 1, "kill {sig:?}: {}", describe(&out));
    }
    assert_eq!(rt.status(&id), "running");
    assert!(pid_alive(pid));
}

#[test]
fn unknown_user_in_exec() {
    if !preflight("unknown_user_in_exec") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::with_args(&["sleep", "1000"]);
    let id = unique_id("nouser");
    rt.start_container(&bundle, &id);
    for user in ["nosuchuser", "1000:nosuchgroup"] {
        let out = rt.exec_with(&["--user", user], &id, &["true"]);
        assert_error_line(&out, "nosuch");
    }
    assert_eq!(rt.status(&id), "running");
}

#[test]
fn unknown_flags_and_missing_arguments() {
    if !preflight("unknown_flags_and_missing_arguments") {
        return;
    }
    let rt = Runtime::new();
    for args in [
        vec!["create", "--no-such-flag", "x"],
        vec!["start"],
        vec!["no-such-command"],
        vec!["kill"],
    ] {
        let out = rt.skiff(&args);
        assert!(!out.status.success(), "{args:?}: {}", describe(&out));
        assert!(!stderr(&out).trim().is_empty(), "{args:?}: no error text");
    }
    assert_eq!(
        fs::read_dir(rt.root()).map(|d| d.count()).unwrap_or(0),
        0,
        "usage errors created state"
    );
}

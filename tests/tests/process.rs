//! The container process as configured by `process` and friends, observed
//! from inside the container.

use serde_json::json;
use skiff_conformance::*;
use std::fs;
use std::time::Duration;

/// Value of `field` in the status map, panicking with the whole text.
fn field(status: &str, name: &str) -> String {
    parse_status(status)
        .get(name)
        .cloned()
        .unwrap_or_else(|| panic!("no {name} in /proc/self/status:\n{status}"))
}

#[test]
fn args_env_and_cwd() {
    if !preflight("args_env_and_cwd") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::with_args(&[
        "sh",
        "-c",
        "echo \"argc=$# a1=[$1] a2=[$2]\"; echo \"foo=[$FOO] path=[$PATH]\"; pwd",
        "zero",
        "one two",
        "three",
    ]);
    bundle.add_env("FOO=bar baz=qux");
    bundle.config_mut()["process"]["cwd"] = json!("/home/alice");
    let out = rt.run_ok(&bundle);
    assert!(out.contains("argc=2 a1=[one two] a2=[three]"), "{out}");
    assert!(
        out.contains("foo=[bar baz=qux] path=[/usr/sbin:/usr/bin:/sbin:/bin]"),
        "{out}"
    );
    assert_eq!(out.lines().last(), Some("/home/alice"), "{out}");
}

/// A signal the caller ignores is not ignored in the container (an ignored
/// disposition survives exec): init resets every signal, 1 to 64, also
/// those the C library keeps for itself (34 in musl) and 64.
#[test]
fn ignored_signals_do_not_leak_into_the_container() {
    if !preflight("ignored_signals_do_not_leak_into_the_container") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::with_args(&["grep", "SigIgn", "/proc/self/status"]);
    bundle.save();
    let id = unique_id("sigign");
    rt.track(&id);
    let path = bundle.path().to_string_lossy().into_owned();
    let mut cmd = rt.shell_command(
        "trap '' USR1 34 64;",
        &["run", "--bundle", &path, &id],
        "</dev/null",
    );
    let out = rt.output(&mut cmd);
    assert_success(&out, "run");
    assert_eq!(
        stdout(&out).trim(),
        "SigIgn:\t0000000000000000",
        "{}",
        describe(&out)
    );
}

#[test]
fn env_is_exactly_the_configured_one() {
    if !preflight("env_is_exactly_the_configured_one") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::with_args(&["env"]);
    // Something in skiff's own environment must not leak in.
    let id = unique_id("env");
    let mut cmd = rt.run_command(&bundle, &id, &[]);
    cmd.env("SKIFF_HOST_ONLY_VAR", "leak");
    let out = rt.output(&mut cmd);
    assert_success(&out, "run env");
    let text = stdout(&out);
    assert!(
        !text.contains("SKIFF_HOST_ONLY_VAR"),
        "host env leaked: {text}"
    );
    assert!(
        text.contains("PATH=/usr/sbin:/usr/bin:/sbin:/bin"),
        "{text}"
    );
    assert!(text.contains(&format!("SKIFF_TEST_MARK={}", bundle.marker())));
    // runc adds HOME from /etc/passwd when it is not set.
    assert!(text.lines().any(|l| l == "HOME=/root"), "{text}");
}

#[test]
fn missing_cwd_is_created() {
    if !preflight("missing_cwd_is_created") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::with_args(&["pwd"]);
    bundle.config_mut()["process"]["cwd"] = json!("/work/dir/deep");
    let out = rt.run_ok(&bundle);
    assert_eq!(out.trim(), "/work/dir/deep");
    assert!(bundle.rootfs().join("work/dir/deep").is_dir());
}

#[test]
fn hostname_and_domainname() {
    if !preflight("hostname_and_domainname") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::sh("hostname; cat /proc/sys/kernel/domainname");
    bundle.config_mut()["hostname"] = json!("box-under-test");
    bundle.config_mut()["domainname"] = json!("example.test");
    let host_before = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let out = rt.run_ok(&bundle);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["box-under-test", "example.test"], "{out}");
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_before,
        "the host's hostname changed"
    );
}

#[test]
fn user_groups_and_umask() {
    if !preflight("user_groups_and_umask") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::sh(
        "id -u; id -g; grep '^Groups:' /proc/self/status; umask; \
         touch /tmp/made; stat -c '%u:%g %a' /tmp/made; echo HOME=$HOME",
    );
    bundle.config_mut()["process"]["user"] =
        json!({"uid": 1000, "gid": 1000, "additionalGids": [2000, 3000], "umask": 23});
    let out = rt.run_ok(&bundle);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert_eq!(lines[0], "1000");
    assert_eq!(lines[1], "1000");
    let groups: Vec<&str> = lines[2]
        .trim_start_matches("Groups:")
        .split_whitespace()
        .collect();
    assert!(
        groups.contains(&"2000") && groups.contains(&"3000"),
        "{out}"
    );
    assert!(!groups.contains(&"0"), "root group kept: {out}");
    assert_eq!(lines[3], "0027");
    assert_eq!(lines[4], "1000:1000 640");
    assert_eq!(lines[5], "HOME=/home/alice", "HOME from /etc/passwd");
}

fn caps_config() -> serde_json::Value {
    json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT"],
        "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
        "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
        "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_NET_BIND_SERVICE"]
    })
}

#[test]
fn capabilities_all_five_sets_as_root() {
    if !preflight("capabilities_all_five_sets_as_root") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::with_args(&["cat", "/proc/self/status"]);
    bundle.config_mut()["process"]["capabilities"] = caps_config();
    let status = rt.run_ok(&bundle);
    let bnd = cap_mask(&[
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_RAW",
        "CAP_SYS_CHROOT",
    ]);
    let inh = cap_mask(&["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let amb = cap_mask(&["CAP_NET_BIND_SERVICE"]);
    let prm = cap_mask(&[
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_RAW",
    ]);
    assert_eq!(field(&status, "CapBnd"), hex_mask(bnd), "CapBnd");
    assert_eq!(field(&status, "CapInh"), hex_mask(inh), "CapInh");
    assert_eq!(field(&status, "CapAmb"), hex_mask(amb), "CapAmb");
    // execve as uid 0 gives pP' = bounding | inheritable | ambient, but with
    // no_new_privs (set by the default config) pP' cannot exceed the permitted
    // set before execve; pE' = pP'.
    assert_eq!(field(&status, "NoNewPrivs"), "1");
    let want = (bnd | inh | amb) & prm;
    assert_eq!(field(&status, "CapPrm"), hex_mask(want), "CapPrm");
    assert_eq!(field(&status, "CapEff"), hex_mask(want), "CapEff");
}

#[test]
fn capabilities_all_five_sets_as_user() {
    if !preflight("capabilities_all_five_sets_as_user") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::with_args(&["cat", "/proc/self/status"]);
    bundle.config_mut()["process"]["capabilities"] = caps_config();
    bundle.config_mut()["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let status = rt.run_ok(&bundle);
    let amb = cap_mask(&["CAP_NET_BIND_SERVICE"]);
    assert_eq!(
        field(&status, "CapBnd"),
        hex_mask(cap_mask(&[
            "CAP_CHOWN",
            "CAP_KILL",
            "CAP_NET_BIND_SERVICE",
            "CAP_NET_RAW",
            "CAP_SYS_CHROOT"
        ]))
    );
    assert_eq!(
        field(&status, "CapInh"),
        hex_mask(cap_mask(&["CAP_KILL", "CAP_NET_BIND_SERVICE"]))
    );
    // A non-root execve keeps only the ambient set in pP and pE.
    assert_eq!(field(&status, "CapAmb"), hex_mask(amb), "CapAmb");
    assert_eq!(field(&status, "CapPrm"), hex_mask(amb), "CapPrm");
    assert_eq!(field(&status, "CapEff"), hex_mask(amb), "CapEff");
    assert_eq!(
        field(&status, "Uid").split_whitespace().next(),
        Some("1000")
    );
}

#[test]
fn rlimits_are_applied() {
    if !preflight("rlimits_are_applied") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle =
        Bundle::sh("ulimit -n; ulimit -Hn; ulimit -c; grep 'Max core' /proc/self/limits");
    bundle.config_mut()["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
        {"type": "RLIMIT_CORE", "soft": 1024, "hard": 4096}
    ]);
    let out = rt.run_ok(&bundle);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(lines[0], "123");
    assert_eq!(lines[1], "456");
    assert_eq!(lines[2], "2", "ulimit -c is in 512-byte blocks");
    // "Max core file size  1024  4096  bytes"
    let cols: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(cols.get(4..6), Some(&["1024", "4096"][..]), "{out}");
}

#[test]
fn no_new_privileges() {
    if !preflight("no_new_privileges") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::with_args(&["cat", "/proc/self/status"]);
    let status = rt.run_ok(&bundle);
    assert_eq!(field(&status, "NoNewPrivs"), "1");
}

#[test]
fn no_new_privileges_false_leaves_the_flag_unset() {
    if !preflight("no_new_privileges_false_leaves_the_flag_unset") {
        return;
    }
    let own = fs::read_to_string("/proc/self/status").unwrap();
    if field(&own, "NoNewPrivs") == "1" {
        skip!("the test runs with NoNewPrivs set");
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::with_args(&["cat", "/proc/self/status"]);
    bundle.config_mut()["process"]["noNewPrivileges"] = json!(false);
    let status = rt.run_ok(&bundle);
    assert_eq!(field(&status, "NoNewPrivs"), "0");
}

#[test]
fn oom_score_adj() {
    if !preflight("oom_score_adj") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::with_args(&["cat", "/proc/self/oom_score_adj"]);
    bundle.config_mut()["process"]["oomScoreAdj"] = json!(123);
    assert_eq!(rt.run_ok(&bundle).trim(), "123");
}

#[test]
fn preserve_fds_passes_extra_fds() {
    if !preflight("preserve_fds_passes_extra_fds") {
        return;
    }
    let rt = Runtime::new();
    // `; exit 0` keeps ash from exec'ing ls in place of the shell (ls's own
    // directory fd would show up in the listing).
    let bundle = Bundle::sh("echo via-fd3 >&3; ls /proc/$$/fd; exit 0");
    let id = unique_id("preserve");
    let host_file = bundle.path().join("fd3.out");
    let hf = host_file.to_string_lossy().into_owned();
    bundle.save();
    rt.track(&id);
    let b = bundle.path().to_string_lossy().into_owned();
    let mut cmd = rt.shell_command(
        "",
        &["run", "--preserve-fds", "1", "--bundle", &b, &id],
        &format!("3>>'{hf}' 4</etc/hostname"),
    );
    let out = rt.output(&mut cmd);
    assert_success(&out, "run --preserve-fds 1");
    assert_eq!(
        fs::read_to_string(&host_file).unwrap_or_default(),
        "via-fd3\n"
    );
    let text = stdout(&out);
    let fds: Vec<&str> = text.split_whitespace().collect();
    assert!(fds.contains(&"3"), "fd 3 not visible: {}", describe(&out));
    assert!(!fds.contains(&"4"), "fd 4 was not preserved but is visible");
    assert_no_leftovers(&rt, &id, &bundle);
}

#[test]
fn listen_fds_are_passed_and_adjusted() {
    if !preflight("listen_fds_are_passed_and_adjusted") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::sh("echo \"fds=[$LISTEN_FDS] pid=[$LISTEN_PID]\"; echo via-listen-fd >&3");
    let id = unique_id("listenfds");
    let host_file = bundle.path().join("listen.out");
    let hf = host_file.to_string_lossy().into_owned();
    bundle.save();
    rt.track(&id);
    let b = bundle.path().to_string_lossy().into_owned();
    let mut cmd = rt.shell_command(
        "export LISTEN_FDS=1 LISTEN_PID=$$;",
        &["run", "--bundle", &b, &id],
        &format!("3>>'{hf}'"),
    );
    let out = rt.output(&mut cmd);
    assert_success(&out, "run with LISTEN_FDS=1");
    assert!(
        stdout(&out).contains("fds=[1] pid=[1]"),
        "LISTEN_FDS/LISTEN_PID not adjusted: {}",
        describe(&out)
    );
    assert_eq!(
        fs::read_to_string(&host_file).unwrap_or_default(),
        "via-listen-fd\n"
    );
}

#[test]
fn signals_are_forwarded_by_foreground_run() {
    if !preflight("signals_are_forwarded_by_foreground_run") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::sh(
        "trap 'echo usr1 >> /tmp/marks' USR1; trap 'echo term >> /tmp/marks; exit 0' TERM; \
         touch /tmp/ready; while true; do sleep 0.1; done",
    );
    let id = unique_id("fwd");
    let spawned = rt.spawn_run(&bundle, &id, &[]);
    let ready = bundle.rootfs().join("tmp/ready");
    assert!(
        poll_until(Duration::from_secs(10), || ready.exists()),
        "container did not start"
    );
    let skiff = nix::unistd::Pid::from_raw(spawned.pid());
    let marks = bundle.rootfs().join("tmp/marks");
    let has = |w: &str| {
        fs::read_to_string(&marks)
            .unwrap_or_default()
            .lines()
            .any(|l| l == w)
    };
    nix::sys::signal::kill(skiff, nix::sys::signal::Signal::SIGUSR1).unwrap();
    assert!(
        poll_until(Duration::from_secs(10), || has("usr1")),
        "SIGUSR1 was not forwarded"
    );
    assert!(!has("term"));
    nix::sys::signal::kill(skiff, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = rt.finish(spawned);
    assert!(has("term"), "SIGTERM was not forwarded");
    assert_eq!(exit_code(&out), 0, "{}", describe(&out));
    assert_no_leftovers(&rt, &id, &bundle);
}

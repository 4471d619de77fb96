//! `exec` into a running container.

use serde_json::json;
use skiff_conformance::*;
use std::fs;
use std::time::Duration;

const NAMESPACES: [&str; 6] = ["mnt", "net", "ipc", "uts", "pid", "cgroup"];

fn running(rt: &Runtime, tag: &str) -> (Bundle, String, i64) {
    let bundle = Bundle::with_args(&["sleep", "1000"]);
    let id = unique_id(tag);
    let pid = rt.start_container(&bundle, &id);
    (bundle, id, pid)
}

#[test]
fn exec_joins_the_container_namespaces() {
    if !preflight("exec_joins_the_container_namespaces") {
        return;
    }
    let rt = Runtime::new();
    let (bundle, id, pid) = running(&rt, "execns");
    let pidfile = bundle.path().join("exec.pid");
    let pf = pidfile.to_string_lossy().into_owned();
    let out = rt.exec_with(&["--detach", "--pid-file", &pf], &id, &["sleep", "1000"]);
    assert_success(&out, "exec --detach");
    let epid: i64 = fs::read_to_string(&pidfile)
        .unwrap_or_default()
        .trim()
        .parse()
        .expect("exec --pid-file has a pid");
    assert!(pid_alive(epid));
    let me = std::process::id() as i64;
    for ns in NAMESPACES {
        let want = ns_inode(pid, ns).expect("init ns");
        assert_eq!(ns_inode(epid, ns), Some(want), "{ns} namespace differs");
        if ns != "cgroup" {
            assert_ne!(ns_inode(me, ns), Some(want), "init shares our {ns} ns");
        }
    }
    // Seen from inside: the same namespaces as pid 1, and pid 1 is the init.
    let out = rt.exec(
        &id,
        &["sh", "-c", "for n in mnt net ipc uts pid; do [ \"$(readlink /proc/self/ns/$n)\" = \"$(readlink /proc/1/ns/$n)\" ] || echo differs $n; done; cat /proc/1/cmdline"],
    );
    assert_success(&out, "exec sh");
    let text = stdout(&out);
    assert!(!text.contains("differs"), "{text}");
    assert!(text.starts_with("sleep"), "pid 1 is not the init: {text:?}");
    // The detached exec shows up in ps.
    let ps = rt.skiff(&["ps", "--format", "json", &id]);
    assert_success(&ps, "ps");
    let pids: Vec<i64> = serde_json::from_slice::<serde_json::Value>(&ps.stdout)
        .expect("ps json")
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_i64()).collect())
        .unwrap_or_default();
    assert!(pids.contains(&epid) && pids.contains(&pid), "{pids:?}");
    assert_success(&rt.delete_force(&id), "delete --force");
    assert!(poll_until(Duration::from_secs(5), || !pid_alive(epid)));
    assert_no_leftovers(&rt, &id, &bundle);
}

#[test]
fn exec_env_cwd_and_user() {
    if !preflight("exec_env_cwd_and_user") {
        return;
    }
    let rt = Runtime::new();
    let (_bundle, id, _) = running(&rt, "execenv");
    let out = rt.exec_with(
        &[
            "--env",
            "FOO=bar",
            "--env",
            "SECOND=2",
            "--cwd",
            "/tmp",
            "--user",
            "1000:1000",
            "--additional-gids",
            "2000",
        ],
        &id,
        &[
            "sh",
            "-c",
            "echo $FOO $SECOND; pwd; id -u; id -g; grep '^Groups:' /proc/self/status; echo $SKIFF_TEST_MARK",
        ],
    );
    assert_success(&out, "exec with --env/--cwd/--user");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert_eq!(lines[0], "bar 2");
    assert_eq!(lines[1], "/tmp");
    assert_eq!(lines[2], "1000");
    assert_eq!(lines[3], "1000");
    assert!(lines[4].split_whitespace().any(|g| g == "2000"), "{text}");
    assert!(
        !lines[5].is_empty(),
        "the config env is not inherited by exec"
    );
    let out = rt.exec_with(&["-e", "SHORT=yes"], &id, &["sh", "-c", "echo $SHORT"]);
    assert_success(&out, "exec -e");
    assert_eq!(stdout(&out), "yes\n");
}

#[test]
fn exec_cap_adds_a_capability() {
    if !preflight("exec_cap_adds_a_capability") {
        return;
    }
    let rt = Runtime::new();
    let (_bundle, id, _) = running(&rt, "execcap");
    let admin = cap_mask(&["CAP_SYS_ADMIN"]);
    let mask = |out: &std::process::Output, f: &str| {
        let st = parse_status(&stdout(out));
        u64::from_str_radix(st.get(f).map(String::as_str).unwrap_or("x"), 16)
            .unwrap_or_else(|_| panic!("no {f}: {}", describe(out)))
    };
    let plain = rt.exec(&id, &["cat", "/proc/self/status"]);
    assert_success(&plain, "exec");
    assert_eq!(mask(&plain, "CapEff") & admin, 0, "SYS_ADMIN without --cap");
    assert_eq!(mask(&plain, "CapBnd") & admin, 0);
    let with = rt.exec_with(
        &["--cap", "CAP_SYS_ADMIN"],
        &id,
        &["cat", "/proc/self/status"],
    );
    assert_success(&with, "exec --cap");
    assert_eq!(mask(&with, "CapEff") & admin, admin, "--cap not effective");
    assert_eq!(
        mask(&with, "CapBnd") & admin,
        admin,
        "--cap not in bounding"
    );
    // The default caps are still there.
    let kill = cap_mask(&["CAP_KILL"]);
    assert_eq!(mask(&with, "CapEff") & kill, kill);
}

#[test]
fn exec_no_new_privs_flag() {
    if !preflight("exec_no_new_privs_flag") {
        return;
    }
    let own = parse_status(&fs::read_to_string("/proc/self/status").unwrap());
    if own.get("NoNewPrivs").map(String::as_str) == Some("1") {
        skip!("the test runs with NoNewPrivs set");
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::with_args(&["sleep", "1000"]);
    bundle.config_mut()["process"]["noNewPrivileges"] = json!(false);
    let id = unique_id("execnnp");
    rt.start_container(&bundle, &id);
    let nnp = |opts: &[&str]| {
        let out = rt.exec_with(opts, &id, &["cat", "/proc/self/status"]);
        assert_success(&out, "exec");
        parse_status(&stdout(&out)).get("NoNewPrivs").cloned()
    };
    assert_eq!(nnp(&[]).as_deref(), Some("0"));
    assert_eq!(nnp(&["--no-new-privs"]).as_deref(), Some("1"));
}

#[test]
fn exec_process_file() {
    if !preflight("exec_process_file") {
        return;
    }
    let rt = Runtime::new();
    let (bundle, id, _) = running(&rt, "execproc");
    let process = json!({
        "terminal": false,
        "user": {"uid": 1000, "gid": 1000},
        "args": ["sh", "-c", "echo \"$ONLY_HERE $(id -u) $(pwd)\""],
        "env": ["PATH=/bin", "ONLY_HERE=from-process-json"],
        "cwd": "/home/alice"
    });
    let file = bundle.path().join("process.json");
    fs::write(&file, process.to_string()).unwrap();
    let f = file.to_string_lossy().into_owned();
    let out = rt.exec_with(&["--process", &f], &id, &[]);
    assert_success(&out, "exec --process");
    assert_eq!(stdout(&out), "from-process-json 1000 /home/alice\n");
}

#[test]
fn exec_exit_code_and_stopped_container() {
    if !preflight("exec_exit_code_and_stopped_container") {
        return;
    }
    let rt = Runtime::new();
    let (bundle, id, _) = running(&rt, "execexit");
    let out = rt.exec(&id, &["sh", "-c", "exit 5"]);
    assert_eq!(exit_code(&out), 5, "{}", describe(&out));
    assert_success(&rt.kill(&id, "KILL"), "kill");
    rt.expect_status(&id, "stopped");
    let out = rt.exec(&id, &["true"]);
    assert_error_line(&out, "stopped");
    assert_success(&rt.delete(&id), "delete");
    assert_no_leftovers(&rt, &id, &bundle);
}

#[test]
fn exec_preserve_fds() {
    if !preflight("exec_preserve_fds") {
        return;
    }
    let rt = Runtime::new();
    let (bundle, id, _) = running(&rt, "execfds");
    let host_file = bundle.path().join("exec-fd3.out");
    let hf = host_file.to_string_lossy().into_owned();
    let mut cmd = rt.shell_command(
        "",
        &[
            "exec",
            "--preserve-fds",
            "1",
            &id,
            "sh",
            "-c",
            "echo exec-fd3 >&3; ls /proc/$$/fd; exit 0",
        ],
        &format!("3>>'{hf}' 4</etc/hostname"),
    );
    let out = rt.output(&mut cmd);
    assert_success(&out, "exec --preserve-fds 1");
    assert_eq!(
        fs::read_to_string(&host_file).unwrap_or_default(),
        "exec-fd3\n"
    );
    let text = stdout(&out);
    let fds: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "{}", describe(&out));
}

#[test]
fn exec_unknown_user_fails_cleanly() {
    if !preflight("exec_unknown_user_fails_cleanly") {
        return;
    }
    let rt = Runtime::new();
    let (_bundle, id, pid) = running(&rt, "execnouser");
    let out = rt.exec_with(&["--user", "nosuchuser"], &id, &["true"]);
    assert_error_line(&out, "nosuchuser");
    assert_eq!(rt.status(&id), "running");
    assert!(pid_alive(pid));
    let ps = rt.skiff(&["ps", "--format", "json", &id]);
    let pids: Vec<serde_json::Value> = serde_json::from_slice(&ps.stdout).unwrap_or_default();
    assert_eq!(pids.len(), 1, "a failed exec left a process: {pids:?}");
}

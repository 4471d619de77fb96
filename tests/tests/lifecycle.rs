//! create / start / state / kill / delete / run: the container lifecycle.

use skiff_conformance::*;
use std::fs;
use std::path::Path;
use std::time::Duration;

/// A script that traps `sig` and appends `name` to /tmp/<file> for each one,
/// then idles forever (short sleeps so the trap runs promptly).
fn trap_script(traps: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (sig, line) in traps {
        s.push_str(&format!("trap 'echo {line} >> /tmp/signals' {sig}; "));
    }
    s.push_str("touch /tmp/ready; while true; do sleep 0.1; done");
    s
}

fn wait_for_file(path: &Path) -> bool {
    poll_until(Duration::from_secs(10), || path.exists())
}

fn canon(p: &Path) -> String {
    fs::canonicalize(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

#[test]
fn create_start_kill_delete_full_cycle() {
    if !preflight("create_start_kill_delete_full_cycle") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::sh("touch /started; exec sleep 1000");
    let id = unique_id("cycle");

    let pid = rt.create_ok(&bundle, &id);
    assert!(pid > 0 && pid_alive(pid), "init pid {pid} is not alive");
    assert!(
        rt.state_dir(&id).join("state.json").is_file(),
        "no {}/state.json",
        rt.state_dir(&id).display()
    );
    let st = rt.state(&id);
    assert_eq!(st["status"], "created", "state after create: {st}");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["pid"].as_i64(), Some(pid));
    // The user process must not run before `start`.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !bundle.rootfs().join("started").exists(),
        "the container process ran before start"
    );

    assert_success(&rt.start(&id), "start");
    assert!(
        wait_for_file(&bundle.rootfs().join("started")),
        "the process did not run after start"
    );
    rt.expect_status(&id, "running");
    assert_eq!(rt.pid(&id), pid, "start must exec in the init process");

    assert_success(&rt.kill(&id, "KILL"), "kill KILL");
    rt.expect_status(&id, "stopped");
    assert!(
        poll_until(Duration::from_secs(5), || !pid_alive(pid)),
        "init {pid} still alive after SIGKILL"
    );

    assert_success(&rt.delete(&id), "delete of a stopped container");
    assert!(
        rt.try_state(&id).is_none(),
        "state still works after delete"
    );
    assert_no_leftovers(&rt, &id, &bundle);
}

#[test]
fn state_json_has_all_fields() {
    if !preflight("state_json_has_all_fields") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::with_args(&["sleep", "1000"]);
    bundle.config_mut()["annotations"] = serde_json::json!({"org.skiff.test": "yes"});
    let id = unique_id("state");
    let pid = rt.create_ok(&bundle, &id);
    let st = rt.state(&id);
    for key in [
        "ociVersion",
        "id",
        "status",
        "pid",
        "bundle",
        "rootfs",
        "created",
        "owner",
    ] {
        assert!(st.get(key).is_some(), "state lacks {key:?}: {st}");
    }
    assert!(
        st["ociVersion"].as_str().unwrap_or("").starts_with("1."),
        "ociVersion: {st}"
    );
    assert_eq!(st["pid"].as_i64(), Some(pid));
    assert_eq!(
        canon(Path::new(st["bundle"].as_str().unwrap_or(""))),
        canon(bundle.path())
    );
    assert_eq!(
        canon(Path::new(st["rootfs"].as_str().unwrap_or(""))),
        canon(&bundle.rootfs())
    );
    let created = st["created"].as_str().unwrap_or("");
    assert!(
        created.len() >= 20 && created.as_bytes()[4] == b'-' && created.contains('T'),
        "created is not an RFC 3339 time: {created:?}"
    );
    assert!(st["owner"].is_string(), "owner: {st}");
    assert_eq!(
        st["annotations"]["org.skiff.test"], "yes",
        "annotations: {st}"
    );
    assert_success(&rt.delete_force(&id), "delete --force");
    assert_no_leftovers(&rt, &id, &bundle);
}

#[test]
fn start_of_running_container_fails() {
    if !preflight("start_of_running_container_fails") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::with_args(&["sleep", "1000"]);
    let id = unique_id("start2");
    let pid = rt.start_container(&bundle, &id);
    let out = rt.start(&id);
    assert_error_line(&out, "running");
    assert_eq!(rt.status(&id), "running");
    assert!(pid_alive(pid));
}

#[test]
fn delete_running_needs_force() {
    if !preflight("delete_running_needs_force") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::with_args(&["sleep", "1000"]);
    let id = unique_id("delrun");
    let pid = rt.start_container(&bundle, &id);
    let out = rt.delete(&id);
    assert_error_line(&out, "running");
    assert_eq!(
        rt.status(&id),
        "running",
        "delete without --force changed it"
    );
    assert!(pid_alive(pid));
    assert_success(&rt.delete_force(&id), "delete --force");
    assert!(poll_until(Duration::from_secs(5), || !pid_alive(pid)));
    assert_no_leftovers(&rt, &id, &bundle);
}

#[test]
fn delete_created_container_kills_init() {
    if !preflight("delete_created_container_kills_init") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::with_args(&["sleep", "1000"]);
    let id = unique_id("delcreated");
    let pid = rt.create_ok(&bundle, &id);
    assert_success(&rt.delete(&id), "delete of a created container");
    assert!(poll_until(Duration::from_secs(5), || !pid_alive(pid)));
    assert_no_leftovers(&rt, &id, &bundle);
}

#[test]
fn container_that_exits_is_stopped() {
    if !preflight("container_that_exits_is_stopped") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::sh("exit 3");
    let id = unique_id("exits");
    rt.start_container_allow_exit(&bundle, &id);
    rt.expect_status(&id, "stopped");
    let out = rt.start(&id);
    assert_error_line(&out, "stopped");
    assert_success(&rt.delete(&id), "delete of a stopped container");
    assert_no_leftovers(&rt, &id, &bundle);
}

/// create+start where the process may exit before we look at it.
trait StartAllowExit {
    fn start_container_allow_exit(&self, bundle: &Bundle, id: &str);
}

impl StartAllowExit for Runtime {
    fn start_container_allow_exit(&self, bundle: &Bundle, id: &str) {
        self.create_ok(bundle, id);
        assert_success(&self.start(id), "start");
    }
}

#[test]
fn duplicate_id_fails_and_keeps_first() {
    if !preflight("duplicate_id_fails_and_keeps_first") {
        return;
    }
    let rt = Runtime::new();
    let first = Bundle::with_args(&["sleep", "1000"]);
    let second = Bundle::with_args(&["sleep", "1000"]);
    let id = unique_id("dup");
    let pid = rt.create_ok(&first, &id);
    let out = rt.create(&second, &id, &[]);
    assert_error_line(&out, "exists");
    let st = rt.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"].as_i64(), Some(pid));
    assert_eq!(
        canon(Path::new(st["bundle"].as_str().unwrap_or(""))),
        canon(first.path())
    );
    // Nothing of the second bundle may be running or mounted.
    let other = leftovers(&rt, "no-such-id-for-state-dir-check", &second);
    assert!(other.is_empty(), "second create left: {other:?}");
}

#[test]
fn kill_default_signal_is_sigterm() {
    if !preflight("kill_default_signal_is_sigterm") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::sh(&trap_script(&[("TERM", "term"), ("USR1", "usr1")]));
    let id = unique_id("killterm");
    rt.start_container(&bundle, &id);
    assert!(wait_for_file(&bundle.rootfs().join("tmp/ready")));
    assert_success(&rt.skiff(&["kill", &id]), "kill without a signal");
    let log = bundle.rootfs().join("tmp/signals");
    assert!(
        poll_until(Duration::from_secs(10), || fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("term")),
        "SIGTERM was not delivered; log: {:?}",
        fs::read_to_string(&log)
    );
    assert!(!fs::read_to_string(&log).unwrap().contains("usr1"));
}

#[test]
fn kill_accepts_signal_names_and_numbers() {
    if !preflight("kill_accepts_signal_names_and_numbers") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::sh(&trap_script(&[
        ("USR1", "usr1"),
        ("USR2", "usr2"),
        ("35", "rt35"),
        ("62", "rt62"),
    ]));
    let id = unique_id("killsig");
    rt.start_container(&bundle, &id);
    assert!(wait_for_file(&bundle.rootfs().join("tmp/ready")));
    let log = bundle.rootfs().join("tmp/signals");
    let count = |what: &str| {
        fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == what)
            .count()
    };
    for (n, sig) in ["USR1", "SIGUSR1", "10"].iter().enumerate() {
        assert_success(&rt.kill(&id, sig), &format!("kill {sig}"));
        assert!(
            poll_until(Duration::from_secs(10), || count("usr1") == n + 1),
            "kill {sig} not delivered as SIGUSR1; log: {:?}",
            fs::read_to_string(&log)
        );
    }
    assert_success(&rt.kill(&id, "SIGUSR2"), "kill SIGUSR2");
    assert!(poll_until(Duration::from_secs(10), || count("usr2") == 1));
    // Real-time signals by name, numbered as runc numbers them (RTMIN is
    // 34), whatever the libc skiff is linked with (musl's RTMIN is 35).
    for (sig, line) in [("RTMIN+1", "rt35"), ("SIGRTMAX-2", "rt62")] {
        assert_success(&rt.kill(&id, sig), &format!("kill {sig}"));
        assert!(
            poll_until(Duration::from_secs(10), || count(line) == 1),
            "kill {sig} not delivered as {line}; log: {:?}",
            fs::read_to_string(&log)
        );
    }
    assert_eq!(rt.status(&id), "running");
}

/// Host pids of processes carrying the bundle marker whose cmdline starts with `prefix`.
fn marked_processes(bundle: &Bundle, prefix: &str) -> Vec<i64> {
    let mark = format!("SKIFF_TEST_MARK={}", bundle.marker());
    let mut pids = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i64>() else {
            continue;
        };
        let env = fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if pid_alive(pid)
            && String::from_utf8_lossy(&env).contains(&mark)
            && cmd.starts_with(prefix)
        {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn kill_all_signals_every_process() {
    if !preflight("kill_all_signals_every_process") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::sh(
        "trap 'echo usr1 >> /tmp/signals' USR1; sleep 1000 & sleep 1000 & \
         touch /tmp/ready; while true; do sleep 0.1; done",
    );
    let id = unique_id("killall");
    let pid = rt.start_container(&bundle, &id);
    assert!(wait_for_file(&bundle.rootfs().join("tmp/ready")));
    assert!(
        poll_until(Duration::from_secs(5), || marked_processes(
            &bundle,
            "sleep 1000"
        )
        .len()
            == 2),
        "the two background sleeps did not start"
    );
    assert_success(&rt.skiff(&["kill", "--all", &id, "USR1"]), "kill --all");
    // The children have the default action (terminate); init has a handler.
    assert!(
        poll_until(Duration::from_secs(10), || marked_processes(
            &bundle,
            "sleep 1000"
        )
        .is_empty()),
        "kill --all did not reach the non-init processes"
    );
    let log = bundle.rootfs().join("tmp/signals");
    assert!(poll_until(Duration::from_secs(10), || fs::read_to_string(
        &log
    )
    .map(|s| s.contains("usr1"))
    .unwrap_or(false)));
    assert!(pid_alive(pid), "init should survive a trapped SIGUSR1");
    assert_eq!(rt.status(&id), "running");
}

#[test]
fn run_returns_exit_code() {
    if !preflight("run_returns_exit_code") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::sh("echo out-$((6*7)); exit 7");
    let id = unique_id("run7");
    let out = rt.run(&bundle, &id, &[]);
    assert_eq!(exit_code(&out), 7, "{}", describe(&out));
    assert!(stdout(&out).contains("out-42"), "{}", describe(&out));
    assert_no_leftovers(&rt, &id, &bundle);
}

#[test]
fn run_killed_by_signal_returns_128_plus_n() {
    if !preflight("run_killed_by_signal_returns_128_plus_n") {
        return;
    }
    let rt = Runtime::new();
    // The shell is pid 1 of its namespace: SIGKILL from inside does not work
    // on it, so a child kills itself.
    let bundle = Bundle::sh("sh -c 'kill -9 $$'; exit $?");
    let id = unique_id("run137");
    let out = rt.run(&bundle, &id, &[]);
    assert_eq!(exit_code(&out), 137, "{}", describe(&out));

    let bundle = Bundle::with_args(&["sleep", "1000"]);
    let id = unique_id("run137b");
    let spawned = rt.spawn_run(&bundle, &id, &[]);
    rt.expect_status(&id, "running");
    assert_success(&rt.kill(&id, "KILL"), "kill KILL");
    let out = rt.finish(spawned);
    assert_eq!(exit_code(&out), 137, "{}", describe(&out));
    assert_no_leftovers(&rt, &id, &bundle);
}

#[test]
fn run_detached_returns_and_keeps_running() {
    if !preflight("run_detached_returns_and_keeps_running") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::with_args(&["sleep", "1000"]);
    let id = unique_id("detach");
    let pidfile = bundle.path().join("run.pid");
    let pf = pidfile.to_string_lossy().into_owned();
    let out = rt.run(&bundle, &id, &["--detach", "--pid-file", &pf]);
    assert_success(&out, "run --detach");
    assert_eq!(rt.status(&id), "running");
    let pid = rt.pid(&id);
    assert!(pid_alive(pid));
    let written = fs::read_to_string(&pidfile).unwrap_or_default();
    assert_eq!(written.trim(), pid.to_string(), "--pid-file content");
    assert_success(&rt.delete_force(&id), "delete --force");
    assert_no_leftovers(&rt, &id, &bundle);
}

#[test]
fn create_pid_file() {
    if !preflight("create_pid_file") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::with_args(&["sleep", "1000"]);
    let id = unique_id("pidfile");
    let pidfile = bundle.path().join("create.pid");
    let pf = pidfile.to_string_lossy().into_owned();
    assert_success(&rt.create(&bundle, &id, &["--pid-file", &pf]), "create");
    let written = fs::read_to_string(&pidfile).unwrap_or_default();
    assert_eq!(written.trim(), rt.pid(&id).to_string());
    // A relative pid file is relative to skiff's cwd.
    let id2 = unique_id("pidfile2");
    let mut cmd = rt.command(&["create", "--bundle"]);
    cmd.arg(bundle.path())
        .args(["--pid-file", "rel.pid", &id2])
        .current_dir(bundle.path());
    rt.track(&id2);
    let out = rt.output(&mut cmd);
    assert_success(&out, "create with a relative --pid-file");
    let written = fs::read_to_string(bundle.path().join("rel.pid")).unwrap_or_default();
    assert_eq!(written.trim(), rt.pid(&id2).to_string());
}

#[test]
fn delete_force_of_stopped_and_unknown() {
    if !preflight("delete_force_of_stopped_and_unknown") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::sh("exit 0");
    let id = unique_id("delstopped");
    rt.start_container_allow_exit(&bundle, &id);
    rt.expect_status(&id, "stopped");
    assert_success(
        &rt.delete_force(&id),
        "delete --force of a stopped container",
    );
    assert_no_leftovers(&rt, &id, &bundle);
    let out = rt.delete(&id);
    assert_error_line(&out, "does not exist");
}

//! `skiff` SIGKILLed in the middle of `create` and `exec`: early (at
//! random moments), while each kind of create-time hook runs (prestart and
//! createRuntime in skiff, createContainer in the container during mount
//! setup). Afterwards `delete --force` must remove everything (state,
//! mounts, processes, hooks) and `list` must not show the id. A hook that
//! hangs is killed, with its children, at its timeout.

use serde_json::json;
use skiff_conformance::*;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Adds a `kind` hook that creates `<bundle>/<kind>.ready` and then blocks
/// in `sleep` (with `fork`, as a child of the hook's shell, so both must
/// die). Returns the ready file.
fn blocking_hook(bundle: &mut Bundle, kind: &str, timeout: Option<u64>, fork: bool) -> PathBuf {
    let ready = bundle.path().join(format!("{kind}.ready"));
    let script = bundle.path().join(format!("{kind}-hook.sh"));
    write_executable(
        &script,
        &format!(
            "#!/bin/sh\ntouch {}\n{}sleep 1000\n",
            ready.display(),
            if fork { "" } else { "exec " }
        ),
    );
    let mark = format!("SKIFF_TEST_MARK={}", bundle.marker());
    let mut hook = json!({"path": script, "env": [mark]});
    if let Some(t) = timeout {
        hook["timeout"] = json!(t);
    }
    bundle.config_mut()["hooks"] = json!({ kind: [hook] });
    ready
}

/// After a killed command: `delete --force` works, nothing is left, and
/// `list` does not show the id.
#[track_caller]
fn assert_cleaned_up(rt: &Runtime, id: &str, bundle: &Bundle, what: &str) {
    let out = rt.delete_force(id);
    assert_success(&out, &format!("{what}: delete --force"));
    assert_no_leftovers(rt, id, bundle);
    let list = rt.skiff(&["list", "-q"]);
    assert_success(&list, "list");
    assert!(!stdout(&list).contains(id), "{what}: list shows {id}");
    assert!(
        stderr(&list).trim().is_empty(),
        "{what}: list complains: {}",
        stderr(&list)
    );
}

/// A pseudo-random number in `0..n` (no rand crate needed).
fn jitter(n: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    (nanos / 1000) % n.max(1)
}

#[test]
fn create_killed_while_hooks_block() {
    if !preflight("create_killed_while_hooks_block") {
        return;
    }
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let rt = Runtime::new();
        let mut bundle = Bundle::with_args(&["sleep", "1000"]);
        let ready = blocking_hook(&mut bundle, kind, None, false);
        bundle.save();
        let id = unique_id("crashhook");
        rt.track(&id);
        let b = bundle.path().to_string_lossy().into_owned();
        let mut cmd = rt.command(&["create", "--bundle", &b, &id]);
        let (mut child, o, e) = spawn_captured(&mut cmd);
        let hooked = poll_until(Duration::from_secs(10), || ready.exists());
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_file(o);
        let _ = std::fs::remove_file(e);
        assert!(hooked, "{kind}: the hook never ran");
        let status = rt.status(&id);
        assert!(
            status.is_empty() || status == "creating" || status == "stopped",
            "{kind}: a killed create shows status {status:?}"
        );
        assert_cleaned_up(&rt, &id, &bundle, kind);
    }
}

#[test]
fn create_killed_at_random_moments() {
    if !preflight("create_killed_at_random_moments") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::with_args(&["sleep", "1000"]);
    bundle.save();
    let b = bundle.path().to_string_lossy().into_owned();
    // How long a create takes here, to spread the kills over all of it.
    let id = unique_id("crashtime");
    let t = Instant::now();
    rt.create_ok(&bundle, &id);
    let span = (t.elapsed().as_micros() as u64).max(1000);
    assert_cleaned_up(&rt, &id, &bundle, "timing run");
    for round in 0..20 {
        let id = unique_id("crashrand");
        rt.track(&id);
        let delay = Duration::from_micros(jitter(span + span / 4));
        let mut cmd = rt.command(&["create", "--bundle", &b, &id]);
        kill_after(&mut cmd, delay);
        assert_cleaned_up(
            &rt,
            &id,
            &bundle,
            &format!("round {round} (kill after {delay:?})"),
        );
    }
}

/// Spawn `cmd`, SIGKILL it after `delay`, reap it, drop its captured output.
fn kill_after(cmd: &mut std::process::Command, delay: Duration) {
    let (mut child, o, e) = spawn_captured(cmd);
    std::thread::sleep(delay);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(o);
    let _ = std::fs::remove_file(e);
}

#[test]
fn exec_killed_at_random_moments() {
    if !preflight("exec_killed_at_random_moments") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::with_args(&["sleep", "1000"]);
    let id = unique_id("crashexec");
    rt.start_container(&bundle, &id);
    let t = Instant::now();
    assert_success(&rt.exec(&id, &["true"]), "exec true");
    let span = (t.elapsed().as_micros() as u64).max(1000);
    for round in 0..15 {
        let delay = Duration::from_micros(jitter(span + span / 4));
        let mut cmd = rt.command(&["exec", &id, "sleep", "1000"]);
        kill_after(&mut cmd, delay);
        // The container is unharmed.
        assert_eq!(rt.status(&id), "running", "round {round}");
        let out = rt.exec(&id, &["echo", "ok"]);
        assert_success(&out, &format!("round {round}: exec after a killed exec"));
        assert_eq!(stdout(&out).trim(), "ok");
    }
    assert_cleaned_up(&rt, &id, &bundle, "after killed execs");
}

#[test]
fn hanging_hook_is_killed_at_its_timeout() {
    if !preflight("hanging_hook_is_killed_at_its_timeout") {
        return;
    }
    for kind in ["createRuntime", "createContainer"] {
        let rt = Runtime::new();
        let mut bundle = Bundle::with_args(&["true"]);
        let ready = blocking_hook(&mut bundle, kind, Some(1), true);
        let id = unique_id("hookhang");
        let t = Instant::now();
        let out = rt.create(&bundle, &id, &[]);
        let took = t.elapsed();
        assert!(ready.exists(), "{kind}: the hook never ran");
        assert_error_line(&out, "timed out");
        assert!(
            took < Duration::from_secs(10),
            "{kind}: create took {took:?} with a 1 s hook timeout"
        );
        // The hook, and the sleep it started, are gone too.
        assert_no_leftovers(&rt, &id, &bundle);
    }
}

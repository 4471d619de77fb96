//! runc parity of the command line: `-v`, `kill ID 0`, exec's exit code 255
//! and `--env` override, a `--process` without `user`, `exec -t` in the
//! foreground, no panic on a closed stdout, and runc's answer to an unknown
//! command.

use serde_json::json;
use skiff_conformance::*;
use std::process::Command;

#[test]
fn dash_v_prints_the_version() {
    require_root!();
    let rt = Runtime::new();
    let out = rt.skiff(&["-v"]);
    assert_success(&out, "skiff -v");
    assert!(
        stdout(&out).starts_with("skiff version "),
        "{}",
        describe(&out)
    );
    assert!(stdout(&out).contains("spec: 1.2"), "{}", describe(&out));
}

/// As runc: an unknown command, also with `-h` or after `help`, is "No help
/// topic for 'foo'" and exit 3; `help` and `help create` print help.
#[test]
fn unknown_command_and_help_topics() {
    require_root!();
    let rt = Runtime::new();
    for args in [&["foo"][..], &["foo", "-h"], &["help", "foo"]] {
        let out = rt.skiff(args);
        assert_eq!(exit_code(&out), 3, "skiff {args:?}: {}", describe(&out));
        let line = assert_error_line(&out, "No help topic for 'foo'");
        assert!(line.contains("level=error"), "skiff {args:?}: {line}");
    }
    for args in [&["help"][..], &["help", "create"], &["create", "-h"]] {
        let out = rt.skiff(args);
        assert_success(&out, &format!("skiff {args:?}"));
        assert!(
            stdout(&out).contains("Usage:"),
            "skiff {args:?}: {}",
            describe(&out)
        );
    }
}

#[test]
fn kill_with_signal_zero_checks_the_container() {
    require_root!();
    let rt = Runtime::new();
    let b = Bundle::with_args(&["sleep", "1000"]);
    let id = unique_id("kill0");
    rt.start_container(&b, &id);
    assert_success(&rt.kill(&id, "0"), "kill ID 0 of a running container");
    rt.expect_status(&id, "running");
    assert_success(&rt.kill(&id, "KILL"), "kill KILL");
    assert!(rt.wait_for_status(&id, "stopped", DEFAULT_TIMEOUT));
    let out = rt.kill(&id, "0");
    assert!(
        !out.status.success(),
        "kill 0 of a stopped container: {}",
        describe(&out)
    );
    assert_success(&rt.delete(&id), "delete");
}

#[test]
fn exec_failures_exit_255_and_env_overrides() {
    require_root!();
    let rt = Runtime::new();
    let b = Bundle::with_args(&["sleep", "1000"]);
    let id = unique_id("exec255");
    rt.start_container(&b, &id);

    let out = rt.exec(&id, &["/no/such/program"]);
    assert_eq!(exit_code(&out), 255, "{}", describe(&out));
    assert!(stderr(&out).contains("exec failed"), "{}", describe(&out));
    // The process's own exit code is passed through unchanged.
    assert_eq!(exit_code(&rt.exec(&id, &["sh", "-c", "exit 7"])), 7);

    // --env replaces the config's entry of the same name.
    let out = rt.exec_with(&["--env", "PATH=/bin", "--env", "NEW=1"], &id, &["env"]);
    assert_success(&out, "exec --env");
    let env = stdout(&out);
    let paths: Vec<&str> = env.lines().filter(|l| l.starts_with("PATH=")).collect();
    assert_eq!(paths, ["PATH=/bin"], "{env}");
    assert!(env.lines().any(|l| l == "NEW=1"), "{env}");

    // A --process JSON without `user` runs as root, as runc.
    let dir = TempDir::new("skiff-process");
    let p = dir.path().join("process.json");
    std::fs::write(&p, json!({"args": ["id"], "cwd": "/"}).to_string()).unwrap();
    let out = rt.exec_with(&["--process", &p.to_string_lossy()], &id, &[]);
    assert_success(&out, "exec --process without user");
    assert!(
        stdout(&out).starts_with("uid=0(root) gid=0(root)"),
        "{}",
        describe(&out)
    );
    assert_success(&rt.delete_force(&id), "delete -f");
}

#[test]
fn exec_tty_without_console_socket_copies_the_pty() {
    require_root!();
    let rt = Runtime::new();
    let b = Bundle::with_args(&["sleep", "1000"]);
    let id = unique_id("exectty-fg");
    rt.start_container(&b, &id);
    let out = rt.exec_with(&["-t"], &id, &["sh", "-c", "tty; echo fg-exec-tty"]);
    assert_success(&out, "exec -t in the foreground");
    let text = stdout(&out).replace('\r', "");
    assert!(text.starts_with("/dev/pts/"), "{text:?}");
    assert!(text.contains("fg-exec-tty"), "{text:?}");
    let out = rt.exec_with(&["-t", "-d"], &id, &["true"]);
    assert!(
        !out.status.success(),
        "exec -t -d without a socket: {}",
        describe(&out)
    );
    assert_success(&rt.delete_force(&id), "delete -f");
}

#[test]
fn printing_to_a_closed_pipe_does_not_panic() {
    require_root!();
    let rt = Runtime::new();
    for args in ["features", "--help", "list"] {
        // The reader is gone before skiff writes.
        let script =
            format!("{{ sleep 0.2; \"$0\" --root \"$1\" {args}; echo \"rc=$?\" >&2; }} | true");
        let mut cmd = Command::new("/bin/bash");
        cmd.arg("-c").arg(script).arg(skiff_bin()).arg(rt.root());
        let out = output_with_timeout(&mut cmd, DEFAULT_TIMEOUT);
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args}: {err}");
        // Killed by SIGPIPE (as runc) or done before the reader left.
        assert!(
            err.contains("rc=141") || err.contains("rc=0"),
            "{args}: {err}"
        );
    }
}

#[test]
fn spec_matches_runc_spec() {
    require_root!();
    let Ok(runc) = which_runc() else {
        skip!("runc is not installed (make deps installs it)");
    };
    let dir = TempDir::new("skiff-spec");
    for (name, bin) in [("runc", runc), ("skiff", skiff_bin())] {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).unwrap();
        let out = output_with_timeout(
            Command::new(&bin).arg("spec").current_dir(&d),
            DEFAULT_TIMEOUT,
        );
        assert_success(&out, &format!("{name} spec"));
    }
    let read = |name: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(dir.path().join(name).join("config.json")).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        // The two fields that name the runtime and its spec version.
        v["hostname"] = json!("");
        v["ociVersion"] = json!("");
        v
    };
    assert_eq!(
        read("skiff"),
        read("runc"),
        "skiff spec differs from runc spec"
    );
}

fn which_runc() -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("runc"))
        .find(|p| p.is_file())
        .ok_or(())
}

#[test]
fn list_and_state_print_runc_key_order() {
    require_root!();
    let rt = Runtime::new();
    let b = Bundle::with_args(&["sleep", "1000"]);
    let id = unique_id("keyorder");
    rt.start_container(&b, &id);
    let keys = |text: &str| -> Vec<String> {
        text.split('"')
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|w| w[1].trim_start().starts_with(':'))
            .map(|w| w[0].to_string())
            .collect()
    };
    let want = [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "owner",
    ];
    let list = stdout(&rt.skiff(&["list", "--format", "json"]));
    assert_eq!(keys(&list), want, "{list}");
    let state = stdout(&rt.skiff(&["state", &id]));
    assert_eq!(keys(&state), want, "{state}");
    assert_success(&rt.delete_force(&id), "delete -f");
}

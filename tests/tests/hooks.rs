//! OCI hooks: order, state on stdin, namespaces, failures and timeouts.

use serde_json::{json, Value};
use skiff_conformance::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A host directory holding the hook script and its logs.  It is also
/// bind-mounted at the same path inside the container, so the script and
/// logs resolve identically whether a hook runs before or after pivot_root.
struct HookDir {
    dir: TempDir,
}

impl HookDir {
    fn new(bundle: &mut Bundle) -> HookDir {
        let dir = TempDir::new("skiff-hooks");
        let d = dir.path().display().to_string();
        write_executable(
            &dir.path().join("hook.sh"),
            &format!(
                "#!/bin/sh\n\
                 /bin/cat > '{d}/'\"$1\".json\n\
                 readlink /proc/self/ns/mnt > '{d}/'\"$1\".mnt\n\
                 echo \"$1\" >> '{d}/order.log'\n"
            ),
        );
        bundle.add_bind(dir.path(), &d, &["rbind"]);
        HookDir { dir }
    }

    fn script(&self) -> String {
        self.dir.path().join("hook.sh").display().to_string()
    }

    fn order(&self) -> Vec<String> {
        fs::read_to_string(self.dir.path().join("order.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn state(&self, kind: &str) -> Value {
        let p = self.dir.path().join(format!("{kind}.json"));
        let text = fs::read_to_string(&p).unwrap_or_default();
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{kind} hook got invalid state JSON ({e}): {text:?}"))
    }

    fn mnt_ns(&self, kind: &str) -> String {
        fs::read_to_string(self.dir.path().join(format!("{kind}.mnt")))
            .unwrap_or_default()
            .trim()
            .to_owned()
    }
}

fn set_hook_env(bundle: &mut Bundle) {
    for kind in KINDS {
        if let Some(list) = bundle.config_mut()["hooks"][kind].as_array_mut() {
            for h in list {
                h["env"] = json!(["PATH=/usr/bin:/bin"]);
            }
        }
    }
}

fn canon(p: &Path) -> PathBuf {
    fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

#[test]
fn all_six_hooks_run_in_order_with_state() {
    if !preflight("all_six_hooks_run_in_order_with_state") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::with_args(&["sleep", "1000"]);
    let hooks = HookDir::new(&mut bundle);
    for kind in KINDS {
        bundle.add_hook(kind, &hooks.script(), &["hook.sh", kind], None);
    }
    set_hook_env(&mut bundle);
    let id = unique_id("hooks");

    let pid = rt.create_ok(&bundle, &id);
    assert_eq!(
        hooks.order(),
        ["prestart", "createRuntime", "createContainer"],
        "hooks run by create"
    );
    assert_success(&rt.start(&id), "start");
    let want_start = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
    ];
    assert!(
        poll_until(Duration::from_secs(10), || hooks.order() == want_start),
        "hooks after start: {:?}",
        hooks.order()
    );
    assert_success(&rt.kill(&id, "KILL"), "kill");
    rt.expect_status(&id, "stopped");
    assert_eq!(hooks.order().len(), 5, "poststop ran before delete");
    assert_success(&rt.delete(&id), "delete");
    assert_eq!(hooks.order(), KINDS, "hooks after delete");

    // runc has no "creating": the create-time hooks see "created" (the
    // OCI validation suite checks prestart's).
    let want_status = [
        ("prestart", "created"),
        ("createRuntime", "created"),
        ("createContainer", "created"),
        ("startContainer", "created"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ];
    for (kind, status) in want_status {
        let st = hooks.state(kind);
        assert_eq!(st["id"], id.as_str(), "{kind}: {st}");
        assert_eq!(st["status"], status, "{kind}: {st}");
        assert!(st["ociVersion"].is_string(), "{kind}: {st}");
        assert_eq!(
            canon(Path::new(st["bundle"].as_str().unwrap_or(""))),
            canon(bundle.path()),
            "{kind}: {st}"
        );
        if kind != "poststop" {
            assert_eq!(st["pid"].as_i64(), Some(pid), "{kind}: {st}");
        }
    }

    // Runtime-namespace hooks see the host mount namespace; container
    // hooks see the container's.
    let host_mnt = readlink("/proc/self/ns/mnt");
    for kind in ["prestart", "createRuntime", "poststart", "poststop"] {
        assert_eq!(hooks.mnt_ns(kind), host_mnt, "{kind} mount namespace");
    }
    for kind in ["createContainer", "startContainer"] {
        assert_ne!(
            hooks.mnt_ns(kind),
            host_mnt,
            "{kind} ran in the host mount ns"
        );
        assert!(!hooks.mnt_ns(kind).is_empty(), "{kind} mount namespace");
    }
    assert_no_leftovers(&rt, &id, &bundle);
}

#[test]
fn hook_args_and_env() {
    if !preflight("hook_args_and_env") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::with_args(&["true"]);
    let out_file = bundle.path().join("hook.out");
    let script = format!("echo \"$0 $1 [$FOO] [$(cat)]\" > '{}'", out_file.display());
    bundle.add_hook(
        "createRuntime",
        "/bin/sh",
        &["sh", "-c", &script, "arg0", "arg1"],
        None,
    );
    bundle.config_mut()["hooks"]["createRuntime"][0]["env"] =
        json!(["FOO=bar", "PATH=/usr/bin:/bin"]);
    let id = unique_id("hookargs");
    rt.create_ok(&bundle, &id);
    let text = fs::read_to_string(&out_file).expect("hook did not run");
    assert!(text.starts_with("arg0 arg1 [bar] [{"), "{text}");
    assert!(text.contains(&id), "{text}");
}

/// `run` blocks the signals it forwards (and the shim blocks SIGCHLD): a
/// hook must still start with none blocked, or a shell hook that waits for
/// its own children never wakes.
#[test]
fn hooks_start_with_no_signal_blocked() {
    if !preflight("hooks_start_with_no_signal_blocked") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::with_args(&["true"]);
    let mut files = Vec::new();
    for kind in ["prestart", "createRuntime", "poststart"] {
        let f = bundle.path().join(format!("{kind}.sig"));
        // `wait` for a background child: hangs (until the hook timeout)
        // if SIGCHLD is blocked.
        let script = format!(
            "sleep 0 & wait; grep SigBlk /proc/self/status > '{}'",
            f.display()
        );
        bundle.add_hook(kind, "/bin/sh", &["sh", "-c", &script], Some(10));
        files.push(f);
    }
    let id = unique_id("hooksig");
    let out = rt.run(&bundle, &id, &[]);
    assert!(out.status.success(), "run failed: {out:?}");
    for f in files {
        let text = fs::read_to_string(&f).unwrap_or_default();
        assert_eq!(text.trim(), "SigBlk:\t0000000000000000", "{}", f.display());
    }
}

#[test]
fn failing_hook_fails_create_cleanly() {
    if !preflight("failing_hook_fails_create_cleanly") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::with_args(&["sleep", "1000"]);
    bundle.add_hook(
        "createRuntime",
        "/bin/sh",
        &["sh", "-c", "echo hook-broke >&2; exit 3"],
        None,
    );
    let id = unique_id("hookfail");
    let out = rt.create(&bundle, &id, &[]);
    assert_clean_failure(&out, "hook", &rt, &id, &bundle);
}

#[test]
fn failing_prestart_in_run_fails_cleanly() {
    if !preflight("failing_prestart_in_run_fails_cleanly") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::sh("touch /ran");
    bundle.add_hook("prestart", "/bin/false", &["false"], None);
    let id = unique_id("hookrun");
    let out = rt.run(&bundle, &id, &[]);
    assert_clean_failure(&out, "hook", &rt, &id, &bundle);
    assert!(!bundle.rootfs().join("ran").exists(), "process ran anyway");
}

#[test]
fn hook_timeout_is_enforced() {
    if !preflight("hook_timeout_is_enforced") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::with_args(&["sleep", "1000"]);
    let pid_file = bundle.path().join("hook.pid");
    let script = format!("echo $$ > '{}'; exec sleep 30", pid_file.display());
    bundle.add_hook("createRuntime", "/bin/sh", &["sh", "-c", &script], Some(1));
    let id = unique_id("hooktimeout");
    let start = Instant::now();
    let out = rt.create(&bundle, &id, &[]);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(10), "create took {took:?}");
    assert_clean_failure(&out, "hook", &rt, &id, &bundle);
    let hook_pid: i64 = fs::read_to_string(&pid_file)
        .unwrap_or_default()
        .trim()
        .parse()
        .expect("the hook did not start");
    assert!(
        poll_until(Duration::from_secs(5), || !pid_alive(hook_pid)),
        "the timed-out hook {hook_pid} is still running"
    );
}

#[test]
fn poststop_runs_on_forced_delete() {
    if !preflight("poststop_runs_on_forced_delete") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::with_args(&["sleep", "1000"]);
    let out_file = bundle.path().join("poststop.out");
    let script = format!("cat > '{}'", out_file.display());
    bundle.add_hook("poststop", "/bin/sh", &["sh", "-c", &script], None);
    set_hook_env(&mut bundle);
    let id = unique_id("poststop");
    rt.start_container(&bundle, &id);
    assert!(!out_file.exists(), "poststop ran early");
    assert_success(&rt.delete_force(&id), "delete --force");
    let st: Value = serde_json::from_str(&fs::read_to_string(&out_file).unwrap_or_default())
        .expect("poststop did not get state JSON");
    assert_eq!(st["id"], id.as_str());
    assert_no_leftovers(&rt, &id, &bundle);
}

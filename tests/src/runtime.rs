//! Driving the skiff CLI with a private `--root` per test.

use crate::{
    describe, finish_captured, output_with_timeout, poll_until, skiff_bin, spawn_captured, Bundle,
    TempDir,
};
use serde_json::Value;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Timeout applied to every skiff invocation made through [`Runtime`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// One test's view of skiff: a private state directory passed as `--root`,
/// plus the list of container ids it created, which are removed with
/// `delete --force` when the `Runtime` is dropped (even when the test panics).
#[derive(Debug)]
pub struct Runtime {
    root: TempDir,
    ids: RefCell<Vec<String>>,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    /// A runtime with a fresh, empty `--root` directory.
    pub fn new() -> Runtime {
        Runtime {
            root: TempDir::new("skiff-root"),
            ids: RefCell::new(Vec::new()),
        }
    }

    /// The `--root` directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The state directory skiff is expected to use for `id` (`<root>/<id>`).
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.root.path().join(id)
    }

    /// Remembers `id` so that it is force-deleted on drop.
    pub fn track(&self, id: &str) {
        let mut ids = self.ids.borrow_mut();
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_owned());
        }
    }

    /// A `Command` for `skiff --root <root> <args...>` (not yet spawned).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(skiff_bin());
        cmd.arg("--root").arg(self.root.path()).args(args);
        cmd
    }

    /// A `Command` running `skiff --root <root> <args...>` through `/bin/sh -c`
    /// as `<prelude> exec skiff ... <redirections>`, so that the shell can open
    /// fds that skiff inherits without `CLOEXEC` (e.g. `"3>>/tmp/f 5</etc/hostname"`)
    /// and set variables that depend on skiff's pid (e.g. `"export LISTEN_PID=$$;"`).
    pub fn shell_command(&self, prelude: &str, args: &[&str], redirections: &str) -> Command {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(format!("{prelude} exec \"$0\" \"$@\" {redirections}"))
            .arg(skiff_bin())
            .arg("--root")
            .arg(self.root.path())
            .args(args);
        cmd
    }

    /// Runs `skiff --root <root> <args...>` to completion (20 s timeout).
    pub fn skiff(&self, args: &[&str]) -> Output {
        output_with_timeout(&mut self.command(args), DEFAULT_TIMEOUT)
    }

    /// Runs a prepared command (e.g. from [`Runtime::command`]) with the default timeout.
    pub fn output(&self, cmd: &mut Command) -> Output {
        output_with_timeout(cmd, DEFAULT_TIMEOUT)
    }

    /// `create --bundle <bundle> [extra...] <id>` (saves the bundle config first).
    pub fn create(&self, bundle: &Bundle, id: &str, extra: &[&str]) -> Output {
        bundle.save();
        self.track(id);
        let b = bundle.path().to_string_lossy().into_owned();
        let mut args = vec!["create", "--bundle", b.as_str()];
        args.extend_from_slice(extra);
        args.push(id);
        self.skiff(&args)
    }

    /// `create`, panicking with the output when it fails; returns the init pid.
    #[track_caller]
    pub fn create_ok(&self, bundle: &Bundle, id: &str) -> i64 {
        let out = self.create(bundle, id, &[]);
        assert!(
            out.status.success(),
            "create {id} failed: {}",
            describe(&out)
        );
        self.pid(id)
    }

    /// `start <id>`.
    pub fn start(&self, id: &str) -> Output {
        self.skiff(&["start", id])
    }

    /// Foreground `run --bundle <bundle> [extra...] <id>`; returns its output
    /// (the container's stdout/stderr are inherited by skiff, so they end up here).
    pub fn run(&self, bundle: &Bundle, id: &str, extra: &[&str]) -> Output {
        let mut cmd = self.run_command(bundle, id, extra);
        output_with_timeout(&mut cmd, DEFAULT_TIMEOUT)
    }

    /// Foreground run of a fresh id; returns the output.
    pub fn run_bundle(&self, bundle: &Bundle) -> Output {
        let id = crate::unique_id("run");
        self.run(bundle, &id, &[])
    }

    /// Foreground run of a fresh id; panics unless it exits 0; returns stdout.
    #[track_caller]
    pub fn run_ok(&self, bundle: &Bundle) -> String {
        let out = self.run_bundle(bundle);
        assert!(out.status.success(), "run failed: {}", describe(&out));
        crate::stdout(&out)
    }

    /// The `Command` for `run` (saves the config, tracks the id), for tests
    /// that need to spawn it themselves.
    pub fn run_command(&self, bundle: &Bundle, id: &str, extra: &[&str]) -> Command {
        bundle.save();
        self.track(id);
        let mut cmd = self.command(&["run", "--bundle"]);
        cmd.arg(bundle.path()).args(extra).arg(id);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Spawns a foreground `run` in the background; finish it with [`Runtime::finish`].
    pub fn spawn_run(&self, bundle: &Bundle, id: &str, extra: &[&str]) -> Spawned {
        let mut cmd = self.run_command(bundle, id, extra);
        let (child, out, err) = spawn_captured(&mut cmd);
        Spawned { child, out, err }
    }

    /// Waits (with the default timeout) for a [`Spawned`] process and collects its output.
    pub fn finish(&self, s: Spawned) -> Output {
        finish_captured(s.child, &s.out, &s.err, DEFAULT_TIMEOUT, "spawned skiff")
    }

    /// `exec <id> <args...>`.
    pub fn exec(&self, id: &str, args: &[&str]) -> Output {
        let mut v = vec!["exec", id];
        v.extend_from_slice(args);
        self.skiff(&v)
    }

    /// `exec [opts...] <id> <args...>`.
    pub fn exec_with(&self, opts: &[&str], id: &str, args: &[&str]) -> Output {
        let mut v = vec!["exec"];
        v.extend_from_slice(opts);
        v.push(id);
        v.extend_from_slice(args);
        self.skiff(&v)
    }

    /// `state <id>` parsed as JSON, or `None` when the command fails.
    pub fn try_state(&self, id: &str) -> Option<Value> {
        let out = self.skiff(&["state", id]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// `state <id>` parsed as JSON; panics when it fails.
    #[track_caller]
    pub fn state(&self, id: &str) -> Value {
        let out = self.skiff(&["state", id]);
        assert!(
            out.status.success(),
            "state {id} failed: {}",
            describe(&out)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("state {id} printed invalid JSON ({e}): {}", describe(&out)))
    }

    /// The `status` field of `state <id>` ("" when state fails).
    pub fn status(&self, id: &str) -> String {
        self.try_state(id)
            .and_then(|s| s["status"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// The `pid` of `state <id>`; panics when missing.
    #[track_caller]
    pub fn pid(&self, id: &str) -> i64 {
        let st = self.state(id);
        st["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("state {id} has no numeric pid: {st}"))
    }

    /// Polls `state` until `status` is reached or `timeout` elapses.
    pub fn wait_for_status(&self, id: &str, status: &str, timeout: Duration) -> bool {
        poll_until(timeout, || self.status(id) == status)
    }

    /// Like [`Runtime::wait_for_status`] but panics on timeout.
    #[track_caller]
    pub fn expect_status(&self, id: &str, status: &str) {
        if !self.wait_for_status(id, status, Duration::from_secs(10)) {
            panic!(
                "container {id} did not reach status {status:?}; state: {:?}",
                self.try_state(id)
            );
        }
    }

    /// `kill <id> <signal>`.
    pub fn kill(&self, id: &str, signal: &str) -> Output {
        self.skiff(&["kill", id, signal])
    }

    /// `delete <id>`.
    pub fn delete(&self, id: &str) -> Output {
        self.skiff(&["delete", id])
    }

    /// `delete --force <id>` (errors ignored).
    pub fn delete_force(&self, id: &str) -> Output {
        self.skiff(&["delete", "--force", id])
    }

    /// Creates and starts `bundle` as `id` (`create` + `start`), waiting for `running`.
    #[track_caller]
    pub fn start_container(&self, bundle: &Bundle, id: &str) -> i64 {
        let pid = self.create_ok(bundle, id);
        let out = self.start(id);
        assert!(
            out.status.success(),
            "start {id} failed: {}",
            describe(&out)
        );
        self.expect_status(id, "running");
        pid
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let mut cmd = self.command(&["delete", "--force", id]);
            cmd.stdin(Stdio::null());
            let (mut child, o, e) = spawn_captured(&mut cmd);
            let _ = crate::wait_timeout(&mut child, DEFAULT_TIMEOUT);
            let _ = std::fs::remove_file(o);
            let _ = std::fs::remove_file(e);
        }
    }
}

/// A skiff process running in the background (see [`Runtime::spawn_run`]).
#[derive(Debug)]
pub struct Spawned {
    /// The skiff process.
    pub child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Spawned {
    /// The host pid of the skiff process.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

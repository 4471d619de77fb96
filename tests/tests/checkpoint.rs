//! `skiff checkpoint` and `restore` on this host: bad input gets one clear
//! line and leaves nothing behind (no working CRIU needed); a counting
//! container is checkpointed and restored where `criu check` passes, else
//! the test prints SKIP with CRIU's reason (integration/vm/suite-criu.sh
//! runs the same, with runc beside it, on the VM's kernel).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use skiff_conformance::*;

/// One line on stderr, naming `what`, and a non-zero exit.
#[track_caller]
fn refused(out: &std::process::Output, what: &str) {
    let err = stderr(out);
    assert_ne!(exit_code(out), 0, "accepted: {}", describe(out));
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert!(err.contains(what), "does not name {what:?}: {err}");
}

#[test]
fn bad_checkpoint_and_restore_input_is_refused_clearly() {
    require_root!();
    let rt = Runtime::new();
    let tmp = TempDir::new("cr-bad");
    let img = tmp.path().join("img");
    let img = img.to_str().unwrap_or_default();
    let none = unique_id("cr-none");
    let out = rt.skiff(&["checkpoint", "--image-path", img, &none]);
    refused(&out, &format!("container {none} does not exist"));
    let out = rt.skiff(&["checkpoint", "--manage-cgroups-mode", "sometimes", &none]);
    refused(&out, "--manage-cgroups-mode");
    let out = rt.skiff(&["checkpoint", "--page-server", "nowhere", &none]);
    refused(&out, "--page-server");
    let out = rt.skiff(&["checkpoint", "--lazy-pages", "--status-fd", "99", &none]);
    refused(&out, "--status-fd 99");

    let bundle = Bundle::sh("sleep 100");
    bundle.save();
    let b = bundle.path().to_str().unwrap_or_default();
    let id = unique_id("cr-bad");
    rt.track(&id);
    let out = rt.skiff(&["restore", "-d", "--image-path", img, "--bundle", b, &id]);
    refused(&out, "--image-path");
    std::fs::create_dir_all(tmp.path().join("img")).expect("mkdir img");
    let out = rt.skiff(&["restore", "-d", "--image-path", img, "--bundle", b, &id]);
    refused(&out, "descriptors.json");
    let out = rt.skiff(&[
        "restore",
        "-d",
        "--console-socket",
        "/nonexistent",
        "--bundle",
        b,
        &id,
    ]);
    refused(&out, "--console-socket");
    // A terminal needs somewhere to put the restored pty's master.
    let mut tty = Bundle::sh("sleep 100");
    tty.set_terminal(true);
    tty.save();
    let t = tty.path().to_str().unwrap_or_default();
    let out = rt.skiff(&["restore", "-d", "--image-path", img, "--bundle", t, &id]);
    refused(&out, "--console-socket");
    std::fs::write(
        tmp.path().join("img/descriptors.json"),
        r#"["pipe:[1]","pipe:[2]","pipe:[3]"]"#,
    )
    .expect("write descriptors.json");
    let out = rt.skiff(&[
        "--criu",
        "/no/such/criu",
        "restore",
        "-d",
        "--image-path",
        img,
        "--bundle",
        b,
        &id,
    ]);
    refused(&out, "/no/such/criu not found");
    // Nothing of the refused restores is left.
    assert!(rt.try_state(&id).is_none(), "state left behind");
    assert!(!rt.state_dir(&id).exists(), "state dir left behind");
}

/// Why CRIU cannot run here, if it cannot.
fn criu_unusable() -> Option<String> {
    match Command::new("criu").arg("check").output() {
        Err(e) => Some(format!("criu: {e}")),
        Ok(o) if o.status.success() => None,
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stderr).into_owned()
                + &String::from_utf8_lossy(&o.stdout);
            Some(
                text.lines()
                    .find(|l| l.contains("Error") && !l.contains("exited, status="))
                    .unwrap_or("criu check failed")
                    .trim()
                    .to_string(),
            )
        }
    }
}

/// `skiff ARGS` with stdin, stdout and stderr on pipes (CRIU hands dumped
/// pipes over to the restoring caller's); the numbers the container prints
/// are collected from stdout.
fn with_pipes(rt: &Runtime, args: &[&str], lines: &Arc<Mutex<Vec<u64>>>) {
    let mut cmd = rt.command(args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn skiff");
    let stdout = child.stdout.take().expect("stdout pipe");
    let stderr = child.stderr.take().expect("stderr pipe");
    let sink = Arc::clone(lines);
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(n) = l.trim().parse() {
                sink.lock().expect("lines").push(n);
            }
        }
    });
    let status = wait_timeout(&mut child, Duration::from_secs(60)).expect("skiff did not return");
    let mut err = String::new();
    if !status.success() {
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut err);
        panic!("skiff {args:?} failed: {err}");
    }
    // The container keeps stdin open; our end goes with the child handle.
    std::mem::forget(child.stdin.take());
}

#[test]
fn a_checkpointed_container_counts_on_after_restore() {
    require_root!();
    let rt = Runtime::new();
    let bundle = Bundle::sh("i=0; while :; do i=$((i+1)); echo $i; sleep 0.2; done");
    bundle.save();
    let b = bundle.path().to_str().unwrap_or_default().to_string();
    let id = unique_id("cr-count");
    rt.track(&id);
    if let Some(why) = criu_unusable() {
        // skiff says so too, in one line, and the container runs on:
        // CRIU's own failure where it is installed, else that it is missing.
        let installed = Command::new("criu").arg("--version").output().is_ok();
        let said = if installed {
            "criu dump"
        } else {
            "criu not found"
        };
        let out = rt.create(&bundle, &id, &[]);
        assert_success(&out, "create");
        assert_success(&rt.start(&id), "start");
        let tmp = TempDir::new("cr-img");
        let img = tmp.path().to_str().unwrap_or_default();
        let out = rt.skiff(&["checkpoint", "--image-path", img, &id]);
        refused(&out, said);
        assert_eq!(
            rt.status(&id),
            "running",
            "a failed checkpoint must leave it running"
        );
        rt.delete_force(&id);
        if installed {
            skip!("criu cannot run on this kernel: {why}");
        }
        skip!("criu is not installed ({why})");
    }
    let lines = Arc::new(Mutex::new(Vec::new()));
    with_pipes(&rt, &["run", "-d", "--bundle", &b, &id], &lines);
    let count = || lines.lock().map(|l| l.len()).unwrap_or(0);
    assert!(
        poll_until(Duration::from_secs(20), || count() > 3),
        "it does not count"
    );
    // Its cgroups, in every hierarchy (v1) or the one (v2): the restored
    // process must be put back into the same.
    let cgroups =
        |pid: i64| std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let before = cgroups(rt.pid(&id));
    assert!(!before.is_empty(), "no /proc/PID/cgroup for init");
    let tmp = TempDir::new("cr-img");
    let img = tmp.path().join("img");
    let img = img.to_str().unwrap_or_default();
    assert_success(
        &rt.skiff(&["checkpoint", "--image-path", img, &id]),
        "checkpoint",
    );
    assert!(rt.try_state(&id).is_none(), "the container is still there");
    std::thread::sleep(Duration::from_millis(500));
    let n = count();
    with_pipes(
        &rt,
        &["restore", "-d", "--image-path", img, "--bundle", &b, &id],
        &lines,
    );
    assert!(
        poll_until(Duration::from_secs(20), || count() > n + 3),
        "no counting after restore"
    );
    assert_eq!(
        cgroups(rt.pid(&id)),
        before,
        "the restored init is not in the container's cgroups"
    );
    let got = lines.lock().expect("lines").clone();
    let want: Vec<u64> = (1..=got.len() as u64).collect();
    assert_eq!(got, want, "the count restarted or skipped");
    assert_success(&rt.delete_force(&id), "delete");
}

/// A runtime binary (skiff, or runc as the reference) with its own --root;
/// its container is force-deleted on drop.
struct Rt {
    name: &'static str,
    bin: PathBuf,
    root: TempDir,
    id: String,
}

impl Rt {
    fn new(name: &'static str, bin: PathBuf) -> Rt {
        Rt {
            name,
            bin,
            root: TempDir::new(&format!("{name}-cr-root")),
            id: unique_id(&format!("cr-tty-{name}")),
        }
    }

    fn ok(&self, args: &[&str]) -> Result<(), String> {
        let mut c = Command::new(&self.bin);
        c.arg("--root")
            .arg(self.root.path())
            .args(args)
            .stdin(Stdio::null());
        let out = output_with_timeout(&mut c, Duration::from_secs(60));
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("{} {args:?}: {}", self.name, describe(&out)))
        }
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        let _ = self.ok(&["delete", "--force", &self.id]);
    }
}

/// Collect the numbers a pty master shows (lines end in \r\n) until the
/// terminal's last holder in the container goes.
fn read_numbers(master: std::os::fd::OwnedFd, sink: &Arc<Mutex<Vec<u64>>>) {
    let sink = Arc::clone(sink);
    std::thread::spawn(move || {
        let reader = BufReader::new(std::fs::File::from(master));
        for l in reader.lines().map_while(Result::ok) {
            if let Ok(n) = l.trim().parse() {
                sink.lock().expect("lines").push(n);
            }
        }
    });
}

/// run -d with a terminal, checkpoint, restore -d with a new console
/// socket: the count goes on, on the new terminal.
fn terminal_round(rt: &Rt, bundle: &str, img: &str) -> Result<String, String> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let count = || lines.lock().map(|l| l.len()).unwrap_or(0);
    let sock = ConsoleSocket::new();
    let s = sock.path_str();
    rt.ok(&[
        "run",
        "-d",
        "--console-socket",
        &s,
        "--bundle",
        bundle,
        &rt.id,
    ])?;
    let (master, _) = sock
        .recv_fd(Duration::from_secs(10))
        .map_err(|e| format!("no pty master from run: {e}"))?;
    read_numbers(master, &lines);
    if !poll_until(Duration::from_secs(20), || count() > 3) {
        return Err("it does not count on its terminal".into());
    }
    rt.ok(&["checkpoint", "--image-path", img, &rt.id])?;
    std::thread::sleep(Duration::from_millis(500));
    let n = count();
    let sock = ConsoleSocket::new();
    let s = sock.path_str();
    rt.ok(&[
        "restore",
        "-d",
        "--console-socket",
        &s,
        "--image-path",
        img,
        "--bundle",
        bundle,
        &rt.id,
    ])?;
    let (master, name) = sock
        .recv_fd(Duration::from_secs(10))
        .map_err(|e| format!("no pty master from restore: {e}"))?;
    read_numbers(master, &lines);
    if !poll_until(Duration::from_secs(20), || count() > n + 3) {
        return Err(format!("no counting on the restored terminal ({name})"));
    }
    let got = lines.lock().map(|l| l.clone()).unwrap_or_default();
    let want: Vec<u64> = (1..=got.len() as u64).collect();
    if got != want {
        return Err(format!("the count restarted or skipped: {got:?}"));
    }
    Ok(format!("counted to {} across the restore", got.len()))
}

#[test]
fn a_container_with_a_terminal_is_checkpointed_and_restored() {
    require_root!();
    if let Some(why) = criu_unusable() {
        skip!("criu cannot run here: {why}");
    }
    let mut bundle = Bundle::sh("i=0; while :; do i=$((i+1)); echo $i; sleep 0.2; done");
    bundle.set_terminal(true);
    bundle.save();
    let b = bundle.path().to_str().unwrap_or_default().to_string();
    let mut rts = vec![Rt::new("skiff", skiff_bin())];
    let runc = Path::new("/usr/sbin/runc");
    if runc.exists() {
        rts.push(Rt::new("runc", runc.to_path_buf()));
    }
    let mut results = Vec::new();
    for rt in &rts {
        let tmp = TempDir::new("cr-tty-img");
        let img = tmp.path().join("img");
        let res = terminal_round(rt, &b, img.to_str().unwrap_or_default());
        eprintln!("  {}: {res:?}", rt.name);
        results.push(res);
    }
    if let Err(e) = &results[0] {
        panic!("skiff: {e} (runc: {:?})", results.get(1));
    }
}

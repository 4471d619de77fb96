//! Broken state: a truncated or garbage state.json (of a stopped and of a
//! running container), a state whose pid now belongs to another process
//! (caught by the recorded start time), and a state dir on a full disk. Each gives one clear error line, and
//! `delete --force` still cleans up.

use skiff_conformance::*;
use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A created container whose init was killed (so a corrupt state cannot
/// orphan a live process), and its state file.
fn stopped_container(rt: &Runtime, bundle: &Bundle, tag: &str) -> (String, std::path::PathBuf) {
    let id = unique_id(tag);
    let pid = rt.create_ok(bundle, &id);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    rt.expect_status(&id, "stopped");
    let path = rt.state_dir(&id).join("state.json");
    assert!(path.is_file(), "no {}", path.display());
    (id, path)
}

#[test]
fn truncated_or_garbage_state() {
    if !preflight("truncated_or_garbage_state") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::with_args(&["sleep", "1000"]);
    let garbage: [(&str, &[u8]); 4] = [
        ("truncated", b"{\"id\":\"x\",\"pid\":12"),
        ("garbage", b"\x00\xff\xfe not json at all"),
        ("empty", b""),
        ("wrongtype", b"{\"id\":1,\"pid\":\"one\"}"),
    ];
    for (what, bytes) in garbage {
        let (id, path) = stopped_container(&rt, &bundle, "corrupt");
        if what == "truncated" {
            let text = fs::read(&path).unwrap();
            fs::write(&path, &text[..text.len() / 2]).unwrap();
        } else {
            fs::write(&path, bytes).unwrap();
        }
        for cmd in [
            vec!["state", &id],
            vec!["start", &id],
            vec!["kill", &id, "KILL"],
        ] {
            let out = rt.skiff(&cmd);
            let line = assert_error_line(&out, &id);
            assert!(line.contains("corrupt"), "{what}: {cmd:?}: {line}");
        }
        // list still works, skipping (and naming) the broken one.
        let list = rt.skiff(&["list", "-q"]);
        assert_success(&list, &format!("{what}: list"));
        assert_success(&rt.delete_force(&id), &format!("{what}: delete --force"));
        assert_no_leftovers(&rt, &id, &bundle);
    }
}

#[test]
fn garbage_state_of_a_running_container() {
    if !preflight("garbage_state_of_a_running_container") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::with_args(&["sleep", "1000"]);
    let id = unique_id("corrupt-running");
    let pid = rt.start_container(&bundle, &id);
    let path = rt.state_dir(&id).join("state.json");
    fs::write(&path, b"\x00 not json").unwrap();
    let line = assert_error_line(&rt.skiff(&["state", &id]), &id);
    assert!(line.contains("corrupt"), "{line}");
    // The pid and cgroup kept beside the state let delete --force end it.
    assert_success(&rt.delete_force(&id), "delete --force");
    assert!(
        poll_until(Duration::from_secs(5), || !pid_alive(pid)),
        "init {pid} outlived delete --force of a corrupt state"
    );
    assert_no_leftovers(&rt, &id, &bundle);
}

#[test]
fn reused_pid_is_not_the_container() {
    if !preflight("reused_pid_is_not_the_container") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::with_args(&["sleep", "1000"]);
    let (id, path) = stopped_container(&rt, &bundle, "pidreuse");
    // /proc/PID/stat's start time counts clock ticks (10 ms at USER_HZ
    // 100). A process started in the same tick as init is
    // indistinguishable by it, to runc as well; a real pid reuse needs
    // the pid space to wrap first, which takes far longer. So start the
    // foreign process a few ticks later (CI once spawned it in the same
    // tick).
    std::thread::sleep(Duration::from_millis(30));
    // Another process now has "the container's" pid.
    let mut other = Command::new("sleep")
        .arg("1000")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut state: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    state["pid"] = serde_json::json!(other.id());
    let other_start = fs::read_to_string(format!("/proc/{}/stat", other.id())).unwrap();
    let other_start = other_start
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(19);
    assert_ne!(
        other_start.map(str::to_owned),
        state["pid_start"].as_u64().map(|t| t.to_string()),
        "the foreign process started in init's clock tick: this test proves nothing"
    );
    fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();
    assert_eq!(
        rt.status(&id),
        "stopped",
        "a foreign process was taken for init"
    );
    let out = rt.kill(&id, "KILL");
    assert_error_line(&out, "not running");
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        other.try_wait().unwrap().is_none(),
        "skiff killed a process that is not the container's"
    );
    assert_success(&rt.delete(&id), "delete");
    assert!(
        other.try_wait().unwrap().is_none(),
        "delete killed a foreign process"
    );
    let _ = other.kill();
    let _ = other.wait();
    assert_no_leftovers(&rt, &id, &bundle);
}

/// A tmpfs of 256 KiB mounted on a temp dir, unmounted on drop.
struct TinyFs {
    dir: TempDir,
}

impl TinyFs {
    fn new() -> TinyFs {
        let dir = TempDir::new("skiff-tinyfs");
        nix::mount::mount(
            Some("tmpfs"),
            dir.path(),
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=256k,mode=0700"),
        )
        .expect("mount tmpfs");
        TinyFs { dir }
    }

    /// Fills the file system up to the last byte.
    fn fill(&self) {
        let mut f = fs::File::create(self.dir.path().join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while std::io::Write::write_all(&mut f, &block).is_ok() {}
        while std::io::Write::write_all(&mut f, &block[..1]).is_ok() {}
    }

    fn free(&self) {
        fs::remove_file(self.dir.path().join("filler")).unwrap();
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.dir.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn state_dir_on_a_full_disk() {
    if !preflight("state_dir_on_a_full_disk") {
        return;
    }
    let tiny = TinyFs::new();
    let root = tiny.dir.path().join("root");
    let bundle = Bundle::with_args(&["sleep", "1000"]);
    bundle.save();
    let b = bundle.path().to_string_lossy().into_owned();
    let sk = |args: &[&str]| {
        let mut cmd = Command::new(skiff_bin());
        cmd.arg("--root").arg(&root).args(args);
        output_with_timeout(&mut cmd, DEFAULT_TIMEOUT)
    };
    // One container made while there is room, then the disk fills up.
    let old = unique_id("fullold");
    assert_success(&sk(&["create", "--bundle", &b, &old]), "create before full");
    tiny.fill();
    let id = unique_id("full");
    let out = sk(&["create", "--bundle", &b, &id]);
    let line = assert_error_line(&out, "no space left");
    assert!(
        !root.join(&id).exists(),
        "a failed create left {}: {line}",
        id
    );
    // The existing container can still be inspected and removed.
    let st = sk(&["state", &old]);
    assert_success(&st, "state on a full disk");
    assert_success(
        &sk(&["delete", "--force", &old]),
        "delete --force on a full disk",
    );
    assert!(!root.join(&old).exists());
    tiny.free();
    let out = sk(&["create", "--bundle", &b, &id]);
    assert_success(&out, "create after freeing space");
    assert_success(&sk(&["delete", "--force", &id]), "delete --force");
    let runtime = Runtime::new();
    for i in [&old, &id] {
        assert!(leftovers(&runtime, i, &bundle)
            .iter()
            .all(|l| l.starts_with("state directory")));
    }
}

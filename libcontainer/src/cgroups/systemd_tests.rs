//! Unit tests of systemd.rs.
use super::*;

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

#[test]
fn parse_paths() {
    let s = Scope::parse(None, "abc").unwrap();
    assert_eq!(
        (s.unit.as_str(), s.slice.as_str()),
        ("skiff-abc.scope", "system.slice")
    );
    let s = Scope::parse(Some(""), "abc").unwrap();
    assert_eq!(s.unit, "skiff-abc.scope");
    let s = Scope::parse(Some("machine.slice:libpod:x1"), "abc").unwrap();
    assert_eq!(
        (s.unit.as_str(), s.slice.as_str()),
        ("libpod-x1.scope", "machine.slice")
    );
    let s = Scope::parse(Some(":docker:x"), "abc").unwrap();
    assert_eq!(
        (s.unit.as_str(), s.slice.as_str()),
        ("docker-x.scope", "system.slice")
    );
    for bad in [
        "/a/b",
        "a:b",
        "a:b:c:d",
        "system.slice:p:",
        "bad:p:x",
        "a/b.slice:p:x",
    ] {
        let e = Scope::parse(Some(bad), "abc").unwrap_err().to_string();
        assert!(e.starts_with("linux.cgroupsPath:"), "{bad}: {e}");
    }
    let e = Scope::parse(Some("system.slice:p:x.slice"), "a")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not slices"), "{e}");
    let e = Scope::parse(None, "a+b").unwrap_err().to_string();
    assert!(e.contains("valid systemd unit name"), "{e}");
}

#[test]
fn slice_paths() {
    assert_eq!(
        expand_slice("system.slice").unwrap(),
        Path::new("system.slice")
    );
    assert_eq!(
        expand_slice("a-b-c.slice").unwrap(),
        Path::new("a.slice/a-b.slice/a-b-c.slice")
    );
    assert_eq!(expand_slice("-.slice").unwrap(), Path::new(""));
    for bad in [
        ".slice",
        "a--b.slice",
        "-a.slice",
        "a-.slice",
        "a.scope",
        "a/b.slice",
    ] {
        assert!(expand_slice(bad).is_err(), "{bad}");
    }
    let s = Scope::parse(Some("user-1000.slice:p:n"), "x").unwrap();
    // Under each hierarchy's root (one on v2, each v1 one on v1 hosts).
    let under = |cg: Cgroup, rel: &str| {
        let dirs = cg.dirs();
        assert!(
            !dirs.is_empty()
                && dirs
                    .iter()
                    .all(|d| d.starts_with("/sys/fs/cgroup") && d.ends_with(rel)),
            "{dirs:?}"
        );
    };
    under(s.cgroup().unwrap(), "user.slice/user-1000.slice/p-n.scope");
    under(
        cgroup_under_mount("/system.slice/x.scope").unwrap(),
        "system.slice/x.scope",
    );
    for bad in ["", "/", "rel/x", "/a/../b"] {
        assert!(cgroup_under_mount(bad).is_none(), "{bad}");
    }
}

#[test]
fn base_properties() {
    let s = Scope::parse(None, "c1").unwrap();
    let base = s.base_props(Pid::from_raw(42)).unwrap();
    assert!(base.contains(&("PIDs", Prop::U32s(vec![42]))));
    assert!(base.contains(&("Slice", Prop::Str("system.slice".into()))));
    assert!(base.contains(&("Delegate", Prop::Bool(true))));
    assert!(base.contains(&("DefaultDependencies", Prop::Bool(false))));
}

/// Needs root on a host run by systemd with cgroup v2 (see hack/vm):
/// `cargo test -p libcontainer --lib systemd -- --ignored`.
#[test]
#[ignore = "needs root on a host run by systemd with cgroup v2 (hack/vm)"]
fn scope_lifecycle() {
    let mut child = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let pid = Pid::from_raw(child.id() as i32);
    let id = format!("sdtest-{pid}");
    let scope = Scope::parse(Some(&format!("skiff-test.slice:skiff:{id}")), &id).unwrap();
    let r = res(r#"{"memory": {"limit": 67108864}, "pids": {"limit": 50},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000}}"#);
    let cg = scope.start(pid, Some(&r)).unwrap();
    println!("cgroup: {}", cg.display());
    let v2 = cg.v2().expect("a cgroup v2 host").clone();
    assert_eq!(cg, scope.cgroup().unwrap());
    assert!(cg.exists());
    assert_eq!(cg.procs().unwrap(), vec![pid.as_raw()]);
    assert_eq!(v2.read("memory.max").unwrap(), "67108864");
    assert_eq!(v2.read("pids.max").unwrap(), "50");
    assert_eq!(v2.read("cpu.max").unwrap(), "50000 100000");
    assert_eq!(v2.read("cpu.weight").unwrap(), "39");
    // The fs driver writes the rest into the same directory.
    cg.set(&res(r#"{"memory": {"reservation": 1048576}}"#))
        .unwrap();
    assert_eq!(v2.read("memory.low").unwrap(), "1048576");
    // A second start of an active unit fails, naming it.
    let e = scope.start(pid, None).unwrap_err().to_string();
    println!("second start: {e}");
    assert!(
        e.contains(&scope.unit) && e.contains("StartTransientUnit"),
        "{e}"
    );
    scope.stop().unwrap();
    assert!(!cg.exists(), "{} still exists", cg.display());
    let status = child.wait().unwrap();
    assert!(!status.success(), "sleep was not killed: {status}");
    // Stopping a unit that is gone is fine.
    scope.stop().unwrap();
    // A pid that is gone fails the start, by name, and leaves no unit.
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = Pid::from_raw(dead.id() as i32);
    dead.wait().unwrap();
    let e = scope.start(dead_pid, None).unwrap_err().to_string();
    println!("dead pid: {e}");
    assert!(e.contains(&scope.unit), "{e}");
    assert!(!cg.exists());
    // The same name can be used again.
    let mut child = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let cg = scope.start(Pid::from_raw(child.id() as i32), None).unwrap();
    assert_eq!(cg.procs().unwrap(), vec![child.id() as i32]);
    // The default slice and prefix.
    let mut other = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let def = Scope::parse(None, &format!("{id}-d")).unwrap();
    let dcg = def.start(Pid::from_raw(other.id() as i32), None).unwrap();
    let want = format!("/sys/fs/cgroup/system.slice/skiff-{id}-d.scope");
    assert_eq!(dcg.dirs(), [Path::new(&want)]);
    def.stop().unwrap();
    assert!(!dcg.exists());
    let _ = other.wait();
    scope.stop().unwrap();
    assert!(!cg.exists());
    let _ = child.wait();
}

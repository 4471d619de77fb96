//! Rootless skiff: an unprivileged user, made for the test (with its own
//! /etc/subuid and /etc/subgid ranges, removed again even when a test fails),
//! runs containers in a user namespace with its state under XDG_RUNTIME_DIR.

use std::cell::RefCell;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};
use skiff_conformance::{
    assert_error_line, assert_success, describe, output_with_timeout, pid_alive, poll_until,
    preflight, skiff_bin, stdout, unique_id, Bundle, TempDir, DEFAULT_TIMEOUT,
};

/// useradd/userdel take /etc/passwd's lock: one test at a time changes users.
static USERS: Mutex<()> = Mutex::new(());
const SUB_COUNT: u32 = 65536;

fn run_root(cmd: &mut Command) -> Output {
    output_with_timeout(cmd, DEFAULT_TIMEOUT)
}

/// A throw-away unprivileged user with subordinate ids, a private
/// XDG_RUNTIME_DIR and a root-owned copy of skiff it can execute.
struct User {
    name: String,
    uid: u32,
    gid: u32,
    /// First subordinate uid and gid (both ranges are the same).
    sub: u32,
    xdg: TempDir,
    bin_dir: TempDir,
    ids: RefCell<Vec<String>>,
    removed: bool,
}

impl User {
    /// Make the user, or print SKIP and return None when this host forbids
    /// unprivileged user namespaces (or lacks the tools).
    fn new(test: &str) -> Option<User> {
        if !preflight(test) {
            return None;
        }
        for tool in ["useradd", "userdel", "usermod", "setpriv", "unshare"] {
            let found = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
                .iter()
                .any(|d| Path::new(d).join(tool).exists());
            if !found {
                println!("SKIP {test}: {tool} is not installed");
                return None;
            }
        }
        let tag = unique_id("u");
        let name = format!("skrl{:x}", crc(&tag));
        {
            let _g = USERS.lock().unwrap_or_else(|e| e.into_inner());
            let out = run_root(Command::new("useradd").args([
                "--no-create-home",
                "--user-group",
                "--shell",
                "/bin/sh",
                &name,
            ]));
            assert_success(&out, "useradd");
        }
        let id = |flag: &str| -> u32 {
            stdout(&run_root(Command::new("id").args([flag, &name])))
                .trim()
                .parse()
                .expect("id of the new user")
        };
        let (uid, gid) = (id("-u"), id("-g"));
        let sub = 1_000_000_000 + (uid % 10_000) * SUB_COUNT;
        let xdg = TempDir::new("skiff-xdg");
        let bin_dir = TempDir::new("skiff-rlbin");
        let mut user = User {
            name,
            uid,
            gid,
            sub,
            xdg,
            bin_dir,
            ids: RefCell::new(Vec::new()),
            removed: false,
        };
        let range = format!("{sub}-{}", sub + SUB_COUNT - 1);
        {
            let _g = USERS.lock().unwrap_or_else(|e| e.into_inner());
            let out = run_root(Command::new("usermod").args([
                "--add-subuids",
                &range,
                "--add-subgids",
                &range,
                &user.name,
            ]));
            assert_success(&out, "usermod --add-subuids");
        }
        std::os::unix::fs::chown(user.xdg.path(), Some(uid), Some(gid))
            .expect("chown XDG_RUNTIME_DIR");
        fs::set_permissions(user.xdg.path(), fs::Permissions::from_mode(0o700)).unwrap();
        // A root-owned 0755 copy: every user can run it wherever the
        // worktree lives.
        fs::copy(skiff_bin(), user.bin()).expect("copy skiff");
        fs::set_permissions(user.bin(), fs::Permissions::from_mode(0o755)).unwrap();
        let probe = output_with_timeout(
            &mut user.command("unshare", &["--user", "true"]),
            DEFAULT_TIMEOUT,
        );
        if !probe.status.success() {
            println!(
                "SKIP {test}: this host forbids unprivileged user namespaces: {}",
                String::from_utf8_lossy(&probe.stderr).trim()
            );
            user.remove();
            return None;
        }
        Some(user)
    }

    fn bin(&self) -> PathBuf {
        self.bin_dir.path().join("skiff")
    }

    /// `program args...` as this user (setpriv), with a clean environment.
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--init-groups")
            .arg(program)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("XDG_RUNTIME_DIR", self.xdg.path())
            .current_dir("/");
        cmd
    }

    /// `skiff args...` as this user, default state root.
    fn skiff(&self, args: &[&str]) -> Output {
        let bin = self.bin();
        output_with_timeout(
            &mut self.command(&bin.to_string_lossy(), args),
            DEFAULT_TIMEOUT,
        )
    }

    /// skiff `cmd --bundle B id`, tracking `id` for cleanup.
    fn with_bundle(&self, cmd: &str, bundle: &Bundle, id: &str, extra: &[&str]) -> Output {
        bundle.save();
        self.ids.borrow_mut().push(id.to_string());
        let b = bundle.path().to_string_lossy().into_owned();
        let mut args = vec![cmd, "--bundle", b.as_str()];
        args.extend_from_slice(extra);
        args.push(id);
        self.skiff(&args)
    }

    fn state_root(&self) -> PathBuf {
        self.xdg.path().join("skiff")
    }

    fn state(&self, id: &str) -> Value {
        let out = self.skiff(&["state", id]);
        assert_success(&out, "state");
        serde_json::from_slice(&out.stdout).expect("state JSON")
    }

    /// Pids of live processes owned by the user or its subordinate ids.
    fn processes(&self) -> Vec<i32> {
        let ours = |uid: u32| uid == self.uid || (self.sub..self.sub + SUB_COUNT).contains(&uid);
        fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                fs::metadata(format!("/proc/{pid}")).is_ok_and(|m| ours(m.uid()))
                    && pid_alive(i64::from(*pid))
            })
            .collect()
    }

    /// A rootless bundle: `skiff spec --rootless` as written for this user,
    /// with the test's process and marker.
    fn bundle(&self, script: &str) -> Bundle {
        let mut b = Bundle::sh(script);
        let spec = self.spec_rootless();
        let env = b.config()["process"]["env"].clone();
        *b.config_mut() = spec;
        let c = b.config_mut();
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!(["sh", "-c", script]);
        c["process"]["env"] = env;
        c["root"]["readonly"] = json!(false);
        b
    }

    /// The config `skiff spec --rootless` writes when run by this user.
    fn spec_rootless(&self) -> Value {
        let dir = TempDir::new("skiff-rlspec");
        std::os::unix::fs::chown(dir.path(), Some(self.uid), None).unwrap();
        let out = self.skiff(&[
            "spec",
            "--rootless",
            "--bundle",
            &dir.path().to_string_lossy(),
        ]);
        assert_success(&out, "spec --rootless");
        let text = fs::read_to_string(dir.path().join("config.json")).expect("config.json");
        serde_json::from_str(&text).expect("spec JSON")
    }

    /// Delete the containers, kill what is left, remove the user, its
    /// subordinate ids and its dirs. Idempotent.
    fn remove(&mut self) {
        if self.removed {
            return;
        }
        self.removed = true;
        for id in self.ids.borrow().iter() {
            let _ = self.skiff(&["delete", "--force", id]);
        }
        for pid in self.processes() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        poll_until(Duration::from_secs(5), || self.processes().is_empty());
        let range = format!("{}-{}", self.sub, self.sub + SUB_COUNT - 1);
        let _g = USERS.lock().unwrap_or_else(|e| e.into_inner());
        let _ = run_root(Command::new("usermod").args([
            "--del-subuids",
            &range,
            "--del-subgids",
            &range,
            &self.name,
        ]));
        let _ = run_root(Command::new("userdel").arg(&self.name));
    }

    /// remove(), then assert that nothing of the user is left on the host.
    fn remove_and_check(mut self) {
        let root = self.state_root();
        let left: Vec<_> = fs::read_dir(&root)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "state left under {}: {left:?}",
            root.display()
        );
        self.remove();
        assert!(
            self.processes().is_empty(),
            "processes of {} left",
            self.name
        );
        for f in ["/etc/passwd", "/etc/group", "/etc/subuid", "/etc/subgid"] {
            let text = fs::read_to_string(f).unwrap_or_default();
            assert!(
                !text
                    .lines()
                    .any(|l| l.starts_with(&format!("{}:", self.name))),
                "{} still names {}",
                f,
                self.name
            );
        }
    }
}

impl Drop for User {
    fn drop(&mut self) {
        self.remove();
    }
}

/// A short stable hash, for user names (at most 32 characters).
fn crc(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

fn map_lines(text: &str) -> Vec<Vec<u64>> {
    text.lines()
        .map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .filter(|v: &Vec<u64>| !v.is_empty())
        .collect()
}

#[test]
fn rootless_spec_matches_runc() {
    let Some(user) = User::new("rootless_spec_matches_runc") else {
        return;
    };
    let spec = user.spec_rootless();
    let linux = &spec["linux"];
    let ns: Vec<&str> = linux["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    assert!(ns.contains(&"user") && !ns.contains(&"network"), "{ns:?}");
    assert_eq!(
        linux["uidMappings"],
        json!([{"containerID": 0, "hostID": user.uid, "size": 1}])
    );
    assert_eq!(
        linux["gidMappings"],
        json!([{"containerID": 0, "hostID": user.gid, "size": 1}])
    );
    assert!(linux.get("resources").is_none(), "{linux}");
    for m in spec["mounts"].as_array().unwrap() {
        let opts: Vec<&str> = m["options"]
            .as_array()
            .map(|o| o.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert!(
            opts.iter()
                .all(|o| !o.starts_with("gid=") && !o.starts_with("uid=")),
            "{m}"
        );
        if m["destination"] == "/sys" {
            assert_eq!(m["type"], "none", "{m}");
            assert_eq!(m["source"], "/sys", "{m}");
            assert!(opts.contains(&"rbind"), "{m}");
        }
    }
    user.remove_and_check();
}

#[test]
fn rootless_lifecycle_with_own_id() {
    let Some(user) = User::new("rootless_lifecycle_with_own_id") else {
        return;
    };
    let bundle = user.bundle("sleep 1000");
    let id = unique_id("rl");
    let out = user.with_bundle("create", &bundle, &id, &[]);
    assert_success(&out, "rootless create");
    // The state lives under $XDG_RUNTIME_DIR/skiff (0700 + sticky, as runc).
    let root = user.state_root();
    assert!(
        root.join(&id).join("state.json").is_file(),
        "no state under {}",
        root.display()
    );
    assert_eq!(fs::metadata(&root).unwrap().mode() & 0o7777, 0o1700);
    assert!(!Path::new("/run/skiff").join(&id).exists());
    let st = user.state(&id);
    assert_eq!(st["status"], "created");
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(
        fs::metadata(format!("/proc/{pid}")).unwrap().uid(),
        user.uid,
        "init runs as the user on the host"
    );
    assert_success(&user.skiff(&["start", &id]), "start");
    assert_eq!(user.state(&id)["status"], "running");
    let out = user.skiff(&[
        "exec",
        &id,
        "sh",
        "-c",
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups",
    ]);
    assert_success(&out, "exec");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..2], ["0", "0"], "{text}");
    assert_eq!(
        map_lines(&lines[2..4].join("\n")),
        vec![
            vec![0, u64::from(user.uid), 1],
            vec![0, u64::from(user.gid), 1]
        ],
        "{text}"
    );
    assert_eq!(lines.get(4), Some(&"deny"), "{text}");
    // exec lands in the container's pid namespace.
    let out = user.skiff(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo $$; cat /proc/1/cmdline | tr '\\0' ' '",
    ]);
    assert_success(&out, "exec in the pid namespace");
    assert!(stdout(&out).contains("sleep 1000"), "{}", describe(&out));
    assert_success(&user.skiff(&["kill", &id, "KILL"]), "kill");
    assert!(
        poll_until(Duration::from_secs(5), || user.state(&id)["status"]
            == "stopped"),
        "not stopped after kill"
    );
    assert_success(&user.skiff(&["delete", &id]), "delete");
    assert!(!root.join(&id).exists());
    user.remove_and_check();
}

#[test]
fn rootless_several_ranges_use_newuidmap() {
    let Some(user) = User::new("rootless_several_ranges_use_newuidmap") else {
        return;
    };
    if !Path::new("/usr/bin/newuidmap").exists() {
        println!("SKIP rootless_several_ranges_use_newuidmap: newuidmap missing (uidmap package)");
        return;
    }
    let script = "cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/owned; \
                  chown 1000:1000 /tmp/owned && stat -c %u:%g /tmp/owned";
    let mut bundle = user.bundle(script);
    let (uid, gid, sub) = (user.uid, user.gid, user.sub);
    for set in ["bounding", "effective", "permitted"] {
        bundle.config_mut()["process"]["capabilities"][set] = json!(["CAP_CHOWN"]);
    }
    bundle.config_mut()["linux"]["uidMappings"] = json!([
        {"containerID": 0, "hostID": uid, "size": 1},
        {"containerID": 1, "hostID": sub, "size": SUB_COUNT}
    ]);
    bundle.config_mut()["linux"]["gidMappings"] = json!([
        {"containerID": 0, "hostID": gid, "size": 1},
        {"containerID": 1, "hostID": sub, "size": SUB_COUNT}
    ]);
    let id = unique_id("rlmulti");
    let out = user.with_bundle("run", &bundle, &id, &[]);
    assert_success(&out, "run with several ranges");
    let text = stdout(&out);
    let maps = map_lines(&text);
    let want_u = [
        vec![0, u64::from(uid), 1],
        vec![1, u64::from(sub), u64::from(SUB_COUNT)],
    ];
    let want_g = [
        vec![0, u64::from(gid), 1],
        vec![1, u64::from(sub), u64::from(SUB_COUNT)],
    ];
    assert_eq!(maps[..2], want_u[..], "{text}");
    assert_eq!(maps[2..4], want_g[..], "{text}");
    assert!(text.lines().any(|l| l == "1000:1000"), "{text}");
    let host = fs::metadata(bundle.rootfs().join("tmp/owned")).expect("file made in the container");
    assert_eq!((host.uid(), host.gid()), (sub + 999, sub + 999));

    // Container root on a subordinate id: the caller cannot chown the exec
    // fifo to it, and create/start still work.
    let mut bundle = user.bundle("id -u; cat /proc/self/uid_map");
    bundle.config_mut()["linux"]["uidMappings"] =
        json!([{"containerID": 0, "hostID": sub, "size": SUB_COUNT}]);
    bundle.config_mut()["linux"]["gidMappings"] =
        json!([{"containerID": 0, "hostID": sub, "size": SUB_COUNT}]);
    let id = unique_id("rlsub");
    assert_success(
        &user.with_bundle("create", &bundle, &id, &[]),
        "create, root on a subuid",
    );
    let pid = user.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(fs::metadata(format!("/proc/{pid}")).unwrap().uid(), sub);
    assert_success(&user.skiff(&["start", &id]), "start, root on a subuid");
    assert!(poll_until(Duration::from_secs(5), || user.state(&id)
        ["status"]
        == "stopped"));
    assert_success(&user.skiff(&["delete", &id]), "delete");

    // A range /etc/subuid does not grant: newuidmap's refusal, in one line.
    let mut bundle = user.bundle("true");
    bundle.config_mut()["linux"]["uidMappings"] =
        json!([{"containerID": 0, "hostID": sub + SUB_COUNT, "size": 10}]);
    let id = unique_id("rlbad");
    let out = user.with_bundle("run", &bundle, &id, &[]);
    let line = assert_error_line(&out, "linux.uidMappings");
    assert!(line.contains("newuidmap"), "{line}");
    user.remove_and_check();
}

#[test]
fn rootless_refusals_are_runcs() {
    let Some(user) = User::new("rootless_refusals_are_runcs") else {
        return;
    };
    // No user namespace: runc's "rootless container requires user namespaces".
    let mut bundle = user.bundle("true");
    let c = bundle.config_mut();
    c["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]);
    c["linux"].as_object_mut().unwrap().remove("uidMappings");
    c["linux"].as_object_mut().unwrap().remove("gidMappings");
    let out = user.with_bundle("run", &bundle, &unique_id("rlnous"), &[]);
    assert_error_line(&out, "linux.namespaces");

    // Lowering oom_score_adj needs CAP_SYS_RESOURCE on the host (runc fails too).
    let mut bundle = user.bundle("true");
    bundle.config_mut()["process"]["oomScoreAdj"] = json!(-500);
    let out = user.with_bundle("run", &bundle, &unique_id("rloom"), &[]);
    let line = assert_error_line(&out, "process.oomScoreAdj");
    assert!(line.contains("CAP_SYS_RESOURCE"), "{line}");
    // Raising it is allowed.
    let mut bundle = user.bundle("cat /proc/self/oom_score_adj");
    bundle.config_mut()["process"]["oomScoreAdj"] = json!(500);
    let out = user.with_bundle("run", &bundle, &unique_id("rloomup"), &[]);
    assert_success(&out, "raise oom_score_adj");
    assert_eq!(stdout(&out).trim(), "500");

    // A hard rlimit above the caller's.
    let limits = fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let hard = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|h| h.parse::<u64>().ok());
    if let Some(hard) = hard {
        let mut bundle = user.bundle("true");
        bundle.config_mut()["process"]["rlimits"] =
            json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": hard + 1}]);
        let out = user.with_bundle("run", &bundle, &unique_id("rlnofile"), &[]);
        assert_error_line(&out, "process.rlimits");
    }

    // A limit with no delegated cgroup is refused, naming the field (on a
    // host without cgroup v2 it needs cgroup v2 anyway); device rules and
    // a cgroupsPath without limits are fine.
    let mut bundle = user.bundle("true");
    bundle.config_mut()["linux"]["resources"] = json!({"pids": {"limit": 10}});
    let out = user.with_bundle("run", &bundle, &unique_id("rlpids"), &[]);
    assert_error_line(&out, "linux.resources.pids");
    let mut bundle = user.bundle("echo ok");
    bundle.config_mut()["linux"]["resources"] =
        json!({"devices": [{"allow": false, "access": "rwm"}]});
    bundle.config_mut()["linux"]["cgroupsPath"] = json!("skiff-rootless");
    let out = user.with_bundle("run", &bundle, &unique_id("rlcg"), &[]);
    assert_success(&out, "rootless run with a cgroupsPath and device rules");
    assert_eq!(stdout(&out).trim(), "ok");
    user.remove_and_check();
}

#[test]
fn rootless_binary_cannot_be_overwritten() {
    let Some(user) = User::new("rootless_binary_cannot_be_overwritten") else {
        return;
    };
    // A skiff the user owns (say ~/bin/skiff): container root is that user,
    // so skiff must run from a sealed copy.
    let own = TempDir::new("skiff-rlown");
    let bin = own.path().join("skiff");
    fs::copy(skiff_bin(), &bin).unwrap();
    let before = fs::read(&bin).unwrap();
    for p in [own.path(), bin.as_path()] {
        std::os::unix::fs::chown(p, Some(user.uid), None).unwrap();
    }
    let bundle = user.bundle("sleep 1000");
    bundle.save();
    let id = unique_id("rlexe");
    user.ids.borrow_mut().push(id.clone());
    let b = bundle.path().to_string_lossy().into_owned();
    let out = output_with_timeout(
        &mut user.command(&bin.to_string_lossy(), &["create", "--bundle", &b, &id]),
        DEFAULT_TIMEOUT,
    );
    assert_success(&out, "create with a user-owned skiff");
    let pid = user.state(&id)["pid"].as_i64().unwrap();
    let exe = format!("/proc/{pid}/exe");
    let link = skiff_conformance::readlink(&exe);
    assert!(
        link.starts_with("/memfd:skiff"),
        "init runs {link}, not a sealed copy"
    );
    // Even root cannot write through it: the copy is a write-sealed memfd.
    let attempt = fs::OpenOptions::new()
        .write(true)
        .open(&exe)
        .and_then(|mut f| f.write_all(b"x"));
    assert!(
        attempt.is_err(),
        "wrote through {exe} ({})",
        skiff_conformance::readlink(&exe)
    );
    // And as the user, through the shell a container process would use.
    let out = output_with_timeout(
        &mut user.command("sh", &["-c", &format!("printf x >> {exe}")]),
        DEFAULT_TIMEOUT,
    );
    assert!(!out.status.success(), "the user wrote through {exe}");
    assert_eq!(
        fs::read(&bin).unwrap(),
        before,
        "the skiff binary was modified"
    );

    // The root-owned 0755 binary is not writable by any id the container
    // holds: skiff runs it as it is, and the user still cannot write it.
    let id2 = unique_id("rlexe2");
    assert_success(&user.with_bundle("create", &bundle, &id2, &[]), "create");
    let pid = user.state(&id2)["pid"].as_i64().unwrap();
    let exe = format!("/proc/{pid}/exe");
    assert_eq!(
        skiff_conformance::readlink(&exe),
        user.bin().to_string_lossy()
    );
    let out = output_with_timeout(
        &mut user.command("sh", &["-c", &format!("printf x >> {exe}")]),
        DEFAULT_TIMEOUT,
    );
    assert!(!out.status.success(), "the user wrote through {exe}");
    for i in [&id, &id2] {
        assert_success(&user.skiff(&["delete", "--force", i]), "delete --force");
    }
    user.remove_and_check();
}

#[test]
fn rootless_sysfs_without_netns_is_bound() {
    let Some(user) = User::new("rootless_sysfs_without_netns_is_bound") else {
        return;
    };
    // runc's default /sys mount (type sysfs) in a rootless config without a
    // network namespace: the kernel refuses sysfs, so the host's is bound.
    let mut bundle =
        user.bundle("ls /sys/class >/dev/null && echo listed; touch /sys/x 2>/dev/null || echo ro");
    for m in bundle.config_mut()["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/sys" {
            *m = json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                        "options": ["nosuid", "noexec", "nodev", "ro"]});
        }
    }
    let out = user.with_bundle("run", &bundle, &unique_id("rlsys"), &[]);
    assert_success(&out, "rootless run with a sysfs mount");
    assert_eq!(stdout(&out).lines().collect::<Vec<_>>(), ["listed", "ro"]);
    user.remove_and_check();
}

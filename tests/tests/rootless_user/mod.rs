//! The throw-away unprivileged user of the rootless tests: made with
//! useradd, given /etc/subuid and /etc/subgid ranges, an XDG_RUNTIME_DIR
//! and a copy of skiff; removed again (even when a test fails) on drop.

use std::cell::RefCell;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};
use skiff_conformance::{
    assert_success, output_with_timeout, pid_alive, poll_until, preflight, skiff_bin, skip, stdout,
    unique_id, Bundle, TempDir, DEFAULT_TIMEOUT,
};

/// useradd/userdel take /etc/passwd's lock: one test at a time changes users.
static USERS: Mutex<()> = Mutex::new(());
/// Size of the subordinate id ranges.
pub const SUB_COUNT: u32 = 65536;

fn run_root(cmd: &mut Command) -> Output {
    output_with_timeout(cmd, DEFAULT_TIMEOUT)
}

/// A throw-away unprivileged user with subordinate ids, a private
/// XDG_RUNTIME_DIR and a root-owned copy of skiff it can execute.
pub struct User {
    name: String,
    /// The user's uid.
    pub uid: u32,
    /// The user's primary gid.
    pub gid: u32,
    /// First subordinate uid and gid (both ranges are the same).
    pub sub: u32,
    xdg: TempDir,
    bin_dir: TempDir,
    /// Container ids to force-delete on removal.
    pub ids: RefCell<Vec<String>>,
    removed: bool,
}

impl User {
    /// Make the user, or record the skip (see [`skip`]) and return None when
    /// this host forbids unprivileged user namespaces (or lacks the tools).
    pub fn new(test: &str) -> Option<User> {
        if !preflight(test) {
            return None;
        }
        for tool in ["useradd", "userdel", "usermod", "setpriv", "unshare"] {
            let found = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
                .iter()
                .any(|d| Path::new(d).join(tool).exists());
            if !found {
                skip(format_args!("{tool} is not installed"));
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
            skip(format_args!(
                "this host forbids unprivileged user namespaces: {}",
                String::from_utf8_lossy(&probe.stderr).trim()
            ));
            user.remove();
            return None;
        }
        Some(user)
    }

    /// The user's copy of skiff (root-owned, 0755).
    pub fn bin(&self) -> PathBuf {
        self.bin_dir.path().join("skiff")
    }

    /// `program args...` as this user (setpriv), with a clean environment.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
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
    pub fn skiff(&self, args: &[&str]) -> Output {
        let bin = self.bin();
        output_with_timeout(
            &mut self.command(&bin.to_string_lossy(), args),
            DEFAULT_TIMEOUT,
        )
    }

    /// skiff `cmd --bundle B id`, tracking `id` for cleanup.
    pub fn with_bundle(&self, cmd: &str, bundle: &Bundle, id: &str, extra: &[&str]) -> Output {
        bundle.save();
        self.ids.borrow_mut().push(id.to_string());
        let b = bundle.path().to_string_lossy().into_owned();
        let mut args = vec![cmd, "--bundle", b.as_str()];
        args.extend_from_slice(extra);
        args.push(id);
        self.skiff(&args)
    }

    /// Where skiff keeps this user's state: $XDG_RUNTIME_DIR/skiff.
    pub fn state_root(&self) -> PathBuf {
        self.xdg.path().join("skiff")
    }

    /// `skiff state id` as JSON (panics when it fails).
    pub fn state(&self, id: &str) -> Value {
        let out = self.skiff(&["state", id]);
        assert_success(&out, "state");
        serde_json::from_slice(&out.stdout).expect("state JSON")
    }

    /// Pids of live processes owned by the user or its subordinate ids.
    pub fn processes(&self) -> Vec<i32> {
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
    pub fn bundle(&self, script: &str) -> Bundle {
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
    pub fn spec_rootless(&self) -> Value {
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
    pub fn remove(&mut self) {
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
    pub fn remove_and_check(mut self) {
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

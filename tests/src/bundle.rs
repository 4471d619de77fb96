//! OCI bundles for tests: a busybox rootfs plus a `config.json` that mirrors
//! `runc spec` (minus cgroup resources and the cgroup mount).

use crate::TempDir;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The capabilities of `runc spec`'s default config.
const DEFAULT_CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// The default config (as JSON) used by every [`Bundle`]: `runc spec` with
/// terminal false, a writable rootfs, a cgroup namespace, no
/// `linux.resources` and no cgroup mount.
pub fn default_config() -> Value {
    let caps = json!(DEFAULT_CAPS);
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps.clone(),
                "effective": caps.clone(),
                "permitted": caps.clone(),
                "ambient": caps,
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "skiff",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
alice:x:1000:1000:Alice:/home/alice:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

const GROUP: &str = "root:x:0:\n\
alice:x:1000:\n\
extra:x:2000:alice\n\
nogroup:x:65534:\n";

/// A bundle directory (removed on drop) with `rootfs/` (busybox + applet
/// symlinks, /etc/passwd, /etc/group, proc, sys, dev, tmp, root, home/alice)
/// and an in-memory config that is written to `config.json` by [`Bundle::save`]
/// (the [`crate::Runtime`] helpers call it before create/run).
#[derive(Debug)]
pub struct Bundle {
    dir: TempDir,
    config: Value,
    marker: String,
}

impl Default for Bundle {
    fn default() -> Self {
        Self::new()
    }
}

impl Bundle {
    /// Builds a fresh bundle with [`default_config`] and `args = ["sh"]`.
    ///
    /// The container environment gets `SKIFF_TEST_MARK=<bundle dir name>`,
    /// which the leftover checks use to find stray container processes.
    pub fn new() -> Bundle {
        let dir = TempDir::new("skiff-bundle");
        let rootfs = dir.path().join("rootfs");
        for d in [
            "bin",
            "proc",
            "sys",
            "dev",
            "tmp",
            "etc",
            "root",
            "home/alice",
            "mnt",
        ] {
            fs::create_dir_all(rootfs.join(d)).expect("mkdir rootfs dir");
        }
        for d in ["", "bin", "etc", "home", "home/alice", "mnt", "root"] {
            let _ = fs::set_permissions(rootfs.join(d), fs::Permissions::from_mode(0o755));
        }
        fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))
            .expect("chmod tmp");
        fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy /bin/busybox");
        fs::set_permissions(
            rootfs.join("bin/busybox"),
            fs::Permissions::from_mode(0o755),
        )
        .expect("chmod busybox");
        for applet in busybox_applets() {
            if applet == "busybox" || applet.contains('/') || applet.is_empty() {
                continue;
            }
            let _ = symlink("busybox", rootfs.join("bin").join(&applet));
        }
        fs::write(rootfs.join("etc/passwd"), PASSWD).expect("write passwd");
        fs::write(rootfs.join("etc/group"), GROUP).expect("write group");
        let marker = dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut config = default_config();
        config["process"]["env"]
            .as_array_mut()
            .expect("env array")
            .push(Value::String(format!("SKIFF_TEST_MARK={marker}")));
        Bundle {
            dir,
            config,
            marker,
        }
    }

    /// Builds a bundle whose process runs `args`.
    pub fn with_args(args: &[&str]) -> Bundle {
        let mut b = Bundle::new();
        b.set_args(args);
        b
    }

    /// Builds a bundle whose process runs `sh -c script`.
    pub fn sh(script: &str) -> Bundle {
        Bundle::with_args(&["sh", "-c", script])
    }

    /// Absolute path of the bundle directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Absolute path of `rootfs/`.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Path of `config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }

    /// The unique marker put in the container's environment.
    pub fn marker(&self) -> &str {
        &self.marker
    }

    /// The in-memory config.
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// Mutable access to the in-memory config.
    pub fn config_mut(&mut self) -> &mut Value {
        &mut self.config
    }

    /// Writes the in-memory config to `config.json`.
    pub fn save(&self) {
        let text = serde_json::to_string_pretty(&self.config).expect("serialize config");
        fs::write(self.config_path(), text).expect("write config.json");
    }

    /// Sets `process.args`.
    pub fn set_args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self
    }

    /// Sets `process.terminal`.
    pub fn set_terminal(&mut self, terminal: bool) -> &mut Self {
        self.config["process"]["terminal"] = json!(terminal);
        self
    }

    /// Appends `K=V` to `process.env`.
    pub fn add_env(&mut self, kv: &str) -> &mut Self {
        self.config["process"]["env"]
            .as_array_mut()
            .expect("env array")
            .push(json!(kv));
        self
    }

    /// Appends a mount to `mounts`.
    pub fn add_mount(
        &mut self,
        dest: &str,
        typ: &str,
        source: &str,
        options: &[&str],
    ) -> &mut Self {
        self.config["mounts"]
            .as_array_mut()
            .expect("mounts array")
            .push(json!({"destination": dest, "type": typ, "source": source, "options": options}));
        self
    }

    /// Appends a bind mount of a host path (`options` should include `bind` or `rbind`).
    pub fn add_bind(&mut self, host: &Path, dest: &str, options: &[&str]) -> &mut Self {
        let src = host.to_string_lossy().into_owned();
        self.add_mount(dest, "bind", &src, options)
    }

    /// Removes every mount whose destination is `dest`.
    pub fn remove_mount(&mut self, dest: &str) -> &mut Self {
        self.config["mounts"]
            .as_array_mut()
            .expect("mounts array")
            .retain(|m| m["destination"] != dest);
        self
    }

    /// Appends a hook of `kind` (e.g. "prestart") with path, args and an
    /// optional timeout in seconds.
    pub fn add_hook(
        &mut self,
        kind: &str,
        path: &str,
        args: &[&str],
        timeout: Option<u64>,
    ) -> &mut Self {
        if !self.config["hooks"].is_object() {
            self.config["hooks"] = json!({});
        }
        let hooks = &mut self.config["hooks"];
        if !hooks[kind].is_array() {
            hooks[kind] = json!([]);
        }
        let mut hook = json!({"path": path, "args": args});
        if let Some(t) = timeout {
            hook["timeout"] = json!(t);
        }
        hooks[kind].as_array_mut().expect("hook array").push(hook);
        self
    }

    /// Sets or replaces a namespace entry in `linux.namespaces`
    /// (`path` joins an existing namespace).
    pub fn set_namespace(&mut self, typ: &str, path: Option<&str>) -> &mut Self {
        let nss = self.config["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces array");
        nss.retain(|n| n["type"] != typ);
        let mut ns = json!({"type": typ});
        if let Some(p) = path {
            ns["path"] = json!(p);
        }
        nss.push(ns);
        self
    }

    /// Removes a namespace type from `linux.namespaces`.
    pub fn remove_namespace(&mut self, typ: &str) -> &mut Self {
        self.config["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces array")
            .retain(|n| n["type"] != typ);
        self
    }
}

fn busybox_applets() -> Vec<String> {
    let out = Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("run busybox --list");
    let list: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .collect();
    assert!(
        list.iter().any(|a| a == "sh"),
        "busybox --list did not list sh; is /bin/busybox busybox-static?"
    );
    list
}

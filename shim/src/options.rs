//! Runtime options: runc's `Options` (containerd.runc.v1.Options), or CRI's
//! generic `runtimeoptions.v1.Options` whose ConfigPath/ConfigBody hold the
//! same keys in TOML (`SystemdCgroup = true`), which is what containerd's
//! CRI plugin sends to a runtime type other than runc's. They are saved in
//! the bundle so that `shim delete` finds the same state root.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::{CodedInputStream, Message};
use containerd_shim::protos::shim::oci::Options as RuncOptions;
use libcontainer::checkpoint::{CgroupsMode, CheckpointOpts, CriuOpts};
use serde_json::json;

/// Default parent of the per-namespace state roots.
pub const DEFAULT_ROOT: &str = "/run/containerd/skiff";
const FILE: &str = "skiff-options.json";

/// The options the shim honours.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// `NoPivotRoot`.
    pub no_pivot_root: bool,
    /// `NoNewKeyring`.
    pub no_new_keyring: bool,
    /// `ShimCgroup`: the cgroup to move the shim into.
    pub shim_cgroup: String,
    /// `IoUid`.
    pub io_uid: u32,
    /// `IoGid`.
    pub io_gid: u32,
    /// `Root`: parent of the state root (default [`DEFAULT_ROOT`]).
    pub root: String,
    /// `SystemdCgroup`.
    pub systemd_cgroup: bool,
}

impl Options {
    /// Decode containerd's `Any` (absent or empty: defaults).
    pub fn from_any(any: Option<&Any>) -> Result<Options> {
        let Some(any) = any.filter(|a| !a.type_url.is_empty()) else {
            return Ok(Options::default());
        };
        let name = any.type_url.rsplit('/').next().unwrap_or("");
        match name {
            "containerd.runc.v1.Options" | "io.containerd.runc.v1.Options" => {
                let o = RuncOptions::parse_from_bytes(&any.value)
                    .context("decode containerd.runc.v1.Options")?;
                Ok(Options {
                    no_pivot_root: o.no_pivot_root,
                    no_new_keyring: o.no_new_keyring,
                    shim_cgroup: o.shim_cgroup,
                    io_uid: o.io_uid,
                    io_gid: o.io_gid,
                    root: o.root,
                    systemd_cgroup: o.systemd_cgroup,
                })
            }
            "runtimeoptions.v1.Options" => {
                let (path, body) = runtime_options(&any.value)?;
                let text = if !body.is_empty() {
                    body
                } else if !path.is_empty() {
                    std::fs::read_to_string(&path).with_context(|| format!("ConfigPath {path}"))?
                } else {
                    String::new()
                };
                Ok(Options::from_toml(&text))
            }
            other => {
                log::warn!("ignoring runtime options of type {other:?}");
                Ok(Options::default())
            }
        }
    }

    /// The flat `Key = value` lines of a TOML options table.
    pub fn from_toml(text: &str) -> Options {
        let mut o = Options::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.split('#').next().unwrap_or("").trim().trim_matches('"');
            let b = v == "true";
            match k.trim() {
                "SystemdCgroup" => o.systemd_cgroup = b,
                "NoPivotRoot" => o.no_pivot_root = b,
                "NoNewKeyring" => o.no_new_keyring = b,
                "ShimCgroup" => o.shim_cgroup = v.to_string(),
                "Root" => o.root = v.to_string(),
                "IoUid" => o.io_uid = v.parse().unwrap_or(0),
                "IoGid" => o.io_gid = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        o
    }

    /// Does a container of `spec` get the systemd cgroup driver? With
    /// `SystemdCgroup`, or a systemd-style cgroupsPath.
    pub fn systemd_driver(&self, spec: &oci_spec::runtime::Spec) -> bool {
        let path = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_deref());
        self.systemd_cgroup || systemd_path(path)
    }

    /// The state root for containers of `namespace`.
    pub fn state_root(&self, namespace: &str) -> PathBuf {
        let base = if self.root.is_empty() {
            DEFAULT_ROOT
        } else {
            &self.root
        };
        Path::new(base).join(namespace)
    }

    /// Save to `bundle`.
    pub fn save(&self, bundle: &Path) -> Result<()> {
        let v = json!({
            "root": self.root,
            "systemd_cgroup": self.systemd_cgroup,
            "no_pivot_root": self.no_pivot_root,
            "no_new_keyring": self.no_new_keyring,
        });
        let path = bundle.join(FILE);
        std::fs::write(&path, v.to_string()).with_context(|| format!("write {}", path.display()))
    }

    /// Load what [`Options::save`] wrote (defaults if nothing was saved).
    pub fn load(bundle: &Path) -> Options {
        let Ok(text) = std::fs::read_to_string(bundle.join(FILE)) else {
            return Options::default();
        };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        Options {
            root: v["root"].as_str().unwrap_or("").to_string(),
            systemd_cgroup: v["systemd_cgroup"].as_bool().unwrap_or(false),
            no_pivot_root: v["no_pivot_root"].as_bool().unwrap_or(false),
            no_new_keyring: v["no_new_keyring"].as_bool().unwrap_or(false),
            ..Default::default()
        }
    }
}

/// runc's `CheckpointOptions` (containerd.runc.v1.CheckpointOptions), what
/// containerd's task Checkpoint sends, as libcontainer's checkpoint
/// options for the images directory `path` (containerd's; the options'
/// `image_path` where containerd gave none).
pub fn checkpoint_options(any: Option<&Any>, path: &str) -> Result<CheckpointOpts> {
    let mut criu = CriuOpts::default();
    let mut exit = false;
    let mut image_path = String::new();
    if let Some(any) = any.filter(|a| !a.type_url.is_empty()) {
        let name = any.type_url.rsplit('/').next().unwrap_or("");
        anyhow::ensure!(
            name.ends_with("CheckpointOptions"),
            "checkpoint options of type {name:?}: containerd.runc.v1.CheckpointOptions expected"
        );
        let mut is = CodedInputStream::from_bytes(&any.value);
        while !is.eof()? {
            let tag = is.read_raw_varint32()?;
            match (tag >> 3, tag & 7) {
                (1, 0) => exit = is.read_bool()?,
                (2, 0) => criu.tcp_established = is.read_bool()?,
                (3, 0) => criu.ext_unix_sk = is.read_bool()?,
                // runc's shim passes `terminal` as runc's --shell-job.
                (4, 0) => criu.shell_job = is.read_bool()?,
                (5, 0) => criu.file_locks = is.read_bool()?,
                (6, 2) => criu.empty_ns.push(is.read_string()?),
                (7, 2) => {
                    let mode = is.read_string()?;
                    if !mode.is_empty() {
                        criu.cgroups_mode = CgroupsMode::parse(&mode)?;
                    }
                }
                (8, 2) => image_path = is.read_string()?,
                (9, 2) => {
                    let work = is.read_string()?;
                    criu.work_path = (!work.is_empty()).then(|| PathBuf::from(work));
                }
                (_, wire) => skip_field(&mut is, wire)?,
            }
        }
    }
    criu.image_path = PathBuf::from(if path.is_empty() { &image_path } else { path });
    anyhow::ensure!(
        !criu.image_path.as_os_str().is_empty(),
        "checkpoint: no images directory (path) given"
    );
    Ok(CheckpointOpts {
        criu,
        leave_running: !exit,
        ..Default::default()
    })
}

/// Is `path` a systemd-style cgroupsPath (`slice:prefix:name`)?
pub fn systemd_path(path: Option<&Path>) -> bool {
    let Some(p) = path.and_then(|p| p.to_str()) else {
        return false;
    };
    let parts: Vec<&str> = p.split(':').collect();
    parts.len() == 3 && !p.starts_with('/') && (parts[0].is_empty() || parts[0].ends_with(".slice"))
}

/// `runtimeoptions.v1.Options`: (config_path, config_body).
fn runtime_options(bytes: &[u8]) -> Result<(String, String)> {
    let mut is = CodedInputStream::from_bytes(bytes);
    let (mut path, mut body) = (String::new(), String::new());
    while !is.eof()? {
        let tag = is.read_raw_varint32()?;
        match (tag >> 3, tag & 7) {
            (2, 2) => path = is.read_string()?,
            (3, 2) => body = is.read_string()?,
            (_, wire) => skip_field(&mut is, wire)?,
        }
    }
    Ok((path, body))
}

/// Skip a protobuf field of wire type `wire` that the decoder does not use.
fn skip_field(is: &mut CodedInputStream, wire: u32) -> Result<()> {
    let wt = containerd_shim::protos::protobuf::rt::WireType::new(wire).context("bad wire type")?;
    is.skip_field(wt)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_options_decode() {
        let o = RuncOptions {
            systemd_cgroup: true,
            root: "/run/x".into(),
            io_uid: 7,
            no_pivot_root: true,
            ..Default::default()
        };
        let any = Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: o.write_to_bytes().unwrap(),
            ..Default::default()
        };
        let d = Options::from_any(Some(&any)).unwrap();
        assert!(d.systemd_cgroup && d.no_pivot_root);
        assert_eq!((d.root.as_str(), d.io_uid), ("/run/x", 7));
        assert_eq!(d.state_root("k8s.io"), Path::new("/run/x/k8s.io"));
        assert_eq!(
            Options::default().state_root("default"),
            Path::new("/run/containerd/skiff/default")
        );
    }

    /// runc's CheckpointOptions as containerd encodes them (hand-made
    /// protobuf: exit, open_tcp, empty_namespaces, cgroups_mode,
    /// image_path, work_path).
    #[test]
    fn checkpoint_options_decode() {
        let mut v = vec![0x08, 1, 0x10, 1];
        for (tag, text) in [
            (0x32u8, "network"),
            (0x3a, "full"),
            (0x42, "/img"),
            (0x4a, "/work"),
        ] {
            v.push(tag);
            v.push(text.len() as u8);
            v.extend_from_slice(text.as_bytes());
        }
        let any = Any {
            type_url: "containerd.runc.v1.CheckpointOptions".into(),
            value: v,
            ..Default::default()
        };
        let o = checkpoint_options(Some(&any), "/ctd/path").unwrap();
        assert!(!o.leave_running && o.criu.tcp_established && !o.criu.ext_unix_sk);
        assert_eq!(o.criu.empty_ns, ["network"]);
        assert_eq!(o.criu.cgroups_mode, CgroupsMode::Full);
        assert_eq!(o.criu.image_path, Path::new("/ctd/path"));
        assert_eq!(o.criu.work_path.as_deref(), Some(Path::new("/work")));
        assert_eq!(
            checkpoint_options(Some(&any), "").unwrap().criu.image_path,
            Path::new("/img")
        );
        // No options: leave it running, into containerd's path.
        let o = checkpoint_options(None, "/p").unwrap();
        assert!(o.leave_running);
        assert!(checkpoint_options(None, "").is_err());
        // `terminal` is CRIU's shell job, as runc's shim passes it.
        let any = Any {
            type_url: "containerd.runc.v1.CheckpointOptions".into(),
            value: vec![0x20, 1],
            ..Default::default()
        };
        assert!(checkpoint_options(Some(&any), "/p").unwrap().criu.shell_job);
    }

    #[test]
    fn cri_runtime_options_body() {
        // field 1 type_url, field 3 config_body
        let mut v = vec![0x0a, 1, b'x', 0x1a];
        let body = b"SystemdCgroup = true\nIoGid = 5 # c\n";
        v.push(body.len() as u8);
        v.extend_from_slice(body);
        let any = Any {
            type_url: "runtimeoptions.v1.Options".into(),
            value: v,
            ..Default::default()
        };
        let d = Options::from_any(Some(&any)).unwrap();
        assert!(d.systemd_cgroup);
        assert_eq!(d.io_gid, 5);
    }

    #[test]
    fn unknown_or_missing_options_are_defaults() {
        let any = Any {
            type_url: "example.com/Other".into(),
            value: vec![1, 2, 3],
            ..Default::default()
        };
        assert_eq!(Options::from_any(Some(&any)).unwrap(), Options::default());
        assert_eq!(Options::from_any(None).unwrap(), Options::default());
    }

    #[test]
    fn systemd_paths() {
        assert!(systemd_path(Some(Path::new("system.slice:cri:abc"))));
        assert!(systemd_path(Some(Path::new(":cri:abc"))));
        assert!(!systemd_path(Some(Path::new("/kubepods/abc"))));
        assert!(!systemd_path(Some(Path::new("a:b"))));
        assert!(!systemd_path(None));
    }

    #[test]
    fn save_and_load() {
        let dir = std::env::temp_dir().join(format!("skiff-opt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let o = Options {
            root: "/r".into(),
            systemd_cgroup: true,
            ..Default::default()
        };
        o.save(&dir).unwrap();
        assert_eq!(Options::load(&dir), o);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

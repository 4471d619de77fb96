//! The uid and gid maps of a new user namespace, for root and for rootless
//! callers, and the checks runc makes on a rootless config.
//!
//! Root writes /proc/PID/uid_map and gid_map itself. A caller without
//! privilege may write only a map of one id, its own, onto any container id;
//! for gid_map the kernel also wants "deny" in /proc/PID/setgroups first.
//! Anything else (several ranges, or host ids other than the caller's) goes
//! through the setuid helpers `newuidmap`/`newgidmap` from the uidmap
//! package, which allow the ranges /etc/subuid and /etc/subgid grant.

use std::path::PathBuf;
use std::process::Command;

use nix::unistd::{getegid, geteuid, Pid};
use oci_spec::runtime::{LinuxIdMapping, Spec};

use crate::error::{Error, IoContext, Result};

/// One subordinate id range from /etc/subuid or /etc/subgid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubIdRange {
    /// First host id of the range.
    pub start: u32,
    /// Number of ids.
    pub count: u32,
}

impl SubIdRange {
    /// Does the range hold host id `id`?
    pub fn contains(&self, id: u32) -> bool {
        id >= self.start && u64::from(id) < u64::from(self.start) + u64::from(self.count)
    }
}

/// The ranges of /etc/subuid or /etc/subgid text (`owner:start:count`)
/// whose owner is `name` or the number `id`, as shadow's helpers read them.
pub fn parse_subids(text: &str, name: Option<&str>, id: u32) -> Vec<SubIdRange> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (owner, start, count) = (f.next()?, f.next()?, f.next()?);
            let ours = Some(owner) == name || owner.parse::<u32>().ok() == Some(id);
            ours.then_some(SubIdRange {
                start: start.parse().ok()?,
                count: count.parse().ok()?,
            })
        })
        .collect()
}

/// The calling user's subordinate (uid, gid) ranges; empty when the files
/// are missing or name nobody.
pub fn own_subids() -> (Vec<SubIdRange>, Vec<SubIdRange>) {
    let uid = geteuid().as_raw();
    let name = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|t| {
            crate::user::parse_passwd(&t)
                .into_iter()
                .find(|p| p.uid == uid)
        })
        .map(|p| p.name);
    let read = |file: &str, id: u32| {
        std::fs::read_to_string(file)
            .map(|t| parse_subids(&t, name.as_deref(), id))
            .unwrap_or_default()
    };
    (
        read("/etc/subuid", uid),
        read("/etc/subgid", getegid().as_raw()),
    )
}

/// Which map file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Uid,
    Gid,
}

impl Kind {
    fn file(self) -> &'static str {
        match self {
            Kind::Uid => "uid_map",
            Kind::Gid => "gid_map",
        }
    }

    fn field(self) -> &'static str {
        match self {
            Kind::Uid => "linux.uidMappings",
            Kind::Gid => "linux.gidMappings",
        }
    }

    fn tool(self) -> &'static str {
        match self {
            Kind::Uid => "newuidmap",
            Kind::Gid => "newgidmap",
        }
    }
}

/// How a map gets written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// Straight into /proc/PID/*_map (root, or one range of one own id).
    Direct,
    /// Through newuidmap/newgidmap.
    Helper,
}

/// runc's rule: only a map of exactly the caller's own id, one id long, can
/// be written without privilege; root writes anything itself.
fn writer(maps: &[LinuxIdMapping], own: u32, root: bool) -> Writer {
    match maps {
        _ if root => Writer::Direct,
        [m] if m.host_id() == own && m.size() == 1 => Writer::Direct,
        _ => Writer::Helper,
    }
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

fn write_proc(pid: Pid, file: &str, text: &str) -> Result<()> {
    let path = PathBuf::from(format!("/proc/{pid}/{file}"));
    std::fs::write(&path, text).path(path)
}

/// Run newuidmap/newgidmap for `pid` with `maps`; its own message (which
/// names the range /etc/sub?id does not grant) becomes the error.
fn run_helper(pid: Pid, kind: Kind, maps: &[LinuxIdMapping]) -> Result<()> {
    let mut cmd = Command::new(kind.tool());
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([
            m.container_id().to_string(),
            m.host_id().to_string(),
            m.size().to_string(),
        ]);
    }
    let fail = |msg: String| Error::Invalid {
        field: kind.field().into(),
        msg,
    };
    let out = cmd.output().map_err(|e| {
        fail(format!(
            "{} ranges other than your own id need {} (uidmap package): {e}",
            if maps.len() > 1 { "several" } else { "id" },
            kind.tool()
        ))
    })?;
    if out.status.success() {
        return Ok(());
    }
    let why = String::from_utf8_lossy(&out.stderr);
    let why = why.trim().replace('\n', "; ");
    Err(fail(format!(
        "{} {}: {why}",
        kind.tool(),
        map_text(maps).trim().replace('\n', ", ")
    )))
}

fn write_one(pid: Pid, kind: Kind, maps: &[LinuxIdMapping], how: Writer) -> Result<()> {
    if maps.is_empty() {
        return Ok(());
    }
    match how {
        Writer::Direct => write_proc(pid, kind.file(), &map_text(maps)),
        Writer::Helper => run_helper(pid, kind, maps),
    }
}

/// Write the uid and gid maps of `pid`'s new user namespace: directly as
/// root or for a single own id (with setgroups denied for the gid map, as
/// the kernel requires), through newuidmap/newgidmap otherwise.
pub fn write_maps(pid: Pid, uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<()> {
    let root = geteuid().is_root();
    write_one(pid, Kind::Uid, uids, writer(uids, geteuid().as_raw(), root))?;
    let how = writer(gids, getegid().as_raw(), root);
    if how == Writer::Direct && !root && !gids.is_empty() {
        write_proc(pid, "setgroups", "deny")?;
    }
    write_one(pid, Kind::Gid, gids, how)
}

/// runc's checks on a config run by a non-root user: it needs a user
/// namespace, and `uid=`/`gid=` mount options must name mapped ids.
pub fn check_rootless(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    let userns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
        });
    if !userns {
        return Err(Error::Invalid {
            field: "linux.namespaces".into(),
            msg: "a rootless container (skiff run by a non-root user) needs a user namespace"
                .into(),
        });
    }
    let mapped = |maps: Option<&Vec<LinuxIdMapping>>, id: u32| {
        maps.into_iter().flatten().any(|m| {
            id >= m.container_id()
                && u64::from(id) < u64::from(m.container_id()) + u64::from(m.size())
        })
    };
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        for opt in m.options().iter().flatten() {
            let (maps, id) = match opt.split_once('=') {
                Some(("uid", v)) => (linux.and_then(|l| l.uid_mappings().as_ref()), v),
                Some(("gid", v)) => (linux.and_then(|l| l.gid_mappings().as_ref()), v),
                _ => continue,
            };
            if let Ok(id) = id.parse::<u32>() {
                if !mapped(maps, id) {
                    return Err(Error::Invalid {
                        field: format!("mounts[{i}].options"),
                        msg: format!("{opt}: id {id} is not mapped in the rootless container's user namespace"),
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(c: u32, h: u32, s: u32) -> LinuxIdMapping {
        serde_json::from_str(&format!(r#"{{"containerID":{c},"hostID":{h},"size":{s}}}"#)).unwrap()
    }

    #[test]
    fn subid_lines() {
        let text = "# comment\nalice:100000:65536\n1001:200000:10\nbob:300000:5\nbad\nalice:x:1\n";
        let r = parse_subids(text, Some("alice"), 1001);
        assert_eq!(
            r,
            vec![
                SubIdRange {
                    start: 100000,
                    count: 65536
                },
                SubIdRange {
                    start: 200000,
                    count: 10
                }
            ]
        );
        assert!(r[0].contains(100000) && r[0].contains(165535) && !r[0].contains(165536));
        assert!(parse_subids(text, Some("carol"), 7).is_empty());
    }

    #[test]
    fn who_writes_which_map() {
        let own = [map(0, 1000, 1)];
        assert_eq!(writer(&own, 1000, false), Writer::Direct);
        assert_eq!(writer(&own, 1001, false), Writer::Helper);
        assert_eq!(writer(&[map(0, 1000, 2)], 1000, false), Writer::Helper);
        let two = [map(0, 1000, 1), map(1, 100000, 65536)];
        assert_eq!(writer(&two, 1000, false), Writer::Helper);
        assert_eq!(writer(&two, 0, true), Writer::Direct);
        assert_eq!(map_text(&two), "0 1000 1\n1 100000 65536\n");
    }

    #[test]
    fn rootless_config_checks() {
        let mut spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.2.0","linux":{"namespaces":[{"type":"mount"}]}}"#,
        )
        .unwrap();
        let e = check_rootless(&spec).unwrap_err().to_string();
        assert!(
            e.starts_with("linux.namespaces:") && e.contains("user namespace"),
            "{e}"
        );
        spec = serde_json::from_str(
            r#"{"ociVersion":"1.2.0","linux":{"namespaces":[{"type":"user"}],
               "uidMappings":[{"containerID":0,"hostID":1000,"size":1}],
               "gidMappings":[{"containerID":0,"hostID":1000,"size":1}]},
               "mounts":[{"destination":"/a","type":"tmpfs","options":["uid=0"]},
                         {"destination":"/b","type":"tmpfs","options":["gid=5"]}]}"#,
        )
        .unwrap();
        let e = check_rootless(&spec).unwrap_err().to_string();
        assert!(e.starts_with("mounts[1].options: gid=5"), "{e}");
    }
}

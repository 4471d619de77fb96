//! The cgroup v1 hierarchies of a legacy or hybrid host: where each is
//! mounted, which controllers it carries and which of its cgroups skiff
//! itself is in.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted, e.g. `/sys/fs/cgroup/memory`.
    pub mount: PathBuf,
    /// Its controllers (`cpu`, `cpuacct`; `name=systemd` for a named
    /// hierarchy); empty for the unified (cgroup2) hierarchy of a hybrid host.
    pub controllers: BTreeSet<String>,
}

impl Hierarchy {
    /// Is this the unified hierarchy of a hybrid host?
    pub fn is_unified(&self) -> bool {
        self.controllers.is_empty()
    }

    /// Does it carry `controller`?
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.contains(controller)
    }
}

/// Mount options of a v1 cgroup mount that are not controllers.
fn is_controller_option(opt: &str, subsystems: &BTreeSet<String>) -> bool {
    opt.starts_with("name=") || subsystems.contains(opt)
}

/// The hierarchies in `mountinfo` (the text of /proc/self/mountinfo), given
/// the kernel's subsystem names (from /proc/cgroups). Only mounts of a
/// hierarchy's root count, the first one of each; a cgroup2 mount counts
/// only when it is not at `/sys/fs/cgroup` itself (that is a pure v2 host).
pub fn parse_mounts(mountinfo: &str, subsystems: &BTreeSet<String>) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        let (Some(root), Some(mount), Some(fstype), Some(opts)) =
            (pre.get(3), pre.get(4), post.first(), post.get(2))
        else {
            continue;
        };
        if *root != "/" {
            continue;
        }
        let controllers: BTreeSet<String> = match *fstype {
            "cgroup" => opts
                .split(',')
                .filter(|o| is_controller_option(o, subsystems))
                .map(String::from)
                .collect(),
            "cgroup2" if *mount != super::super::v2::MOUNT => BTreeSet::new(),
            _ => continue,
        };
        if *fstype == "cgroup" && controllers.is_empty() {
            continue;
        }
        if out.iter().any(|h| h.controllers == controllers) {
            continue;
        }
        out.push(Hierarchy {
            mount: PathBuf::from(crate::procfs::unescape_mountinfo(mount)),
            controllers,
        });
    }
    out
}

/// The kernel's cgroup subsystem names (first column of /proc/cgroups).
fn subsystems() -> BTreeSet<String> {
    crate::procfs::read_text("/proc/cgroups")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

/// This host's v1 hierarchies (and the unified one on a hybrid host),
/// read once per process.
pub fn all() -> &'static [Hierarchy] {
    static CACHE: OnceLock<Vec<Hierarchy>> = OnceLock::new();
    CACHE.get_or_init(|| {
        let info = crate::procfs::read_text("/proc/self/mountinfo").unwrap_or_default();
        let found = parse_mounts(&info, &subsystems());
        // A host whose only cgroup mount is the unified one has no v1.
        if found.iter().all(Hierarchy::is_unified) {
            return Vec::new();
        }
        found
    })
}

/// The hierarchy carrying `controller`, if one is mounted.
pub fn of(controller: &str) -> Option<&'static Hierarchy> {
    all().iter().find(|h| h.has(controller))
}

/// In `proc_cgroup` (the text of /proc/PID/cgroup), the cgroup of
/// hierarchy `h`, relative to its root.
pub fn own_in(proc_cgroup: &str, h: &Hierarchy) -> Option<PathBuf> {
    proc_cgroup.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let set: BTreeSet<String> = ctrls
            .split(',')
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect();
        (set == h.controllers).then(|| PathBuf::from(path.trim_start_matches('/')))
    })
}

/// skiff's own cgroup in `h`, relative to its root (the root if not listed).
pub fn own(h: &Hierarchy) -> PathBuf {
    let text = crate::procfs::read_text("/proc/self/cgroup").unwrap_or_default();
    own_in(&text, h).unwrap_or_default()
}

/// skiff's own cgroup in each of [`all`], in its order (one read of
/// /proc/self/cgroup for all of them).
pub fn own_all() -> Vec<PathBuf> {
    let text = crate::procfs::read_text("/proc/self/cgroup").unwrap_or_default();
    all()
        .iter()
        .map(|h| own_in(&text, h).unwrap_or_default())
        .collect()
}

/// Is `dir` inside hierarchy `h`?
pub fn contains(h: &Hierarchy, dir: &Path) -> bool {
    dir.starts_with(&h.mount)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 23 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
36 30 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
37 30 0:32 /sub /mnt/memsub rw - cgroup cgroup rw,memory
38 30 0:33 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio
39 20 0:34 / /mnt/my\\040cg rw - cgroup cgroup rw,clone_children,pids
";

    fn subs() -> BTreeSet<String> {
        ["cpu", "cpuacct", "memory", "net_cls", "net_prio", "pids"]
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn finds_each_hierarchy_once() {
        let hs = parse_mounts(HYBRID, &subs());
        let names: Vec<String> = hs
            .iter()
            .map(|h| h.controllers.iter().cloned().collect::<Vec<_>>().join(","))
            .collect();
        assert_eq!(
            names,
            [
                "",
                "name=systemd",
                "cpu,cpuacct",
                "memory",
                "net_cls,net_prio",
                "pids"
            ]
        );
        assert_eq!(hs[0].mount, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(hs[5].mount, Path::new("/mnt/my cg"));
        assert!(hs[0].is_unified());
    }

    #[test]
    fn pure_v2_has_no_unified_hierarchy_here() {
        let v2 = "31 23 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert!(parse_mounts(v2, &subs()).is_empty());
    }

    #[test]
    fn own_cgroup_per_hierarchy() {
        let hs = parse_mounts(HYBRID, &subs());
        let text = "4:memory:/a/b\n3:cpuacct,cpu:/\n1:name=systemd:/user.slice\n0::/x\n";
        assert_eq!(own_in(text, &hs[3]), Some(PathBuf::from("a/b")));
        assert_eq!(own_in(text, &hs[2]), Some(PathBuf::from("")));
        assert_eq!(own_in(text, &hs[1]), Some(PathBuf::from("user.slice")));
        assert_eq!(own_in(text, &hs[0]), Some(PathBuf::from("x")));
        assert_eq!(own_in(text, &hs[5]), None);
    }
}

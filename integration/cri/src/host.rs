//! What the host shows of pods: shim processes and their memory, and what a
//! pod may leave behind (mounts, cgroups, files under /run/containerd).

use std::path::Path;

/// The shim binary a CRI runtime handler runs.
pub fn shim_for(handler: &str) -> &'static str {
    if handler.starts_with("skiff") {
        "containerd-shim-skiff-v2"
    } else {
        "containerd-shim-runc-v2"
    }
}

/// Pids of the serving shims: running processes whose argv[0] ends with
/// `shim`, leaving out containerd's short-lived `shim start` and `shim
/// delete` calls (one of those alive at the wrong moment made a count of 52
/// runc shims for 50 pods).
pub fn shims(shim: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let args = cmdline(*pid);
            args.first().is_some_and(|a| a.ends_with(shim))
                && !matches!(args.last().map(String::as_str), Some("start" | "delete"))
        })
        .collect()
}

/// The arguments of process `pid` (empty if it is gone).
pub fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// A `Key:   N kB` field of a /proc file, in KiB (0 if missing).
fn kib_field(path: &str, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// RSS, PSS and the anonymous part of PSS of a process, in KiB, all from
/// one read of smaps_rollup (status' VmRSS is an approximate counter).
pub fn memory_kib(pid: u32) -> [u64; 3] {
    let path = format!("/proc/{pid}/smaps_rollup");
    ["Rss:", "Pss:", "Pss_Anon:"].map(|k| kib_field(&path, k))
}

/// Directories under `dir` (recursively) whose name contains `needle`.
fn dirs_with(dir: &Path, needle: &str, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_name().to_string_lossy().contains(needle) {
            out.push(p.display().to_string());
        }
        // Not into mounts (a rootfs under /run/containerd) or symlinks.
        if e.file_type().is_ok_and(|t| t.is_dir()) && !is_mountpoint(&p) {
            dirs_with(&p, needle, out);
        }
    }
}

/// [`dirs_with`] under /sys/fs/cgroup and, on cgroup v1, in each
/// hierarchy mounted below it.
fn cgroup_dirs_with(needle: &str, out: &mut Vec<String>) {
    let root = Path::new("/sys/fs/cgroup");
    dirs_with(root, needle, out);
    for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) && is_mountpoint(&e.path()) {
            dirs_with(&e.path(), needle, out);
        }
    }
}

fn is_mountpoint(p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(p), p.parent().map(std::fs::metadata)) {
        (Ok(m), Some(Ok(pm))) => m.dev() != pm.dev(),
        _ => false,
    }
}

/// The cgroup directories whose name holds `id`, relative to
/// /sys/fs/cgroup.
pub fn cgroups_of(id: &str) -> Vec<String> {
    let mut found = Vec::new();
    cgroup_dirs_with(id, &mut found);
    found
        .into_iter()
        .map(|d| d.trim_start_matches("/sys/fs/cgroup").to_string())
        .collect()
}

/// Everything left of the pods and containers in `ids`: mounts, cgroups and
/// files or fifos under /run/containerd (bundles, io fifos, shim sockets,
/// skiff's state dirs).
pub fn leftovers(ids: &[String]) -> Vec<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut left = Vec::new();
    for id in ids {
        left.extend(
            mountinfo
                .lines()
                .filter(|l| l.contains(id.as_str()))
                .map(|l| format!("mount {l}")),
        );
        cgroup_dirs_with(id, &mut left);
        dirs_with(Path::new("/run/containerd"), id, &mut left);
    }
    left
}

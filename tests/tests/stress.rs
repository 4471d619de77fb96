//! Heavy robustness runs, `#[ignore]`d in the normal suite and run by
//! `make stress`: 1,000 create/start/kill/delete cycles must leak nothing
//! (mounts, cgroup dirs, state, processes, zombies), and 100 containers
//! built and removed in parallel must all succeed.

use skiff_conformance::*;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Everything a container could leak, reduced to what can be compared.
#[derive(Debug, Default, PartialEq, Eq)]
struct Snapshot {
    mounts: BTreeSet<String>,
    cgroups: BTreeSet<String>,
    state: BTreeSet<String>,
    processes: BTreeSet<String>,
    zombies: BTreeSet<String>,
}

/// The cgroup directories of every hierarchy (the v1 controllers and the
/// v2 `unified` one) under the cgroups this test runs in.
fn own_cgroup_dirs() -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut dirs = Vec::new();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        let mount = match ctrls {
            "" => "unified".to_string(),
            c => c
                .trim_start_matches("name=")
                .split(',')
                .next()
                .unwrap_or(c)
                .to_string(),
        };
        let mut base = Path::new("/sys/fs/cgroup").join(mount);
        if !base.is_dir() && ctrls.is_empty() {
            base = PathBuf::from("/sys/fs/cgroup");
        }
        let dir = base.join(path.trim_start_matches('/'));
        if dir.is_dir() {
            dirs.push(dir);
        }
    }
    dirs
}

/// Every directory below `dir` whose path contains one of `tags`.
fn tagged_dirs(dir: &Path, tags: &[&str], out: &mut BTreeSet<String>, depth: u32) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let p = e.path();
            let s = p.to_string_lossy().into_owned();
            if tags.iter().any(|t| s.contains(t)) {
                out.insert(s);
            }
            if depth > 0 {
                tagged_dirs(&p, tags, out, depth - 1);
            }
        }
    }
}

fn snapshot(rt: &Runtime, bundle: &Bundle, tags: &[&str]) -> Snapshot {
    let keys = [
        bundle.path().to_string_lossy().into_owned(),
        rt.root().to_string_lossy().into_owned(),
    ];
    let mounts = fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| keys.iter().any(|k| l.contains(k.as_str())))
        .map(str::to_owned)
        .collect();
    let mut cgroups = BTreeSet::new();
    for d in own_cgroup_dirs() {
        tagged_dirs(&d, tags, &mut cgroups, 4);
    }
    let state = fs::read_dir(rt.root())
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let processes = leftovers(rt, "no-such-container-id", bundle)
        .into_iter()
        .collect();
    Snapshot {
        mounts,
        cgroups,
        state,
        processes,
        zombies: zombies(),
    }
}

/// Zombies that are ours or skiff's: children of this test, or named
/// `skiff` or `sleep` (the trivial container).
fn zombies() -> BTreeSet<String> {
    let me = std::process::id().to_string();
    let mut z = BTreeSet::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let comm = stat
            .split('(')
            .nth(1)
            .and_then(|s| s.rsplit_once(')'))
            .map(|s| s.0);
        let rest: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        if rest.first() == Some(&"Z")
            && (rest.get(1) == Some(&me.as_str()) || matches!(comm, Some("skiff" | "sleep")))
        {
            z.insert(format!("zombie {pid} ({})", comm.unwrap_or("?")));
        }
    }
    z
}

impl Snapshot {
    /// What `self` has that `before` had not: the leaks. Things that were
    /// there before and went away (say, a zombie of an earlier test that
    /// its parent reaped meanwhile) are not leaks.
    fn added_since(&self, before: &Snapshot) -> Snapshot {
        let new = |a: &BTreeSet<String>, b: &BTreeSet<String>| a.difference(b).cloned().collect();
        Snapshot {
            mounts: new(&self.mounts, &before.mounts),
            cgroups: new(&self.cgroups, &before.cgroups),
            state: new(&self.state, &before.state),
            processes: new(&self.processes, &before.processes),
            zombies: new(&self.zombies, &before.zombies),
        }
    }
}

/// Polls until nothing is left that was not there `before` (processes take
/// a moment to be reaped), then asserts it.
fn assert_same(rt: &Runtime, bundle: &Bundle, tags: &[&str], before: &Snapshot) {
    let none = Snapshot::default();
    let mut added = snapshot(rt, bundle, tags).added_since(before);
    let deadline = Instant::now() + Duration::from_secs(10);
    while added != none && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        added = snapshot(rt, bundle, tags).added_since(before);
    }
    assert_eq!(added, none, "leaked: what is new since before the test");
}

fn cycles() -> usize {
    std::env::var("SKIFF_STRESS_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

#[test]
#[ignore = "heavy: run by make stress"]
fn thousand_cycles_leak_nothing() {
    if !preflight("thousand_cycles_leak_nothing") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::with_args(&["sleep", "1000"]);
    let tag = format!("skstress{}", std::process::id());
    bundle.config_mut()["linux"]["cgroupsPath"] = serde_json::json!(tag.clone());
    let tags = [tag.as_str(), "sk-leak-"];
    let before = snapshot(&rt, &bundle, &tags);
    let n = cycles();
    let start = Instant::now();
    for i in 0..n {
        let id = unique_id("leak");
        rt.create_ok(&bundle, &id);
        assert_success(&rt.start(&id), "start");
        assert_success(&rt.kill(&id, "KILL"), "kill");
        rt.expect_status(&id, "stopped");
        let out = rt.delete(&id);
        assert_success(&out, &format!("delete (cycle {i})"));
    }
    println!("{n} cycles in {:?}", start.elapsed());
    assert_same(&rt, &bundle, &tags, &before);
}

/// `skiff --root <root> args...` from any thread.
fn sk(root: &Path, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(skiff_bin());
    cmd.arg("--root").arg(root).args(args);
    output_with_timeout(&mut cmd, Duration::from_secs(60))
}

#[test]
#[ignore = "heavy: run by make stress"]
fn hundred_containers_in_parallel() {
    if !preflight("hundred_containers_in_parallel") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::with_args(&["sleep", "1000"]);
    bundle.save();
    let tags = ["sk-par-"];
    let before = snapshot(&rt, &bundle, &tags);
    let n = 100;
    let ids: Vec<String> = (0..n).map(|_| unique_id("par")).collect();
    for id in &ids {
        rt.track(id);
    }
    let root = rt.root().to_path_buf();
    let b = bundle.path().to_string_lossy().into_owned();
    let barrier = Barrier::new(n);
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .iter()
            .map(|id| {
                let (root, b, barrier) = (&root, &b, &barrier);
                s.spawn(move || -> Result<(), String> {
                    barrier.wait();
                    let step = |args: &[&str]| {
                        let out = sk(root, args);
                        if out.status.success() {
                            Ok(out)
                        } else {
                            Err(format!("{args:?}: {}", describe(&out)))
                        }
                    };
                    step(&["create", "--bundle", b, id])?;
                    step(&["start", id])?;
                    let st = step(&["state", id])?;
                    if !stdout(&st).contains("\"running\"") {
                        return Err(format!("{id} not running: {}", stdout(&st)));
                    }
                    step(&["delete", "--force", id])?;
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().expect("thread").err())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {n} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_same(&rt, &bundle, &tags, &before);
}

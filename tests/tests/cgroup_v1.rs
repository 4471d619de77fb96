//! cgroup v1 (legacy and hybrid hosts): limits, placement in every
//! hierarchy, pause/resume, update, stats, exec, OOM, delete and leaks,
//! through the binary, with runc run through the same steps as the
//! reference (a table on stderr). Containers get a relative cgroupsPath,
//! so everything is nested below the test's own cgroup in each hierarchy.

use serde_json::{json, Value};
use skiff_conformance::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// Each mounted cgroup hierarchy: (controllers as in /proc/self/cgroup,
/// mount point). The unified hierarchy of a hybrid host has controllers "".
fn hierarchies() -> Vec<(String, PathBuf)> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for line in info.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre[3] != "/" {
            continue;
        }
        let ctrls = match post[0] {
            "cgroup" => {
                let known: Vec<String> = fs::read_to_string("/proc/cgroups")
                    .unwrap()
                    .lines()
                    .filter_map(|l| l.split_whitespace().next().map(String::from))
                    .collect();
                let mut c: Vec<&str> = post[2]
                    .split(',')
                    .filter(|o| o.starts_with("name=") || known.iter().any(|k| k == o))
                    .collect();
                c.sort();
                c.join(",")
            }
            "cgroup2" if pre[4] != "/sys/fs/cgroup" => String::new(),
            _ => continue,
        };
        if !out.iter().any(|(c, _)| *c == ctrls) {
            out.push((ctrls, PathBuf::from(pre[4])));
        }
    }
    out
}

/// The cgroup of `pid` per hierarchy (controllers sorted), relative.
fn cgroups_of(pid: &str) -> BTreeMap<String, String> {
    fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, c, path) = (p.next()?, p.next()?, p.next()?);
            let mut c: Vec<&str> = c.split(',').filter(|s| !s.is_empty()).collect();
            c.sort();
            Some((c.join(","), path.trim_start_matches('/').to_string()))
        })
        .collect()
}

fn v1_host() -> bool {
    hierarchies().iter().any(|(c, _)| !c.is_empty())
}

/// The directory of the container cgroup `rel` in the hierarchy carrying
/// `ctrl`, below the test's own cgroup there.
fn dir_of(ctrl: &str, rel: &str) -> PathBuf {
    let me = cgroups_of("self");
    let (c, mount) = hierarchies()
        .into_iter()
        .find(|(c, _)| c.split(',').any(|x| x == ctrl))
        .unwrap_or_else(|| panic!("no {ctrl} hierarchy"));
    mount.join(&me[&c]).join(rel)
}

fn read(ctrl: &str, rel: &str, file: &str) -> String {
    let p = dir_of(ctrl, rel).join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// Every directory named `rel` below the test's cgroups, in any hierarchy.
fn dirs_left(rel: &str) -> Vec<PathBuf> {
    let me = cgroups_of("self");
    hierarchies()
        .into_iter()
        .map(|(c, m)| m.join(&me[&c]).join(rel))
        .filter(|d| d.exists())
        .collect()
}

/// A runtime binary with its own --root.
struct Rt {
    name: &'static str,
    bin: PathBuf,
    root: TempDir,
}

impl Rt {
    fn cmd(&self, args: &[&str]) -> Output {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(self.root.path()).args(args);
        output_with_timeout(&mut c, Duration::from_secs(30))
    }

    fn ok(&self, args: &[&str]) -> Result<String, String> {
        let out = self.cmd(args);
        if out.status.success() {
            Ok(stdout(&out))
        } else {
            Err(format!("{} {args:?}: {}", self.name, describe(&out)))
        }
    }
}

fn runtimes() -> Vec<Rt> {
    let mut v = vec![Rt {
        name: "skiff",
        bin: skiff_bin(),
        root: TempDir::new("skiff-v1root"),
    }];
    let runc = Path::new("/usr/sbin/runc");
    if runc.exists() {
        v.push(Rt {
            name: "runc",
            bin: runc.to_path_buf(),
            root: TempDir::new("runc-v1root"),
        });
    } else {
        eprintln!("  (runc not installed: no reference column)");
    }
    v
}

fn check(ok: bool, what: impl Into<String>) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what.into())
    }
}

/// Limits, placement, pause/resume, update, stats, exec and delete.
fn lifecycle(rt: &Rt, tag: &str) -> Result<(), String> {
    let rel = format!("skiff-v1-{}", unique_id(tag));
    let id = unique_id(tag);
    let mut b = Bundle::with_args(&["sleep", "1000"]);
    b.config_mut()["linux"]["cgroupsPath"] = json!(rel);
    b.config_mut()["linux"]["resources"] = json!({
        "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728, "swappiness": 10},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 20},
        "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    });
    b.save();
    let bundle = b.path().to_string_lossy().into_owned();
    rt.ok(&["create", "--bundle", &bundle, &id])?;
    let res = (|| {
        let state: Value =
            serde_json::from_str(&rt.ok(&["state", &id])?).map_err(|e| e.to_string())?;
        let pid = state["pid"].to_string();
        let me = cgroups_of("self");
        let init = cgroups_of(&pid);
        for (c, _) in hierarchies() {
            let want = Path::new(&me[&c]).join(&rel);
            check(
                init.get(&c).map(PathBuf::from) == Some(want.clone()),
                format!("init in {c:?}: {:?}, want {}", init.get(&c), want.display()),
            )?;
        }
        let f = |c: &str, file: &str| read(c, &rel, file);
        for (c, file, want) in [
            ("memory", "memory.limit_in_bytes", "67108864"),
            ("memory", "memory.soft_limit_in_bytes", "33554432"),
            ("memory", "memory.memsw.limit_in_bytes", "134217728"),
            ("memory", "memory.swappiness", "10"),
            ("cpu", "cpu.shares", "512"),
            ("cpu", "cpu.cfs_quota_us", "50000"),
            ("cpu", "cpu.cfs_period_us", "100000"),
            ("cpuset", "cpuset.cpus", "0"),
            ("pids", "pids.max", "20"),
        ] {
            let got = f(c, file);
            check(got == want, format!("{file} = {got}, want {want}"))?;
        }
        let devices = f("devices", "devices.list");
        check(
            devices.lines().any(|l| l == "c 1:3 rwm") && !devices.contains("a *:*"),
            format!("devices.list: {devices:?}"),
        )?;
        rt.ok(&["start", &id])?;
        rt.ok(&["pause", &id])?;
        check(
            f("freezer", "freezer.state") == "FROZEN",
            "not FROZEN after pause",
        )?;
        let st: Value =
            serde_json::from_str(&rt.ok(&["state", &id])?).map_err(|e| e.to_string())?;
        check(
            st["status"] == "paused",
            format!("status {} after pause", st["status"]),
        )?;
        // As runc: no exec into a paused container without --ignore-paused.
        let out = rt.cmd(&["exec", &id, "true"]);
        check(
            !out.status.success(),
            "exec into the paused container succeeded without --ignore-paused",
        )?;
        rt.ok(&["resume", &id])?;
        check(
            f("freezer", "freezer.state") == "THAWED",
            "not THAWED after resume",
        )?;
        rt.ok(&[
            "update",
            "--memory",
            "104857600",
            "--memory-swap",
            "209715200",
            "--pids-limit",
            "30",
            "--cpu-quota",
            "20000",
            "--cpu-share",
            "256",
            &id,
        ])?;
        // Real-time CPU time, where the kernel has group RT scheduling.
        if dir_of("cpu", &rel).join("cpu.rt_runtime_us").exists() {
            rt.ok(&[
                "update",
                "--cpu-rt-period",
                "1000000",
                "--cpu-rt-runtime",
                "10000",
                &id,
            ])?;
            let got = f("cpu", "cpu.rt_runtime_us");
            check(
                got == "10000",
                format!("after update cpu.rt_runtime_us = {got}, want 10000"),
            )?;
        }
        for (c, file, want) in [
            ("memory", "memory.limit_in_bytes", "104857600"),
            ("memory", "memory.memsw.limit_in_bytes", "209715200"),
            ("pids", "pids.max", "30"),
            ("cpu", "cpu.cfs_quota_us", "20000"),
            ("cpu", "cpu.shares", "256"),
        ] {
            let got = f(c, file);
            check(
                got == want,
                format!("after update {file} = {got}, want {want}"),
            )?;
        }
        let ev: Value = serde_json::from_str(&rt.ok(&["events", "--stats", &id])?)
            .map_err(|e| e.to_string())?;
        let d = &ev["data"];
        check(
            d["memory"]["usage"]["limit"] == 104857600
                && d["pids"]["limit"] == 30
                && d["pids"]["current"] == 1,
            format!("events --stats: {d}"),
        )?;
        check(
            d["cpu"]["usage"]["total"].as_u64().is_some(),
            format!("no cpu usage: {d}"),
        )?;
        rt.ok(&["exec", "--detach", &id, "sleep", "999"])?;
        let ps: Value = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])?)
            .map_err(|e| e.to_string())?;
        let pids: Vec<String> = ps
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p.to_string())
            .collect();
        check(pids.len() == 2, format!("ps after exec: {ps}"))?;
        for p in &pids {
            let cg = cgroups_of(p);
            for (c, _) in hierarchies() {
                let want = Path::new(&me[&c]).join(&rel);
                check(
                    cg.get(&c).map(PathBuf::from) == Some(want.clone()),
                    format!("process {p} in {c:?}: {:?}", cg.get(&c)),
                )?;
            }
        }
        // exec --cgroup: into an existing sub-cgroup, in every hierarchy.
        let me_dirs: Vec<PathBuf> = hierarchies()
            .into_iter()
            .map(|(c, m)| m.join(&me[&c]).join(&rel).join("sub"))
            .collect();
        for d in &me_dirs {
            fs::create_dir(d).map_err(|e| format!("{}: {e}", d.display()))?;
            // A new cpuset cgroup has no cpus or mems until given some.
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if let (Some(parent), true) = (d.parent(), d.join(f).exists()) {
                    let v = fs::read_to_string(parent.join(f)).map_err(|e| e.to_string())?;
                    fs::write(d.join(f), v.trim()).map_err(|e| format!("{f}: {e}"))?;
                }
            }
        }
        rt.ok(&["exec", "--detach", "--cgroup", "sub", &id, "sleep", "998"])?;
        let ps: Value = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])?)
            .map_err(|e| e.to_string())?;
        let in_sub = ps.as_array().into_iter().flatten().any(|p| {
            let cg = cgroups_of(&p.to_string());
            hierarchies().iter().all(|(c, _)| {
                cg.get(c).map(PathBuf::from) == Some(Path::new(&me[c]).join(&rel).join("sub"))
            })
        });
        check(
            in_sub,
            format!("no process in sub in every hierarchy: {ps}"),
        )?;
        // A move the kernel refuses (a cpuset cgroup without cpus, ENOSPC):
        // exec fails with the reason and leaves no process behind.
        if hierarchies().iter().any(|(c, _)| c.contains("cpuset")) {
            let n_before = ps.as_array().map_or(0, Vec::len);
            for (c, m) in hierarchies() {
                let d = m.join(&me[&c]).join(&rel).join("nocpus");
                fs::create_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
            }
            let out = rt.cmd(&["exec", "--cgroup", "nocpus", &id, "true"]);
            let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
            check(
                !out.status.success() && err.contains("no space left on device"),
                format!("exec into a cpuset cgroup without cpus: {}", describe(&out)),
            )?;
            let ps: Value = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])?)
                .map_err(|e| e.to_string())?;
            check(
                ps.as_array().map_or(0, Vec::len) == n_before,
                format!("processes after the failed exec: {ps}, before {n_before}"),
            )?;
        }
        rt.ok(&["kill", &id, "KILL"])?;
        poll_until(Duration::from_secs(10), || {
            rt.ok(&["state", &id])
                .is_ok_and(|s| s.contains("\"stopped\""))
        });
        rt.ok(&["delete", &id])?;
        let left = dirs_left(&rel);
        check(
            left.is_empty(),
            format!("cgroups left after delete: {left:?}"),
        )
    })();
    if res.is_err() {
        let _ = rt.cmd(&["delete", "--force", &id]);
    }
    res
}

/// A container over its memory limit is OOM-killed and the kill counted.
fn oom(rt: &Rt, tag: &str) -> Result<(), String> {
    let rel = format!("skiff-v1-{}", unique_id(tag));
    let id = unique_id(tag);
    let mut b = Bundle::sh("tail /dev/zero");
    b.config_mut()["linux"]["cgroupsPath"] = json!(rel);
    b.config_mut()["linux"]["resources"] = json!({"memory": {"limit": 16777216, "swap": 16777216}});
    b.save();
    let bundle = b.path().to_string_lossy().into_owned();
    rt.ok(&["create", "--bundle", &bundle, &id])?;
    let res = (|| {
        rt.ok(&["start", &id])?;
        let stopped = poll_until(Duration::from_secs(20), || {
            rt.ok(&["state", &id])
                .is_ok_and(|s| s.contains("\"stopped\""))
        });
        check(stopped, "still running 20 s after start")?;
        let oc = read("memory", &rel, "memory.oom_control");
        check(
            oc.lines()
                .any(|l| l.strip_prefix("oom_kill ").is_some_and(|n| n != "0")),
            format!("memory.oom_control: {oc:?}"),
        )?;
        rt.ok(&["delete", &id])?;
        check(dirs_left(&rel).is_empty(), "cgroups left after delete")
    })();
    if res.is_err() {
        let _ = rt.cmd(&["delete", "--force", &id]);
    }
    res
}

#[test]
fn v1_limits_lifecycle_and_oom_like_runc() {
    require_root!();
    if !v1_host() {
        skip!("this host has no cgroup v1 hierarchy");
    }
    let mut table = Vec::new();
    for rt in runtimes() {
        for (name, r) in [
            ("lifecycle", lifecycle(&rt, &format!("{}lc", rt.name))),
            ("oom", oom(&rt, &format!("{}oom", rt.name))),
        ] {
            table.push((rt.name, name, r));
        }
    }
    for (rt, name, r) in &table {
        let v = match r {
            Ok(()) => "PASS".to_string(),
            Err(e) => format!("FAIL {e}"),
        };
        eprintln!("  cgroup v1 {name:<10} {rt:<6} {v}");
    }
    for (rt, name, r) in &table {
        if *rt == "skiff" {
            if let Err(e) = r {
                panic!("skiff {name}: {e}");
            }
        }
    }
}

#[test]
fn v1_unified_is_refused_with_runc_wording() {
    require_root!();
    if !v1_host() {
        skip!("this host has no cgroup v1 hierarchy");
    }
    let rt = Runtime::new();
    let rel = format!("skiff-v1-{}", unique_id("unified"));
    let mut b = Bundle::with_args(&["true"]);
    b.config_mut()["linux"]["cgroupsPath"] = json!(rel);
    b.config_mut()["linux"]["resources"] = json!({"unified": {"pids.max": "10"}});
    let id = unique_id("unified");
    let out = rt.create(&b, &id, &[]);
    assert_clean_failure(&out, "cannot use unified on cgroup v1", &rt, &id, &b);
    assert!(dirs_left(&rel).is_empty(), "{:?}", dirs_left(&rel));
}

/// 200 runs (SKIFF_V1_LIFECYCLES: the legacy VM boot runs 50, as each costs
/// ~0.7 s under emulation) leave no cgroup in any hierarchy.
#[test]
fn v1_lifecycles_leave_no_cgroup() {
    require_root!();
    if !v1_host() {
        skip!("this host has no cgroup v1 hierarchy");
    }
    let runs: usize = std::env::var("SKIFF_V1_LIFECYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let rt = Runtime::new();
    let prefix = format!("skiff-v1leak-{}", std::process::id());
    let mut b = Bundle::with_args(&["true"]);
    b.config_mut()["linux"]["resources"] =
        json!({"pids": {"limit": 10}, "memory": {"limit": 33554432}});
    for i in 0..runs {
        let rel = format!("{prefix}-{i}");
        b.config_mut()["linux"]["cgroupsPath"] = json!(rel);
        let out = rt.run(&b, &unique_id("leak"), &[]);
        assert_success(&out, &format!("run {i}"));
    }
    let me = cgroups_of("self");
    let mut left = Vec::new();
    for (c, mount) in hierarchies() {
        let dir = mount.join(&me[&c]);
        for e in fs::read_dir(&dir).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                left.push(e.path());
            }
        }
    }
    assert!(left.is_empty(), "cgroups left after {runs} runs: {left:?}");
}

//! Container statistics from the cgroup v2 files, in the JSON shape of
//! `runc events --stats` (libcontainer/cgroups Stats as runc prints it).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::Cgroup;

/// `key value` lines of a flat-keyed file.
fn flat(cg: &Cgroup, file: &str) -> BTreeMap<String, u64> {
    cg.read(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn num(cg: &Cgroup, file: &str) -> u64 {
    cg.read(file).ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// A limit file: "max" is reported as u64::MAX, as runc does.
fn max_num(cg: &Cgroup, file: &str) -> u64 {
    match cg.read(file).ok().as_deref() {
        Some("max") => u64::MAX,
        Some(v) => v.parse().unwrap_or(0),
        None => 0,
    }
}

fn cpu(cg: &Cgroup) -> Value {
    let s = flat(cg, "cpu.stat");
    let g = |k: &str| s.get(k).copied().unwrap_or(0);
    json!({
        "usage": {"total": g("usage_usec") * 1000, "kernel": g("system_usec") * 1000, "user": g("user_usec") * 1000},
        "throttling": {"periods": g("nr_periods"), "throttled_periods": g("nr_throttled"), "throttled_time": g("throttled_usec") * 1000}
    })
}

fn memory(cg: &Cgroup) -> Value {
    let raw = flat(cg, "memory.stat");
    let events = flat(cg, "memory.events");
    let usage = num(cg, "memory.current");
    let swap = num(cg, "memory.swap.current");
    let limit = max_num(cg, "memory.max");
    let swap_limit = max_num(cg, "memory.swap.max");
    let failcnt = events.get("max").copied().unwrap_or(0);
    json!({
        "cache": raw.get("file").copied().unwrap_or(0),
        "usage": {"limit": limit, "usage": usage, "max": num(cg, "memory.peak"), "failcnt": failcnt},
        // runc reports swap as memory+swap, as v1 did.
        "swap": {"limit": if swap_limit == u64::MAX || limit == u64::MAX { u64::MAX } else { limit + swap_limit }, "usage": usage + swap, "failcnt": 0},
        "kernel": {"limit": 0, "failcnt": 0},
        "kernelTCP": {"limit": 0, "failcnt": 0},
        "raw": raw,
    })
}

fn pids(cg: &Cgroup) -> Value {
    let limit = max_num(cg, "pids.max");
    json!({"current": num(cg, "pids.current"), "limit": if limit == u64::MAX { 0 } else { limit }})
}

fn blkio(cg: &Cgroup) -> Value {
    let mut bytes = Vec::new();
    let mut ios = Vec::new();
    for line in cg.read("io.stat").unwrap_or_default().lines() {
        let mut parts = line.split_whitespace();
        let Some((major, minor)) = parts.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else {
            continue;
        };
        for kv in parts {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                _ => continue,
            };
            list.push(json!({"major": major, "minor": minor, "op": op, "value": v}));
        }
    }
    let mut m = Map::new();
    if !bytes.is_empty() {
        m.insert("ioServiceBytesRecursive".into(), Value::Array(bytes));
    }
    if !ios.is_empty() {
        m.insert("ioServicedRecursive".into(), Value::Array(ios));
    }
    Value::Object(m)
}

fn hugetlb(cg: &Cgroup) -> Value {
    let mut m = Map::new();
    let Ok(dir) = std::fs::read_dir(&cg.dir) else {
        return Value::Object(m);
    };
    let mut sizes: Vec<String> = dir
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| {
            n.strip_prefix("hugetlb.")?
                .strip_suffix(".current")
                .map(String::from)
        })
        // hugetlb.2MB.rsvd.current counts reservations: not a page size.
        .filter(|size| !size.contains('.'))
        .collect();
    sizes.sort();
    for size in sizes {
        let events = flat(cg, &format!("hugetlb.{size}.events"));
        m.insert(
            size.clone(),
            json!({"usage": num(cg, &format!("hugetlb.{size}.current")), "failcnt": events.get("max").copied().unwrap_or(0)}),
        );
    }
    Value::Object(m)
}

/// The `data` object of a runc stats event.
pub fn stats(cg: &Cgroup) -> Value {
    json!({
        "cpu": cpu(cg),
        "memory": memory(cg),
        "pids": pids(cg),
        "blkio": blkio(cg),
        "hugetlb": hugetlb(cg),
    })
}

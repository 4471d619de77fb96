//! Container statistics from the cgroup v1 files, in the JSON shape of
//! `runc events --stats` (the same shape as the v2 driver's).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::Cgroup;

/// USER_HZ: cpuacct.stat counts in ticks of 1/100 s.
const NS_PER_TICK: u64 = 10_000_000;

fn num(cg: &Cgroup, ctrl: &str, file: &str) -> u64 {
    cg.read(ctrl, file)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `key value` lines of a flat-keyed file.
fn flat(cg: &Cgroup, ctrl: &str, file: &str) -> BTreeMap<String, u64> {
    cg.read(ctrl, file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn cpu(cg: &Cgroup) -> Value {
    let stat = flat(cg, "cpuacct", "cpuacct.stat");
    let percpu: Vec<u64> = cg
        .read("cpuacct", "cpuacct.usage_percpu")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let thr = flat(cg, "cpu", "cpu.stat");
    let g = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    json!({
        "usage": {
            "total": num(cg, "cpuacct", "cpuacct.usage"),
            "percpu": percpu,
            "kernel": g(&stat, "system") * NS_PER_TICK,
            "user": g(&stat, "user") * NS_PER_TICK,
        },
        "throttling": {"periods": g(&thr, "nr_periods"), "throttled_periods": g(&thr, "nr_throttled"), "throttled_time": g(&thr, "throttled_time")}
    })
}

/// One memory counter family (`memory`, `memory.memsw`, `memory.kmem`, ...).
fn mem_entry(cg: &Cgroup, prefix: &str) -> Value {
    json!({
        "limit": num(cg, "memory", &format!("{prefix}.limit_in_bytes")),
        "usage": num(cg, "memory", &format!("{prefix}.usage_in_bytes")),
        "max": num(cg, "memory", &format!("{prefix}.max_usage_in_bytes")),
        "failcnt": num(cg, "memory", &format!("{prefix}.failcnt")),
    })
}

fn memory(cg: &Cgroup) -> Value {
    let raw = flat(cg, "memory", "memory.stat");
    json!({
        "cache": raw.get("cache").copied().unwrap_or(0),
        "usage": mem_entry(cg, "memory"),
        "swap": mem_entry(cg, "memory.memsw"),
        "kernel": mem_entry(cg, "memory.kmem"),
        "kernelTCP": mem_entry(cg, "memory.kmem.tcp"),
        "use_hierarchy": num(cg, "memory", "memory.use_hierarchy") == 1,
        "raw": raw,
    })
}

fn pids(cg: &Cgroup) -> Value {
    let limit = cg
        .read("pids", "pids.max")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    json!({"current": num(cg, "pids", "pids.current"), "limit": limit})
}

/// `major:minor Op value` lines of a blkio file, as runc's entries.
fn blkio_entries(cg: &Cgroup, file: &str) -> Vec<Value> {
    cg.read("blkio", file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (major, minor) = f.next()?.split_once(':')?;
            let op = f.next()?;
            let value: u64 = f.next()?.parse().ok()?;
            Some(json!({"major": major.parse::<u64>().ok()?, "minor": minor.parse::<u64>().ok()?, "op": op, "value": value}))
        })
        .collect()
}

fn blkio(cg: &Cgroup) -> Value {
    let mut m = Map::new();
    // CFQ's recursive counters when present, else the throttle layer's.
    let pick = |cfq: &str, throttle: &str| {
        let e = blkio_entries(cg, cfq);
        if e.is_empty() {
            blkio_entries(cg, throttle)
        } else {
            e
        }
    };
    let bytes = pick(
        "blkio.io_service_bytes_recursive",
        "blkio.throttle.io_service_bytes_recursive",
    );
    let ios = pick(
        "blkio.io_serviced_recursive",
        "blkio.throttle.io_serviced_recursive",
    );
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
    let Some(dir) = cg.dir("hugetlb") else {
        return Value::Object(m);
    };
    let mut sizes: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| {
            n.strip_prefix("hugetlb.")?
                .strip_suffix(".usage_in_bytes")
                .map(String::from)
        })
        .filter(|size| !size.contains('.'))
        .collect();
    sizes.sort();
    for size in sizes {
        let f = |k: &str| num(cg, "hugetlb", &format!("hugetlb.{size}.{k}"));
        m.insert(
            size.clone(),
            json!({"usage": f("usage_in_bytes"), "max": f("max_usage_in_bytes"), "failcnt": f("failcnt")}),
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

//! Task statistics as `io.containerd.cgroups.v2.Metrics`, read from the
//! container's cgroup v2 files.

use std::collections::HashMap;

use containerd_shim::protos::cgroups_v2::metrics::{
    CPUStat, HugeTlbStat, IOEntry, IOStat, MemoryEvents, MemoryStat, Metrics, PidsStat,
};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::Message;
use libcontainer::cgroups::v2::Cgroup;

/// The type URL containerd expects for cgroup v2 metrics.
pub const TYPE_URL: &str = "io.containerd.cgroups.v2.Metrics";

/// `key value` lines.
pub fn flat(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn num(cg: &Cgroup, file: &str) -> u64 {
    cg.read(file)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A limit: "max" is u64::MAX, as containerd's cgroups package reports it.
fn limit(cg: &Cgroup, file: &str) -> u64 {
    match cg.read(file).ok().as_deref().map(str::trim) {
        Some("max") => u64::MAX,
        Some(v) => v.parse().unwrap_or(0),
        None => 0,
    }
}

/// The metrics of `cg`.
pub fn metrics(cg: &Cgroup) -> Metrics {
    let mut m = Metrics::new();
    let mut pids = PidsStat::new();
    pids.current = num(cg, "pids.current");
    pids.limit = match limit(cg, "pids.max") {
        u64::MAX => 0,
        l => l,
    };
    m.pids = Some(pids).into();

    let c = flat(&cg.read("cpu.stat").unwrap_or_default());
    let g = |k: &str| c.get(k).copied().unwrap_or(0);
    let mut cpu = CPUStat::new();
    cpu.usage_usec = g("usage_usec");
    cpu.user_usec = g("user_usec");
    cpu.system_usec = g("system_usec");
    cpu.nr_periods = g("nr_periods");
    cpu.nr_throttled = g("nr_throttled");
    cpu.throttled_usec = g("throttled_usec");
    m.cpu = Some(cpu).into();

    m.memory = Some(memory(cg)).into();
    let e = flat(&cg.read("memory.events").unwrap_or_default());
    let g = |k: &str| e.get(k).copied().unwrap_or(0);
    let mut ev = MemoryEvents::new();
    ev.low = g("low");
    ev.high = g("high");
    ev.max = g("max");
    ev.oom = g("oom");
    ev.oom_kill = g("oom_kill");
    m.memory_events = Some(ev).into();

    let mut io = IOStat::new();
    io.usage = io_entries(&cg.read("io.stat").unwrap_or_default());
    m.io = Some(io).into();
    m.hugetlb = hugetlb(cg);
    m
}

fn memory(cg: &Cgroup) -> MemoryStat {
    let s = flat(&cg.read("memory.stat").unwrap_or_default());
    let g = |k: &str| s.get(k).copied().unwrap_or(0);
    let mut m = MemoryStat::new();
    m.anon = g("anon");
    m.file = g("file");
    m.kernel_stack = g("kernel_stack");
    m.slab = g("slab");
    m.sock = g("sock");
    m.shmem = g("shmem");
    m.file_mapped = g("file_mapped");
    m.file_dirty = g("file_dirty");
    m.file_writeback = g("file_writeback");
    m.anon_thp = g("anon_thp");
    m.inactive_anon = g("inactive_anon");
    m.active_anon = g("active_anon");
    m.inactive_file = g("inactive_file");
    m.active_file = g("active_file");
    m.unevictable = g("unevictable");
    m.slab_reclaimable = g("slab_reclaimable");
    m.slab_unreclaimable = g("slab_unreclaimable");
    m.pgfault = g("pgfault");
    m.pgmajfault = g("pgmajfault");
    m.workingset_refault = g("workingset_refault_anon") + g("workingset_refault_file");
    m.workingset_activate = g("workingset_activate_anon") + g("workingset_activate_file");
    m.workingset_nodereclaim = g("workingset_nodereclaim");
    m.pgrefill = g("pgrefill");
    m.pgscan = g("pgscan");
    m.pgsteal = g("pgsteal");
    m.pgactivate = g("pgactivate");
    m.pgdeactivate = g("pgdeactivate");
    m.pglazyfree = g("pglazyfree");
    m.pglazyfreed = g("pglazyfreed");
    m.thp_fault_alloc = g("thp_fault_alloc");
    m.thp_collapse_alloc = g("thp_collapse_alloc");
    m.usage = num(cg, "memory.current");
    m.usage_limit = limit(cg, "memory.max");
    m.max_usage = num(cg, "memory.peak");
    m.swap_usage = num(cg, "memory.swap.current");
    m.swap_limit = limit(cg, "memory.swap.max");
    m
}

/// io.stat lines: `MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=..`.
pub fn io_entries(text: &str) -> Vec<IOEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let Some((maj, min)) = parts.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let mut e = IOEntry::new();
        e.major = maj.parse().unwrap_or(0);
        e.minor = min.parse().unwrap_or(0);
        for kv in parts {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let v = v.parse().unwrap_or(0);
            match k {
                "rbytes" => e.rbytes = v,
                "wbytes" => e.wbytes = v,
                "rios" => e.rios = v,
                "wios" => e.wios = v,
                _ => {}
            }
        }
        out.push(e);
    }
    out
}

fn hugetlb(cg: &Cgroup) -> Vec<HugeTlbStat> {
    let Ok(dir) = std::fs::read_dir(&cg.dir) else {
        return Vec::new();
    };
    let mut sizes: Vec<String> = dir
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| {
            Some(
                n.strip_prefix("hugetlb.")?
                    .strip_suffix(".current")?
                    .to_string(),
            )
        })
        .filter(|s| !s.contains('.'))
        .collect();
    sizes.sort();
    sizes
        .into_iter()
        .map(|size| {
            let mut h = HugeTlbStat::new();
            h.current = num(cg, &format!("hugetlb.{size}.current"));
            h.max = limit(cg, &format!("hugetlb.{size}.max"));
            h.pagesize = size;
            h
        })
        .collect()
}

/// The metrics packed as containerd's `Any`.
pub fn to_any(m: &Metrics) -> anyhow::Result<Any> {
    pack(TYPE_URL, m)
}

/// Pack metrics `m` of type `type_url` for a StatsResponse.
pub fn pack(type_url: &str, m: &impl Message) -> anyhow::Result<Any> {
    Ok(Any {
        type_url: type_url.to_string(),
        value: m.write_to_bytes()?,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_io_stat() {
        let e = io_entries("8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0\nbad\n");
        assert_eq!(e.len(), 1);
        assert_eq!(
            (e[0].major, e[0].minor, e[0].rbytes, e[0].wios),
            (8, 0, 10, 2)
        );
    }

    #[test]
    fn parses_flat() {
        let f = flat("oom 1\noom_kill 2\n");
        assert_eq!(f["oom_kill"], 2);
    }

    #[test]
    fn any_has_v2_type() {
        let mut m = Metrics::new();
        let mut p = PidsStat::new();
        p.current = 3;
        m.pids = Some(p).into();
        let a = to_any(&m).unwrap();
        assert_eq!(a.type_url, TYPE_URL);
        assert_eq!(Metrics::parse_from_bytes(&a.value).unwrap().pids.current, 3);
    }
}

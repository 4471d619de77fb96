//! Task statistics as `io.containerd.cgroups.v1.Metrics` for containers on
//! a cgroup v1 host, from libcontainer's runc-shaped statistics.

use containerd_shim::protos::cgroups::metrics::{
    BlkIOEntry, BlkIOStat, CPUStat, CPUUsage, HugetlbStat, MemoryEntry, MemoryStat, Metrics,
    PidsStat, Throttle,
};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use serde_json::Value;

/// The type URL containerd expects for cgroup v1 metrics.
pub const TYPE_URL: &str = "io.containerd.cgroups.v1.Metrics";

fn u(v: &Value, path: &[&str]) -> u64 {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

fn entry(v: &Value) -> MemoryEntry {
    let mut e = MemoryEntry::new();
    e.limit = u(v, &["limit"]);
    e.usage = u(v, &["usage"]);
    e.max = u(v, &["max"]);
    e.failcnt = u(v, &["failcnt"]);
    e
}

fn memory(m: &Value) -> MemoryStat {
    let raw = &m["raw"];
    let r = |k: &str| u(raw, &[k]);
    let mut s = MemoryStat::new();
    s.cache = r("cache");
    s.rss = r("rss");
    s.rss_huge = r("rss_huge");
    s.mapped_file = r("mapped_file");
    s.dirty = r("dirty");
    s.writeback = r("writeback");
    s.pg_pg_in = r("pgpgin");
    s.pg_pg_out = r("pgpgout");
    s.pg_fault = r("pgfault");
    s.pg_maj_fault = r("pgmajfault");
    s.inactive_anon = r("inactive_anon");
    s.active_anon = r("active_anon");
    s.inactive_file = r("inactive_file");
    s.active_file = r("active_file");
    s.unevictable = r("unevictable");
    s.hierarchical_memory_limit = r("hierarchical_memory_limit");
    s.hierarchical_swap_limit = r("hierarchical_memsw_limit");
    s.total_cache = r("total_cache");
    s.total_rss = r("total_rss");
    s.total_rss_huge = r("total_rss_huge");
    s.total_mapped_file = r("total_mapped_file");
    s.total_dirty = r("total_dirty");
    s.total_writeback = r("total_writeback");
    s.total_pg_pg_in = r("total_pgpgin");
    s.total_pg_pg_out = r("total_pgpgout");
    s.total_pg_fault = r("total_pgfault");
    s.total_pg_maj_fault = r("total_pgmajfault");
    s.total_inactive_anon = r("total_inactive_anon");
    s.total_active_anon = r("total_active_anon");
    s.total_inactive_file = r("total_inactive_file");
    s.total_active_file = r("total_active_file");
    s.total_unevictable = r("total_unevictable");
    s.usage = Some(entry(&m["usage"])).into();
    s.swap = Some(entry(&m["swap"])).into();
    s.kernel = Some(entry(&m["kernel"])).into();
    s.kernel_tcp = Some(entry(&m["kernelTCP"])).into();
    s
}

fn blkio_entries(list: &Value) -> Vec<BlkIOEntry> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let mut b = BlkIOEntry::new();
            b.op = e["op"].as_str().unwrap_or_default().to_string();
            b.major = u(e, &["major"]);
            b.minor = u(e, &["minor"]);
            b.value = u(e, &["value"]);
            b
        })
        .collect()
}

/// The metrics of a container from its runc-shaped `stats` (the `data` of
/// a stats event).
pub fn metrics(stats: &Value) -> Metrics {
    let mut m = Metrics::new();
    let mut pids = PidsStat::new();
    pids.current = u(stats, &["pids", "current"]);
    pids.limit = u(stats, &["pids", "limit"]);
    m.pids = Some(pids).into();

    let cpu = &stats["cpu"];
    let mut usage = CPUUsage::new();
    usage.total = u(cpu, &["usage", "total"]);
    usage.kernel = u(cpu, &["usage", "kernel"]);
    usage.user = u(cpu, &["usage", "user"]);
    usage.per_cpu = cpu["usage"]["percpu"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect();
    let mut thr = Throttle::new();
    thr.periods = u(cpu, &["throttling", "periods"]);
    thr.throttled_periods = u(cpu, &["throttling", "throttled_periods"]);
    thr.throttled_time = u(cpu, &["throttling", "throttled_time"]);
    let mut c = CPUStat::new();
    c.usage = Some(usage).into();
    c.throttling = Some(thr).into();
    m.cpu = Some(c).into();

    m.memory = Some(memory(&stats["memory"])).into();

    let mut b = BlkIOStat::new();
    b.io_service_bytes_recursive = blkio_entries(&stats["blkio"]["ioServiceBytesRecursive"]);
    b.io_serviced_recursive = blkio_entries(&stats["blkio"]["ioServicedRecursive"]);
    m.blkio = Some(b).into();

    if let Some(h) = stats["hugetlb"].as_object() {
        m.hugetlb = h
            .iter()
            .map(|(size, v)| {
                let mut s = HugetlbStat::new();
                s.pagesize = size.clone();
                s.usage = u(v, &["usage"]);
                s.max = u(v, &["max"]);
                s.failcnt = u(v, &["failcnt"]);
                s
            })
            .collect();
    }
    m
}

/// Pack `m` for a StatsResponse.
pub fn to_any(m: &Metrics) -> anyhow::Result<Any> {
    crate::stats::pack(TYPE_URL, m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_shaped_stats_map_to_v1_metrics() {
        let stats = serde_json::json!({
            "cpu": {"usage": {"total": 9, "percpu": [4, 5], "kernel": 2, "user": 7},
                    "throttling": {"periods": 3, "throttled_periods": 1, "throttled_time": 10}},
            "memory": {"usage": {"limit": 100, "usage": 50, "max": 60, "failcnt": 1},
                       "swap": {"limit": 200}, "kernel": {}, "kernelTCP": {},
                       "raw": {"cache": 11, "rss": 22, "total_rss": 33, "pgmajfault": 4}},
            "pids": {"current": 2, "limit": 10},
            "blkio": {"ioServiceBytesRecursive": [{"major": 8, "minor": 0, "op": "Read", "value": 512}]},
            "hugetlb": {"2MB": {"usage": 0, "max": 0, "failcnt": 3}},
        });
        let m = metrics(&stats);
        assert_eq!((m.pids.current, m.pids.limit), (2, 10));
        assert_eq!(m.cpu.usage.per_cpu, [4, 5]);
        assert_eq!(m.cpu.throttling.throttled_time, 10);
        assert_eq!((m.memory.usage.limit, m.memory.usage.usage), (100, 50));
        assert_eq!(m.memory.swap.limit, 200);
        assert_eq!(
            (m.memory.cache, m.memory.rss, m.memory.total_rss),
            (11, 22, 33)
        );
        assert_eq!(m.memory.pg_maj_fault, 4);
        assert_eq!(m.blkio.io_service_bytes_recursive[0].value, 512);
        assert_eq!(m.hugetlb[0].pagesize, "2MB");
        assert_eq!(m.hugetlb[0].failcnt, 3);
        assert_eq!(to_any(&m).unwrap().type_url, TYPE_URL);
    }
}

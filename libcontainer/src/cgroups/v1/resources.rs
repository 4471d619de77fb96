//! Writing `linux.resources` to cgroup v1 files, as runc's fs driver does.

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::Cgroup;
use crate::error::{Error, Result};

fn invalid(field: &str, msg: impl Into<String>) -> Error {
    Error::Invalid {
        field: format!("linux.resources.{field}"),
        msg: msg.into(),
    }
}

/// A v1 limit: negative means unlimited (-1).
fn limit(v: i64) -> String {
    if v < 0 { -1 } else { v }.to_string()
}

fn memory(cg: &Cgroup, m: &LinuxMemory) -> Result<()> {
    if let Some(sw) = m.swappiness() {
        if sw > 100 {
            return Err(invalid(
                "memory.swappiness",
                format!("{sw} is out of range 0..100"),
            ));
        }
    }
    if let Some(r) = m.reservation() {
        cg.write("memory", "memory.soft_limit_in_bytes", &limit(r))?;
    }
    let has_memsw = cg.has_file("memory", "memory.memsw.limit_in_bytes");
    // Unlimited memory with no word on swap: swap is unlimited too.
    let swap = match (m.limit(), m.swap()) {
        (Some(l), None) if l < 0 && has_memsw => Some(-1),
        (_, s) => s,
    };
    if swap.is_some_and(|s| s > 0) && !has_memsw {
        return Err(invalid(
            "memory.swap",
            "swap accounting is off on this host (no memory.memsw.limit_in_bytes)",
        ));
    }
    let set_limit = |l: i64| -> Result<()> {
        cg.write("memory", "memory.limit_in_bytes", &limit(l))
            .map_err(|e| {
                let usage = cg
                    .read("memory", "memory.usage_in_bytes")
                    .unwrap_or_default();
                invalid(
                    "memory.limit",
                    format!("cannot set {l} (current usage {usage} bytes): {e}"),
                )
            })
    };
    let set_swap = |s: i64| -> Result<()> {
        if has_memsw {
            cg.write("memory", "memory.memsw.limit_in_bytes", &limit(s))?;
        }
        Ok(())
    };
    match (m.limit(), swap) {
        // The kernel wants memory <= memory+swap at every step: raise swap
        // first when it grows past the current limit.
        (Some(l), Some(s)) => {
            let cur: i64 = cg
                .read("memory", "memory.limit_in_bytes")?
                .parse()
                .unwrap_or(i64::MAX);
            if s < 0 || cur < s {
                set_swap(s)?;
                set_limit(l)?;
            } else {
                set_limit(l)?;
                set_swap(s)?;
            }
        }
        (Some(l), None) => set_limit(l)?,
        (None, Some(s)) => set_swap(s)?,
        (None, None) => {}
    }
    if m.kernel().is_some() {
        tracing::warn!("linux.resources.memory.kernel: kernel memory limits are deprecated; ignored as runc does");
    }
    if let Some(t) = m.kernel_tcp() {
        cg.write("memory", "memory.kmem.tcp.limit_in_bytes", &limit(t))?;
    }
    if let Some(sw) = m.swappiness() {
        cg.write("memory", "memory.swappiness", &sw.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        cg.write("memory", "memory.oom_control", "1")?;
    }
    Ok(())
}

fn cpu(cg: &Cgroup, c: &LinuxCpu) -> Result<()> {
    if let Some(p) = c.realtime_period().filter(|v| *v != 0) {
        cg.write("cpu", "cpu.rt_period_us", &p.to_string())?;
    }
    if let Some(r) = c.realtime_runtime().filter(|v| *v != 0) {
        cg.write("cpu", "cpu.rt_runtime_us", &r.to_string())?;
    }
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        cg.write("cpu", "cpu.shares", &s.to_string())?;
        let got: u64 = cg.read("cpu", "cpu.shares")?.parse().unwrap_or(0);
        if got != s {
            let bound = if s > got { "maximum" } else { "minimum" };
            return Err(invalid(
                "cpu.shares",
                format!("{s}: the {bound} allowed cpu-shares is {got}"),
            ));
        }
    }
    let period = c.period().filter(|p| *p != 0);
    let quota = c.quota().filter(|q| *q != 0).map(|q| q.max(-1));
    if let Some(p) = period {
        // A new period can be refused while the old quota does not fit it:
        // then the quota goes first.
        if cg
            .write("cpu", "cpu.cfs_period_us", &p.to_string())
            .is_err()
        {
            if let Some(q) = quota {
                cg.write("cpu", "cpu.cfs_quota_us", &q.to_string())?;
            }
            cg.write("cpu", "cpu.cfs_period_us", &p.to_string())?;
        }
    }
    if let Some(q) = quota {
        cg.write("cpu", "cpu.cfs_quota_us", &q.to_string())?;
    }
    if let Some(b) = c.burst() {
        cg.write("cpu", "cpu.cfs_burst_us", &b.to_string())?;
    }
    if let Some(i) = c.idle() {
        cg.write("cpu", "cpu.idle", &i.to_string())?;
    }
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        cg.write("cpuset", "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        cg.write("cpuset", "cpuset.mems", mems)?;
    }
    Ok(())
}

fn block_io(cg: &Cgroup, b: &LinuxBlockIo) -> Result<()> {
    // Without CFQ the weights live in BFQ's files.
    let weight_file = |name: &str| {
        if cg.has_file("blkio", &format!("blkio.{name}")) {
            format!("blkio.{name}")
        } else {
            format!("blkio.bfq.{name}")
        }
    };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        cg.write("blkio", &weight_file("weight"), &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        cg.write("blkio", "blkio.leaf_weight", &w.to_string())?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight().filter(|w| *w != 0) {
            let v = format!("{}:{} {w}", d.major(), d.minor());
            cg.write("blkio", &weight_file("weight_device"), &v)?;
        }
        if let Some(w) = d.leaf_weight().filter(|w| *w != 0) {
            let v = format!("{}:{} {w}", d.major(), d.minor());
            cg.write("blkio", "blkio.leaf_weight_device", &v)?;
        }
    }
    let throttles = [
        ("read_bps_device", b.throttle_read_bps_device()),
        ("write_bps_device", b.throttle_write_bps_device()),
        ("read_iops_device", b.throttle_read_iops_device()),
        ("write_iops_device", b.throttle_write_iops_device()),
    ];
    for (file, list) in throttles {
        for d in list.iter().flatten() {
            let v = format!("{}:{} {}", d.major(), d.minor(), d.rate());
            cg.write("blkio", &format!("blkio.throttle.{file}"), &v)?;
        }
    }
    Ok(())
}

/// Write every field of `r` to the cgroup.
pub fn apply(cg: &Cgroup, r: &LinuxResources) -> Result<()> {
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(invalid(
            "unified",
            "invalid configuration: cannot use unified on cgroup v1",
        ));
    }
    if let Some(m) = r.memory() {
        memory(cg, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(cg, c)?;
    }
    if let Some(p) = r.pids() {
        let v = if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".into()
        };
        cg.write("pids", "pids.max", &v)?;
    }
    if let Some(b) = r.block_io() {
        block_io(cg, b)?;
    }
    for h in r.hugepage_limits().iter().flatten() {
        let file = format!("hugetlb.{}.limit_in_bytes", h.page_size());
        cg.write("hugetlb", &file, &limit(h.limit()))?;
    }
    for (dev, l) in r.rdma().iter().flatten() {
        let mut v = dev.clone();
        if let Some(h) = l.hca_handles() {
            v.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = l.hca_objects() {
            v.push_str(&format!(" hca_object={o}"));
        }
        cg.write("rdma", "rdma.max", &v)?;
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            cg.write("net_cls", "net_cls.classid", &id.to_string())?;
        }
        for p in n.priorities().iter().flatten() {
            let v = format!("{} {}", p.name(), p.priority());
            cg.write("net_prio", "net_prio.ifpriomap", &v)?;
        }
    }
    Ok(())
}

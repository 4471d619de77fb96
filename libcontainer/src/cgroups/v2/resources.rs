//! Writing `linux.resources` to cgroup v2 files, with runc's conversions
//! from the v1-shaped OCI fields.

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::Cgroup;
use crate::error::{Error, Result};

fn invalid(field: &str, msg: impl Into<String>) -> Error {
    Error::Invalid {
        field: format!("linux.resources.{field}"),
        msg: msg.into(),
    }
}

/// cpu.shares (2..262144) to cpu.weight (1..10000), runc's and crun's formula.
pub fn cpu_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// blkio.weight (10..1000) to io.weight (1..10000), runc's formula.
pub fn io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).clamp(10, 1000) - 10) * 9999 / 990
}

fn limit(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// Check a `unified` key: `<controller>.<file>`, a plain name, for a
/// controller this host has (or a core `cgroup.` file).
pub fn check_unified(key: &str, available: &[String]) -> Result<()> {
    let field = format!("unified[{key:?}]");
    let bad = key.is_empty() || key.contains('/') || key.starts_with('.') || key.contains("..");
    let Some((ctrl, _)) = key.split_once('.').filter(|_| !bad) else {
        return Err(invalid(
            &field,
            "must be a cgroup file name like memory.high",
        ));
    };
    if ctrl != "cgroup" && !available.iter().any(|a| a == ctrl) {
        return Err(invalid(
            &field,
            format!("controller {ctrl:?} is not available"),
        ));
    }
    Ok(())
}

fn memory(cg: &Cgroup, m: &LinuxMemory) -> Result<()> {
    if let Some(r) = m.reservation() {
        cg.write("memory.low", &limit(r))?;
    }
    // Swap first when lowering, limit first when raising: write swap after
    // the limit, as runc does; memory.swap.max is swap minus memory.
    if let Some(l) = m.limit() {
        cg.write("memory.max", &limit(l))?;
    }
    if let Some(s) = m.swap() {
        let v = match (s, m.limit()) {
            (s, _) if s < 0 => "max".to_string(),
            (s, Some(l)) if l >= 0 => (s - l).to_string(),
            (_, _) => {
                return Err(invalid(
                    "memory.swap",
                    "needs memory.limit to convert to memory.swap.max",
                ))
            }
        };
        cg.write("memory.swap.max", &v)?;
    }
    if m.disable_oom_killer() == Some(true) {
        tracing::warn!(
            "linux.resources.memory.disableOOMKiller: cgroup v2 has no equivalent; ignored"
        );
    }
    Ok(())
}

fn cpu(cg: &Cgroup, c: &LinuxCpu) -> Result<()> {
    if c.realtime_runtime().is_some_and(|v| v != 0) || c.realtime_period().is_some_and(|v| v != 0) {
        return Err(invalid(
            "cpu.realtimeRuntime",
            "real-time scheduling limits need cgroup v1",
        ));
    }
    if let Some(w) = c.shares().map(cpu_weight).filter(|w| *w > 0) {
        cg.write("cpu.weight", &w.to_string())?;
    }
    if c.quota().is_some() || c.period().is_some() {
        let quota = c
            .quota()
            .filter(|q| *q > 0)
            .map_or("max".to_string(), |q| q.to_string());
        let period = c.period().filter(|p| *p > 0).unwrap_or(100_000);
        cg.write("cpu.max", &format!("{quota} {period}"))?;
    }
    if let Some(b) = c.burst() {
        cg.write("cpu.max.burst", &b.to_string())?;
    }
    if let Some(i) = c.idle() {
        cg.write("cpu.idle", &i.to_string())?;
    }
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        cg.write("cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        cg.write("cpuset.mems", mems)?;
    }
    Ok(())
}

fn block_io(cg: &Cgroup, b: &LinuxBlockIo) -> Result<()> {
    if let Some(w) = b.weight().map(io_weight).filter(|w| *w > 0) {
        cg.write("io.weight", &format!("default {w}"))?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight().map(io_weight).filter(|w| *w > 0) {
            cg.write("io.weight", &format!("{}:{} {w}", d.major(), d.minor()))?;
        }
    }
    let throttles = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, list) in throttles {
        for d in list.iter().flatten() {
            let rate = if d.rate() == 0 {
                "max".to_string()
            } else {
                d.rate().to_string()
            };
            cg.write(
                "io.max",
                &format!("{}:{} {key}={rate}", d.major(), d.minor()),
            )?;
        }
    }
    Ok(())
}

/// Write every field of `r` to the cgroup.
pub fn apply(cg: &Cgroup, r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        memory(cg, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(cg, c)?;
    }
    if let Some(p) = r.pids() {
        cg.write(
            "pids.max",
            &if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".into()
            },
        )?;
    }
    if let Some(b) = r.block_io() {
        block_io(cg, b)?;
    }
    for h in r.hugepage_limits().iter().flatten() {
        cg.write(&format!("hugetlb.{}.max", h.page_size()), &limit(h.limit()))?;
    }
    for (dev, l) in r.rdma().iter().flatten() {
        let mut v = dev.clone();
        if let Some(h) = l.hca_handles() {
            v.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = l.hca_objects() {
            v.push_str(&format!(" hca_object={o}"));
        }
        cg.write("rdma.max", &v)?;
    }
    if r.network().is_some() {
        tracing::warn!("linux.resources.network: classid and priorities need cgroup v1; ignored");
    }
    let available = super::available_controllers();
    let mut unified: Vec<(&String, &String)> = r.unified().iter().flatten().collect();
    unified.sort();
    for (k, v) in unified {
        check_unified(k, &available)?;
        cg.write(k, v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(cpu_weight(2), 1);
        assert_eq!(cpu_weight(1024), 39);
        assert_eq!(cpu_weight(262_144), 10_000);
        assert_eq!(cpu_weight(0), 0);
        assert_eq!(io_weight(10), 1);
        assert_eq!(io_weight(1000), 10_000);
        assert_eq!(io_weight(500), 4950);
    }

    #[test]
    fn unified_keys() {
        let avail = vec!["memory".to_string(), "pids".to_string()];
        assert!(check_unified("memory.high", &avail).is_ok());
        assert!(check_unified("cgroup.freeze", &avail).is_ok());
        assert!(check_unified("cpu.max", &avail).is_err());
        assert!(check_unified("../memory.high", &avail).is_err());
        assert!(check_unified("memory", &avail).is_err());
        assert!(check_unified("memory.x/y", &avail).is_err());
    }
}

//! systemd unit properties for `linux.resources`, as runc sets them.

use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxResources};
use zbus::zvariant::Value;

use crate::cgroups::v2::cpu_weight;
use crate::error::{Error, Result};

const CPU_PERIOD_DEFAULT: u64 = 100_000;

/// A unit property value, in the D-Bus type systemd expects for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Prop {
    /// `s`
    Str(String),
    /// `b`
    Bool(bool),
    /// `t`
    U64(u64),
    /// `au`
    U32s(Vec<u32>),
    /// `ay`
    Bytes(Vec<u8>),
    /// `a(ss)`: DeviceAllow's (device, permissions) pairs
    Devices(Vec<(String, String)>),
}

pub(super) type Props = Vec<(&'static str, Prop)>;

impl Prop {
    pub(super) fn value(&self) -> Value<'_> {
        match self {
            Prop::Str(s) => Value::from(s.as_str()),
            Prop::Bool(b) => Value::from(*b),
            Prop::U64(v) => Value::from(*v),
            Prop::U32s(v) => Value::from(v.clone()),
            Prop::Bytes(v) => Value::from(v.clone()),
            Prop::Devices(v) => Value::from(v.clone()),
        }
    }
}

fn res_invalid(field: &str, msg: impl Into<String>) -> Error {
    Error::Invalid {
        field: format!("linux.resources.{field}"),
        msg: msg.into(),
    }
}

/// A limit in an OCI field (negative means none) as a systemd value.
fn limit(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

fn memory_props(m: &LinuxMemory, props: &mut Props) -> Result<()> {
    if let Some(l) = m.limit().filter(|v| *v != 0) {
        props.push(("MemoryMax", Prop::U64(limit(l))));
    }
    if let Some(r) = m.reservation().filter(|v| *v != 0) {
        props.push(("MemoryLow", Prop::U64(limit(r))));
    }
    // runc's conversion: swap counts memory plus swap; MemorySwapMax is swap only.
    let swap = match (m.swap(), m.limit()) {
        (None | Some(0), Some(l)) if l < 0 => Some(u64::MAX),
        (None | Some(0), _) => None,
        (Some(s), _) if s < 0 => Some(u64::MAX),
        (Some(s), Some(l)) if l > 0 => {
            if s < l {
                return Err(res_invalid(
                    "memory.swap",
                    "must be at least memory.limit (it counts memory plus swap)",
                ));
            }
            Some((s - l) as u64)
        }
        (Some(_), _) => {
            return Err(res_invalid(
                "memory.swap",
                "needs memory.limit to convert to MemorySwapMax",
            ))
        }
    };
    if let Some(s) = swap {
        props.push(("MemorySwapMax", Prop::U64(s)));
    }
    Ok(())
}

/// CPUQuotaPerSecUSec from a quota and period in µs, as runc computes it:
/// systemd keeps whole percents, so round up to the next 10 ms.
fn quota_per_sec(quota: i64, period: u64) -> u64 {
    if quota <= 0 {
        return u64::MAX;
    }
    let period = if period == 0 {
        CPU_PERIOD_DEFAULT
    } else {
        period
    };
    let per_sec = (quota as u64).saturating_mul(1_000_000) / period;
    per_sec.div_ceil(10_000).saturating_mul(10_000)
}

fn quota_props(quota: i64, period: u64, props: &mut Props) {
    if period != 0 {
        props.push(("CPUQuotaPeriodUSec", Prop::U64(period)));
    }
    if quota != 0 || period != 0 {
        props.push((
            "CPUQuotaPerSecUSec",
            Prop::U64(quota_per_sec(quota, period)),
        ));
    }
}

/// A cpuset list such as `0-3,8` as the bitmask systemd takes for
/// AllowedCPUs/AllowedMemoryNodes: bit N of byte N/8 is CPU N.
fn cpu_bits(list: &str) -> std::result::Result<Vec<u8>, String> {
    let mut bytes: Vec<u8> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let num = |s: &str| s.parse::<u32>().map_err(|_| format!("bad entry {item:?}"));
        let (lo, hi) = match item.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(item)?, num(item)?),
        };
        if lo > hi || hi >= 1 << 16 {
            return Err(format!("bad range {item:?}"));
        }
        for n in lo..=hi {
            let i = n as usize / 8;
            if bytes.len() <= i {
                bytes.resize(i + 1, 0);
            }
            bytes[i] |= 1 << (n % 8);
        }
    }
    if bytes.is_empty() {
        return Err("empty list".into());
    }
    Ok(bytes)
}

fn cpu_props(c: &LinuxCpu, props: &mut Props) -> Result<()> {
    if let Some(w) = c.shares().map(cpu_weight).filter(|w| *w > 0) {
        props.push(("CPUWeight", Prop::U64(w)));
    }
    quota_props(c.quota().unwrap_or(0), c.period().unwrap_or(0), props);
    for (field, name, list) in [
        ("cpu.cpus", "AllowedCPUs", c.cpus()),
        ("cpu.mems", "AllowedMemoryNodes", c.mems()),
    ] {
        if let Some(list) = list.as_deref().filter(|s| !s.trim().is_empty()) {
            let bits = cpu_bits(list).map_err(|e| res_invalid(field, format!("{list:?}: {e}")))?;
            props.push((name, Prop::Bytes(bits)));
        }
    }
    Ok(())
}

/// The `unified` entries systemd has a property for (the fs driver writes
/// all of them afterwards anyway).
fn unified_props(key: &str, value: &str, props: &mut Props) -> Result<()> {
    let bad = |msg: String| res_invalid(&format!("unified[{key:?}]"), msg);
    let v = value.trim();
    let num = |s: &str| -> Result<u64> {
        if s == "max" {
            return Ok(u64::MAX);
        }
        s.parse()
            .map_err(|_| bad(format!("{value:?} is not a number or \"max\"")))
    };
    let name = match key {
        "memory.high" => "MemoryHigh",
        "memory.low" => "MemoryLow",
        "memory.min" => "MemoryMin",
        "memory.max" => "MemoryMax",
        "memory.swap.max" => "MemorySwapMax",
        "pids.max" => "TasksMax",
        "cpu.weight" => "CPUWeight",
        "cpu.max" => {
            let mut f = v.split_whitespace();
            let quota = match f.next() {
                Some("max") => 0,
                Some(q) => q
                    .parse()
                    .map_err(|_| bad(format!("bad quota in {value:?}")))?,
                None => return Err(bad("is empty".into())),
            };
            let period = match f.next() {
                Some(p) => p
                    .parse()
                    .map_err(|_| bad(format!("bad period in {value:?}")))?,
                None => CPU_PERIOD_DEFAULT,
            };
            quota_props(quota, period, props);
            return Ok(());
        }
        _ => return Ok(()),
    };
    props.push((name, Prop::U64(num(v)?)));
    Ok(())
}

/// The unit properties for `r` that systemd understands, as runc sets them.
pub(super) fn resource_props(r: &LinuxResources) -> Result<Props> {
    let mut props = Vec::new();
    if let Some(m) = r.memory() {
        memory_props(m, &mut props)?;
    }
    if let Some(c) = r.cpu() {
        cpu_props(c, &mut props)?;
    }
    if let Some(p) = r.pids() {
        if p.limit() > 0 || p.limit() == -1 {
            props.push(("TasksMax", Prop::U64(limit(p.limit()))));
        }
    }
    if let Some(u) = r.unified() {
        let mut keys: Vec<_> = u.iter().collect();
        keys.sort();
        for (k, v) in keys {
            unified_props(k, v, &mut props)?;
        }
    }
    Ok(props)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn quota_rounding() {
        assert_eq!(quota_per_sec(50_000, 100_000), 500_000);
        assert_eq!(quota_per_sec(50_000, 0), 500_000);
        // 1.5% of a CPU rounds up to 2%.
        assert_eq!(quota_per_sec(1_500, 100_000), 20_000);
        assert_eq!(quota_per_sec(10_001, 1_000_000), 20_000);
        assert_eq!(quota_per_sec(-1, 100_000), u64::MAX);
        let mut p = Vec::new();
        quota_props(0, 0, &mut p);
        assert!(p.is_empty());
        quota_props(-1, 50_000, &mut p);
        assert_eq!(
            p,
            vec![
                ("CPUQuotaPeriodUSec", Prop::U64(50_000)),
                ("CPUQuotaPerSecUSec", Prop::U64(u64::MAX))
            ]
        );
    }

    #[test]
    fn cpu_bitmasks() {
        assert_eq!(cpu_bits("0").unwrap(), vec![1]);
        assert_eq!(cpu_bits("0-1").unwrap(), vec![3]);
        assert_eq!(cpu_bits("4-7").unwrap(), vec![0xf0]);
        assert_eq!(cpu_bits("16").unwrap(), vec![0, 0, 1]);
        assert_eq!(cpu_bits("0-3,32-33").unwrap(), vec![0x0f, 0, 0, 0, 3]);
        assert_eq!(cpu_bits(" , 1 , 3, 5-7,").unwrap(), vec![0xea]);
        for bad in ["", "-", "1-", "-3", "5-4", "1 - 2", "x"] {
            assert!(cpu_bits(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn properties() {
        let r = res(r#"{
            "memory": {"limit": 1048576, "reservation": 4096, "swap": 2097152},
            "cpu": {"shares": 1024, "quota": 20000, "period": 100000, "cpus": "0-1", "mems": "0"},
            "pids": {"limit": 10},
            "unified": {"memory.high": "max", "io.weight": "100"}
        }"#);
        let p = resource_props(&r).unwrap();
        let want = vec![
            ("MemoryMax", Prop::U64(1_048_576)),
            ("MemoryLow", Prop::U64(4096)),
            ("MemorySwapMax", Prop::U64(1_048_576)),
            ("CPUWeight", Prop::U64(39)),
            ("CPUQuotaPeriodUSec", Prop::U64(100_000)),
            ("CPUQuotaPerSecUSec", Prop::U64(200_000)),
            ("AllowedCPUs", Prop::Bytes(vec![3])),
            ("AllowedMemoryNodes", Prop::Bytes(vec![1])),
            ("TasksMax", Prop::U64(10)),
            ("MemoryHigh", Prop::U64(u64::MAX)),
        ];
        assert_eq!(p, want);
        let p = resource_props(&res(r#"{"memory": {"limit": -1}, "pids": {"limit": -1}}"#));
        assert_eq!(
            p.unwrap(),
            vec![
                ("MemoryMax", Prop::U64(u64::MAX)),
                ("MemorySwapMax", Prop::U64(u64::MAX)),
                ("TasksMax", Prop::U64(u64::MAX))
            ]
        );
        for bad in [
            r#"{"memory": {"limit": 100, "swap": 50}}"#,
            r#"{"memory": {"swap": 50}}"#,
            r#"{"cpu": {"cpus": "3-1"}}"#,
            r#"{"unified": {"pids.max": "lots"}}"#,
        ] {
            let e = resource_props(&res(bad)).unwrap_err().to_string();
            assert!(e.starts_with("linux.resources."), "{bad}: {e}");
        }
    }
}

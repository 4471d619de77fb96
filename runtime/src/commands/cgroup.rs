//! `pause`, `resume`, `update` and `events`: the commands that need the
//! container's cgroup.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use libcontainer::container::{self, StateRoot, Status};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};

/// `skiff pause` / `skiff resume`.
pub fn pause(root: &Path, id: &str, pause: bool) -> Result<()> {
    Ok(container::set_paused(&StateRoot::open(root)?, id, pause)?)
}

/// Change a running container's resource limits.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// A JSON file of linux.resources ("-" for stdin); the other flags override it.
    #[arg(short, long)]
    resources: Option<PathBuf>,
    /// Block IO weight (10-1000).
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u16>,
    /// CPU CFS period in microseconds.
    #[arg(long = "cpu-period")]
    cpu_period: Option<u64>,
    /// CPU CFS quota in microseconds (-1 for none).
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-share")]
    cpu_share: Option<u64>,
    /// CPU real-time period in microseconds (cgroup v1).
    #[arg(long = "cpu-rt-period")]
    cpu_rt_period: Option<u64>,
    /// CPU real-time runtime in microseconds (cgroup v1; -1 for none).
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    cpu_rt_runtime: Option<i64>,
    /// Kernel TCP buffer memory limit (cgroup v1).
    #[arg(long = "kernel-memory-tcp", allow_hyphen_values = true)]
    kernel_memory_tcp: Option<String>,
    /// CPU burst in microseconds.
    #[arg(long = "cpu-burst")]
    cpu_burst: Option<u64>,
    /// SCHED_IDLE for the cgroup (0 or 1).
    #[arg(long = "cpu-idle")]
    cpu_idle: Option<i64>,
    /// CPUs allowed (cpuset).
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Memory nodes allowed (cpuset).
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Memory limit (bytes, or with a k/m/g suffix; -1 for none).
    #[arg(long, allow_hyphen_values = true)]
    memory: Option<String>,
    /// Memory reservation (soft limit).
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    memory_reservation: Option<String>,
    /// Memory plus swap limit (-1 for unlimited swap).
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Maximum number of pids (-1 or 0 for none).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Container id.
    id: String,
}

/// A size like runc's (docker units RAMInBytes): `1024`, `64m`, `1.5G`, `-1`.
fn parse_size(flag: &str, s: &str) -> Result<i64> {
    if s == "-1" {
        return Ok(-1);
    }
    let lower = s.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (num, mult) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1u64 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        Some('t') => (&lower[..lower.len() - 1], 1 << 40),
        _ => (lower, 1),
    };
    let v: f64 = num
        .parse()
        .with_context(|| format!("--{flag}: invalid size {s:?}"))?;
    if v < 0.0 {
        bail!("--{flag}: invalid size {s:?}");
    }
    Ok((v * mult as f64) as i64)
}

fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

/// Set `path` in `v`, creating objects on the way (`v` holds only objects
/// built here, so indexing never hits a non-object).
fn set_path(v: &mut Value, path: &[&str], val: Value) {
    match path {
        [] => *v = val,
        [first, rest @ ..] => set_path(&mut v[*first], rest, val),
    }
}

/// `skiff update`.
pub fn update(root: &Path, a: &UpdateArgs) -> Result<()> {
    let mut r = match &a.resources {
        Some(p) => {
            let mut text = String::new();
            if p == Path::new("-") {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(p)
                    .with_context(|| format!("--resources {}", p.display()))?;
            }
            serde_json::from_str::<Value>(&text)
                .with_context(|| format!("--resources {}: invalid JSON", p.display()))?
        }
        None => json!({}),
    };
    let mut patch = json!({});
    let mut set = |path: &[&str], v: Value| set_path(&mut patch, path, v);
    if let Some(v) = a.blkio_weight {
        set(&["blockIO", "weight"], json!(v));
    }
    if let Some(v) = a.cpu_period {
        set(&["cpu", "period"], json!(v));
    }
    if let Some(v) = a.cpu_quota {
        set(&["cpu", "quota"], json!(v));
    }
    if let Some(v) = a.cpu_share {
        set(&["cpu", "shares"], json!(v));
    }
    if let Some(v) = a.cpu_rt_period {
        set(&["cpu", "realtimePeriod"], json!(v));
    }
    if let Some(v) = a.cpu_rt_runtime {
        set(&["cpu", "realtimeRuntime"], json!(v));
    }
    if let Some(v) = &a.kernel_memory_tcp {
        set(
            &["memory", "kernelTCP"],
            json!(parse_size("kernel-memory-tcp", v)?),
        );
    }
    if let Some(v) = a.cpu_burst {
        set(&["cpu", "burst"], json!(v));
    }
    if let Some(v) = a.cpu_idle {
        set(&["cpu", "idle"], json!(v));
    }
    if let Some(v) = &a.cpuset_cpus {
        set(&["cpu", "cpus"], json!(v));
    }
    if let Some(v) = &a.cpuset_mems {
        set(&["cpu", "mems"], json!(v));
    }
    if let Some(v) = &a.memory {
        set(&["memory", "limit"], json!(parse_size("memory", v)?));
    }
    if let Some(v) = &a.memory_reservation {
        set(
            &["memory", "reservation"],
            json!(parse_size("memory-reservation", v)?),
        );
    }
    if let Some(v) = &a.memory_swap {
        set(&["memory", "swap"], json!(parse_size("memory-swap", v)?));
    }
    if let Some(v) = a.pids_limit {
        set(&["pids", "limit"], json!(v));
    }
    merge(&mut r, patch);
    let resources: LinuxResources =
        serde_json::from_value(r).context("update: invalid resources")?;
    Ok(container::update(
        &StateRoot::open(root)?,
        &a.id,
        &resources,
    )?)
}

/// `skiff events`: stats every `interval` (or once with `stats`), and an
/// `oom` event whenever memory.events counts a new OOM kill, until the
/// container stops.
pub fn events(root: &Path, id: &str, interval: &str, stats_once: bool) -> Result<()> {
    let root = StateRoot::open(root)?;
    let print = |v: Value| println!("{v}");
    let (data, cg, _) = container::stats(&root, id)?;
    if stats_once {
        print(json!({"type": "stats", "id": id, "data": data}));
        return Ok(());
    }
    let every = parse_duration(interval)?;
    let mut ooms = cg.oom_kills();
    let mut next = Instant::now();
    loop {
        let (data, cg, status) = match container::stats(&root, id) {
            Ok(x) => x,
            Err(libcontainer::Error::NotExist(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let now = cg.oom_kills();
        if now > ooms {
            print(json!({"type": "oom", "id": id}));
            ooms = now;
        }
        if status == Status::Stopped {
            return Ok(());
        }
        if Instant::now() >= next {
            print(json!({"type": "stats", "id": id, "data": data}));
            next = Instant::now() + every;
        }
        std::thread::sleep(Duration::from_millis(100).min(every));
    }
}

/// A Go-style duration: `5s`, `100ms`, `1m`, or plain seconds.
fn parse_duration(s: &str) -> Result<Duration> {
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((s, "s"), |i| s.split_at(i));
    let v: f64 = num
        .parse()
        .with_context(|| format!("--interval: invalid duration {s:?}"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => bail!("--interval: invalid duration {s:?}"),
    };
    if secs <= 0.0 {
        bail!("--interval: must be positive");
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("memory", "64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("memory", "64MB").unwrap(), 64 << 20);
        assert_eq!(parse_size("memory", "1024").unwrap(), 1024);
        assert_eq!(parse_size("memory", "-1").unwrap(), -1);
        assert!(parse_size("memory", "x").is_err());
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert!(parse_duration("0s").is_err());
    }
}

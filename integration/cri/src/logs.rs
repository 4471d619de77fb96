//! Short-lived containers' output through CRI: one pod, N containers (P at
//! a time) that each print 64 KiB on stdout and exit at once. Every byte
//! must be in every container's log file (CRI log format), as the kubelet
//! would read it once the container shows EXITED.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use k8s_cri::v1::*;

use crate::{cri, host};

/// What each container prints: this many `x`, no newline.
const BYTES: usize = 64 * 1024;

/// What to run.
pub struct Opts {
    /// CRI runtime handler.
    pub handler: String,
    /// Image of the containers (busybox).
    pub image: String,
    /// Pod cgroup parent.
    pub parent: String,
    /// How many containers.
    pub containers: usize,
    /// How many at a time.
    pub parallel: usize,
}

/// The stdout content bytes of a CRI log file (`TIMESTAMP STREAM TAG
/// CONTENT` lines; an `F` tag ends a line of the output, which adds its
/// newline back). Returns (stdout bytes, of which `x`, other lines).
fn log_bytes(text: &[u8]) -> (usize, usize, usize) {
    let (mut total, mut xs, mut other) = (0, 0, 0);
    for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let mut f = line.splitn(4, |b| *b == b' ');
        let (_ts, stream, tag) = (f.next(), f.next(), f.next());
        let content = f.next().unwrap_or_default();
        if stream != Some(b"stdout".as_slice()) {
            other += 1;
            continue;
        }
        total += content.len() + usize::from(tag == Some(b"F".as_slice()));
        xs += content.iter().filter(|b| **b == b'x').count();
    }
    (total, xs, other)
}

#[allow(deprecated)]
fn config(name: &str, image: &str) -> ContainerConfig {
    let mut c = cri::container_config(name, image);
    c.command = vec![
        "sh".into(),
        "-c".into(),
        format!("head -c {BYTES} /dev/zero | tr '\\000' x"),
    ];
    c
}

/// Outcome of one container.
struct One {
    /// Bytes in the log when ContainerStatus first said EXITED.
    at_exit: usize,
    /// Bytes in the log in the end.
    total: usize,
    xs: usize,
    other: usize,
    exit_code: i32,
    ms: f64,
}

async fn one(
    rt: &mut cri::Client,
    o: &Opts,
    sandbox: &str,
    pod: &PodSandboxConfig,
    i: usize,
) -> Result<One> {
    let t0 = Instant::now();
    let name = format!("out{i}");
    let id = rt
        .create_container(CreateContainerRequest {
            pod_sandbox_id: sandbox.into(),
            config: Some(config(&name, &o.image)),
            sandbox_config: Some(pod.clone()),
        })
        .await
        .with_context(|| format!("CreateContainer {name}"))?
        .into_inner()
        .container_id;
    rt.start_container(StartContainerRequest {
        container_id: id.clone(),
    })
    .await
    .with_context(|| format!("StartContainer {name}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (status, log_path) = loop {
        let st = rt
            .container_status(ContainerStatusRequest {
                container_id: id.clone(),
                verbose: false,
            })
            .await
            .with_context(|| format!("ContainerStatus {name}"))?
            .into_inner()
            .status
            .context("no status")?;
        if st.state == ContainerState::ContainerExited as i32 {
            let path = st.log_path.clone();
            break (st, path);
        }
        ensure!(Instant::now() < deadline, "{name}: not EXITED after 60 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let read = || std::fs::read(&log_path).map(|t| log_bytes(&t));
    let at_exit = read().with_context(|| format!("read {log_path}"))?.0;
    // containerd writes the file from its own pipe, a moment after the
    // copy from the container's fifo ended: give it that moment.
    let settle = Instant::now() + Duration::from_secs(3);
    let mut last = read()?;
    while last.0 < BYTES && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(50)).await;
        last = read()?;
    }
    rt.remove_container(RemoveContainerRequest {
        container_id: id.clone(),
    })
    .await
    .with_context(|| format!("RemoveContainer {name}"))?;
    Ok(One {
        at_exit,
        total: last.0,
        xs: last.1,
        other: last.2,
        exit_code: status.exit_code,
        ms: t0.elapsed().as_secs_f64() * 1e3,
    })
}

/// Run the containers; prints a line per short log and one JSON line.
/// Fails if any log lacks a byte.
pub async fn run(o: Opts) -> Result<()> {
    let o = Arc::new(o);
    let mut rt = cri::connect().await?;
    let uid = format!("skiff-logs-{}", std::process::id());
    let pod = Arc::new(cri::pod_config(
        &format!("logs-{}", o.handler),
        &uid,
        &o.parent,
    )?);
    let sandbox = Arc::new(cri::run_pod(&mut rt, &pod, &o.handler).await?);
    let shim = host::shim_for(&o.handler);
    let results = Arc::new(std::sync::Mutex::new(Vec::new()));
    let t0 = Instant::now();
    let r = {
        let (rt, o, pod, sandbox, results) = (
            rt.clone(),
            o.clone(),
            pod.clone(),
            sandbox.clone(),
            results.clone(),
        );
        crate::load::each(o.containers, o.parallel, move |i| {
            let (mut rt, o, pod, sandbox, results) = (
                rt.clone(),
                o.clone(),
                pod.clone(),
                sandbox.clone(),
                results.clone(),
            );
            async move {
                let r = one(&mut rt, &o, &sandbox, &pod, i).await?;
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((i, r));
                Ok(())
            }
        })
        .await
    };
    let secs = t0.elapsed().as_secs_f64();
    // The pod's shim, idle (only the sandbox left), before the pod goes.
    let shim_rss = host::shims(shim)
        .into_iter()
        .filter(|p| host::cmdline(*p).iter().any(|a| a == sandbox.as_str()))
        .map(|p| host::memory_kib(p)[0])
        .next()
        .unwrap_or(0);
    let removed = cri::remove_pod(&mut rt, &sandbox).await;
    r?;
    removed?;
    let results = std::mem::take(&mut *results.lock().unwrap_or_else(|p| p.into_inner()));
    let (mut short, mut late, mut bad_exit, mut bytes) = (0, 0, 0, 0);
    let mut ms: Vec<f64> = Vec::new();
    for (i, r) in &results {
        bytes += r.xs;
        ms.push(r.ms);
        if r.exit_code != 0 {
            bad_exit += 1;
            println!("  out{i}: exit code {}", r.exit_code);
        }
        if r.xs != BYTES || r.total != BYTES || r.other != 0 {
            short += 1;
            println!(
                "  out{i}: log has {} stdout bytes ({} x, {} other lines), want {BYTES}",
                r.total, r.xs, r.other
            );
        } else if r.at_exit != BYTES {
            late += 1;
        }
    }
    ms.sort_by(f64::total_cmp);
    let median = ms.get(ms.len() / 2).copied().unwrap_or(0.0);
    println!(
        "{{\"handler\": \"{}\", \"containers\": {}, \"parallel\": {}, \"bytes_each\": {BYTES}, \
         \"bytes_logged\": {bytes}, \"bytes_expected\": {}, \"short_logs\": {short}, \
         \"complete_only_after_exited\": {late}, \"bad_exit\": {bad_exit}, \"secs\": {secs:.1}, \
         \"median_container_ms\": {median:.0}, \"idle_shim_rss_kib\": {shim_rss}}}",
        o.handler,
        results.len(),
        o.parallel,
        BYTES * results.len(),
    );
    if short > 0 || bad_exit > 0 || results.len() != o.containers {
        bail!(
            "{short} of {} logs short, {bad_exit} bad exit codes",
            results.len()
        );
    }
    println!("PASS cri/{}/short-lived-logs", o.handler);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cri_log_lines() {
        let t = b"2024-01-01T00:00:00.1Z stdout P xxxx\n\
                  2024-01-01T00:00:00.2Z stdout F xx\n\
                  2024-01-01T00:00:00.3Z stderr F oops\n";
        assert_eq!(log_bytes(t), (7, 6, 1));
    }
}

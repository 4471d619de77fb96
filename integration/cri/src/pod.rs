//! One pod with two containers, ExecSync and ContainerStats, one removed and
//! a third started in its place, then stop and remove everything: one shim
//! served the pod and nothing is left.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use k8s_cri::v1::*;

use crate::{cri, host};

/// The single-pod test; prints a PASS line per check.
pub async fn run(handler: &str, image: &str, parent: &str) -> Result<()> {
    let mut rt = cri::connect().await?;
    let uid = format!("skiff-{}", std::process::id());
    let pod = cri::pod_config(&format!("pod-{handler}"), &uid, parent)?;
    let shim = host::shim_for(handler);
    let before = host::shims(shim).len();
    let sandbox = cri::run_pod(&mut rt, &pod, handler).await?;
    println!("  sandbox {sandbox}");
    let mut ids = Vec::new();
    for name in ["one", "two"] {
        ids.push(cri::start_container(&mut rt, &sandbox, &pod, name, image).await?);
    }
    let out = rt
        .exec_sync(ExecSyncRequest {
            container_id: ids[1].clone(),
            cmd: vec![
                "sh".into(),
                "-c".into(),
                "echo exec-$((40+2)) $(cat /proc/1/comm); exit 3".into(),
            ],
            timeout: 30,
        })
        .await
        .context("ExecSync")?
        .into_inner();
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        stdout.trim() == "exec-42 sleep" && out.exit_code == 3,
        "ExecSync: stdout {stdout:?} exit {}",
        out.exit_code
    );
    println!("PASS cri/{handler}/exec-sync");
    // The driver in use: a `.slice` parent gives containerd's systemd-style
    // path, which must land in a scope under that slice; else a directory
    // <parent>/<id>.
    let want = if parent.ends_with(".slice") {
        format!("/{parent}/cri-containerd-{}.scope", ids[0])
    } else {
        format!("{parent}/{}", ids[0])
    };
    let cgroups = host::cgroups_of(&ids[0]);
    // cgroup v1: the same path in every hierarchy, /sys/fs/cgroup/<h>/...
    let placed = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        cgroups == [want.clone()]
    } else {
        let rel = |c: &str| {
            c.trim_start_matches('/')
                .split_once('/')
                .map(|(_, r)| format!("/{r}"))
        };
        cgroups.iter().any(|c| c.starts_with("/memory/"))
            && cgroups
                .iter()
                .all(|c| rel(c).as_deref() == Some(want.as_str()))
    };
    ensure!(placed, "container cgroup: {cgroups:?} (want {want})");
    println!("PASS cri/{handler}/cgroup {want}");
    // SKIFF_CRI_STATE_ROOT: the handler's shim options set `Root` there, so
    // the container's state directory must be below it (the options file
    // reached the shim).
    if let Ok(root) = std::env::var("SKIFF_CRI_STATE_ROOT") {
        let dir = std::path::Path::new(&root).join("k8s.io").join(&ids[0]);
        ensure!(
            dir.is_dir(),
            "no state directory {} (the shim did not get the handler's options)",
            dir.display()
        );
        println!("PASS cri/{handler}/options-read {}", dir.display());
    }
    let stats = rt
        .container_stats(ContainerStatsRequest {
            container_id: ids[0].clone(),
        })
        .await
        .context("ContainerStats")?
        .into_inner()
        .stats
        .context("no stats")?;
    let mem = stats
        .memory
        .as_ref()
        .and_then(|m| m.working_set_bytes.as_ref())
        .map_or(0, |v| v.value);
    let cpu = stats.cpu.as_ref().map(|c| c.timestamp).unwrap_or(0);
    ensure!(
        mem > 0 && cpu > 0,
        "ContainerStats: memory {mem}, cpu ts {cpu}"
    );
    println!("PASS cri/{handler}/stats (working set {mem} bytes)");
    let now = host::shims(shim).len();
    ensure!(
        now == before + 1,
        "shims serving the pod: {} (want 1)",
        now - before
    );
    println!("PASS cri/{handler}/one-shim-per-pod");
    // A container removed, then another started in the same pod (as an
    // init container is followed by the next): the removal's work in the
    // shim (systemd's D-Bus with that driver) must not break the next
    // create (it hung forever once).
    let first = ids.remove(0);
    remove(&mut rt, &first).await?;
    let three = tokio::time::timeout(
        Duration::from_secs(120),
        cri::start_container(&mut rt, &sandbox, &pod, "three", image),
    )
    .await
    .context("starting a container after removing one: no answer in 120 s")??;
    ids.push(three);
    println!("PASS cri/{handler}/start-after-remove");
    for id in &ids {
        remove(&mut rt, id).await?;
    }
    ids.push(first);
    cri::remove_pod(&mut rt, &sandbox).await?;
    ids.push(sandbox);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left_shims = host::shims(shim).len().saturating_sub(before);
        let left = host::leftovers(&ids);
        if left_shims == 0 && left.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            bail!("left after removal: {left_shims} shim(s), {left:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("PASS cri/{handler}/nothing-left");
    Ok(())
}

/// StopContainer (2 s grace) and RemoveContainer.
async fn remove(rt: &mut cri::Client, id: &str) -> Result<()> {
    rt.stop_container(StopContainerRequest {
        container_id: id.into(),
        timeout: 2,
    })
    .await
    .context("StopContainer")?;
    rt.remove_container(RemoveContainerRequest {
        container_id: id.into(),
    })
    .await
    .context("RemoveContainer")?;
    Ok(())
}

//! The kubelet's forensic container checkpoint (KEP 2008) through CRI's
//! CheckpointContainer: containerd checkpoints the task through the shim,
//! leaving it running, and writes an archive with CRIU's images, the
//! container's spec and its changes to the rootfs. The container must go on
//! counting afterwards, and the archive must hold a dump CRIU can restore
//! from (its inventory and the memory pages).

use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use k8s_cri::v1::*;

use crate::cri;

/// The file the container counts into, once every 0.2 s.
const COUNT: &str = "i=0; while :; do i=$((i+1)); echo $i >/tmp/n; sleep 0.2; done";

/// What the archive must hold: CRIU's inventory, the process tree, memory
/// pages, and containerd's own records of the container.
const WANT: [&str; 4] = [
    "checkpoint/inventory.img",
    "checkpoint/pstree.img",
    "checkpoint/pages-1.img",
    "spec.dump",
];

/// The container's count, read with ExecSync.
async fn count(rt: &mut cri::Client, id: &str) -> Result<u64> {
    let out = rt
        .exec_sync(ExecSyncRequest {
            container_id: id.into(),
            cmd: vec!["cat".into(), "/tmp/n".into()],
            timeout: 30,
        })
        .await
        .context("ExecSync cat /tmp/n")?
        .into_inner();
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.trim().parse().unwrap_or(0))
}

/// Wait (up to 60 s) until the count is above `above`.
async fn count_above(rt: &mut cri::Client, id: &str, above: u64) -> Result<u64> {
    for _ in 0..120 {
        let n = count(rt, id).await?;
        if n > above {
            return Ok(n);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("the container's count did not pass {above} within 60 s")
}

/// Checkpoint a counting container of a pod on `handler` to an archive in
/// `dir`; it must keep running and counting, and the archive must hold a
/// CRIU dump.
pub async fn run(handler: &str, image: &str, parent: &str, dir: &str) -> Result<()> {
    let mut rt = cri::connect().await?;
    let uid = format!("skiff-checkpoint-{}", std::process::id());
    let pod = cri::pod_config(&format!("checkpoint-{handler}"), &uid, parent)?;
    let sandbox = cri::run_pod(&mut rt, &pod, handler).await?;
    let archive = format!("{dir}/checkpoint-{handler}.tar");
    let result = checkpoint(&mut rt, &sandbox, &pod, image, &archive).await;
    let removed = cri::remove_pod(&mut rt, &sandbox).await;
    let _ = std::fs::remove_file(&archive);
    result?;
    removed.context("removing the pod")?;
    println!("PASS cri/{handler}/checkpoint");
    Ok(())
}

async fn checkpoint(
    rt: &mut cri::Client,
    sandbox: &str,
    pod: &PodSandboxConfig,
    image: &str,
    archive: &str,
) -> Result<()> {
    let mut config = cri::container_config("counter", image);
    config.command = vec!["sh".into(), "-c".into(), COUNT.into()];
    let id = cri::start_configured(rt, sandbox, pod, config).await?;
    let before = count_above(rt, &id, 5).await?;
    let _ = std::fs::remove_file(archive);
    rt.checkpoint_container(CheckpointContainerRequest {
        container_id: id.clone(),
        location: archive.into(),
        timeout: 0,
    })
    .await
    .context("CheckpointContainer")?;
    let status = rt
        .container_status(ContainerStatusRequest {
            container_id: id.clone(),
            verbose: false,
        })
        .await
        .context("ContainerStatus")?
        .into_inner()
        .status
        .context("ContainerStatus: no status")?;
    ensure!(
        status.state == ContainerState::ContainerRunning as i32,
        "after the checkpoint the container is in state {}, not running",
        status.state
    );
    let after = count_above(rt, &id, before + 5).await?;
    let listing = Command::new("tar")
        .args(["-tf", archive])
        .output()
        .with_context(|| format!("tar -tf {archive}"))?;
    ensure!(
        listing.status.success(),
        "tar -tf {archive}: {}",
        String::from_utf8_lossy(&listing.stderr).trim()
    );
    let names = String::from_utf8_lossy(&listing.stdout);
    let names: Vec<&str> = names.lines().map(|l| l.trim_start_matches("./")).collect();
    let missing: Vec<&str> = WANT
        .iter()
        .copied()
        .filter(|w| !names.contains(w))
        .collect();
    ensure!(
        missing.is_empty(),
        "the archive lacks {missing:?} (it holds {} entries: {:?})",
        names.len(),
        &names[..names.len().min(12)]
    );
    let size = std::fs::metadata(archive).map(|m| m.len()).unwrap_or(0);
    let images = names.iter().filter(|n| n.ends_with(".img")).count();
    let others: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !n.ends_with(".img") && !n.ends_with('/'))
        .collect();
    println!(
        "  checkpointed at count {before}, counting on ({after}); archive {size} bytes: {images} CRIU images and {others:?}"
    );
    Ok(())
}

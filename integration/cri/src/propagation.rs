//! critest's "mount with 'rshared' should support propagation from host to
//! container and vice versa", through containerd's CRI: a privileged
//! container with a bidirectional volume from an rshared host directory.
//! A mount made on the host below the volume shows in the container, and
//! one made in the container shows on the host.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use k8s_cri::v1::*;

use crate::cri;

fn sh(args: &[&str]) -> Result<()> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("run {args:?}"))?;
    ensure!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

async fn exec(rt: &mut cri::Client, id: &str, script: &str) -> Result<String> {
    let out = rt
        .exec_sync(ExecSyncRequest {
            container_id: id.into(),
            cmd: vec!["sh".into(), "-c".into(), script.into()],
            timeout: 30,
        })
        .await
        .context("ExecSync")?
        .into_inner();
    ensure!(
        out.exit_code == 0,
        "{script:?} exited {}: {}",
        out.exit_code,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The propagation test for `handler`; prints a PASS line per direction.
pub async fn run(handler: &str, image: &str, parent: &str) -> Result<()> {
    let dir = format!("/tmp/skiff-rshared-{handler}-{}", std::process::id());
    std::fs::create_dir_all(&dir).with_context(|| format!("mkdir {dir}"))?;
    // As critest: the host directory is a shared mount of its own.
    sh(&["mount", "--bind", &dir, &dir])?;
    sh(&["mount", "--make-rshared", &dir])?;
    let res = with_volume(handler, image, parent, &dir).await;
    for sub in ["from-ctr", "from-host", ""] {
        let _ = sh(&["umount", "-l", &format!("{dir}/{sub}")]);
    }
    let _ = std::fs::remove_dir_all(&dir);
    res
}

async fn with_volume(handler: &str, image: &str, parent: &str, dir: &str) -> Result<()> {
    let mut rt = cri::connect().await?;
    let uid = format!("skiff-rshared-{}", std::process::id());
    let mut pod = cri::pod_config(&format!("rshared-{handler}"), &uid, parent)?;
    if let Some(sc) = pod.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        sc.privileged = true;
    }
    let sandbox = cri::run_pod(&mut rt, &pod, handler).await?;
    let res = in_pod(&mut rt, &sandbox, &pod, image, dir, handler).await;
    cri::remove_pod(&mut rt, &sandbox).await?;
    res
}

async fn in_pod(
    rt: &mut cri::Client,
    sandbox: &str,
    pod: &PodSandboxConfig,
    image: &str,
    dir: &str,
    handler: &str,
) -> Result<()> {
    let mut cfg = cri::container_config("rshared", image);
    cfg.mounts = vec![Mount {
        container_path: "/mnt/vol".into(),
        host_path: dir.into(),
        propagation: MountPropagation::PropagationBidirectional as i32,
        ..Default::default()
    }];
    if let Some(sc) = cfg.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        sc.privileged = true;
    }
    let id = cri::start_configured(rt, sandbox, pod, cfg).await?;
    // Host to container.
    let host_sub = format!("{dir}/from-host");
    std::fs::create_dir_all(&host_sub)?;
    sh(&["mount", "-t", "tmpfs", "tmpfs", &host_sub])?;
    std::fs::write(format!("{host_sub}/file"), "host-side\n")?;
    let seen = exec(rt, &id, "cat /mnt/vol/from-host/file").await?;
    ensure!(
        seen == "host-side",
        "a tmpfs mounted on the host below the volume: the container reads {seen:?}"
    );
    println!("PASS cri/{handler}/rshared-host-to-container");
    // Container to host.
    exec(
        rt,
        &id,
        "mkdir -p /mnt/vol/from-ctr && mount -t tmpfs tmpfs /mnt/vol/from-ctr && echo ctr-side > /mnt/vol/from-ctr/file",
    )
    .await?;
    let file = format!("{dir}/from-ctr/file");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match std::fs::read_to_string(&file) {
            Ok(s) if s.trim() == "ctr-side" => break,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            r => bail!(
                "a tmpfs mounted in the container below the volume: the host reads {file}: {r:?}"
            ),
        }
    }
    println!("PASS cri/{handler}/rshared-container-to-host");
    Ok(())
}

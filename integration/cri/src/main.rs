//! CRI test, as the kubelet would drive containerd: a pod sandbox with
//! runtime handler `skiff` (or the one given), two containers, ExecSync,
//! ContainerStats, then stop and remove everything. Asserts that one shim
//! served the whole pod and that nothing is left: no shim process, no
//! mount, no cgroup.
//!
//! Usage: skiff-cri-test HANDLER IMAGE CGROUP_PARENT
//! (CGROUP_PARENT `x.slice` makes containerd use systemd-style cgroup paths).
//! Prints `PASS`/`FAIL` lines; exits 1 on failure.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};
use tower::service_fn;

const SOCKET: &str = "/run/containerd/containerd.sock";
const SHIM: &str = "containerd-shim-skiff-v2";

async fn connect() -> Result<RuntimeServiceClient<Channel>> {
    let channel = Endpoint::try_from("http://[::]")?
        .connect_with_connector(service_fn(|_: Uri| async {
            Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(SOCKET).await?))
        }))
        .await
        .context("connect to containerd's CRI socket")?;
    Ok(RuntimeServiceClient::new(channel))
}

/// Pids of running shims (by argv[0]).
fn shims() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .ok()
                .and_then(|c| c.split(|b| *b == 0).next().map(|a| a.to_vec()))
                .is_some_and(|a| String::from_utf8_lossy(&a).ends_with(SHIM))
        })
        .collect()
}

/// Cgroup directories whose name contains `needle`.
fn cgroups_with(needle: &str) -> Vec<String> {
    fn walk(dir: &std::path::Path, needle: &str, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let p = e.path();
                if e.file_name().to_string_lossy().contains(needle) {
                    out.push(p.display().to_string());
                }
                walk(&p, needle, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(std::path::Path::new("/sys/fs/cgroup"), needle, &mut out);
    out
}

fn mounts_with(needle: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .map(String::from)
        .collect()
}

// containerd 1.6 reads only the (now deprecated) string field.
#[allow(deprecated)]
fn container_config(name: &str, image: &str) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: vec!["sleep".into(), "600".into()],
        log_path: format!("{name}.log"),
        // skiff does not implement AppArmor yet: ask for no profile rather
        // than containerd's default one.
        linux: Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                apparmor_profile: "unconfined".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn run(handler: &str, image: &str, parent: &str) -> Result<()> {
    let mut rt = connect().await?;
    let uid = format!("skiff-{}", std::process::id());
    let log_dir = format!("/var/log/pods/{uid}");
    std::fs::create_dir_all(&log_dir)?;
    let pod = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: format!("pod-{handler}"),
            uid: uid.clone(),
            namespace: "skiff-it".into(),
            attempt: 0,
        }),
        log_directory: log_dir.clone(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: parent.into(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Node as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let before = shims().len();
    let sandbox = rt
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: handler.into(),
        })
        .await
        .context("RunPodSandbox")?
        .into_inner()
        .pod_sandbox_id;
    println!("  sandbox {sandbox}");
    let mut ids = Vec::new();
    for name in ["one", "two"] {
        let id = rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: sandbox.clone(),
                config: Some(container_config(name, image)),
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
        ids.push(id);
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
    let now = shims().len();
    ensure!(
        now == before + 1,
        "shims serving the pod: {} (want 1)",
        now - before
    );
    println!("PASS cri/{handler}/one-shim-per-pod");
    for id in &ids {
        rt.stop_container(StopContainerRequest {
            container_id: id.clone(),
            timeout: 2,
        })
        .await
        .context("StopContainer")?;
        rt.remove_container(RemoveContainerRequest {
            container_id: id.clone(),
        })
        .await
        .context("RemoveContainer")?;
    }
    rt.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: sandbox.clone(),
    })
    .await
    .context("StopPodSandbox")?;
    rt.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: sandbox.clone(),
    })
    .await
    .context("RemovePodSandbox")?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left_shims = shims().len().saturating_sub(before);
        let mut left: Vec<String> = Vec::new();
        for id in ids.iter().chain([&sandbox]) {
            left.extend(mounts_with(id));
            left.extend(cgroups_with(id));
        }
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

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: skiff-cri-test HANDLER IMAGE CGROUP_PARENT");
        std::process::exit(2);
    }
    if let Err(e) = run(&args[1], &args[2], &args[3]).await {
        println!("FAIL cri/{}: {e:#}", args[1]);
        std::process::exit(1);
    }
}

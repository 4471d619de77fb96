//! The CRI calls a test makes, as the kubelet makes them.

use anyhow::{Context, Result};
use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};
use tower::service_fn;

const SOCKET: &str = "/run/containerd/containerd.sock";

/// A CRI runtime client.
pub type Client = RuntimeServiceClient<Channel>;

/// Connect to containerd's CRI socket.
pub async fn connect() -> Result<Client> {
    let channel = Endpoint::try_from("http://[::]")?
        .connect_with_connector(service_fn(|_: Uri| async {
            Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(SOCKET).await?))
        }))
        .await
        .context("connect to containerd's CRI socket")?;
    Ok(RuntimeServiceClient::new(channel))
}

/// A pod on the node's network (no CNI in the test VM) under `parent`.
pub fn pod_config(name: &str, uid: &str, parent: &str) -> Result<PodSandboxConfig> {
    let log_dir = format!("/var/log/pods/{uid}");
    std::fs::create_dir_all(&log_dir).with_context(|| format!("mkdir {log_dir}"))?;
    Ok(PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: uid.into(),
            namespace: "skiff-it".into(),
            attempt: 0,
        }),
        log_directory: log_dir,
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
    })
}

/// A container running `sleep 600`.
// containerd 1.6 reads only the (now deprecated) string field.
#[allow(deprecated)]
pub fn container_config(name: &str, image: &str) -> ContainerConfig {
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

/// RunPodSandbox; returns the sandbox id.
pub async fn run_pod(rt: &mut Client, pod: &PodSandboxConfig, handler: &str) -> Result<String> {
    Ok(rt
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: handler.into(),
        })
        .await
        .context("RunPodSandbox")?
        .into_inner()
        .pod_sandbox_id)
}

/// CreateContainer and StartContainer; returns the container id.
pub async fn start_container(
    rt: &mut Client,
    sandbox: &str,
    pod: &PodSandboxConfig,
    name: &str,
    image: &str,
) -> Result<String> {
    start_configured(rt, sandbox, pod, container_config(name, image)).await
}

/// CreateContainer with `config`, then StartContainer; returns its id.
pub async fn start_configured(
    rt: &mut Client,
    sandbox: &str,
    pod: &PodSandboxConfig,
    config: ContainerConfig,
) -> Result<String> {
    let name = config
        .metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let id = rt
        .create_container(CreateContainerRequest {
            pod_sandbox_id: sandbox.into(),
            config: Some(config),
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
    Ok(id)
}

/// StopPodSandbox and RemovePodSandbox (which stop and remove its
/// containers too, as the kubelet relies on).
pub async fn remove_pod(rt: &mut Client, sandbox: &str) -> Result<()> {
    rt.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: sandbox.into(),
    })
    .await
    .with_context(|| format!("StopPodSandbox {sandbox}"))?;
    rt.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: sandbox.into(),
    })
    .await
    .with_context(|| format!("RemovePodSandbox {sandbox}"))?;
    Ok(())
}

//! CRI tests, as the kubelet would drive containerd's CRI plugin with a
//! runtime handler (`skiff`, `skiff-systemd`, or `runc` for comparison).
//!
//! ```text
//! skiff-cri-test pod HANDLER IMAGE CGROUP_PARENT
//!     one pod, two containers, ExecSync, ContainerStats, removal; one shim
//!     served the pod and nothing is left (PASS/FAIL lines); with
//!     SKIFF_CRI_STATE_ROOT set, the container's skiff state directory must
//!     be below it (the handler's `Root` option reached the shim)
//! skiff-cri-test load|cycle HANDLER IMAGE CGROUP_PARENT PODS PARALLEL
//!     load: start PODS pods, PARALLEL at a time, measure their shims
//!     (RSS, PSS), remove them all; cycle: start and remove each pod in
//!     turn. Either way nothing may be left. Prints one JSON line.
//! skiff-cri-test logs HANDLER IMAGE CGROUP_PARENT CONTAINERS PARALLEL
//!     one pod, CONTAINERS containers (PARALLEL at a time) each printing
//!     64 KiB and exiting at once: every byte must be in every CRI log
//!     file. Prints one JSON line.
//! skiff-cri-test remove-exited HANDLER IMAGE CGROUP_PARENT ROUNDS
//!     ROUNDS containers that exit at once, each removed right after its
//!     start without a stop: every removal must succeed
//! skiff-cri-test checkpoint HANDLER IMAGE CGROUP_PARENT DIR
//!     the kubelet's forensic checkpoint (CheckpointContainer) of a
//!     counting container into an archive in DIR: it keeps running and
//!     counting, and the archive holds CRIU's dump
//! skiff-cri-test rshared HANDLER IMAGE CGROUP_PARENT
//!     critest's rshared spec: a privileged container's bidirectional
//!     volume from an rshared host directory propagates mounts both ways
//! ```
//! CGROUP_PARENT `x.slice` makes containerd use systemd-style cgroup paths.
//! Exits 1 on failure.

mod checkpoint;
mod cri;
mod host;
mod load;
mod logs;
mod pod;
mod propagation;
mod remove;

use anyhow::{bail, Context, Result};

async fn dispatch(args: &[String]) -> Result<()> {
    let num = |i: usize, what: &str| -> Result<usize> {
        args[i]
            .parse()
            .with_context(|| format!("{what}: not a number: {}", args[i]))
    };
    match (args[1].as_str(), args.len()) {
        ("checkpoint", 6) => checkpoint::run(&args[2], &args[3], &args[4], &args[5]).await,
        ("pod", 5) => pod::run(&args[2], &args[3], &args[4]).await,
        ("remove-exited", 6) => remove::run(&args[2], &args[3], &args[4], num(5, "ROUNDS")?).await,
        ("rshared", 5) => propagation::run(&args[2], &args[3], &args[4]).await,
        (mode @ ("load" | "cycle"), 7) => {
            load::run(load::Opts {
                handler: args[2].clone(),
                image: args[3].clone(),
                parent: args[4].clone(),
                pods: num(5, "PODS")?,
                parallel: num(6, "PARALLEL")?,
                cycle: mode == "cycle",
            })
            .await
        }
        ("logs", 7) => {
            logs::run(logs::Opts {
                handler: args[2].clone(),
                image: args[3].clone(),
                parent: args[4].clone(),
                containers: num(5, "CONTAINERS")?,
                parallel: num(6, "PARALLEL")?,
            })
            .await
        }
        _ => bail!(
            "usage: skiff-cri-test pod|checkpoint|rshared|remove-exited|load|cycle|logs HANDLER IMAGE CGROUP_PARENT [N [PARALLEL] | DIR]"
        ),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 2 {
        eprintln!(
            "usage: skiff-cri-test pod|checkpoint|rshared|remove-exited|load|cycle|logs HANDLER IMAGE CGROUP_PARENT [N [PARALLEL] | DIR]"
        );
        std::process::exit(2);
    }
    if let Err(e) = dispatch(&args).await {
        let what = args.get(1..3).map(|a| a.join("/")).unwrap_or_default();
        println!("FAIL cri/{what}: {e:#}");
        std::process::exit(1);
    }
}

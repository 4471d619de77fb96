//! Many pods through CRI: `load` starts N pods (a sandbox and one `sleep`
//! container each) with P at a time, measures the shims, then removes them
//! all; `cycle` runs each pod through start and removal before the next.
//! Either way nothing may be left: no shim, mount, cgroup or file.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::{cri, host};

/// What to run.
pub struct Opts {
    /// CRI runtime handler.
    pub handler: String,
    /// Image of the containers.
    pub image: String,
    /// Pod cgroup parent.
    pub parent: String,
    /// How many pods.
    pub pods: usize,
    /// How many at a time.
    pub parallel: usize,
    /// Remove each pod right after starting it.
    pub cycle: bool,
}

/// Sandbox and container ids made so far, for the leak check and for
/// clean-up after a failure.
#[derive(Default)]
struct Made {
    sandboxes: Vec<String>,
    ids: Vec<String>,
}

type Shared = Arc<Mutex<Made>>;

fn lock(m: &Shared) -> std::sync::MutexGuard<'_, Made> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn start_pod(rt: &mut cri::Client, o: &Opts, i: usize, made: &Shared) -> Result<String> {
    let uid = format!("skiff-load-{}-{i}", std::process::id());
    let pod = cri::pod_config(&format!("load-{i}"), &uid, &o.parent)?;
    let sandbox = cri::run_pod(rt, &pod, &o.handler).await?;
    {
        let mut m = lock(made);
        m.sandboxes.push(sandbox.clone());
        m.ids.push(sandbox.clone());
    }
    let id = cri::start_container(rt, &sandbox, &pod, "c", &o.image).await?;
    lock(made).ids.push(id);
    Ok(sandbox)
}

/// Run `job(i)` for i in 0..n with `parallel` workers.
pub(crate) async fn each<F, Fut>(n: usize, parallel: usize, job: F) -> Result<()>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..parallel.max(1) {
        let (next, job) = (next.clone(), job.clone());
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    return Ok(());
                }
                job(i).await?;
            }
        });
    }
    let mut first_err = None;
    while let Some(r) = workers.join_next().await {
        if let Err(e) = r.context("worker").and_then(|r| r) {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

async fn remove_all(rt: &cri::Client, sandboxes: Vec<String>, parallel: usize) -> Result<()> {
    let sandboxes = Arc::new(sandboxes);
    let (rt, list) = (rt.clone(), sandboxes.clone());
    each(sandboxes.len(), parallel, move |i| {
        let (mut rt, sb) = (rt.clone(), list[i].clone());
        async move { cri::remove_pod(&mut rt, &sb).await }
    })
    .await
}

/// Start, measure and remove the pods; prints one JSON line with the
/// figures. Fails if a call fails, if a pod did not get its own shim, or if
/// anything is left afterwards.
pub async fn run(o: Opts) -> Result<()> {
    let o = Arc::new(o);
    let rt = cri::connect().await?;
    let shim = host::shim_for(&o.handler);
    let before: HashSet<u32> = host::shims(shim).into_iter().collect();
    let made: Shared = Arc::default();
    let t0 = Instant::now();
    let started = {
        let (rt, o, made) = (rt.clone(), o.clone(), made.clone());
        each(o.pods, o.parallel, move |i| {
            let (mut rt, o, made) = (rt.clone(), o.clone(), made.clone());
            async move {
                let sb = start_pod(&mut rt, &o, i, &made)
                    .await
                    .with_context(|| format!("pod {i}"))?;
                if o.cycle {
                    cri::remove_pod(&mut rt, &sb).await?;
                }
                Ok(())
            }
        })
        .await
    };
    let start_ms = t0.elapsed().as_secs_f64() * 1e3;
    let new: Vec<u32> = host::shims(shim)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    let [rss, pss, pss_anon] = new
        .iter()
        .map(|p| host::memory_kib(*p))
        .fold([0; 3], |a, m| [a[0] + m[0], a[1] + m[1], a[2] + m[2]]);
    let sandboxes = lock(&made).sandboxes.clone();
    let t1 = Instant::now();
    let removed = if o.cycle && started.is_ok() {
        Ok(())
    } else {
        remove_all(&rt, sandboxes, o.parallel).await
    };
    let remove_ms = t1.elapsed().as_secs_f64() * 1e3;
    started?;
    removed?;
    if !o.cycle {
        ensure!(
            new.len() == o.pods,
            "{} new {shim} processes for {} pods (want one per pod): {:?}",
            new.len(),
            o.pods,
            new.iter()
                .map(|p| host::cmdline(*p).join(" "))
                .collect::<Vec<_>>()
        );
    }
    let ids = lock(&made).ids.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shims_left = host::shims(shim)
            .into_iter()
            .filter(|p| !before.contains(p))
            .count();
        let left = host::leftovers(&ids);
        if shims_left == 0 && left.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "left after removing {} pods: {shims_left} shim(s), {left:?}",
                o.pods
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "{{\"handler\": \"{}\", \"shim\": \"{shim}\", \"pods\": {}, \"parallel\": {}, \
         \"cycle\": {}, \"start_ms\": {start_ms:.0}, \"remove_ms\": {remove_ms:.0}, \
         \"shims\": {}, \"rss_kib\": {rss}, \"pss_kib\": {pss}, \"pss_anon_kib\": {pss_anon}}}",
        o.handler,
        o.pods,
        o.parallel,
        o.cycle,
        new.len()
    );
    Ok(())
}

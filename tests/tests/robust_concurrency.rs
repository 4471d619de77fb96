//! Concurrent commands on one container id: 20 `create`s of the same id
//! (exactly one wins, the others say "already exists"), and `kill` racing
//! `delete` (the container is never left half-deleted).

use skiff_conformance::*;
use std::path::Path;
use std::process::Output;
use std::sync::Barrier;
use std::time::Duration;

/// `skiff --root <root> args...` from any thread.
fn sk(root: &Path, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(skiff_bin());
    cmd.arg("--root").arg(root).args(args);
    output_with_timeout(&mut cmd, Duration::from_secs(60))
}

/// Runs every command of `cmds` at once (released by a barrier) and
/// returns their outputs in order.
fn all_at_once(root: &Path, cmds: &[Vec<String>]) -> Vec<Output> {
    let barrier = Barrier::new(cmds.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = cmds
            .iter()
            .map(|c| {
                let barrier = &barrier;
                s.spawn(move || {
                    let args: Vec<&str> = c.iter().map(String::as_str).collect();
                    barrier.wait();
                    sk(root, &args)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    })
}

#[test]
fn twenty_creates_of_one_id() {
    if !preflight("twenty_creates_of_one_id") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::with_args(&["sleep", "1000"]);
    bundle.save();
    let id = unique_id("sameid");
    rt.track(&id);
    let b = bundle.path().to_string_lossy().into_owned();
    let cmds: Vec<Vec<String>> = (0..20)
        .map(|_| vec!["create".into(), "--bundle".into(), b.clone(), id.clone()])
        .collect();
    let outs = all_at_once(rt.root(), &cmds);
    let winners = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(
        winners,
        1,
        "{winners} creates succeeded:\n{}",
        outs.iter().map(describe).collect::<Vec<_>>().join("\n")
    );
    for out in outs.iter().filter(|o| !o.status.success()) {
        assert_error_line(out, "already exists");
    }
    // Nothing corrupted: the winner's container works normally.
    assert_eq!(rt.status(&id), "created");
    let pid = rt.pid(&id);
    assert!(pid_alive(pid));
    assert_success(&rt.start(&id), "start");
    rt.expect_status(&id, "running");
    assert_success(&rt.kill(&id, "KILL"), "kill");
    rt.expect_status(&id, "stopped");
    assert_success(&rt.delete(&id), "delete");
    assert_no_leftovers(&rt, &id, &bundle);
}

#[test]
fn kill_racing_delete_never_half_deletes() {
    if !preflight("kill_racing_delete_never_half_deletes") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::with_args(&["sleep", "1000"]);
    for round in 0..10 {
        let id = unique_id("race");
        rt.start_container(&bundle, &id);
        let mut cmds: Vec<Vec<String>> = Vec::new();
        for _ in 0..3 {
            cmds.push(vec!["kill".into(), id.clone(), "KILL".into()]);
            cmds.push(vec!["delete".into(), "--force".into(), id.clone()]);
        }
        // Half the rounds also race a plain delete, which may fail while
        // the container still runs, but must never break the state.
        if round % 2 == 1 {
            cmds.push(vec!["delete".into(), id.clone()]);
        }
        let outs = all_at_once(rt.root(), &cmds);
        for (cmd, out) in cmds.iter().zip(&outs) {
            if cmd[0] == "delete" && cmd[1] == "--force" {
                assert_success(out, &format!("round {round}: {cmd:?}"));
            } else if !out.status.success() {
                let line = assert_error_line(out, &id);
                assert!(
                    line.contains("does not exist")
                        || line.contains("not running")
                        || line.contains("not stopped")
                        || line.contains("is stopped"),
                    "round {round}: {cmd:?}: unexpected error: {line}"
                );
            }
        }
        assert!(
            rt.try_state(&id).is_none(),
            "round {round}: {id} still has a state"
        );
        assert_no_leftovers(&rt, &id, &bundle);
        let list = rt.skiff(&["list", "-q"]);
        assert_success(&list, "list");
        assert!(
            !stdout(&list).contains(&id),
            "round {round}: list shows {id}"
        );
    }
}

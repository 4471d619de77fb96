//! runc parity for seccomp: the filter goes in at runc's point (the calls
//! skiff makes after it are the ones runc makes), syscalls newer than the
//! profile get ENOSYS, and SCMP_ACT_NOTIFY on a syscall the runtime needs
//! is refused at create.

use libseccomp::{ScmpArch, ScmpSyscall};
use serde_json::{json, Value};
use skiff_conformance::*;
use std::path::Path;
use std::process::Command;

/// Every syscall name libseccomp knows on this machine with a number in
/// `range`, except `except`.
fn names_in(range: std::ops::RangeInclusive<i32>, except: &[&str]) -> Vec<String> {
    range
        .filter_map(|nr| {
            ScmpSyscall::from(nr)
                .get_name_by_arch(ScmpArch::native())
                .ok()
        })
        .filter(|n| !except.contains(&n.as_str()))
        .collect()
}

/// An allow-list profile: the given names allowed, everything else EPERM.
fn allow_list(names: &[String]) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
                          "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]
    })
}

/// Compile tests/data/sysno.c statically into the bundle's rootfs as /sysno.
fn install_sysno(b: &Bundle) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sysno.c");
    let out = output_with_timeout(
        Command::new("cc")
            .args(["-static", "-O1", "-o"])
            .arg(b.rootfs().join("sysno"))
            .arg(&src),
        DEFAULT_TIMEOUT,
    );
    assert_success(&out, "cc -static sysno.c");
}

fn no_new_privs(b: &mut Bundle, on: bool) {
    b.config_mut()["process"]["noNewPrivileges"] = json!(on);
}

#[test]
fn profile_without_close_range_runs_with_and_without_no_new_privs() {
    require_root!();
    let rt = Runtime::new();
    // Docker's older default and the OCI validation suite's profile: all of
    // runc's needs, but not close_range (436 on x86_64) nor getcwd.
    let names = names_in(0..=450, &["close_range", "getcwd"]);
    for nnp in [false, true] {
        let mut b = Bundle::sh("echo seccomp-ok");
        b.config_mut()["linux"]["seccomp"] = allow_list(&names);
        no_new_privs(&mut b, nnp);
        b.config_mut()["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        let out = rt.run_bundle(&b);
        assert_success(&out, &format!("run (noNewPrivileges {nnp})"));
        assert!(
            stdout(&out).contains("seccomp-ok"),
            "noNewPrivileges {nnp}: {}",
            describe(&out)
        );
    }
}

/// A profile older than openat2 and clone3 (all it knows is below 435, as
/// Docker's before Linux 5.3): the filter goes in during `create`, before
/// the exec fifo is reopened, so that reopen must be a plain openat (as
/// runc's open). The OCI validation suite's linux_ns_itype caught it: no
/// mount namespace, where the fifo is reopened through the host's /proc.
#[test]
fn pre_openat2_profile_runs_with_and_without_a_mount_namespace() {
    require_root!();
    let names = names_in(0..=434, &[]);
    for own_mounts in [true, false] {
        for nnp in [false, true] {
            let rt = Runtime::new();
            let mut b = Bundle::sh("echo seccomp-ok");
            b.config_mut()["linux"]["seccomp"] = allow_list(&names);
            no_new_privs(&mut b, nnp);
            if !own_mounts {
                b.remove_namespace("mount");
                b.config_mut()["linux"]["maskedPaths"] = json!([]);
                b.config_mut()["linux"]["readonlyPaths"] = json!([]);
            }
            b.save();
            let id = unique_id("oldprofile");
            rt.track(&id);
            // Without a mount namespace skiff only chroots; still, only in
            // a private mount namespace of the test's own.
            let out = output_with_timeout(
                std::process::Command::new("unshare")
                    .args(["--mount", "--propagation", "private"])
                    .arg(skiff_bin())
                    .arg("--root")
                    .arg(rt.root())
                    .args(["run", "--bundle"])
                    .arg(b.path())
                    .arg(&id),
                DEFAULT_TIMEOUT,
            );
            let what = format!("mount namespace {own_mounts}, noNewPrivileges {nnp}");
            assert_success(&out, &what);
            assert!(
                stdout(&out).contains("seccomp-ok"),
                "{what}: {}",
                describe(&out)
            );
        }
    }
}

#[test]
fn syscalls_newer_than_the_profile_get_enosys() {
    require_root!();
    let rt = Runtime::new();
    // Everything up to 300 but getppid (110): getppid gets the default
    // (EPERM); getrandom (318), newer than any named syscall, gets ENOSYS.
    let names = names_in(0..=300, &["getppid"]);
    let mut b = Bundle::with_args(&["/sysno", "110", "318", "39"]);
    install_sysno(&b);
    b.config_mut()["linux"]["seccomp"] = allow_list(&names);
    no_new_privs(&mut b, false);
    let out = rt.run_bundle(&b);
    assert_success(&out, "run /sysno");
    let o = stdout(&out);
    assert!(o.contains("110 -1 1\n"), "getppid: EPERM expected: {o}");
    assert!(o.contains("318 -1 38\n"), "getrandom: ENOSYS expected: {o}");
    assert!(
        o.lines()
            .any(|l| l.starts_with("39 ") && !l.contains(" -1 ")),
        "getpid allowed: {o}"
    );

    // An explicit errnoRet default of ENOSYS or an allow default: no stub,
    // the profile alone decides.
    let mut p = allow_list(&names);
    p["defaultAction"] = json!("SCMP_ACT_ALLOW");
    p["syscalls"] = json!([{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]);
    let mut b = Bundle::with_args(&["/sysno", "110", "318"]);
    install_sysno(&b);
    b.config_mut()["linux"]["seccomp"] = p;
    let out = rt.run_bundle(&b);
    assert_success(&out, "run /sysno (allow default)");
    let o = stdout(&out);
    assert!(o.contains("110 -1 1\n"), "getppid: EPERM expected: {o}");
    assert!(
        o.lines()
            .any(|l| l.starts_with("318 ") && !l.contains(" -1 ")),
        "getrandom allowed with an allow default: {o}"
    );
}

/// `create` of a container whose profile notifies `syscall` to an agent
/// that does not exist fails cleanly, naming `needle`.
fn notify_create_fails(syscall: &str, tag: &str, needle: &str) {
    let rt = Runtime::new();
    let mut b = Bundle::sh("true");
    b.config_mut()["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/skiff-no-such-agent.sock",
        "syscalls": [{"names": [syscall], "action": "SCMP_ACT_NOTIFY"}]
    });
    let id = unique_id(tag);
    let out = rt.create(&b, &id, &[]);
    assert_clean_failure(&out, needle, &rt, &id, &b);
}

#[test]
fn notify_on_write_is_refused_at_create() {
    require_root!();
    notify_create_fails("write", "notify-write", "linux.seccomp.syscalls[0]");
}

#[test]
fn missing_seccomp_agent_is_named_in_the_error() {
    require_root!();
    notify_create_fails(
        "mkdir",
        "no-agent",
        "could not connect to the seccomp agent",
    );
}

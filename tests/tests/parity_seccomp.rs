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

/// Put a static build of tests/data/sysno.c into the bundle's rootfs as
/// /sysno: `$SKIFF_TEST_SYSNO` (built ahead, where the tests run with no
/// compiler: the arm64 VM), or compiled here with cc.
fn install_sysno(b: &Bundle) {
    let dest = b.rootfs().join("sysno");
    if let Some(built) = std::env::var_os("SKIFF_TEST_SYSNO") {
        std::fs::copy(&built, &dest)
            .unwrap_or_else(|e| panic!("copy $SKIFF_TEST_SYSNO {built:?}: {e}"));
        return;
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sysno.c");
    let out = output_with_timeout(
        Command::new("cc")
            .args(["-static", "-O1", "-o"])
            .arg(&dest)
            .arg(&src),
        DEFAULT_TIMEOUT,
    );
    assert_success(&out, "cc -static sysno.c");
}

/// This machine's number of the syscall `name`.
fn nr(name: &str) -> i32 {
    ScmpSyscall::from_name(name)
        .unwrap_or_else(|e| panic!("no syscall {name}: {e}"))
        .into()
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
    // Everything below getrandom but getppid: getppid gets the default
    // (EPERM); getrandom, newer than any named syscall, gets ENOSYS.
    // (x86_64: getppid 110, getrandom 318, getpid 39; aarch64: 173, 278,
    // 172.)
    let (getppid, getrandom, getpid) = (nr("getppid"), nr("getrandom"), nr("getpid"));
    let names = names_in(0..=getrandom - 1, &["getppid"]);
    let args = [getppid, getrandom, getpid].map(|n| n.to_string());
    let mut b = Bundle::with_args(&["/sysno", &args[0], &args[1], &args[2]]);
    install_sysno(&b);
    b.config_mut()["linux"]["seccomp"] = allow_list(&names);
    no_new_privs(&mut b, false);
    let out = rt.run_bundle(&b);
    assert_success(&out, "run /sysno");
    let o = stdout(&out);
    assert!(
        o.contains(&format!("{getppid} -1 1\n")),
        "getppid: EPERM expected: {o}"
    );
    assert!(
        o.contains(&format!("{getrandom} -1 38\n")),
        "getrandom: ENOSYS expected: {o}"
    );
    assert!(
        o.lines()
            .any(|l| l.starts_with(&format!("{getpid} ")) && !l.contains(" -1 ")),
        "getpid allowed: {o}"
    );

    // An explicit errnoRet default of ENOSYS or an allow default: no stub,
    // the profile alone decides.
    let mut p = allow_list(&names);
    p["defaultAction"] = json!("SCMP_ACT_ALLOW");
    p["syscalls"] = json!([{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]);
    let mut b = Bundle::with_args(&["/sysno", &args[0], &args[1]]);
    install_sysno(&b);
    b.config_mut()["linux"]["seccomp"] = p;
    let out = rt.run_bundle(&b);
    assert_success(&out, "run /sysno (allow default)");
    let o = stdout(&out);
    assert!(
        o.contains(&format!("{getppid} -1 1\n")),
        "getppid: EPERM expected: {o}"
    );
    assert!(
        o.lines()
            .any(|l| l.starts_with(&format!("{getrandom} ")) && !l.contains(" -1 ")),
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

//! `linux.seccomp`: actions, errnos, argument comparisons, architectures,
//! flags, name errors, and SCMP_ACT_NOTIFY with a small agent, each checked
//! from inside a real container.

use serde_json::{json, Value};
use skiff_conformance::*;
use std::time::Duration;

/// Exit code of a container process killed by SIGSYS (128 + 31).
const SIGSYS_EXIT: i32 = 128 + libc::SIGSYS;

fn with_seccomp(mut b: Bundle, seccomp: Value) -> Bundle {
    b.config_mut()["linux"]["seccomp"] = seccomp;
    b
}

fn deny(names: &[&str], action: &str) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": names, "action": action}]
    })
}

const MKDIR: [&str; 2] = ["mkdir", "mkdirat"];
const TRY_MKDIR: &str = "mkdir /tmp/d; echo rc=$?; [ -d /tmp/d ] && echo exists; echo done";

#[test]
fn errno_denies_mkdir_with_eperm_and_errno_ret() {
    require_root!();
    let rt = Runtime::new();
    let b = with_seccomp(Bundle::sh(TRY_MKDIR), deny(&MKDIR, "SCMP_ACT_ERRNO"));
    let out = rt.run_bundle(&b);
    assert_success(&out, "run");
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(
        o.contains("rc=1") && !o.contains("exists") && o.contains("done"),
        "{o}"
    );
    assert!(e.contains("Operation not permitted"), "EPERM expected: {e}");

    let mut p = deny(&MKDIR, "SCMP_ACT_ERRNO");
    p["syscalls"][0]["errnoRet"] = json!(libc::ENOSPC);
    let out = rt.run_bundle(&with_seccomp(Bundle::sh(TRY_MKDIR), p));
    assert_success(&out, "run");
    assert!(!stdout(&out).contains("exists"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("No space left on device"),
        "{}",
        describe(&out)
    );
}

#[test]
fn filter_applies_without_no_new_privileges_as_a_user() {
    require_root!();
    let rt = Runtime::new();
    let mut b = with_seccomp(
        Bundle::sh(
            "id -u; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; mkdir /tmp/d; echo rc=$?",
        ),
        deny(&MKDIR, "SCMP_ACT_ERRNO"),
    );
    b.config_mut()["process"]["noNewPrivileges"] = json!(false);
    b.config_mut()["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let out = rt.run_bundle(&b);
    assert_success(&out, "run");
    let o = stdout(&out);
    assert!(o.starts_with("1000\n"), "{o}");
    assert!(o.contains("NoNewPrivs:\t0"), "{o}");
    assert!(o.contains("Seccomp:\t2"), "{o}");
    assert!(o.contains("rc=1"), "{o}");
}

#[test]
fn kill_process_kills_with_sigsys() {
    require_root!();
    let rt = Runtime::new();
    let b = with_seccomp(
        Bundle::with_args(&["mkdir", "/tmp/d"]),
        deny(&MKDIR, "SCMP_ACT_KILL_PROCESS"),
    );
    let out = rt.run_bundle(&b);
    assert_eq!(exit_code(&out), SIGSYS_EXIT, "{}", describe(&out));
    assert!(!b.rootfs().join("tmp/d").exists());
    // KILL_THREAD on the only thread kills the process too.
    let b = with_seccomp(
        Bundle::with_args(&["mkdir", "/tmp/d"]),
        deny(&MKDIR, "SCMP_ACT_KILL"),
    );
    let out = rt.run_bundle(&b);
    assert_eq!(exit_code(&out), SIGSYS_EXIT, "{}", describe(&out));
}

#[test]
fn trap_delivers_sigsys() {
    require_root!();
    let rt = Runtime::new();
    let b = with_seccomp(
        Bundle::with_args(&["mkdir", "/tmp/d"]),
        deny(&MKDIR, "SCMP_ACT_TRAP"),
    );
    let out = rt.run_bundle(&b);
    assert_eq!(exit_code(&out), SIGSYS_EXIT, "{}", describe(&out));
    assert!(!b.rootfs().join("tmp/d").exists());
}

#[test]
fn log_allows_and_flags_are_accepted() {
    require_root!();
    let rt = Runtime::new();
    let mut p = deny(&MKDIR, "SCMP_ACT_LOG");
    p["flags"] = json!([
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_TSYNC"
    ]);
    p["syscalls"]
        .as_array_mut()
        .unwrap()
        // aarch64 has no rmdir(2): rmdir is unlinkat(AT_REMOVEDIR) there.
        .push(json!({"names": ["rmdir", "unlinkat"], "action": "SCMP_ACT_ERRNO"}));
    let out = rt.run_bundle(&with_seccomp(
        Bundle::sh("mkdir /tmp/d && echo made; rmdir /tmp/d; echo rmdir=$?; grep ^Seccomp: /proc/self/status"),
        p,
    ));
    assert_success(&out, "run");
    let o = stdout(&out);
    assert!(
        o.contains("made") && o.contains("rmdir=1") && o.contains("Seccomp:\t2"),
        "{o}"
    );
}

#[test]
fn default_action_with_an_allow_list() {
    require_root!();
    let rt = Runtime::new();
    let allow = [
        "access",
        "arch_prctl",
        "brk",
        "clone",
        "clone3",
        "close",
        "dup2",
        "execve",
        "exit",
        "exit_group",
        "fcntl",
        "fstat",
        "getcwd",
        "geteuid",
        "getpid",
        "getppid",
        "getrandom",
        "getuid",
        "ioctl",
        "lstat",
        "mmap",
        "mprotect",
        "munmap",
        "newfstatat",
        "open",
        "openat",
        "prctl",
        "prlimit64",
        "read",
        "readlink",
        "rseq",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "sendfile",
        "set_robust_list",
        "set_tid_address",
        "stat",
        "statx",
        "uname",
        "vfork",
        "wait4",
        "write",
    ];
    let p = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EOPNOTSUPP,
        "syscalls": [{"names": allow.as_slice(), "action": "SCMP_ACT_ALLOW"}]
    });
    let out = rt.run_bundle(&with_seccomp(
        Bundle::sh("echo hello; mkdir /tmp/d; echo rc=$?; rmdir /tmp; echo rc2=$?"),
        p,
    ));
    assert_success(&out, "run");
    let o = stdout(&out);
    assert!(
        o.contains("hello") && o.contains("rc=1") && o.contains("rc2=1"),
        "{o}"
    );
    assert!(
        stderr(&out).contains("Operation not supported"),
        "defaultErrnoRet: {}",
        describe(&out)
    );
}

#[test]
fn argument_comparisons() {
    require_root!();
    let rt = Runtime::new();
    let p = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            // kill(pid, 0) only.
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]},
            // open/openat with O_CREAT set: (flags & O_CREAT) == O_CREAT.
            {"names": ["openat"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EROFS,
             "args": [{"index": 2, "value": libc::O_CREAT, "valueTwo": libc::O_CREAT, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["open"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EROFS,
             "args": [{"index": 1, "value": libc::O_CREAT, "valueTwo": libc::O_CREAT, "op": "SCMP_CMP_MASKED_EQ"}]},
            // kill(pid, sig > 40): the shell would die of signal 50 if this did not match.
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ESRCH,
             "args": [{"index": 1, "value": 40, "op": "SCMP_CMP_GT"}]}
        ]
    });
    let script = "kill -0 $$; echo k0=$?; kill -CONT $$; echo kcont=$?; kill -50 $$; echo k50=$?; \
                  cat /etc/passwd | wc -l; echo read=$?; echo x > /tmp/f; echo create=$?";
    let b = with_seccomp(Bundle::sh(script), p);
    let out = rt.run_bundle(&b);
    assert_success(&out, "run");
    let o = stdout(&out);
    for want in ["k0=1", "kcont=0", "k50=1", "read=0", "create=1"] {
        assert!(o.contains(want), "{want} missing: {}", describe(&out));
    }
    let e = stderr(&out);
    assert!(
        e.contains("Read-only file system") && e.contains("No such process"),
        "{e}"
    );
    assert!(!b.rootfs().join("tmp/f").exists());
}

#[test]
fn unknown_syscall_names_are_skipped() {
    require_root!();
    let rt = Runtime::new();
    let p = deny(
        &["skiff_no_such_syscall", "mkdir", "mkdirat"],
        "SCMP_ACT_ERRNO",
    );
    let out = rt.run_bundle(&with_seccomp(Bundle::sh(TRY_MKDIR), p));
    assert_success(&out, "run with an unknown syscall name");
    assert!(stdout(&out).contains("rc=1"), "{}", describe(&out));
    assert!(
        stderr(&out).contains("skiff_no_such_syscall"),
        "no warning about the skipped name: {}",
        describe(&out)
    );
}

#[test]
fn architectures_and_aliases() {
    require_root!();
    let rt = Runtime::new();
    let mut p = deny(&MKDIR, "SCMP_ACT_ERRNO");
    p["architectures"] = json!([
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X32",
        "SCMP_ARCH_ARM64"
    ]);
    let out = rt.run_bundle(&with_seccomp(Bundle::sh(TRY_MKDIR), p.clone()));
    assert_success(&out, "run with architectures");
    assert!(stdout(&out).contains("rc=1"), "{}", describe(&out));

    p["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"]);
    let b = with_seccomp(Bundle::sh("true"), p);
    let id = unique_id("scarch");
    let out = rt.create(&b, &id, &[]);
    assert_clean_failure(&out, "linux.seccomp.architectures[1]", &rt, &id, &b);
}

#[test]
fn bad_names_fail_with_the_field() {
    require_root!();
    let rt = Runtime::new();
    let cases = [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}]}),
            "linux.seccomp.syscalls[1].action",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_ROUGHLY"}]}]}),
            "linux.seccomp.syscalls[0].args[0].op",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_NOPE"}),
            "linux.seccomp.defaultAction",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FAST"]}),
            "linux.seccomp.flags[0]",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp.listenerPath",
        ),
    ];
    for (i, (p, field)) in cases.into_iter().enumerate() {
        let b = with_seccomp(Bundle::sh("true"), p);
        let id = unique_id(&format!("scbad{i}"));
        let out = rt.create(&b, &id, &[]);
        assert_clean_failure(&out, field, &rt, &id, &b);
    }
}

fn notify_profile(agent: &SeccompAgent) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": agent.path(),
        "listenerMetadata": "skiff-test-meta",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": MKDIR, "action": "SCMP_ACT_NOTIFY"}]
    })
}

/// As runc: the agent has its notify fd once `create` returns, before any
/// `start` (youki's seccomp_notify test waits for it there), with or
/// without no_new_privs.
#[test]
fn notify_agent_answers_for_create_and_start() {
    require_root!();
    let rt = Runtime::new();
    for nnp in [true, false] {
        let agent = SeccompAgent::start(Answer::Errno(libc::EXDEV));
        let mut b = with_seccomp(Bundle::sh(TRY_MKDIR), notify_profile(&agent));
        b.config_mut()["process"]["noNewPrivileges"] = json!(nnp);
        let id = unique_id("scnotify");
        let pid = rt.create_ok(&b, &id);
        assert!(
            poll_until(Duration::from_secs(10), || agent.states().len() == 1),
            "noNewPrivileges {nnp}: the agent got no notify fd during create: {:?}",
            agent.states()
        );
        let out = rt.start(&id);
        assert_success(&out, "start");
        assert!(rt.wait_for_status(&id, "stopped", Duration::from_secs(10)));
        let states = agent.states();
        assert_eq!(states.len(), 1, "{states:?}");
        let s = &states[0];
        assert_eq!(s["fds"], json!(["seccompFd"]), "{s}");
        assert_eq!(s["metadata"], "skiff-test-meta", "{s}");
        assert_eq!(s["pid"], pid, "{s}");
        assert_eq!(s["state"]["id"], id.as_str(), "{s}");
        assert_eq!(s["state"]["pid"], pid, "{s}");
        assert_eq!(s["state"]["status"], "created", "{s}");
        assert!(s["ociVersion"].is_string(), "{s}");
        // mkdir(2) exists on x86_64, not on aarch64 (mkdirat only).
        #[cfg(target_arch = "x86_64")]
        let mkdirs = [libc::SYS_mkdir as i32, libc::SYS_mkdirat as i32];
        #[cfg(not(target_arch = "x86_64"))]
        let mkdirs = [libc::SYS_mkdirat as i32];
        let seen = agent.syscalls();
        assert!(
            seen.iter().any(|n| mkdirs.contains(n)),
            "noNewPrivileges {nnp}: no mkdir notified: {seen:?}"
        );
        assert!(
            !b.rootfs().join("tmp/d").exists(),
            "noNewPrivileges {nnp}: the agent's errno was not used"
        );
        assert_success(&rt.delete_force(&id), "delete --force");
    }
}

#[test]
fn notify_agent_answers_for_exec() {
    require_root!();
    let rt = Runtime::new();
    let agent = SeccompAgent::start(Answer::Continue);
    let b = with_seccomp(
        Bundle::with_args(&["sleep", "1000"]),
        notify_profile(&agent),
    );
    let id = unique_id("scnotifyx");
    let pid = rt.start_container(&b, &id);
    // The agent reads each connection on its own thread: wait for init's
    // state first, so the two states cannot be pushed in either order.
    assert!(
        poll_until(Duration::from_secs(10), || agent.states().len() == 1),
        "the agent got no state for init: {:?}",
        agent.states()
    );
    let out = rt.exec(
        &id,
        &["sh", "-c", "mkdir /tmp/e && [ -d /tmp/e ] && echo made"],
    );
    assert_success(&out, "exec");
    assert!(stdout(&out).contains("made"), "{}", describe(&out));
    let states = agent.states();
    assert_eq!(
        states.len(),
        2,
        "one state for init, one for exec: {states:?}"
    );
    let s = &states[1];
    assert_eq!(s["state"]["status"], "running", "{s}");
    assert_eq!(s["state"]["pid"], pid, "{s}");
    assert_eq!(s["state"]["id"], id.as_str(), "{s}");
    assert_ne!(s["pid"], pid, "exec's pid is its own: {s}");
    assert!(s["pid"].as_i64().unwrap_or(0) > 0, "{s}");
    assert!(
        !agent.syscalls().is_empty(),
        "the exec'd mkdir was not notified"
    );
    assert!(b.rootfs().join("tmp/e").is_dir());
    assert_success(&rt.delete_force(&id), "delete --force");
}

#[test]
fn trace_without_a_tracer_fails_with_enosys() {
    require_root!();
    let rt = Runtime::new();
    let out = rt.run_bundle(&with_seccomp(
        Bundle::sh(TRY_MKDIR),
        deny(&MKDIR, "SCMP_ACT_TRACE"),
    ));
    assert_success(&out, "run");
    assert!(stdout(&out).contains("rc=1"), "{}", describe(&out));
    // With no ptrace tracer attached the kernel fails the syscall with ENOSYS.
    assert!(
        stderr(&out).contains("Function not implemented"),
        "{}",
        describe(&out)
    );
}

#[test]
fn notify_without_no_new_privileges_hands_the_fd_over_first() {
    require_root!();
    let rt = Runtime::new();
    let agent = SeccompAgent::start(Answer::Errno(libc::EXDEV));
    let mut b = with_seccomp(Bundle::sh(TRY_MKDIR), notify_profile(&agent));
    b.config_mut()["process"]["noNewPrivileges"] = json!(false);
    b.config_mut()["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let out = rt.run_bundle(&b);
    assert_success(&out, "run");
    assert!(stdout(&out).contains("rc=1"), "{}", describe(&out));
    assert!(
        stderr(&out).contains("Invalid cross-device link"),
        "{}",
        describe(&out)
    );
    assert_eq!(agent.states().len(), 1);
}

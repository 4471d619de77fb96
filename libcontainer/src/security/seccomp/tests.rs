use super::*;
use serde_json::json;

fn profile(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).unwrap()
}

#[test]
fn compiles_actions_args_and_defaults() {
    let f = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64", "SCMP_ARCH_X86_64"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [
            {"names": ["read", "write", "no_such_syscall"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                      {"index": 1, "value": 255, "valueTwo": 4, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_NE"},
                      {"index": 1, "value": 15, "op": "SCMP_CMP_LT"}]},
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
        ]
    })))
    .unwrap();
    assert_eq!(f.default, Action::Errno(38));
    assert_eq!(f.archs, vec![ScmpArch::X8664, ScmpArch::Aarch64]);
    assert!(f.flags.log && !f.flags.spec_allow);
    assert_eq!(f.skipped, vec!["no_such_syscall".to_string()]);
    let names: Vec<&str> = f.rules.iter().map(|r| r.name.as_str()).collect();
    // getpid has the default action: no rule; kill's two conditions on the
    // same argument become two rules.
    assert_eq!(
        names,
        ["read", "write", "mkdir", "personality", "kill", "kill"]
    );
    assert_eq!(f.rules[2].action, Action::Errno(libc::EPERM as u16));
    assert_eq!(f.rules[3].conds.len(), 2);
    assert_eq!(f.rules[3].conds[1].op, Op::MaskedEq);
    assert_eq!(f.rules[3].conds[1].value_two, 4);
    assert_eq!(f.rules[4].conds.len(), 1);
    assert!(f.listener.is_none());
    let prog = load::bpf(&f).unwrap();
    assert!(prog.len() > 10, "{} instructions", prog.len());
}

#[test]
fn errors_name_the_field() {
    let err = |v| compile(&profile(v)).unwrap_err().to_string();
    let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert!(e.starts_with("linux.seccomp.listenerPath:"), "{e}");
    let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}));
    assert!(
        e.starts_with("linux.seccomp.syscalls[0].args[0].index:"),
        "{e}"
    );
    let e = err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/a.sock",
        "syscalls": [{"names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    assert!(e.starts_with("linux.seccomp.syscalls[0].action:"), "{e}");
    let e = err(json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/run/a.sock"}));
    assert!(e.starts_with("linux.seccomp.defaultAction:"), "{e}");
    let e = err(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}));
    assert!(e.starts_with("linux.seccomp.defaultErrnoRet:"), "{e}");
    let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": [], "action": "SCMP_ACT_ERRNO"}]}));
    assert!(e.starts_with("linux.seccomp.syscalls[0].names:"), "{e}");
}

#[test]
fn notify_listener_and_metadata() {
    let f = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "listenerMetadata": "meta",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
    })))
    .unwrap();
    assert!(f.uses_notify());
    let l = f.listener.as_ref().unwrap();
    assert_eq!(l.path, PathBuf::from("/run/agent.sock"));
    assert_eq!(l.metadata.as_deref(), Some("meta"));
    let ps = notify::process_state(json!({"id": "c", "pid": 42}), 42, Some("meta"));
    assert_eq!(ps["fds"], json!(["seccompFd"]));
    assert_eq!(ps["pid"], 42);
    assert_eq!(ps["metadata"], "meta");
    assert_eq!(ps["state"]["id"], "c");
    // A notifying filter cannot be prepared without somewhere to send the fd.
    assert!(load::Prepared::new(&f, None).is_err());
}

#[test]
fn raw_names_are_checked_by_field() {
    let mut v = json!({"linux": {"seccomp": {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_ARM64", "amd64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]
    }}});
    assert!(names::normalize(&mut v).unwrap());
    assert_eq!(
        v["linux"]["seccomp"]["architectures"],
        json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
    );
    v["linux"]["seccomp"]["syscalls"][0]["args"][0]["op"] = json!("SCMP_CMP_ALMOST");
    let e = names::normalize(&mut v).unwrap_err().to_string();
    assert!(
        e.starts_with("linux.seccomp.syscalls[0].args[0].op:"),
        "{e}"
    );
    v["linux"]["seccomp"]["syscalls"][0]["action"] = json!("SCMP_ACT_MAYBE");
    let e = names::normalize(&mut v).unwrap_err().to_string();
    assert!(e.starts_with("linux.seccomp.syscalls[0].action:"), "{e}");
    v["linux"]["seccomp"]["architectures"] = json!(["SCMP_ARCH_VAX"]);
    let e = names::normalize(&mut v).unwrap_err().to_string();
    assert!(e.starts_with("linux.seccomp.architectures[0]:"), "{e}");
}

#[test]
fn features_claim_what_the_kernel_has() {
    let f = features();
    assert_eq!(f["enabled"], true);
    let actions = f["actions"].as_array().unwrap();
    assert!(actions.contains(&json!("SCMP_ACT_ERRNO")));
    assert!(actions.contains(&json!("SCMP_ACT_ALLOW")));
    assert_eq!(f["operators"].as_array().unwrap().len(), 7);
    assert!(f["archs"]
        .as_array()
        .unwrap()
        .contains(&json!("SCMP_ARCH_X86_64")));
}

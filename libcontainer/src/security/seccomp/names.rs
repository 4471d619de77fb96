//! The OCI names of seccomp actions, operators, architectures and flags:
//! what `features` reports, and a check of the raw config.json that turns
//! an unknown name into an error naming its field (serde alone only gives
//! a line and column), accepting runc's architecture aliases such as
//! `SCMP_ARCH_ARM64` and `SCMP_ARCH_AMD64`.

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use super::Action;
use crate::error::{Error, Result};

/// Every action name of runtime-spec 1.2.
pub const ACTIONS: [&str; 9] = [
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

/// Every operator name.
pub const OPERATORS: [&str; 7] = [
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

/// Every filter flag name.
pub const FLAGS: [&str; 4] = [
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// Every architecture name of runtime-spec 1.2 (without aliases).
pub const ARCHS: [&str; 23] = [
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
];

/// The canonical OCI name of an architecture name or alias
/// (case-insensitive, `SCMP_ARCH_` prefix optional), as runc accepts them.
pub fn canonical_arch(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("SCMP_ARCH_").unwrap_or(&upper);
    let bare = match bare {
        "NATIVE" => return Some("SCMP_ARCH_NATIVE"),
        "AMD64" | "X86-64" | "X64" => "X86_64",
        "ARM64" => "AARCH64",
        "I386" | "I686" => "X86",
        "MIPSLE" => "MIPSEL",
        "MIPSLE64" => "MIPSEL64",
        "MIPSLE64N32" => "MIPSEL64N32",
        "LOONG64" => "LOONGARCH64",
        b => b,
    };
    ARCHS
        .iter()
        .find(|a| a.strip_prefix("SCMP_ARCH_") == Some(bare))
        .copied()
}

/// The OCI name of an action.
pub fn action_name(a: Action) -> &'static str {
    match a {
        Action::KillProcess => "SCMP_ACT_KILL_PROCESS",
        Action::KillThread => "SCMP_ACT_KILL_THREAD",
        Action::Trap => "SCMP_ACT_TRAP",
        Action::Errno(_) => "SCMP_ACT_ERRNO",
        Action::Trace(_) => "SCMP_ACT_TRACE",
        Action::Log => "SCMP_ACT_LOG",
        Action::Allow => "SCMP_ACT_ALLOW",
        Action::Notify => "SCMP_ACT_NOTIFY",
    }
}

fn invalid(field: String, msg: String) -> Error {
    Error::Invalid { field, msg }
}

fn check_name(v: &Value, field: String, known: &[&str], what: &str) -> Result<()> {
    match v.as_str() {
        Some(s) if known.contains(&s) => Ok(()),
        Some(s) => Err(invalid(
            field,
            format!("unknown {what} {s:?} (known: {})", known.join(", ")),
        )),
        None => Err(invalid(field, format!("must be a {what} name string"))),
    }
}

/// Check the names inside `linux.seccomp` of a raw config and rewrite
/// architecture aliases to their OCI names. Returns whether anything changed.
pub fn normalize(config: &mut Value) -> Result<bool> {
    let Some(s) = config
        .get_mut("linux")
        .and_then(|l| l.get_mut("seccomp"))
        .filter(|s| s.is_object())
    else {
        return Ok(false);
    };
    let mut changed = false;
    if let Some(a) = s.get("defaultAction") {
        check_name(a, "linux.seccomp.defaultAction".into(), &ACTIONS, "action")?;
    }
    if let Some(archs) = s.get_mut("architectures").and_then(Value::as_array_mut) {
        for (i, a) in archs.iter_mut().enumerate() {
            let name = a.as_str().unwrap_or_default();
            let canon = canonical_arch(name).ok_or_else(|| {
                invalid(
                    format!("linux.seccomp.architectures[{i}]"),
                    format!("unknown architecture {a}"),
                )
            })?;
            if name != canon {
                *a = json!(canon);
                changed = true;
            }
        }
    }
    for (i, f) in s
        .get("flags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        check_name(f, format!("linux.seccomp.flags[{i}]"), &FLAGS, "flag")?;
    }
    let calls = s.get("syscalls").and_then(Value::as_array);
    for (i, c) in calls.into_iter().flatten().enumerate() {
        if let Some(a) = c.get("action") {
            let field = format!("linux.seccomp.syscalls[{i}].action");
            check_name(a, field, &ACTIONS, "action")?;
        }
        let args = c.get("args").and_then(Value::as_array);
        for (j, arg) in args.into_iter().flatten().enumerate() {
            if let Some(o) = arg.get("op") {
                let field = format!("linux.seccomp.syscalls[{i}].args[{j}].op");
                check_name(o, field, &OPERATORS, "operator")?;
            }
        }
    }
    Ok(changed)
}

/// When config.json failed to parse: does `linux.seccomp` explain it?
/// `Err` names the bad seccomp field; `Ok(Some)` is the spec once
/// architecture aliases are rewritten; `Ok(None)` means seccomp is not the
/// cause (report the parser's error).
pub fn recover(text: &str) -> Result<Option<Spec>> {
    let Ok(mut v) = serde_json::from_str::<Value>(text) else {
        return Ok(None);
    };
    if !normalize(&mut v)? {
        return Ok(None);
    }
    Ok(serde_json::from_value(v).ok())
}

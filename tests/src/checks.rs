//! Assertions shared by the tests: "nothing left behind" after a container
//! is gone or a command failed, `/proc/<pid>/status` parsing, capability
//! masks and namespace inodes.

use crate::{describe, exit_code, poll_until, stderr, Bundle, Runtime};
use std::collections::BTreeMap;
use std::fs;
use std::process::Output;
use std::time::Duration;

/// Linux capability names and numbers (as in `linux/capability.h`).
pub const CAPS: [(&str, u32); 41] = [
    ("CAP_CHOWN", 0),
    ("CAP_DAC_OVERRIDE", 1),
    ("CAP_DAC_READ_SEARCH", 2),
    ("CAP_FOWNER", 3),
    ("CAP_FSETID", 4),
    ("CAP_KILL", 5),
    ("CAP_SETGID", 6),
    ("CAP_SETUID", 7),
    ("CAP_SETPCAP", 8),
    ("CAP_LINUX_IMMUTABLE", 9),
    ("CAP_NET_BIND_SERVICE", 10),
    ("CAP_NET_BROADCAST", 11),
    ("CAP_NET_ADMIN", 12),
    ("CAP_NET_RAW", 13),
    ("CAP_IPC_LOCK", 14),
    ("CAP_IPC_OWNER", 15),
    ("CAP_SYS_MODULE", 16),
    ("CAP_SYS_RAWIO", 17),
    ("CAP_SYS_CHROOT", 18),
    ("CAP_SYS_PTRACE", 19),
    ("CAP_SYS_PACCT", 20),
    ("CAP_SYS_ADMIN", 21),
    ("CAP_SYS_BOOT", 22),
    ("CAP_SYS_NICE", 23),
    ("CAP_SYS_RESOURCE", 24),
    ("CAP_SYS_TIME", 25),
    ("CAP_SYS_TTY_CONFIG", 26),
    ("CAP_MKNOD", 27),
    ("CAP_LEASE", 28),
    ("CAP_AUDIT_WRITE", 29),
    ("CAP_AUDIT_CONTROL", 30),
    ("CAP_SETFCAP", 31),
    ("CAP_MAC_OVERRIDE", 32),
    ("CAP_MAC_ADMIN", 33),
    ("CAP_SYSLOG", 34),
    ("CAP_WAKE_ALARM", 35),
    ("CAP_BLOCK_SUSPEND", 36),
    ("CAP_AUDIT_READ", 37),
    ("CAP_PERFMON", 38),
    ("CAP_BPF", 39),
    ("CAP_CHECKPOINT_RESTORE", 40),
];

/// The bit mask of the named capabilities (names with the `CAP_` prefix);
/// panics on an unknown name so that a typo cannot make a check vacuous.
pub fn cap_mask(names: &[&str]) -> u64 {
    names.iter().fold(0u64, |mask, name| {
        let bit = CAPS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, b)| *b)
            .unwrap_or_else(|| panic!("unknown capability {name:?}"));
        mask | (1u64 << bit)
    })
}

/// A mask formatted like `/proc/<pid>/status` prints it (16 lower-case hex digits).
pub fn hex_mask(mask: u64) -> String {
    format!("{mask:016x}")
}

/// Parses `/proc/<pid>/status` text into `field -> value` (value trimmed,
/// e.g. `"CapEff" -> "00000000a80425fb"`, `"Groups" -> "0 2000"`).
pub fn parse_status(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// The inode number of `/proc/<pid>/ns/<ns>` (e.g. `ns_inode(1234, "net")`),
/// parsed from the link text `net:[4026531840]`; `None` when unreadable.
pub fn ns_inode(pid: i64, ns: &str) -> Option<u64> {
    let link = fs::read_link(format!("/proc/{pid}/ns/{ns}")).ok()?;
    let text = link.to_string_lossy().into_owned();
    let start = text.find('[')? + 1;
    let end = text.rfind(']')?;
    text.get(start..end)?.parse().ok()
}

/// Reads a NUL-separated /proc file (`cmdline`, `environ`) as one string
/// with the NULs turned into spaces.
fn read_nul_file(path: &str) -> String {
    fs::read(path)
        .map(|v| {
            v.iter()
                .map(|&b| if b == 0 { ' ' } else { b as char })
                .collect()
        })
        .unwrap_or_default()
}

/// Everything container `id` of `bundle` could have left behind, as
/// human-readable lines (empty when clean):
/// - a state directory `<root>/<id>`;
/// - a line of the host's mountinfo mentioning the bundle's rootfs;
/// - a process (other than us) whose cmdline or environment carries the
///   bundle's marker (every container process has `SKIFF_TEST_MARK=<marker>`,
///   and every skiff invocation on the bundle has it in its `--bundle` path).
pub fn leftovers(rt: &Runtime, id: &str, bundle: &Bundle) -> Vec<String> {
    let mut found = Vec::new();
    let dir = rt.state_dir(id);
    if fs::symlink_metadata(&dir).is_ok() {
        found.push(format!("state directory {} still exists", dir.display()));
    }
    let rootfs = bundle.rootfs().to_string_lossy().into_owned();
    if let Ok(info) = fs::read_to_string("/proc/self/mountinfo") {
        for line in info.lines().filter(|l| l.contains(&rootfs)) {
            found.push(format!("mount left on the host: {line}"));
        }
    }
    let me = std::process::id().to_string();
    let marker = bundle.marker();
    let env_mark = format!("SKIFF_TEST_MARK={marker}");
    if let Ok(entries) = fs::read_dir("/proc") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
                continue;
            }
            let pid: i64 = match name.parse() {
                Ok(p) => p,
                Err(_) => continue,
            };
            if !crate::pid_alive(pid) {
                continue;
            }
            let cmdline = read_nul_file(&format!("/proc/{pid}/cmdline"));
            let environ = read_nul_file(&format!("/proc/{pid}/environ"));
            if cmdline.contains(marker) || environ.contains(&env_mark) {
                found.push(format!("process {pid} still running: {}", cmdline.trim()));
            }
        }
    }
    found
}

/// Panics unless [`leftovers`] becomes empty within 5 seconds (processes
/// killed by `delete` may take a moment to disappear).
#[track_caller]
pub fn assert_no_leftovers(rt: &Runtime, id: &str, bundle: &Bundle) {
    let mut last = Vec::new();
    let clean = poll_until(Duration::from_secs(5), || {
        last = leftovers(rt, id, bundle);
        last.is_empty()
    });
    assert!(
        clean,
        "container {id} left things behind:\n  {}",
        last.join("\n  ")
    );
}

/// Panics unless `out` is a failure (non-zero exit) whose stderr is exactly
/// one non-empty, newline-terminated line mentioning `needle`
/// (case-insensitively); returns that line.
#[track_caller]
pub fn assert_error_line(out: &Output, needle: &str) -> String {
    assert!(
        !out.status.success() && exit_code(out) != 0,
        "expected a failure mentioning {needle:?}, got: {}",
        describe(out)
    );
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines.len() == 1 && !lines[0].trim().is_empty() && err.ends_with('\n'),
        "expected exactly one non-empty line on stderr: {}",
        describe(out)
    );
    assert!(
        lines[0].to_lowercase().contains(&needle.to_lowercase()),
        "stderr does not mention {needle:?}: {}",
        describe(out)
    );
    lines[0].to_owned()
}

/// Panics unless `out` is a clean failure: see [`assert_error_line`], plus
/// nothing left behind for `id`/`bundle` (see [`leftovers`]).
#[track_caller]
pub fn assert_clean_failure(out: &Output, needle: &str, rt: &Runtime, id: &str, bundle: &Bundle) {
    assert_error_line(out, needle);
    assert_no_leftovers(rt, id, bundle);
}

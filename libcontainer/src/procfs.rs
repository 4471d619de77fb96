//! Reading facts about processes from /proc: start time, liveness, namespaces.

use std::path::PathBuf;

use nix::unistd::Pid;

/// What /proc/PID/stat says about a process that matters to skiff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// The one-letter state (`R`, `S`, `Z`, ...).
    pub state: char,
    /// Start time in clock ticks since boot (field 22): with the pid it
    /// identifies a process across pid reuse.
    pub start_time: u64,
}

/// Read a /proc file whole. Its size reads as 0, so `fs::read_to_string`
/// starts with a 32-byte read and doubles: eight reads for a mountinfo of
/// 1.5 KB. Into 16 KiB it is one read (and the one that returns 0).
pub fn read_text(path: impl AsRef<std::path::Path>) -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(16 * 1024);
    std::fs::File::open(path)?.read_to_end(&mut buf)?;
    String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Read /proc/PID/stat, or `None` if the process does not exist.
pub fn stat(pid: Pid) -> Option<ProcStat> {
    let text = read_text(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<ProcStat> {
    // The command name may contain spaces and parentheses: split after the last ')'.
    let rest = text.get(text.rfind(')')? + 2..)?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // rest starts at field 3; start time is field 22.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

/// The start time of `pid` (0 if it is gone), to tell it from a reuse.
pub fn start_time(pid: Pid) -> u64 {
    stat(pid).map(|s| s.start_time).unwrap_or_default()
}

/// Is the process `pid` the one that started at `start_time`, and not a zombie?
pub fn is_alive(pid: Pid, start_time: u64) -> bool {
    matches!(stat(pid), Some(s) if s.start_time == start_time && s.state != 'Z' && s.state != 'X')
}

/// The inode of /proc/PID/ns/NAME, which identifies the namespace.
pub fn ns_inode(pid: &str, name: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/{name}"))
        .ok()
        .map(|m| m.ino())
}

/// All pids (host view) whose pid namespace is the one of `pid`.
pub fn pids_in_pid_ns_of(pid: Pid) -> Vec<Pid> {
    let Some(target) = ns_inode(&pid.to_string(), "pid") else {
        return Vec::new();
    };
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<Pid> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| ns_inode(&p.to_string(), "pid") == Some(target))
        .map(Pid::from_raw)
        .collect();
    pids.sort();
    pids
}

/// /proc/PID/root of a process: its root directory, as seen from the host.
pub fn root_of(pid: Pid) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/root"))
}

/// Undo mountinfo's `\ooo` escapes (space, tab, newline, backslash).
pub(crate) fn unescape_mountinfo(s: &str) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct {
            Some(d) => {
                out.push(
                    d.iter()
                        .fold(0u8, |a, c| a.wrapping_mul(8).wrapping_add(c - b'0')),
                );
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    std::ffi::OsString::from_vec(out)
}

/// The `SigIgn:` mask of a `/proc/PID/status` text: bit n-1 set when
/// signal n is ignored.
pub fn parse_sig_ign(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sig_ign_mask() {
        let status =
            "Name:\tsh\nSigBlk:\t0000000000000000\nSigIgn:\t8000000200001000\nSigCgt:\t0\n";
        // SIGPIPE (13), signal 34 and 64.
        assert_eq!(
            parse_sig_ign(status),
            Some((1 << 12) | (1 << 33) | (1 << 63))
        );
        assert_eq!(parse_sig_ign("Name:\tsh\n"), None);
        let own = read_text("/proc/thread-self/status").unwrap();
        assert!(parse_sig_ign(&own).is_some());
    }

    #[test]
    fn stat_with_odd_comm() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 10";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.start_time, 123456);
    }

    #[test]
    fn our_own_process() {
        let me = Pid::this();
        let s = stat(me).unwrap();
        assert!(is_alive(me, s.start_time));
        assert!(!is_alive(me, s.start_time + 1));
    }
}

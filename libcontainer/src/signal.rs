//! Signal names and numbers as `skiff kill` accepts them (runc's rules).

use nix::sys::signal::Signal;

use crate::error::{Error, Result};

/// `RTMIN` as runc (Go) and glibc number it: the kernel's first real-time
/// signal is 32, and glibc keeps 32 and 33 for itself. musl keeps 34 too
/// (its `SIGRTMIN()` is 35); skiff's numbering must not depend on its libc.
pub const SIGRTMIN: i32 = 34;
/// The kernel's last signal (`_NSIG - 1`).
pub const SIGRTMAX: i32 = 64;

/// Parse `TERM`, `SIGTERM`, `sigterm` or `15` into a signal number.
///
/// Real-time signals are accepted as numbers and as `RTMIN+N` / `RTMAX-N`;
/// `0` only checks that the process exists (kill(2)'s null signal, as runc).
pub fn parse(s: &str) -> Result<i32> {
    let bad = || Error::BadSignal(s.to_string());
    if let Ok(n) = s.parse::<i32>() {
        return if (0..=SIGRTMAX).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('+')
                .and_then(|r| r.parse().ok())
                .ok_or_else(bad)?
        };
        let n = SIGRTMIN + off;
        return if n <= SIGRTMAX { Ok(n) } else { Err(bad()) };
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('-')
                .and_then(|r| r.parse().ok())
                .ok_or_else(bad)?
        };
        let n = SIGRTMAX - off;
        return if n >= SIGRTMIN { Ok(n) } else { Err(bad()) };
    }
    format!("SIG{name}")
        .parse::<Signal>()
        .map(|s| s as i32)
        .map_err(|_| bad())
}

/// Restore SIGPIPE's default action (death), which the Rust runtime set to
/// ignored: a CLI writing to a closed pipe then ends as runc's would,
/// instead of panicking in `println!`.
pub fn default_sigpipe() {
    // SAFETY: installing SIG_DFL for SIGPIPE is always sound; callers use
    // it only in processes that write nothing but their own output.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("9").unwrap(), 9);
        assert_eq!(parse("0").unwrap(), 0);
        assert_eq!(parse("KILL").unwrap(), 9);
        assert_eq!(parse("SIGTERM").unwrap(), 15);
        assert_eq!(parse("sigusr1").unwrap(), libc::SIGUSR1);
        // runc's numbers, whatever the libc skiff is built with.
        assert_eq!(parse("RTMIN+1").unwrap(), 35);
        assert_eq!(parse("RTMAX-2").unwrap(), 62);
        for bad in ["-1", "100", "FOO", "SIG", "RTMIN+99", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}

//! Skipped tests.  cargo test reports a test that returns early as `ok` and
//! hides what a passing test printed, so a skip would look like a pass.
//! Every test that cannot run here calls [`skip`] (or the [`skip!`](crate::skip!)
//! macro): it writes `SKIP <test>: <why>` straight to stderr (past libtest's
//! capture) and appends `<test>\t<why>` to the file named by
//! `$SKIFF_SKIP_LOG`.  hack/test-report sets that variable around each
//! stage of `make test`, lists the recorded skips after the stage and
//! counts them as skipped, not passed.

use std::fmt::Display;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

/// The environment variable naming the skip log: one `<test>\t<why>` line
/// per skipped test.
pub const SKIP_LOG_ENV: &str = "SKIFF_SKIP_LOG";

/// Records that the running test is skipped, and why; the caller then
/// returns without testing anything (see [`skip!`](crate::skip!)).
///
/// The test is named `<test binary>/<test>` from the test thread's name
/// (libtest names it after the test).  Panics when `$SKIFF_SKIP_LOG` is set
/// but cannot be written, since the skip would then count as a pass.
pub fn skip(why: impl Display) {
    record(None, &why.to_string());
}

/// [`skip`], with `fallback` as the test's name when the thread has none.
pub(crate) fn record(fallback: Option<&str>, why: &str) {
    let test = test_name(fallback);
    let why = one_line(why);
    write_stderr(&format!("SKIP {test}: {why}\n"));
    let Some(log) = std::env::var_os(SKIP_LOG_ENV).filter(|p| !p.is_empty()) else {
        return;
    };
    let appended = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        // One write of one short line: O_APPEND keeps the lines of tests
        // running in parallel whole.
        .and_then(|mut f| f.write_all(format!("{test}\t{why}\n").as_bytes()));
    if let Err(e) = appended {
        panic!(
            "cannot record the skip of {test} in {} (${SKIP_LOG_ENV}): {e}",
            Path::new(&log).display()
        );
    }
}

/// `<test binary>/<test>`, e.g. `attrs/intel_rdt_without_resctrl_is_a_clear_error`
/// or `libcontainer/cgroups::tests::hybrid_host_refuses_limits_by_name`.
fn test_name(fallback: Option<&str>) -> String {
    let thread = std::thread::current();
    let test = match thread.name() {
        Some(name) if name != "main" => name,
        _ => fallback.unwrap_or("unnamed test"),
    };
    match binary_name() {
        Some(bin) => format!("{bin}/{test}"),
        None => test.to_owned(),
    }
}

/// The test binary's name without cargo's `-<hash>` suffix.
fn binary_name() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let stem = exe.file_stem()?.to_string_lossy().into_owned();
    Some(match stem.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            name.to_owned()
        }
        _ => stem,
    })
}

/// `why` on one line without tabs, as the log's format needs.
fn one_line(why: &str) -> String {
    why.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Writes to the process's stderr directly: `eprintln!` inside a test is
/// captured by libtest and shown only when the test fails.
fn write_stderr(line: &str) {
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Skips the calling test: records why with [`skip`](crate::skip()) (the
/// arguments are `format!`'s) and returns from the test.
#[macro_export]
macro_rules! skip {
    ($($why:tt)+) => {{
        $crate::skip(format_args!($($why)+));
        return;
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_fit_on_one_line() {
        assert_eq!(one_line(" a\tb\n  c "), "a b c");
    }

    #[test]
    fn names_carry_the_binary_and_the_test() {
        let name = test_name(Some("fallback"));
        assert!(
            name.ends_with("/skip::tests::names_carry_the_binary_and_the_test"),
            "{name}"
        );
        assert!(name.starts_with("skiff_conformance/"), "{name}");
    }
}

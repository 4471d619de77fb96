//! Helpers for skiff's conformance suite.
//!
//! The suite drives the built `skiff` binary (see [`skiff_bin`]) through its
//! runc-compatible CLI.  Every test gets its own state directory (`--root`,
//! see [`Runtime`]) and its own bundle (see [`Bundle`]), so tests can run in
//! parallel threads.  Every child process is run with a timeout (see
//! [`output_with_timeout`]) so that a hung runtime fails a test instead of
//! hanging CI.  A test that cannot run on this host says why with
//! [`skip!`] (or [`skip()`]), so that it is reported as skipped, not passed.

mod bundle;
mod checks;
mod console;
mod runtime;
mod seccomp_agent;
mod skip;

pub use bundle::{default_config, Bundle};
pub use checks::{
    assert_clean_failure, assert_error_line, assert_no_leftovers, cap_mask, hex_mask, leftovers,
    ns_inode, parse_status, CAPS,
};
pub use console::{read_pty_until_eof, write_fd_all, ConsoleSocket};
pub use runtime::{Runtime, Spawned, DEFAULT_TIMEOUT};
pub use seccomp_agent::{Answer, SeccompAgent, Seen};
pub use skip::{skip, SKIP_LOG_ENV};

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Path of the skiff binary under test: `$SKIFF_BIN`, or the workspace's
/// `target/release/skiff`.
pub fn skiff_bin() -> PathBuf {
    match std::env::var_os("SKIFF_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/skiff"),
    }
}

/// True when the suite runs as root (uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Common preamble of every test: returns `false` (after recording the skip
/// with [`skip()`]) when the test cannot run because we are not root; panics
/// with a clear message when the skiff binary is missing (`make test` always
/// builds it). `test` names the test only where its thread has no name.
pub fn preflight(test: &str) -> bool {
    if !is_root() {
        skip::record(Some(test), "the conformance suite must run as root");
        return false;
    }
    let bin = skiff_bin();
    assert!(
        bin.is_file(),
        "skiff binary not found at {} (build it with `cargo build --release -p skiff` or set SKIFF_BIN)",
        bin.display()
    );
    true
}

/// Returns early from the calling test when [`preflight`] says so.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::preflight(module_path!()) {
            return;
        }
    };
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_suffix() -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{}-{:x}", std::process::id(), n, nanos)
}

/// A container id unique to this process and call, e.g. `sk-lifecycle-123-4-1a2b`.
pub fn unique_id(tag: &str) -> String {
    format!("sk-{tag}-{}", unique_suffix())
}

/// A directory under /tmp removed (recursively) on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `/tmp/<prefix>-<unique>` with mode 0755 (so that processes in a
    /// user namespace can still traverse it).
    pub fn new(prefix: &str) -> TempDir {
        let path = PathBuf::from(format!("/tmp/{prefix}-{}", unique_suffix()));
        fs::create_dir_all(&path).expect("create temp dir");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        TempDir { path }
    }

    /// The directory's absolute path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: lazily detach anything a broken runtime left mounted
        // below us, so that remove_dir_all cannot walk into host mounts.
        if let Ok(info) = fs::read_to_string("/proc/self/mountinfo") {
            let prefix = format!("{}/", self.path.display());
            let mut points: Vec<String> = info
                .lines()
                .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
                .filter(|p| p.starts_with(&prefix))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
            }
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Spawns `cmd` with stdout/stderr redirected to temp files (never pipes, so a
/// detached container holding them open cannot block us) in its own process
/// group, and returns the child plus the two file paths.
pub fn spawn_captured(cmd: &mut Command) -> (Child, PathBuf, PathBuf) {
    let base = format!("/tmp/skiff-out-{}", unique_suffix());
    let out_path = PathBuf::from(format!("{base}.out"));
    let err_path = PathBuf::from(format!("{base}.err"));
    let out = fs::File::create(&out_path).expect("create stdout file");
    let err = fs::File::create(&err_path).expect("create stderr file");
    cmd.stdout(Stdio::from(out)).stderr(Stdio::from(err));
    cmd.process_group(0);
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
    (child, out_path, err_path)
}

/// Waits for `child` for at most `timeout`; on timeout kills its whole process
/// group and returns `None`.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    let mut nap = Duration::from_micros(500);
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return Some(st);
        }
        if start.elapsed() > timeout {
            let pgid = nix::unistd::Pid::from_raw(-(child.id() as i32));
            let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        // Most commands take a few ms: poll fast first, then every 10 ms.
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(10));
    }
}

/// Collects the output of a child made by [`spawn_captured`]; panics (killing
/// it) when it runs longer than `timeout`.
pub fn finish_captured(
    mut child: Child,
    out_path: &Path,
    err_path: &Path,
    timeout: Duration,
    what: &str,
) -> Output {
    let status = wait_timeout(&mut child, timeout);
    let read = |p: &Path| {
        let mut v = Vec::new();
        if let Ok(mut f) = fs::File::open(p) {
            let _ = f.read_to_end(&mut v);
        }
        let _ = fs::remove_file(p);
        v
    };
    let stdout = read(out_path);
    let stderr = read(err_path);
    match status {
        Some(status) => Output {
            status,
            stdout,
            stderr,
        },
        None => panic!(
            "{what}: timed out after {timeout:?} (killed)\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ),
    }
}

/// Like `Command::output()` but with stdin from /dev/null and a timeout.
pub fn output_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null());
    let what = format!("{cmd:?}");
    let (child, o, e) = spawn_captured(cmd);
    finish_captured(child, &o, &e, timeout, &what)
}

/// The stdout of `out` as a (lossy) string.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The stderr of `out` as a (lossy) string.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit code, or 128+signal when killed by a signal (shell convention).
pub fn exit_code(out: &Output) -> i32 {
    match (out.status.code(), out.status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => -1,
    }
}

/// A printable summary of an `Output`, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        exit_code(out),
        stdout(out),
        stderr(out)
    )
}

/// Panics with the full output unless `out` exited 0.
#[track_caller]
pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed unexpectedly: {}",
        describe(out)
    );
}

/// Writes an executable (0755) file.
pub fn write_executable(path: &Path, content: &str) {
    fs::write(path, content).expect("write script");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod script");
}

/// Polls `f` every 20 ms until it returns true or `timeout` elapses.
pub fn poll_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `readlink` on the host, as a string ("" on error).
pub fn readlink(path: impl AsRef<Path>) -> String {
    fs::read_link(path)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// True when a process with this host pid exists and is not a zombie.
pub fn pid_alive(pid: i64) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state is the field after the ")" closing the comm.
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

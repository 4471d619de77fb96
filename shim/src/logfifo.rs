//! The shim daemon's log: containerd's `log` fifo in the bundle.
//!
//! containerd opens the fifo's read side before it runs `start`, so the
//! daemon normally finds a reader at once. But a containerd restarted in
//! between may never open it again (it removes a bundle whose task was
//! never created), and a blocking open(O_WRONLY) would then wait forever,
//! before the shim could notice that its bundle is gone and exit. So the
//! fifo is opened non-blocking, retried while there is no reader (ENXIO) up
//! to a deadline; without a reader by then the shim logs to stderr. The
//! descriptor stays non-blocking: a containerd that stops reading makes the
//! shim drop log lines, never stall.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use containerd_shim::logger::FifoLogger;

/// How long the daemon waits for containerd to read its log.
const READER_DEADLINE: Duration = Duration::from_secs(5);

/// Pause between two attempts to find a reader.
const RETRY: Duration = Duration::from_millis(20);

/// Send the `log` crate's records (and so panics) to the bundle's `log`
/// fifo, at level RUST_LOG (default warn; debug with containerd's -debug).
/// Falls back to stderr, saying why there, when the fifo has no reader.
pub fn init(debug: bool) {
    log::set_max_level(level(std::env::var("RUST_LOG").ok().as_deref(), debug));
    let file = match open_writer(Path::new("log"), READER_DEADLINE) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("containerd-shim-skiff-v2: log fifo: {e}; logging to stderr");
            match io::stderr().as_fd().try_clone_to_owned() {
                Ok(fd) => File::from(fd),
                Err(_) => return,
            }
        }
    };
    // set_boxed_logger fails only if a logger is set already: this is the
    // daemon's first act, so it is not.
    let _ = log::set_boxed_logger(Box::new(FifoLogger::with_file(file)));
}

/// The level for RUST_LOG's value `env` (warn if unset or not a level),
/// raised to debug when containerd runs with -debug.
fn level(env: Option<&str>, debug: bool) -> log::LevelFilter {
    let set = env
        .and_then(|v| log::LevelFilter::from_str(v).ok())
        .unwrap_or(log::LevelFilter::Warn);
    if debug {
        set.max(log::LevelFilter::Debug)
    } else {
        set
    }
}

/// Open the fifo at `path` for writing once a reader has it open, trying
/// until `deadline` has passed. A missing fifo fails at once.
fn open_writer(path: &Path, deadline: Duration) -> io::Result<File> {
    let start = Instant::now();
    loop {
        match OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
        {
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                if start.elapsed() >= deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::NotConnected,
                        format!("{}: no reader after {deadline:?}", path.display()),
                    ));
                }
                std::thread::sleep(RETRY);
            }
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn fifo(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("skiff-logfifo-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("log");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::S_IRWXU).unwrap();
        p
    }

    #[test]
    fn no_reader_gives_up_at_the_deadline() {
        let p = fifo("none");
        let t = Instant::now();
        let e = open_writer(&p, Duration::from_millis(150)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotConnected);
        assert!(t.elapsed() >= Duration::from_millis(150));
        assert!(t.elapsed() < Duration::from_secs(2));
        std::fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }

    #[test]
    fn missing_fifo_fails_at_once() {
        let p = fifo("gone");
        std::fs::remove_dir_all(p.parent().unwrap()).unwrap();
        let t = Instant::now();
        let e = open_writer(&p, Duration::from_secs(5)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(t.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_late_reader_is_found_and_gets_the_lines() {
        let p = fifo("late");
        let rp = p.clone();
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            let mut s = String::new();
            File::open(rp).unwrap().read_to_string(&mut s).unwrap();
            s
        });
        let mut w = open_writer(&p, Duration::from_secs(5)).unwrap();
        io::Write::write_all(&mut w, b"hello\n").unwrap();
        drop(w);
        assert_eq!(reader.join().unwrap(), "hello\n");
        std::fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }

    #[test]
    fn level_follows_rust_log_and_debug() {
        assert_eq!(level(None, false), log::LevelFilter::Warn);
        assert_eq!(level(Some("info"), false), log::LevelFilter::Info);
        assert_eq!(level(Some("bogus"), false), log::LevelFilter::Warn);
        assert_eq!(level(None, true), log::LevelFilter::Debug);
        assert_eq!(level(Some("trace"), true), log::LevelFilter::Trace);
    }
}

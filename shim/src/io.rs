//! A process's io as containerd describes it: fifos, `file://` and
//! `binary://` URIs, or a terminal.
//!
//! Without a terminal, stdout and stderr are handed to the container
//! directly (the fifo opened read-write so a restarting containerd never
//! causes EPIPE, the file, or the logging binary's pipe): no copy in the
//! shim. The shim keeps its own fd on each output fifo until the process
//! exits, then waits (bounded) until containerd has read the fifo empty,
//! lets go of it, and waits until containerd's reader has seen EOF and
//! closed, before the exit is published: containerd closes the fifos when
//! it handles the exit, so its reader must have all the output of a
//! container that printed and exited at once by then.
//! stdin goes through a pipe fed by a small thread, so that the
//! process sees EOF only when containerd closes stdin (or calls CloseIO).
//! With a terminal, the pty master comes back over a socketpair and two
//! threads copy it to and from the fifos.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::logbin;
use crate::process::IoPaths;

/// Stack size of the copy threads: they only shuffle a small buffer.
const COPY_STACK: usize = 64 * 1024;

/// The shim's write side of a process's stdin.
#[derive(Debug, Default)]
struct StdinPipe {
    file: Mutex<Option<File>>,
    /// A copy thread feeds it from the stdin fifo; it closes it at EOF.
    copying: std::sync::atomic::AtomicBool,
}

impl StdinPipe {
    fn new(f: File) -> Writer {
        Arc::new(StdinPipe {
            file: Mutex::new(Some(f)),
            copying: Default::default(),
        })
    }

    fn close(&self) {
        if let Ok(mut g) = self.file.lock() {
            *g = None;
        }
    }
}

type Writer = Arc<StdinPipe>;

/// The shim's side of a process's io, kept while the process lives.
#[derive(Debug, Default)]
pub struct Stdio {
    /// Where the stdin copy writes (the pipe or the pty master); taking it
    /// closes stdin for the process.
    stdin: Option<Writer>,
    /// The pty master, for resizing.
    pub console: Option<File>,
    /// Fires when the terminal output copy has finished.
    output_done: Option<Receiver<()>>,
    /// The shim's own fd on the stdout and stderr fifos (no terminal):
    /// keeps what the process wrote there until containerd reads it, and
    /// tells (FIONREAD) when it has.
    fifos: [Option<OutFifo>; 2],
}

/// An output fifo the shim holds (read-write) while the process lives.
#[derive(Debug)]
struct OutFifo {
    file: File,
    path: PathBuf,
}

impl Stdio {
    /// CloseIO: the process reads EOF once the input already written to
    /// the fifo has been passed on (containerd closes the fifo first, so a
    /// running copy ends at its EOF and closes then).
    pub fn close_stdin(&mut self) {
        if let Some(w) = self.stdin.take() {
            if !w.copying.load(std::sync::atomic::Ordering::SeqCst) {
                w.close();
            }
        }
    }

    /// Once the process has exited: wait (at most `limit` in all) until its
    /// output has left the shim's hands, the terminal's copied out or the
    /// output fifos read empty by containerd, then let go of the fifos.
    pub fn wait_output(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        if let Some(rx) = self.output_done.take() {
            let _ = rx.recv_timeout(limit);
        }
        let kept: Vec<OutFifo> = self.fifos.iter_mut().filter_map(Option::take).collect();
        for f in &kept {
            wait_drained(&f.file, deadline);
        }
        // Our fds go: with no writer left, containerd's reader reads EOF.
        let paths: Vec<PathBuf> = kept.into_iter().map(|f| f.path).collect();
        for p in &paths {
            wait_reader_gone(p, deadline);
        }
    }
}

/// Poll until the fifo at `path` has no reader or `deadline`. containerd
/// closes the fifos when it handles the exit: its reader must have read
/// EOF (and closed) by then, or it logs "file already closed" and may
/// lose a last chunk it had not yet read. Opening for writing without
/// blocking fails with ENXIO exactly when no reader is left; the probe is
/// closed at once, so a reader waiting for EOF is woken, not held up.
fn wait_reader_gone(path: &Path, deadline: Instant) {
    let mut pause = Duration::from_millis(1);
    loop {
        match OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
        {
            Ok(probe) => drop(probe),
            // ENXIO: no reader; anything else: the fifo is gone.
            Err(_) => return,
        }
        let now = Instant::now();
        if now >= deadline {
            log::warn!(
                "{}: containerd still reads it: publishing the exit anyway",
                path.display()
            );
            return;
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Bytes waiting in the pipe behind `f` (0 on error).
fn unread(f: &File) -> i32 {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), libc::FIONREAD, &mut n) };
    if r < 0 {
        0
    } else {
        n
    }
}

/// Poll until the fifo `f` is empty (its reader has taken everything) or
/// `deadline`: a reader that does not read (a client gone, a grandchild
/// reading nothing) only delays the exit, as the Go shim's bounded wait for
/// its copy does.
fn wait_drained(f: &File, deadline: Instant) {
    let mut pause = Duration::from_millis(1);
    loop {
        let n = unread(f);
        if n == 0 {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            log::warn!(
                "{n} bytes of output still unread by containerd: publishing the exit anyway"
            );
            return;
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// What create or exec needs: the fds for the process and, for a terminal,
/// the socket the pty master comes back on.
pub struct Prepared {
    /// stdin, stdout, stderr for the process (no terminal).
    pub child: Option<[OwnedFd; 3]>,
    /// The end given to libcontainer as the console stream (terminal).
    pub console_theirs: Option<OwnedFd>,
    console_ours: Option<UnixStream>,
    stdin_path: String,
    stdout_path: String,
    stdin_writer: Option<Writer>,
    fifos: [Option<OutFifo>; 2],
}

impl Prepared {
    /// The raw stdio fds to hand to libcontainer.
    pub fn raw(&self) -> Option<[RawFd; 3]> {
        self.child
            .as_ref()
            .map(|c| [c[0].as_raw_fd(), c[1].as_raw_fd(), c[2].as_raw_fd()])
    }

    /// After the process exists: close the container's ends here, and for a
    /// terminal receive the master and start copying.
    pub fn finish(mut self) -> Result<Stdio> {
        self.child = None;
        self.console_theirs = None;
        let mut stdio = Stdio {
            stdin: self.stdin_writer.take(),
            fifos: std::mem::take(&mut self.fifos),
            ..Default::default()
        };
        if let Some(sock) = self.console_ours.take() {
            let master = File::from(libcontainer::console::receive_master(&sock)?);
            let input = StdinPipe::new(master.try_clone()?);
            if !self.stdin_path.is_empty() {
                spawn_stdin_copy(self.stdin_path.clone(), input.clone())?;
            }
            stdio.stdin = Some(input);
            let (tx, rx) = mpsc::channel();
            let out = master.try_clone()?;
            let path = self.stdout_path.clone();
            std::thread::Builder::new()
                .stack_size(COPY_STACK)
                .spawn(move || {
                    copy_output(out, &path);
                    let _ = tx.send(());
                })?;
            stdio.output_done = Some(rx);
            stdio.console = Some(master);
        }
        Ok(stdio)
    }
}

/// Open everything `paths` asks for. `ids` are the IoUid/IoGid options.
pub fn prepare(paths: &IoPaths, ids: (u32, u32), env: &logbin::Env) -> Result<Prepared> {
    let mut p = Prepared {
        child: None,
        console_theirs: None,
        console_ours: None,
        stdin_path: paths.stdin.clone(),
        stdout_path: paths.stdout.clone(),
        stdin_writer: None,
        fifos: Default::default(),
    };
    if paths.terminal {
        let (ours, theirs) = UnixStream::pair().context("console socketpair")?;
        p.console_ours = Some(ours);
        p.console_theirs = Some(theirs.into());
        return Ok(p);
    }
    let stdin: OwnedFd = if paths.stdin.is_empty() {
        dev_null()?.into()
    } else {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("stdin pipe")?;
        chown(&r, ids)?;
        let w = StdinPipe::new(File::from(w));
        spawn_stdin_copy(paths.stdin.clone(), w.clone())?;
        p.stdin_writer = Some(w);
        r
    };
    let (stdout, stderr) = if is_binary(&paths.stdout) {
        // One logging binary takes both streams, as with the Go shim.
        let (o, e) = logbin::start(&paths.stdout, env)?;
        chown(&o, ids)?;
        chown(&e, ids)?;
        (o, e)
    } else {
        let (o, e) = (output(&paths.stdout)?, output(&paths.stderr)?);
        for (keep, (fd, fifo)) in p.fifos.iter_mut().zip([&o, &e]) {
            if let Some(path) = fifo {
                let f = File::from(fd.try_clone().context("dup an output fifo")?);
                // FIONREAD on a regular file would count what follows
                // the offset: only a real fifo is waited for.
                if f.metadata().is_ok_and(|m| m.file_type().is_fifo()) {
                    *keep = Some(OutFifo {
                        file: f,
                        path: path.clone(),
                    });
                }
            }
        }
        (o.0, e.0)
    };
    p.child = Some([stdin, stdout, stderr]);
    Ok(p)
}

fn is_binary(uri: &str) -> bool {
    uri.starts_with("binary://")
}

fn dev_null() -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .context("open /dev/null")
}

fn chown(fd: &OwnedFd, (uid, gid): (u32, u32)) -> Result<()> {
    if uid == 0 && gid == 0 {
        return Ok(());
    }
    nix::unistd::fchown(
        fd.as_raw_fd(),
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .context("IoUid/IoGid: chown io pipe")
}

/// The fd for stdout or stderr: /dev/null, a `file://` or a fifo (true).
/// Open an output URI for the process: the fd, and the fifo's path when
/// it is one (`fifo://` or a bare path).
fn output(uri: &str) -> Result<(OwnedFd, Option<PathBuf>)> {
    Ok(if uri.is_empty() {
        (dev_null()?.into(), None)
    } else if let Some(rest) = uri.strip_prefix("file://") {
        let path = rest.split('?').next().unwrap_or(rest);
        if let Some(dir) = std::path::Path::new(path).parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("{uri}: mkdir"))?;
        }
        let f = OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .with_context(|| format!("open {uri}"))?;
        (f.into(), None)
    } else {
        let path = uri.strip_prefix("fifo://").unwrap_or(uri);
        if uri.contains("://") && !uri.starts_with("fifo://") {
            bail!("unsupported io URI {uri}");
        }
        // Read-write: opening never blocks, and the fifo always has a
        // reader, so the container never gets EPIPE while containerd restarts.
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .with_context(|| format!("open fifo {path}"))?;
        (f.into(), Some(PathBuf::from(path)))
    })
}

fn spawn_stdin_copy(path: String, dst: Writer) -> Result<()> {
    // Open the read side now, without waiting for a writer: the fifo then
    // has a reader from Create on, so what the client writes (and closes)
    // before the copy runs stays buffered instead of being lost, as the Go
    // shim does. Reads wait in poll: a fifo that never had a writer does not
    // report a hang-up, so EOF means the client came and closed.
    let src = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(&path)
        .with_context(|| format!("open stdin fifo {path}"))?;
    dst.copying.store(true, std::sync::atomic::Ordering::SeqCst);
    let thread_dst = dst.clone();
    let r = std::thread::Builder::new()
        .stack_size(COPY_STACK)
        .spawn(move || {
            let dst = thread_dst;
            let mut src = src;
            let mut buf = [0u8; 8192];
            loop {
                let mut fds = [nix::poll::PollFd::new(
                    std::os::fd::AsFd::as_fd(&src),
                    nix::poll::PollFlags::POLLIN,
                )];
                match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => break,
                }
                let n = match src.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                let Ok(mut g) = dst.file.lock() else { break };
                let Some(w) = g.as_mut() else { break };
                if w.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            dst.copying
                .store(false, std::sync::atomic::Ordering::SeqCst);
            dst.close();
        });
    if let Err(e) = r {
        dst.copying
            .store(false, std::sync::atomic::Ordering::SeqCst);
        return Err(e).context("spawn stdin copy");
    }
    Ok(())
}

/// Copy the pty master to the stdout fifo until the pty is closed (EIO).
fn copy_output(mut master: File, path: &str) {
    let mut out = if path.is_empty() {
        None
    } else {
        OpenOptions::new().read(true).write(true).open(path).ok()
    };
    let mut buf = [0u8; 8192];
    loop {
        let n = match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if let Some(o) = out.as_mut() {
            if o.write_all(&buf[..n]).is_err() {
                out = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_until_the_fifo_is_read_empty() {
        let dir = std::env::temp_dir().join(format!("skiff-shim-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stdout");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let (fd, fifo) = output(path.to_str().unwrap()).unwrap();
        assert_eq!(fifo.as_deref(), Some(path.as_path()));
        let mut w = File::from(fd);
        w.write_all(b"hello").unwrap();
        // Nobody reads: the wait ends at the deadline.
        let t = Instant::now();
        wait_drained(&w, t + Duration::from_millis(100));
        assert!(t.elapsed() >= Duration::from_millis(100));
        assert_eq!(unread(&w), 5);
        // A reader that comes later: the wait ends when it has read.
        let mut r = OpenOptions::new().read(true).open(&path).unwrap();
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let mut b = [0u8; 5];
            r.read_exact(&mut b).unwrap();
            b
        });
        let t = Instant::now();
        wait_drained(&w, t + Duration::from_secs(10));
        assert!(t.elapsed() < Duration::from_secs(5));
        assert_eq!(&reader.join().unwrap(), b"hello");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn waits_until_the_reader_has_closed() {
        let dir = std::env::temp_dir().join(format!("skiff-shim-io-r-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stdout");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // No reader: no wait.
        let t = Instant::now();
        wait_reader_gone(&path, t + Duration::from_secs(10));
        assert!(t.elapsed() < Duration::from_secs(1));
        // A reader that closes after 200 ms: the wait ends then.
        let r = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        let t = Instant::now();
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(r);
        });
        wait_reader_gone(&path, t + Duration::from_secs(10));
        assert!(t.elapsed() >= Duration::from_millis(200));
        assert!(t.elapsed() < Duration::from_secs(5));
        reader.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_and_null_are_not_waited_for() {
        let dir = std::env::temp_dir().join(format!("skiff-shim-io-f-{}", std::process::id()));
        let uri = format!("file://{}/log", dir.display());
        assert!(output(&uri).unwrap().1.is_none());
        assert!(output("").unwrap().1.is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! cgroup v1 OOM notification: an eventfd registered on a memory cgroup's
//! memory.oom_control through cgroup.event_control, which the kernel
//! signals on every OOM in that cgroup (and when the cgroup is removed).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

use nix::sys::eventfd::{EfdFlags, EventFd};

/// One registered notification.
#[derive(Debug)]
pub struct OomEvent {
    efd: EventFd,
    /// Kept open for as long as the registration is used.
    _control: File,
}

impl OomEvent {
    /// Register on the memory cgroup directory `dir`.
    pub fn register(dir: &Path) -> io::Result<OomEvent> {
        let control = File::open(dir.join("memory.oom_control"))?;
        let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        let line = format!("{} {}", efd.as_raw_fd(), control.as_raw_fd());
        std::fs::write(dir.join("cgroup.event_control"), line)?;
        Ok(OomEvent {
            efd,
            _control: control,
        })
    }

    /// Has it been signalled since the last call? (Resets it.)
    pub fn take(&self) -> bool {
        self.efd.read().is_ok_and(|n| n > 0)
    }
}

impl AsFd for OomEvent {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.efd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// On a cgroup v1 host, as root: a child of this test's memory cgroup
    /// with a 16 MiB limit, a process in it that allocates 64 MiB: the
    /// eventfd fires.
    #[test]
    fn fires_on_an_oom_kill() {
        let Some(mem) = libcontainer::cgroups::v1::hierarchy::of("memory") else {
            skiff_conformance::skip!("no cgroup v1 memory hierarchy here");
        };
        if !nix::unistd::geteuid().is_root() {
            skiff_conformance::skip!("needs root");
        }
        let own = libcontainer::cgroups::v1::hierarchy::own(mem);
        let dir = mem
            .mount
            .join(own)
            .join(format!("skiff-oomtest-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("memory.limit_in_bytes"), "16777216").unwrap();
        let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), "16777216");
        let ev = OomEvent::register(&dir).unwrap();
        assert!(!ev.take(), "signalled before any OOM");
        let mut child = std::process::Command::new("sh")
            .args(["-c", "read x; head -c 67108864 /dev/zero | tail"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::fs::write(dir.join("cgroup.procs"), child.id().to_string()).unwrap();
        drop(child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut fired = false;
        while !fired && Instant::now() < deadline {
            fired = ev.take();
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        drop(ev);
        let mut gone = false;
        for _ in 0..200 {
            if std::fs::remove_dir(&dir).is_ok() {
                gone = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(fired, "no OOM notification in 20 s");
        assert!(gone, "{} not removed", dir.display());
    }
}

//! OOM kills per container, counted from each container cgroup's
//! memory.events `oom_kill` (memory.oom_control's on cgroup v1).
//!
//! The count must be read while the cgroup exists. Under the systemd driver
//! systemd removes a container's scope (and its memory.events) as soon as
//! the last process has exited, often before the exit is handled (runc and
//! conmon lose OOM kills to the same race). So the count is read at three
//! moments: when the kernel notifies a change of memory.events (inotify, on
//! the "oom" thread; on cgroup v1 an eventfd on memory.oom_control), once a
//! second as a fallback, and by the reaper right
//! after it has reaped an init, before anything else: the kernel counts the
//! kill before the victim can exit.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use libcontainer::cgroups::Cgroup;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use crate::oom_v1::OomEvent;

/// One watched container.
#[derive(Debug)]
struct Entry {
    cgroup: Cgroup,
    /// Its inotify watch on memory.events (removed with the entry: a
    /// watch pins the file's inode until the shim exits otherwise).
    watch: Option<WatchDescriptor>,
    /// Its OOM eventfd on cgroup v1 (unregistered when dropped).
    event: Option<OomEvent>,
    /// Host pid of its init.
    init: i32,
    /// Highest oom_kill count read.
    counted: u64,
    /// Count already published.
    reported: u64,
}

impl Entry {
    /// Read the count now (a cgroup already removed keeps the last count).
    fn refresh(&mut self) {
        self.counted = self.counted.max(self.cgroup.oom_kills());
    }
}

/// The OOM counters of the shim's containers, behind a lock of their own
/// (the reaper must never wait for the task lock).
#[derive(Debug)]
pub struct OomWatch {
    inotify: Option<Inotify>,
    /// Waits for the inotify fd and the v1 eventfds at once.
    epoll: Option<Epoll>,
    entries: Mutex<HashMap<String, Entry>>,
}

impl OomWatch {
    /// A watch with no containers (without inotify if it cannot be had:
    /// then only the periodic and exit-time reads count).
    pub fn new() -> Self {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok();
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .ok()
            .filter(|ep| {
                inotify
                    .as_ref()
                    .is_none_or(|w| ep.add(w, EpollEvent::new(EpollFlags::EPOLLIN, 0)).is_ok())
            });
        OomWatch {
            inotify,
            epoll,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start counting for container `id` (init pid `init`); kills before
    /// now are not reported.
    pub fn add(&self, id: &str, init: i32, cgroup: &Cgroup) {
        // cgroup v1 has no memory.events: its count is read at the reap.
        let events = cgroup.v2().map(|c| c.dir.join("memory.events"));
        let watch = self.inotify.as_ref().zip(events).and_then(|(w, file)| {
            w.add_watch(&file, AddWatchFlags::IN_MODIFY)
                .map_err(|e| log::warn!("watch {}: {e}", file.display()))
                .ok()
        });
        let event = match (cgroup, &self.epoll) {
            (Cgroup::V1(c), Some(ep)) => c.dir("memory").and_then(|dir| {
                OomEvent::register(dir)
                    .and_then(|ev| {
                        ep.add(&ev, EpollEvent::new(EpollFlags::EPOLLIN, 1))?;
                        Ok(ev)
                    })
                    .map_err(|e| log::warn!("OOM eventfd on {}: {e}", dir.display()))
                    .ok()
            }),
            _ => None,
        };
        let counted = cgroup.oom_kills();
        let e = Entry {
            cgroup: cgroup.clone(),
            watch,
            event,
            init,
            counted,
            reported: counted,
        };
        self.lock().insert(id.to_string(), e);
    }

    /// Stop counting for container `id`.
    pub fn remove(&self, id: &str) {
        let watch = self.lock().remove(id).and_then(|e| e.watch);
        if let (Some(w), Some(wd)) = (&self.inotify, watch) {
            // Fails only if the kernel dropped it already (file gone).
            let _ = w.rm_watch(wd);
        }
    }

    /// `pid` was just reaped: if it was a container's init, read its count
    /// now, while its cgroup is most likely still there.
    pub fn reaped(&self, pid: i32) {
        if let Some(e) = self.lock().values_mut().find(|e| e.init == pid) {
            e.refresh();
        }
    }

    /// Kills of container `id` not yet published (read now as well), and
    /// mark them published.
    pub fn take_new(&self, id: &str) -> u64 {
        let mut g = self.lock();
        let Some(e) = g.get_mut(id) else {
            return 0;
        };
        e.refresh();
        let new = e.counted - e.reported;
        e.reported = e.counted;
        new
    }

    /// Block until a watched memory.events changes or a v1 eventfd fires
    /// (false: neither can be waited for here).
    pub fn wait_change(&self) -> bool {
        let Some(ep) = &self.epoll else {
            return false;
        };
        let mut ready = [EpollEvent::empty(); 4];
        match ep.wait(&mut ready, EpollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return false,
        }
        // Level-triggered: empty everything so the next wait blocks.
        if let Some(w) = &self.inotify {
            while w.read_events().is_ok_and(|e| !e.is_empty()) {}
        }
        for e in self.lock().values() {
            if let Some(ev) = &e.event {
                ev.take();
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_survive_the_cgroup_and_are_reported_once() {
        let dir = std::env::temp_dir().join(format!("skiff-oom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let events = dir.join("memory.events");
        std::fs::write(&events, "oom 0\noom_kill 1\n").unwrap();
        let w = OomWatch::new();
        w.add(
            "c",
            42,
            &Cgroup::V2(libcontainer::cgroups::v2::Cgroup { dir: dir.clone() }),
        );
        assert_eq!(w.take_new("c"), 0, "kills before add are not new");
        std::fs::write(&events, "oom 2\noom_kill 3\n").unwrap();
        w.reaped(41);
        w.reaped(42);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            w.take_new("c"),
            2,
            "read at the reap, after the cgroup went"
        );
        assert_eq!(w.take_new("c"), 0);
        w.remove("c");
        assert_eq!(w.take_new("c"), 0);
    }
}

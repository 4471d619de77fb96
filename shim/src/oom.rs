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
//!
//! Even so systemd often wins: the kernel tells it at once that the scope
//! is empty, while the change of memory.events may reach us up to 10 ms
//! late (cgroup file notifications are rate-limited, and the memory limit
//! being hit just before the kill notified already). So on cgroup v2 each
//! container also keeps the count of its parent cgroup (the pod's slice),
//! which counts the kills of all below it and stays: an init killed by
//! SIGKILL (not sent by the shim) whose cgroup is gone before it could be
//! read gets the parent's kills that no other container of this shim
//! accounts for (kept since it was added).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use libcontainer::cgroups::{v2, Cgroup};
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
    /// Highest oom_kill count read (or given from the parent's).
    counted: u64,
    /// Count already published.
    reported: u64,
    /// Count when it was added.
    start: u64,
    /// Its parent cgroup (cgroup v2), and the parent's kills that no
    /// container accounted for when it was added.
    parent: Option<(PathBuf, u64)>,
    /// The shim sent its init SIGKILL.
    sigkilled: bool,
}

impl Entry {
    /// Read the count now (a cgroup already removed keeps the last count).
    fn refresh(&mut self) {
        self.counted = self.counted.max(self.cgroup.oom_kills());
    }

    /// Kills counted for it since it was added.
    fn kills(&self) -> u64 {
        self.counted - self.start
    }
}

/// The watched containers, and per parent cgroup the kills of containers
/// no longer watched.
#[derive(Debug, Default)]
struct Table {
    entries: HashMap<String, Entry>,
    retired: HashMap<PathBuf, u64>,
}

impl Table {
    /// The kills `parent` counted that no container below it, watched or
    /// removed, accounts for.
    fn unaccounted(&self, parent: &Path) -> u64 {
        let mine: u64 = self
            .entries
            .values()
            .filter(|e| e.parent.as_ref().is_some_and(|(p, _)| p == parent))
            .map(Entry::kills)
            .sum();
        let retired = self.retired.get(parent).copied().unwrap_or(0);
        let total = v2::Cgroup {
            dir: parent.to_path_buf(),
        }
        .oom_kills();
        total.saturating_sub(mine + retired)
    }
}

/// The OOM counters of the shim's containers, behind a lock of their own
/// (the reaper must never wait for the task lock).
#[derive(Debug)]
pub struct OomWatch {
    inotify: Option<Inotify>,
    /// Waits for the inotify fd and the v1 eventfds at once.
    epoll: Option<Epoll>,
    table: Mutex<Table>,
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
            table: Mutex::new(Table::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
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
        let mut t = self.lock();
        let parent = cgroup
            .v2()
            .and_then(|c| c.dir.parent())
            .map(|p| (p.to_path_buf(), t.unaccounted(p)));
        let e = Entry {
            cgroup: cgroup.clone(),
            watch,
            event,
            init,
            counted,
            reported: counted,
            start: counted,
            parent,
            sigkilled: false,
        };
        t.entries.insert(id.to_string(), e);
    }

    /// The shim sent SIGKILL to container `id`'s init: its exit by SIGKILL
    /// is no sign of an OOM kill.
    pub fn sigkilled(&self, id: &str) {
        if let Some(e) = self.lock().entries.get_mut(id) {
            e.sigkilled = true;
        }
    }

    /// Stop counting for container `id`.
    pub fn remove(&self, id: &str) {
        let mut t = self.lock();
        let gone = t.entries.remove(id);
        if let Some(e) = &gone {
            if let Some((p, _)) = &e.parent {
                *t.retired.entry(p.clone()).or_default() += e.kills();
            }
        }
        drop(t);
        let watch = gone.and_then(|e| e.watch);
        if let (Some(w), Some(wd)) = (&self.inotify, watch) {
            // Fails only if the kernel dropped it already (file gone).
            let _ = w.rm_watch(wd);
        }
    }

    /// `pid` was just reaped with status `code` (128 + signal when killed):
    /// if it was a container's init, read its count now, while its cgroup
    /// is most likely still there; if it is gone already, an init killed
    /// by SIGKILL that the shim did not send gets the parent's kills no
    /// container accounts for.
    pub fn reaped(&self, pid: i32, code: i32) {
        let mut t = self.lock();
        let Some(id) = t
            .entries
            .iter()
            .find(|(_, e)| e.init == pid)
            .map(|(id, _)| id.clone())
        else {
            return;
        };
        let Some(e) = t.entries.get_mut(&id) else {
            return;
        };
        e.refresh();
        let gone = e.cgroup.v2().is_some_and(|c| !c.dir.exists());
        if !gone || code != 128 + libc::SIGKILL || e.sigkilled || e.kills() > 0 {
            return;
        }
        let Some((parent, base)) = e.parent.clone() else {
            return;
        };
        let new = t.unaccounted(&parent).saturating_sub(base);
        if new > 0 {
            if let Some(e) = t.entries.get_mut(&id) {
                e.counted += new;
            }
        }
    }

    /// Kills of container `id` not yet published (read now as well), and
    /// mark them published.
    pub fn take_new(&self, id: &str) -> u64 {
        let mut g = self.lock();
        let Some(e) = g.entries.get_mut(id) else {
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
        for e in self.lock().entries.values() {
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
        w.reaped(41, 0);
        w.reaped(42, 137);
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

    /// A pod slice with memory.events and a child cgroup per container.
    fn pod(name: &str, kids: &[&str]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("skiff-oom-{name}-{}", std::process::id()));
        for k in kids {
            std::fs::create_dir_all(dir.join(k)).unwrap();
            std::fs::write(dir.join(k).join("memory.events"), "oom_kill 0\n").unwrap();
        }
        std::fs::write(dir.join("memory.events"), "oom_kill 0\n").unwrap();
        dir
    }

    fn v2(dir: PathBuf) -> Cgroup {
        Cgroup::V2(libcontainer::cgroups::v2::Cgroup { dir })
    }

    #[test]
    fn a_kill_whose_cgroup_went_first_is_found_in_the_parent() {
        let dir = pod("parent", &["a", "b"]);
        let w = OomWatch::new();
        w.add("a", 10, &v2(dir.join("a")));
        w.add("b", 11, &v2(dir.join("b")));
        // b's kill is read from its own file; a's cgroup is gone before
        // its kill could be read: the parent counts both.
        std::fs::write(dir.join("b/memory.events"), "oom_kill 1\n").unwrap();
        std::fs::write(dir.join("memory.events"), "oom_kill 2\n").unwrap();
        assert_eq!(w.take_new("b"), 1);
        std::fs::remove_dir_all(dir.join("a")).unwrap();
        w.reaped(10, 137);
        assert_eq!(w.take_new("a"), 1, "the parent's kill no one accounts for");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_kill_is_made_up() {
        let dir = pod("none", &["a", "b", "c"]);
        let w = OomWatch::new();
        // A kill below the parent before a was added is not a's.
        std::fs::write(dir.join("memory.events"), "oom_kill 1\n").unwrap();
        w.add("a", 10, &v2(dir.join("a")));
        w.add("b", 11, &v2(dir.join("b")));
        w.add("c", 12, &v2(dir.join("c")));
        std::fs::write(dir.join("memory.events"), "oom_kill 2\n").unwrap();
        std::fs::remove_dir_all(dir.join("a")).unwrap();
        std::fs::remove_dir_all(dir.join("b")).unwrap();
        std::fs::remove_dir_all(dir.join("c")).unwrap();
        // b exited by a signal other than SIGKILL, c by the shim's SIGKILL.
        w.sigkilled("c");
        w.reaped(11, 128 + 15);
        w.reaped(12, 137);
        assert_eq!((w.take_new("b"), w.take_new("c")), (0, 0));
        // a was SIGKILLed by the kernel: the one new kill is its.
        w.reaped(10, 137);
        assert_eq!(w.take_new("a"), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

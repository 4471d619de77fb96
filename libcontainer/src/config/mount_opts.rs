//! Turning a mount's `options` list into mount flags, propagation, recursive
//! attributes and the data string, the way runc reads them.

use nix::mount::MsFlags;

use crate::sys;

/// A propagation change applied after the mount is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// `private` / `rprivate`.
    Private,
    /// `shared` / `rshared`.
    Shared,
    /// `slave` / `rslave`.
    Slave,
    /// `unbindable` / `runbindable`.
    Unbindable,
}

/// The parsed form of one mount's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for mount(2), or to set on a bind mount.
    pub flags: MsFlags,
    /// `bind` or `rbind` was given.
    pub bind: bool,
    /// `rbind`: the bind is recursive.
    pub recursive_bind: bool,
    /// Propagation changes, with whether each is recursive.
    pub propagation: Vec<(Propagation, bool)>,
    /// `MOUNT_ATTR_*` to set on the whole tree (`rro`, `rnosuid`, ...).
    pub rec_set: u64,
    /// `MOUNT_ATTR_*` to clear on the whole tree (`rrw`, `rsuid`, ...).
    pub rec_clr: u64,
    /// Everything else, joined by commas, passed as mount data.
    pub data: String,
    /// `idmap` (false) or `ridmap` (true): an idmapped bind mount.
    pub idmap: Option<bool>,
}

/// `MS_NOSYMFOLLOW` (Linux 5.10), which nix does not name.
const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(256);

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            bind: false,
            recursive_bind: false,
            propagation: Vec::new(),
            rec_set: 0,
            rec_clr: 0,
            data: String::new(),
            idmap: None,
        }
    }
}

impl MountOptions {
    /// Parse a mount's `options`.
    pub fn parse(options: &[String]) -> MountOptions {
        let mut o = MountOptions::default();
        let mut data = Vec::new();
        for opt in options {
            if let Some((set, flag)) = flag_of(opt) {
                if set {
                    o.flags |= flag;
                } else {
                    o.flags &= !flag;
                }
                continue;
            }
            if let Some(p) = propagation_of(opt) {
                o.propagation.push(p);
                continue;
            }
            if let Some((set, attr)) = rec_attr_of(opt) {
                if set {
                    o.rec_set |= attr;
                    o.rec_clr &= !attr;
                } else {
                    o.rec_clr |= attr;
                    o.rec_set &= !attr;
                }
                continue;
            }
            match opt.as_str() {
                "bind" => o.bind = true,
                "rbind" => {
                    o.bind = true;
                    o.recursive_bind = true;
                }
                "idmap" => o.idmap = Some(false),
                "ridmap" => o.idmap = Some(true),
                // runc-specific or handled elsewhere: not passed to the kernel.
                "tmpcopyup" | "defaults" => {}
                _ => data.push(opt.as_str()),
            }
        }
        o.data = data.join(",");
        o
    }

    /// The flags as mount_setattr(2) attributes, for bind mounts.
    pub fn attrs(&self) -> u64 {
        let f = self.flags;
        let mut a = 0;
        for (flag, attr) in [
            (MsFlags::MS_RDONLY, sys::MOUNT_ATTR_RDONLY),
            (MsFlags::MS_NOSUID, sys::MOUNT_ATTR_NOSUID),
            (MsFlags::MS_NODEV, sys::MOUNT_ATTR_NODEV),
            (MsFlags::MS_NOEXEC, sys::MOUNT_ATTR_NOEXEC),
            (MsFlags::MS_NOATIME, sys::MOUNT_ATTR_NOATIME),
            (MsFlags::MS_STRICTATIME, sys::MOUNT_ATTR_STRICTATIME),
            (MsFlags::MS_NODIRATIME, sys::MOUNT_ATTR_NODIRATIME),
            (MS_NOSYMFOLLOW, sys::MOUNT_ATTR_NOSYMFOLLOW),
        ] {
            if f.contains(flag) {
                a |= attr;
            }
        }
        a
    }
}

fn flag_of(opt: &str) -> Option<(bool, MsFlags)> {
    Some(match opt {
        "ro" => (true, MsFlags::MS_RDONLY),
        "rw" => (false, MsFlags::MS_RDONLY),
        "nosuid" => (true, MsFlags::MS_NOSUID),
        "suid" => (false, MsFlags::MS_NOSUID),
        "nodev" => (true, MsFlags::MS_NODEV),
        "dev" => (false, MsFlags::MS_NODEV),
        "noexec" => (true, MsFlags::MS_NOEXEC),
        "exec" => (false, MsFlags::MS_NOEXEC),
        "sync" => (true, MsFlags::MS_SYNCHRONOUS),
        "async" => (false, MsFlags::MS_SYNCHRONOUS),
        "dirsync" => (true, MsFlags::MS_DIRSYNC),
        "remount" => (true, MsFlags::MS_REMOUNT),
        "mand" => (true, MsFlags::MS_MANDLOCK),
        "nomand" => (false, MsFlags::MS_MANDLOCK),
        "noatime" => (true, MsFlags::MS_NOATIME),
        "atime" => (false, MsFlags::MS_NOATIME),
        "nodiratime" => (true, MsFlags::MS_NODIRATIME),
        "diratime" => (false, MsFlags::MS_NODIRATIME),
        "relatime" => (true, MsFlags::MS_RELATIME),
        "norelatime" => (false, MsFlags::MS_RELATIME),
        "strictatime" => (true, MsFlags::MS_STRICTATIME),
        "nostrictatime" => (false, MsFlags::MS_STRICTATIME),
        "nosymfollow" => (true, MS_NOSYMFOLLOW),
        "symfollow" => (false, MS_NOSYMFOLLOW),
        _ => return None,
    })
}

fn propagation_of(opt: &str) -> Option<(Propagation, bool)> {
    Some(match opt {
        "private" => (Propagation::Private, false),
        "rprivate" => (Propagation::Private, true),
        "shared" => (Propagation::Shared, false),
        "rshared" => (Propagation::Shared, true),
        "slave" => (Propagation::Slave, false),
        "rslave" => (Propagation::Slave, true),
        "unbindable" => (Propagation::Unbindable, false),
        "runbindable" => (Propagation::Unbindable, true),
        _ => return None,
    })
}

fn rec_attr_of(opt: &str) -> Option<(bool, u64)> {
    Some(match opt {
        "rro" => (true, sys::MOUNT_ATTR_RDONLY),
        "rrw" => (false, sys::MOUNT_ATTR_RDONLY),
        "rnosuid" => (true, sys::MOUNT_ATTR_NOSUID),
        "rsuid" => (false, sys::MOUNT_ATTR_NOSUID),
        "rnodev" => (true, sys::MOUNT_ATTR_NODEV),
        "rdev" => (false, sys::MOUNT_ATTR_NODEV),
        "rnoexec" => (true, sys::MOUNT_ATTR_NOEXEC),
        "rexec" => (false, sys::MOUNT_ATTR_NOEXEC),
        "rnoatime" => (true, sys::MOUNT_ATTR_NOATIME),
        "rstrictatime" => (true, sys::MOUNT_ATTR_STRICTATIME),
        "rnodiratime" => (true, sys::MOUNT_ATTR_NODIRATIME),
        "rdiratime" => (false, sys::MOUNT_ATTR_NODIRATIME),
        "rnosymfollow" => (true, sys::MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => (false, sys::MOUNT_ATTR_NOSYMFOLLOW),
        _ => return None,
    })
}

/// The option names skiff understands, for `skiff features`.
pub fn known_options() -> Vec<&'static str> {
    vec![
        "async",
        "atime",
        "bind",
        "defaults",
        "dev",
        "diratime",
        "dirsync",
        "exec",
        "idmap",
        "mand",
        "noatime",
        "nodev",
        "nodiratime",
        "noexec",
        "nomand",
        "norelatime",
        "nostrictatime",
        "nosuid",
        "nosymfollow",
        "private",
        "rbind",
        "rdev",
        "rdiratime",
        "relatime",
        "remount",
        "rexec",
        "ridmap",
        "rnoatime",
        "rnodev",
        "rnodiratime",
        "rnoexec",
        "rnosuid",
        "rnosymfollow",
        "ro",
        "rprivate",
        "rro",
        "rrw",
        "rshared",
        "rslave",
        "rstrictatime",
        "rsuid",
        "rsymfollow",
        "runbindable",
        "rw",
        "shared",
        "slave",
        "strictatime",
        "suid",
        "symfollow",
        "sync",
        "tmpcopyup",
        "unbindable",
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> MountOptions {
        MountOptions::parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_and_data() {
        let o = p(&["nosuid", "noexec", "nodev", "mode=755", "size=65536k"]);
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV
        );
        assert_eq!(o.data, "mode=755,size=65536k");
        assert!(!o.bind);
    }

    #[test]
    fn later_options_win() {
        assert_eq!(p(&["ro", "rw"]).flags, MsFlags::empty());
        assert_eq!(p(&["rw", "ro"]).flags, MsFlags::MS_RDONLY);
    }

    #[test]
    fn binds_and_propagation() {
        let o = p(&["rbind", "rprivate", "ro"]);
        assert!(o.bind && o.recursive_bind);
        assert_eq!(o.propagation, vec![(Propagation::Private, true)]);
        assert_eq!(o.attrs(), sys::MOUNT_ATTR_RDONLY);
        let o = p(&["bind", "slave"]);
        assert!(o.bind && !o.recursive_bind);
        assert_eq!(o.propagation, vec![(Propagation::Slave, false)]);
    }

    #[test]
    fn recursive_attrs() {
        let o = p(&["rbind", "rro", "rnosuid", "rrw"]);
        assert_eq!(o.rec_set, sys::MOUNT_ATTR_NOSUID);
        assert_eq!(o.rec_clr, sys::MOUNT_ATTR_RDONLY);
        assert!(o.data.is_empty());
    }

    #[test]
    fn every_known_option_is_consumed() {
        for opt in known_options() {
            assert!(p(&[opt]).data.is_empty(), "{opt} leaked into data");
        }
    }
}

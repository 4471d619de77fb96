//! The v1 devices controller: devices.allow / devices.deny lists.
//!
//! The rules are folded into the state the kernel would reach (a default
//! plus exceptions), and only the difference from the current
//! `devices.list` is written, as runc's transition does: updating a running
//! container never takes away, even for a moment, a device it keeps.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::{Error, Result};

/// A device rule's target: type (`a`, `b`, `c`), major and minor (`None`
/// for `*`).
pub type Key = (char, Option<i64>, Option<i64>);

/// What a devices cgroup allows: a default and the exceptions to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emulated {
    /// Everything allowed unless excepted (else everything denied).
    pub allow_default: bool,
    /// Exceptions to the default, with their access (`r`, `w`, `m`).
    pub exceptions: BTreeMap<Key, BTreeSet<char>>,
}

fn type_char(t: Option<LinuxDeviceType>) -> char {
    match t {
        Some(LinuxDeviceType::B) => 'b',
        Some(LinuxDeviceType::C | LinuxDeviceType::U) => 'c',
        Some(LinuxDeviceType::P) => 'p',
        Some(LinuxDeviceType::A) | None => 'a',
    }
}

fn access(a: Option<&str>) -> BTreeSet<char> {
    let a = a.filter(|a| !a.is_empty()).unwrap_or("rwm");
    a.chars().filter(|c| "rwm".contains(*c)).collect()
}

impl Emulated {
    /// Apply one rule the way the kernel applies a write to devices.allow
    /// (`allow`) or devices.deny.
    fn apply(&mut self, allow: bool, key: Key, acc: &BTreeSet<char>) {
        if key.0 == 'a' {
            self.allow_default = allow;
            self.exceptions.clear();
        } else if allow == self.allow_default {
            if let Some(cur) = self.exceptions.get_mut(&key) {
                cur.retain(|c| !acc.contains(c));
                if cur.is_empty() {
                    self.exceptions.remove(&key);
                }
            }
        } else {
            self.exceptions.entry(key).or_default().extend(acc);
        }
    }

    /// The state `rules` lead to, from a cgroup that allows everything.
    pub fn from_rules(rules: &[LinuxDeviceCgroup]) -> Emulated {
        let mut e = Emulated {
            allow_default: true,
            exceptions: BTreeMap::new(),
        };
        for r in rules {
            let key = (type_char(r.typ()), r.major(), r.minor());
            e.apply(r.allow(), key, &access(r.access().as_deref()));
        }
        e
    }

    /// Parse `devices.list`. A cgroup that allows everything shows only
    /// `a *:* rwm`; its exceptions cannot be seen.
    pub fn from_list(text: &str) -> Emulated {
        let mut e = Emulated {
            allow_default: false,
            exceptions: BTreeMap::new(),
        };
        for line in text.lines() {
            let mut f = line.split_whitespace();
            let (Some(t), Some(mm), Some(acc)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let Some(t) = t.chars().next() else { continue };
            if t == 'a' {
                e.allow_default = true;
                e.exceptions.clear();
                return e;
            }
            let num = |s: &str| if s == "*" { None } else { s.parse().ok() };
            let Some((ma, mi)) = mm.split_once(':') else {
                continue;
            };
            e.exceptions
                .entry((t, num(ma), num(mi)))
                .or_default()
                .extend(acc.chars());
        }
        e
    }
}

fn line(key: &Key, acc: &BTreeSet<char>) -> String {
    let n = |v: Option<i64>| v.map_or("*".to_string(), |v| v.to_string());
    let acc: String = "rwm".chars().filter(|c| acc.contains(c)).collect();
    format!("{} {}:{} {acc}", key.0, n(key.1), n(key.2))
}

/// The writes, as (file, line), that take a cgroup from `cur` to `want`.
pub fn transition(cur: &Emulated, want: &Emulated) -> Vec<(&'static str, String)> {
    let file = |allow: bool| {
        if allow {
            "devices.allow"
        } else {
            "devices.deny"
        }
    };
    let mut out = Vec::new();
    let reset = cur.allow_default || cur.allow_default != want.allow_default;
    if reset {
        out.push((file(want.allow_default), "a".to_string()));
    } else {
        for (k, acc) in &cur.exceptions {
            let gone: BTreeSet<char> = match want.exceptions.get(k) {
                Some(w) => acc.difference(w).copied().collect(),
                None => acc.clone(),
            };
            if !gone.is_empty() {
                out.push((file(want.allow_default), line(k, &gone)));
            }
        }
    }
    for (k, acc) in &want.exceptions {
        let new: BTreeSet<char> = match cur.exceptions.get(k).filter(|_| !reset) {
            Some(c) => acc.difference(c).copied().collect(),
            None => acc.clone(),
        };
        if !new.is_empty() {
            out.push((file(!want.allow_default), line(k, &new)));
        }
    }
    out
}

/// Bring the devices cgroup `dir` to what `rules` allow.
pub fn apply(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let list = dir.join("devices.list");
    let text = fs::read_to_string(&list).map_err(|e| Error::Io {
        path: list,
        source: e,
    })?;
    let cur = Emulated::from_list(&text);
    let want = Emulated::from_rules(rules);
    // The kernel takes one rule per write(2), not per open: each file is
    // opened once (a default container has ~15 rules; an open of a
    // cgroup file walks the whole path).
    let mut open: Vec<(&str, fs::File)> = Vec::new();
    for (file, v) in transition(&cur, &want) {
        let p = dir.join(file);
        let fail = |e: std::io::Error| Error::Invalid {
            field: "linux.resources.devices".into(),
            msg: format!("write {v:?} to {}: {e}", p.display()),
        };
        let i = match open.iter().position(|(f, _)| *f == file) {
            Some(i) => i,
            None => {
                open.push((
                    file,
                    fs::OpenOptions::new().write(true).open(&p).map_err(fail)?,
                ));
                open.len() - 1
            }
        };
        open[i].1.write_all(v.as_bytes()).map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        t: &str,
        major: Option<i64>,
        minor: Option<i64>,
        a: &str,
    ) -> LinuxDeviceCgroup {
        serde_json::from_value(serde_json::json!({
            "allow": allow, "type": t, "major": major, "minor": minor, "access": a
        }))
        .unwrap()
    }

    #[test]
    fn from_allow_all_resets_then_allows() {
        let cur = Emulated::from_list("a *:* rwm\n");
        let want = Emulated::from_rules(&[
            rule(false, "a", None, None, "rwm"),
            rule(true, "c", Some(1), Some(3), "rwm"),
            rule(true, "c", None, None, "m"),
        ]);
        assert_eq!(
            transition(&cur, &want),
            [
                ("devices.deny", "a".to_string()),
                ("devices.allow", "c *:* m".to_string()),
                ("devices.allow", "c 1:3 rwm".to_string()),
            ]
        );
    }

    #[test]
    fn update_writes_only_the_difference() {
        let cur = Emulated::from_list("c 1:3 rwm\nc 1:5 rwm\nc 10:200 rwm\n");
        let want = Emulated::from_rules(&[
            rule(false, "a", None, None, "rwm"),
            rule(true, "c", Some(1), Some(3), "rwm"),
            rule(true, "c", Some(1), Some(5), "rw"),
            rule(true, "c", Some(1), Some(7), "rwm"),
        ]);
        assert_eq!(
            transition(&cur, &want),
            [
                ("devices.deny", "c 1:5 m".to_string()),
                ("devices.deny", "c 10:200 rwm".to_string()),
                ("devices.allow", "c 1:7 rwm".to_string()),
            ]
        );
        assert!(transition(&want, &want).is_empty());
    }

    #[test]
    fn later_rules_override_earlier_ones() {
        let e = Emulated::from_rules(&[
            rule(false, "a", None, None, "rwm"),
            rule(true, "c", Some(1), Some(3), "rwm"),
            rule(false, "c", Some(1), Some(3), "w"),
        ]);
        assert!(!e.allow_default);
        assert_eq!(
            e.exceptions.get(&('c', Some(1), Some(3))),
            Some(&"mr".chars().collect())
        );
        let all = Emulated::from_rules(&[rule(true, "a", None, None, "rwm")]);
        assert!(all.allow_default && all.exceptions.is_empty());
    }
}

//! Device rules as systemd unit properties (cgroup v1 hosts): with the
//! rules only in devices.allow/deny, systemd would put back its own policy
//! (allow all) whenever it re-applies the scope's properties, e.g. on a
//! `systemctl daemon-reload`. As runc does: `DevicePolicy=strict` and one
//! `DeviceAllow` entry per allowed device or device group.

use oci_spec::runtime::LinuxDeviceCgroup;

use super::props::{Prop, Props};
use crate::cgroups::v1::devices::{Emulated, Key};

/// The group name /proc/devices gives `major` of type `t` (`c` or `b`).
fn group_name(proc_devices: &str, t: char, major: i64) -> Option<String> {
    let section = if t == 'b' {
        "Block devices:"
    } else {
        "Character devices:"
    };
    proc_devices
        .lines()
        .skip_while(|l| l.trim() != section)
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| {
            let (num, name) = l.trim().split_once(' ')?;
            (num.parse::<i64>().ok()? == major).then(|| name.trim().to_string())
        })
}

/// The DeviceAllow entry for one exception, if systemd can express it.
fn entry(key: &Key, proc_devices: &str) -> Option<String> {
    let (t, major, minor) = *key;
    let kind = match t {
        'b' => "block",
        'c' => "char",
        _ => return None,
    };
    match (major, minor) {
        (None, None) => Some(format!("{kind}-*")),
        (Some(ma), Some(mi)) => Some(format!("/dev/{kind}/{ma}:{mi}")),
        (Some(ma), None) => group_name(proc_devices, t, ma).map(|g| format!("{kind}-{g}")),
        (None, Some(_)) => None,
    }
}

/// The properties for `rules` (the whole list, default deny first), given
/// the text of /proc/devices. Rules systemd cannot express are left to the
/// devices files, with a warning.
pub(super) fn device_props(rules: &[LinuxDeviceCgroup], proc_devices: &str) -> Props {
    let want = Emulated::from_rules(rules);
    if want.allow_default {
        return vec![("DevicePolicy", Prop::Str("auto".into()))];
    }
    let mut allow = Vec::new();
    for (key, acc) in &want.exceptions {
        let perms: String = "rwm".chars().filter(|c| acc.contains(c)).collect();
        match entry(key, proc_devices) {
            Some(path) => allow.push((path, perms)),
            None => tracing::warn!(
                "systemd cannot express the device rule {key:?} {perms}: it stays in devices.allow only"
            ),
        }
    }
    vec![
        ("DevicePolicy", Prop::Str("strict".into())),
        ("DeviceAllow", Prop::Devices(allow)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC_DEVICES: &str = "Character devices:\n  1 mem\n  5 /dev/tty\n136 pts\n\nBlock devices:\n  8 sd\n259 blkext\n";

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
    fn deny_all_then_allows_become_strict_entries() {
        let props = device_props(
            &[
                rule(false, "a", None, None, "rwm"),
                rule(true, "c", None, None, "m"),
                rule(true, "c", Some(1), Some(3), "rwm"),
                rule(true, "c", Some(136), None, "rw"),
                rule(true, "b", Some(8), None, "r"),
                rule(true, "c", Some(99), None, "r"),
                rule(true, "c", None, Some(4), "r"),
            ],
            PROC_DEVICES,
        );
        assert_eq!(props[0], ("DevicePolicy", Prop::Str("strict".into())));
        let Prop::Devices(list) = &props[1].1 else {
            panic!("{props:?}")
        };
        let list: Vec<(&str, &str)> = list.iter().map(|(p, a)| (p.as_str(), a.as_str())).collect();
        assert_eq!(
            list,
            [
                ("block-sd", "r"),
                ("char-*", "m"),
                ("/dev/char/1:3", "rwm"),
                ("char-pts", "rw"),
            ]
        );
    }

    #[test]
    fn allow_all_is_auto() {
        let props = device_props(&[rule(true, "a", None, None, "rwm")], PROC_DEVICES);
        assert_eq!(props, [("DevicePolicy", Prop::Str("auto".into()))]);
        assert_eq!(
            group_name(PROC_DEVICES, 'c', 5).as_deref(),
            Some("/dev/tty")
        );
        assert_eq!(
            group_name(PROC_DEVICES, 'b', 259).as_deref(),
            Some("blkext")
        );
        assert_eq!(group_name(PROC_DEVICES, 'b', 136), None);
    }
}

//! Users and groups as the container sees them: parsing its /etc/passwd and
//! /etc/group, and resolving `uid[:gid]` or names the way runc does.

use crate::error::{Error, Result};

/// One /etc/passwd entry (the fields skiff needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: String,
}

/// One /etc/group entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    /// Group name.
    pub name: String,
    /// Group id.
    pub gid: u32,
    /// Member login names.
    pub members: Vec<String>,
}

/// Parse /etc/passwd text, skipping malformed lines.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 || l.starts_with('#') {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
            })
        })
        .collect()
}

/// Parse /etc/group text, skipping malformed lines.
pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 || l.starts_with('#') {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// The user a container process runs as, fully resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary groups.
    pub sgids: Vec<u32>,
    /// Home directory, for HOME when the env has none.
    pub home: String,
}

/// Resolve a `user[:group]` spec, where each part is a name or a number,
/// against the container's passwd and group files (runc's GetExecUser).
///
/// Supplementary groups are the groups listing the user as a member, unless
/// a group was named explicitly.
pub fn resolve(spec: &str, passwd: &[PasswdEntry], groups: &[GroupEntry]) -> Result<ExecUser> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = match u.parse::<u32>() {
        Ok(uid) => passwd.iter().find(|p| p.uid == uid),
        Err(_) => Some(
            passwd
                .iter()
                .find(|p| p.name == u)
                .ok_or_else(|| Error::NoUser {
                    what: "user",
                    name: u.to_string(),
                    file: "/etc/passwd",
                })?,
        ),
    };
    let uid = match (u.parse::<u32>(), entry) {
        (Ok(uid), _) => uid,
        (Err(_), Some(e)) => e.uid,
        (Err(_), None) => unreachable!("a named user without entry returned above"),
    };
    let home = entry.map_or_else(|| "/".to_string(), |e| e.home.clone());
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                groups
                    .iter()
                    .find(|e| e.name == g)
                    .ok_or_else(|| Error::NoUser {
                        what: "group",
                        name: g.to_string(),
                        file: "/etc/group",
                    })?
                    .gid
            }
        },
        None => entry.map_or(0, |e| e.gid),
    };
    let sgids = match (g, entry) {
        (None, Some(e)) => groups
            .iter()
            .filter(|gr| gr.members.contains(&e.name))
            .map(|gr| gr.gid)
            .collect(),
        _ => Vec::new(),
    };
    Ok(ExecUser {
        uid,
        gid,
        sgids,
        home,
    })
}

/// Resolve extra group names or numbers (`exec --additional-gids`).
pub fn resolve_groups(names: &[String], groups: &[GroupEntry]) -> Result<Vec<u32>> {
    names
        .iter()
        .map(|n| match n.parse::<u32>() {
            Ok(g) => Ok(g),
            Err(_) => groups
                .iter()
                .find(|e| e.name == *n)
                .map(|e| e.gid)
                .ok_or_else(|| Error::NoUser {
                    what: "group",
                    name: n.clone(),
                    file: "/etc/group",
                }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nbad line\n";
    const GROUP: &str = "root:x:0:\nalice:x:1000:\nextra:x:2000:alice,bob\n";

    #[test]
    fn by_name_and_number() {
        let (p, g) = (parse_passwd(PASSWD), parse_group(GROUP));
        assert_eq!(p.len(), 2);
        let u = resolve("alice", &p, &g).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.sgids.clone(), u.home.as_str()),
            (1000, 1000, vec![2000], "/home/alice")
        );
        let u = resolve("1000:extra", &p, &g).unwrap();
        assert_eq!((u.uid, u.gid, u.sgids.len()), (1000, 2000, 0));
        let u = resolve("4242", &p, &g).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
    }

    #[test]
    fn unknown_names_fail() {
        let (p, g) = (parse_passwd(PASSWD), parse_group(GROUP));
        let e = resolve("nosuch", &p, &g).unwrap_err().to_string();
        assert!(e.contains("nosuch") && e.contains("/etc/passwd"), "{e}");
        assert!(resolve("0:nogroup", &p, &g).is_err());
        assert_eq!(
            resolve_groups(&["extra".into(), "7".into()], &g).unwrap(),
            vec![2000, 7]
        );
    }
}

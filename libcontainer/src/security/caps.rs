//! Capabilities and the user switch, in the order the kernel needs:
//! bounding set, keep-caps, groups and ids, then the other four sets.

use std::str::FromStr;
use std::sync::OnceLock;

use caps::{CapSet, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::{Error, Result, SysContext};

/// The capabilities this kernel knows, probed once per process. The kernel
/// knows capabilities 0 to its last one and no other, and reading one past
/// that from the bounding set fails: a binary search over the numbers finds
/// the last in six prctls, where probing each took 41.
fn supported() -> &'static CapsHashSet {
    static SUPPORTED: OnceLock<CapsHashSet> = OnceLock::new();
    SUPPORTED.get_or_init(|| {
        let mut all: Vec<caps::Capability> = caps::all().into_iter().collect();
        all.sort_by_key(|c| c.index());
        let known = all.partition_point(|c| caps::has_cap(None, CapSet::Bounding, *c).is_ok());
        all.truncate(known);
        all.into_iter().collect()
    })
}

/// Convert an OCI capability set to the caps crate's, keeping only the
/// capabilities this kernel knows (runc ignores unknown ones too).
pub fn to_caps(set: Option<&Capabilities>) -> CapsHashSet {
    let supported = supported();
    set.into_iter()
        .flatten()
        .filter_map(|c| caps::Capability::from_str(&format!("CAP_{c}")).ok())
        .filter(|c| supported.contains(c))
        .collect()
}

/// The five resolved capability sets of a container process.
#[derive(Debug, Clone, Default)]
pub struct CapSets {
    bounding: CapsHashSet,
    effective: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
    ambient: CapsHashSet,
}

impl CapSets {
    /// Resolve the sets of `process.capabilities` (absent means no capabilities).
    pub fn new(c: Option<&LinuxCapabilities>) -> CapSets {
        let Some(c) = c else {
            return CapSets::default();
        };
        CapSets {
            bounding: to_caps(c.bounding().as_ref()),
            effective: to_caps(c.effective().as_ref()),
            permitted: to_caps(c.permitted().as_ref()),
            inheritable: to_caps(c.inheritable().as_ref()),
            ambient: to_caps(c.ambient().as_ref()),
        }
    }
}

fn caps_err(step: &str, e: caps::errors::CapsError) -> Error {
    Error::Child(format!("{step}: {e}"))
}

/// Drop every capability outside the bounding set. Done while still root.
pub fn drop_bounding(sets: &CapSets) -> Result<()> {
    for cap in supported() {
        if !sets.bounding.contains(cap) {
            caps::drop(None, CapSet::Bounding, *cap)
                .map_err(|e| caps_err("drop bounding capability", e))?;
        }
    }
    Ok(())
}

/// Switch to `uid`/`gid` with supplementary `groups`, keeping the permitted
/// capabilities across the switch, then install the four remaining sets.
pub fn switch_user(
    uid: u32,
    gid: u32,
    groups: &[u32],
    sets: &CapSets,
    setgroups_allowed: bool,
) -> Result<()> {
    use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
    nix::sys::prctl::set_keepcaps(true).step(|| "prctl(PR_SET_KEEPCAPS)".into())?;
    if setgroups_allowed {
        let gids: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
        setgroups(&gids).step(|| format!("setgroups {groups:?}"))?;
    }
    let g = Gid::from_raw(gid);
    setresgid(g, g, g).step(|| format!("setresgid {gid}"))?;
    let u = Uid::from_raw(uid);
    setresuid(u, u, u).step(|| format!("setresuid {uid}"))?;
    nix::sys::prctl::set_keepcaps(false).step(|| "prctl(PR_SET_KEEPCAPS)".into())?;
    // Inheritable first: it may only grow within the bounding set and permitted.
    caps::set(None, CapSet::Inheritable, &sets.inheritable)
        .map_err(|e| caps_err("set inheritable capabilities", e))?;
    // Effective before permitted: effective must stay a subset of permitted.
    caps::set(None, CapSet::Effective, &sets.effective)
        .map_err(|e| caps_err("set effective capabilities", e))?;
    caps::set(None, CapSet::Permitted, &sets.permitted)
        .map_err(|e| caps_err("set permitted capabilities", e))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| caps_err("clear ambient capabilities", e))?;
    for cap in &sets.ambient {
        // Like runc: an ambient capability that is not permitted and
        // inheritable is skipped, not an error.
        if sets.permitted.contains(cap) && sets.inheritable.contains(cap) {
            caps::raise(None, CapSet::Ambient, *cap)
                .map_err(|e| caps_err("raise ambient capability", e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_finds_what_probing_each_finds() {
        assert_eq!(supported(), &caps::runtime::thread_all_supported());
        assert!(supported().contains(&caps::Capability::CAP_CHOWN));
    }

    #[test]
    fn converts_names() {
        let set: Capabilities = serde_json::from_str(r#"["CAP_CHOWN","CAP_KILL"]"#).unwrap();
        let c = to_caps(Some(&set));
        assert!(c.contains(&caps::Capability::CAP_CHOWN));
        assert!(c.contains(&caps::Capability::CAP_KILL));
        assert_eq!(c.len(), 2);
    }
}

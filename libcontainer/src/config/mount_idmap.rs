//! The id mappings of a mount (`mounts[].uidMappings`/`gidMappings`, or the
//! `idmap`/`ridmap` options with the container's own mappings), checked
//! without touching the host.

use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};

use super::MountOptions;
use crate::error::{Error, Result};

/// uid mappings, gid mappings, and whether the whole tree is mapped.
pub type Maps<'a> = (&'a [LinuxIdMapping], &'a [LinuxIdMapping], bool);

/// The mappings mount `m` asks for, if any: its own, or the container's
/// with the `idmap`/`ridmap` options. Errors name the field.
pub fn mappings<'a>(spec: &'a Spec, idx: usize, m: &'a Mount) -> Result<Option<Maps<'a>>> {
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
    let own = (m.uid_mappings().as_deref(), m.gid_mappings().as_deref());
    let (uid, gid) = match own {
        (None, None) if opts.idmap.is_none() => return Ok(None),
        (None, None) => {
            let l = spec.linux().as_ref();
            (
                l.and_then(|l| l.uid_mappings().as_deref()),
                l.and_then(|l| l.gid_mappings().as_deref()),
            )
        }
        o => o,
    };
    let field = |f: &str| format!("mounts[{idx}].{f}");
    let bind = opts.bind || m.typ().as_deref() == Some("bind");
    if !bind {
        return Err(Error::Invalid {
            field: field("uidMappings"),
            msg: "id-mapped mounts must be bind mounts".into(),
        });
    }
    match (uid, gid) {
        (Some(u), Some(g)) if !u.is_empty() && !g.is_empty() => Ok(Some((
            u,
            g,
            opts.recursive_bind || opts.idmap == Some(true),
        ))),
        _ => Err(Error::Invalid {
            field: field("uidMappings"),
            msg: "an id-mapped mount needs both uidMappings and gidMappings".into(),
        }),
    }
}

/// Check every mount's id mappings (for validation before anything is built).
pub fn check(spec: &Spec) -> Result<()> {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        mappings(spec, i, m)?;
    }
    Ok(())
}

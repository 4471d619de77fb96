//! Per-process kernel attributes applied just before exec, in init and in
//! exec alike: personality, scheduler, I/O priority, NUMA memory policy and
//! the LSM labels (AppArmor profile, SELinux label).
//!
//! [`Attrs::resolve`] is pure: it validates the config (so `create` fails
//! before anything is built) and turns it into syscall arguments.

use nix::sys::personality::Persona;
use oci_spec::runtime::{
    IOPriorityClass, Linux, LinuxMemoryPolicy, LinuxPersonality, LinuxPersonalityDomain,
    LinuxSchedulerFlag, LinuxSchedulerPolicy, MemoryPolicyFlagType, MemoryPolicyModeType, Process,
    Scheduler,
};

use crate::error::{Error, Result, SysContext};
use crate::security::lsm;
use crate::sys::sched::{self, SchedAttr};

/// Everything [`Attrs::apply`] sets, resolved from the config.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Attrs {
    personality: Option<Persona>,
    sched: Option<SchedAttr>,
    ioprio: Option<i32>,
    mempolicy: Option<(i32, Vec<u64>)>,
    apparmor: Option<String>,
    selinux: Option<String>,
}

fn invalid(field: &str, msg: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.into(),
        msg: msg.into(),
    }
}

impl Attrs {
    /// Validate and resolve the attributes `process` and `linux` ask for.
    pub fn resolve(process: &Process, linux: Option<&Linux>) -> Result<Attrs> {
        Ok(Attrs {
            personality: linux
                .and_then(|l| l.personality().as_ref())
                .map(personality)
                .transpose()?,
            sched: process.scheduler().as_ref().map(scheduler).transpose()?,
            ioprio: process
                .io_priority()
                .as_ref()
                .map(|p| ioprio(p.class(), p.priority()))
                .transpose()?,
            mempolicy: linux
                .and_then(|l| l.memory_policy().as_ref())
                .map(mempolicy)
                .transpose()?,
            apparmor: process.apparmor_profile().clone().filter(|p| !p.is_empty()),
            selinux: process.selinux_label().clone().filter(|p| !p.is_empty()),
        })
    }

    /// Check what the host must provide (AppArmor enabled), before any work.
    pub fn check_host(&self) -> Result<()> {
        if self.apparmor.is_some() && !lsm::apparmor_enabled() {
            return Err(Error::Unsupported {
                field: "process.apparmorProfile".into(),
                msg: "AppArmor is not enabled on this host".into(),
            });
        }
        Ok(())
    }

    /// Apply them to the calling process; the LSM labels take effect at exec.
    /// Must run while still privileged (real-time policies need CAP_SYS_NICE).
    pub fn apply(&self) -> Result<()> {
        if let Some(p) = self.personality {
            nix::sys::personality::set(p).step(|| "linux.personality: personality".into())?;
        }
        if let Some(a) = &self.sched {
            sched::sched_setattr(a).step(|| "process.scheduler: sched_setattr".into())?;
        }
        if let Some(v) = self.ioprio {
            sched::ioprio_set(v).step(|| "process.ioPriority: ioprio_set".into())?;
        }
        if let Some((mode, mask)) = &self.mempolicy {
            sched::set_mempolicy(*mode, mask)
                .step(|| "linux.memoryPolicy: set_mempolicy".into())?;
        }
        if let Some(p) = &self.apparmor {
            lsm::apparmor_exec(p)?;
        }
        if let Some(l) = &self.selinux {
            lsm::selinux_exec(l)?;
        }
        Ok(())
    }
}

fn personality(p: &LinuxPersonality) -> Result<Persona> {
    let mut persona = match p.domain() {
        LinuxPersonalityDomain::PerLinux => Persona::empty(),
        // PER_LINUX32
        LinuxPersonalityDomain::PerLinux32 => Persona::from_bits_retain(0x0008),
    };
    for (i, f) in p.flags().iter().flatten().enumerate() {
        persona |= match f.as_str() {
            // UNAME26 and FDPIC_FUNCPTRS: nix names them on glibc only.
            "UNAME26" => Persona::from_bits_retain(0x002_0000),
            "ADDR_NO_RANDOMIZE" => Persona::ADDR_NO_RANDOMIZE,
            "FDPIC_FUNCPTRS" => Persona::from_bits_retain(0x008_0000),
            "MMAP_PAGE_ZERO" => Persona::MMAP_PAGE_ZERO,
            "ADDR_COMPAT_LAYOUT" => Persona::ADDR_COMPAT_LAYOUT,
            "READ_IMPLIES_EXEC" => Persona::READ_IMPLIES_EXEC,
            "ADDR_LIMIT_32BIT" => Persona::ADDR_LIMIT_32BIT,
            "SHORT_INODE" => Persona::SHORT_INODE,
            "WHOLE_SECONDS" => Persona::WHOLE_SECONDS,
            "STICKY_TIMEOUTS" => Persona::STICKY_TIMEOUTS,
            "ADDR_LIMIT_3GB" => Persona::ADDR_LIMIT_3GB,
            _ => {
                return Err(invalid(
                    &format!("linux.personality.flags[{i}]"),
                    format!("unknown personality flag {f:?}"),
                ))
            }
        };
    }
    Ok(persona)
}

fn scheduler(s: &Scheduler) -> Result<SchedAttr> {
    use LinuxSchedulerPolicy as P;
    let policy = match s.policy() {
        P::SchedOther => 0,
        P::SchedFifo => 1,
        P::SchedRr => 2,
        P::SchedBatch => 3,
        P::SchedIso => 4,
        P::SchedIdle => 5,
        P::SchedDeadline => 6,
    };
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(invalid(
            "process.scheduler.nice",
            format!("{nice} is outside -20..19"),
        ));
    }
    let priority = s.priority().unwrap_or(0);
    let rt = matches!(s.policy(), P::SchedFifo | P::SchedRr);
    if priority != 0 && !rt {
        return Err(invalid(
            "process.scheduler.priority",
            "only SCHED_FIFO and SCHED_RR take a priority",
        ));
    }
    if rt && !(1..=99).contains(&priority) {
        return Err(invalid(
            "process.scheduler.priority",
            format!("{priority} is outside 1..99 for a real-time policy"),
        ));
    }
    let dl = [s.runtime(), s.deadline(), s.period()];
    if *s.policy() != P::SchedDeadline && dl.iter().any(|v| v.is_some_and(|v| v != 0)) {
        return Err(invalid(
            "process.scheduler",
            "runtime, deadline and period are only for SCHED_DEADLINE",
        ));
    }
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        };
    }
    Ok(SchedAttr {
        policy,
        flags,
        nice,
        priority: priority as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        ..Default::default()
    })
}

fn ioprio(class: IOPriorityClass, priority: i64) -> Result<i32> {
    if !(0..=7).contains(&priority) {
        return Err(invalid(
            "process.ioPriority.priority",
            format!("{priority} is outside 0..7"),
        ));
    }
    let class = match class {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    Ok((class << 13) | priority as i32)
}

/// Parse a node list such as `0-3,7` into a bit mask.
fn parse_nodes(s: &str) -> Option<Vec<u64>> {
    const MAX_NODES: u32 = 4096;
    let mut mask = Vec::new();
    for part in s.split(',').map(str::trim) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
            None => {
                let n = part.parse::<u32>().ok()?;
                (n, n)
            }
        };
        if a > b || b >= MAX_NODES {
            return None;
        }
        for n in a..=b {
            let word = (n / 64) as usize;
            if mask.len() <= word {
                mask.resize(word + 1, 0);
            }
            mask[word] |= 1 << (n % 64);
        }
    }
    Some(mask)
}

fn mempolicy(p: &LinuxMemoryPolicy) -> Result<(i32, Vec<u64>)> {
    use MemoryPolicyModeType as M;
    let mode = match p.mode() {
        M::MpolDefault => 0,
        M::MpolPreferred => 1,
        M::MpolBind => 2,
        M::MpolInterleave => 3,
        M::MpolLocal => 4,
        M::MpolPreferredMany => 5,
        M::MpolWeightedInterleave => 6,
    };
    let nodes = p.nodes().as_deref().map(str::trim).unwrap_or("");
    let mask = if nodes.is_empty() {
        Vec::new()
    } else {
        parse_nodes(nodes).ok_or_else(|| {
            invalid(
                "linux.memoryPolicy.nodes",
                format!("{nodes:?} is not a node list such as 0-3,7"),
            )
        })?
    };
    match p.mode() {
        M::MpolDefault | M::MpolLocal if !mask.is_empty() => {
            return Err(invalid(
                "linux.memoryPolicy.nodes",
                format!("must be empty for {}", p.mode()),
            ))
        }
        M::MpolBind | M::MpolInterleave | M::MpolPreferredMany | M::MpolWeightedInterleave
            if mask.is_empty() =>
        {
            return Err(invalid(
                "linux.memoryPolicy.nodes",
                format!("{} needs at least one node", p.mode()),
            ))
        }
        _ => {}
    }
    let mut flags = 0;
    for f in p.flags().iter().flatten() {
        flags |= match f {
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
        };
    }
    Ok((mode | flags, mask))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_lists() {
        assert_eq!(parse_nodes("0"), Some(vec![1]));
        assert_eq!(parse_nodes("0-3,7"), Some(vec![0b1000_1111]));
        assert_eq!(parse_nodes("64"), Some(vec![0, 1]));
        assert_eq!(parse_nodes("3-1"), None);
        assert_eq!(parse_nodes("x"), None);
        assert_eq!(parse_nodes("99999"), None);
    }

    #[test]
    fn io_priorities() {
        assert_eq!(
            ioprio(IOPriorityClass::IoprioClassIdle, 0).ok(),
            Some(3 << 13)
        );
        assert_eq!(
            ioprio(IOPriorityClass::IoprioClassBe, 4).ok(),
            Some((2 << 13) | 4)
        );
        assert!(ioprio(IOPriorityClass::IoprioClassRt, 8).is_err());
        assert!(ioprio(IOPriorityClass::IoprioClassRt, -1).is_err());
    }
}

//! Unit tests of devices.rs.
use super::*;

const CTX: u64 = 0xc7c7_0000;

/// Run the program the way the kernel would, for the opcodes we emit.
fn run(insns: &[Insn], typ: i32, access: i32, major: u32, minor: u32) -> bool {
    let ctx = [((access as u32) << 16) | typ as u32, major, minor];
    let mut r = [0u64; 11];
    r[1] = CTX;
    let mut pc = 0;
    loop {
        let i = insns[pc];
        pc += 1;
        let (dst, src, imm) = (i.dst() as usize, i.src() as usize, i.imm());
        assert!(i.off() >= 0, "backward jump at {pc}");
        let skip = i.off() as usize;
        match i.code() {
            LDX_MEM_W => {
                assert_eq!(r[src], CTX, "load from a register that is not the ctx");
                r[dst] = u64::from(ctx[i.off() as usize / 4]);
            }
            ALU32_AND_K => r[dst] = u64::from(r[dst] as u32 & imm as u32),
            ALU32_RSH_K => r[dst] = u64::from(r[dst] as u32 >> imm),
            ALU32_MOV_K => r[dst] = u64::from(imm as u32),
            ALU32_MOV_X => r[dst] = u64::from(r[src] as u32),
            JMP_JEQ_K if r[dst] == imm as i64 as u64 => pc += skip,
            JMP_JNE_K if r[dst] != imm as i64 as u64 => pc += skip,
            JMP_JEQ_K | JMP_JNE_K => {}
            JMP_EXIT => return r[0] == 1,
            op => panic!("opcode {op:#x} not handled by the test interpreter"),
        }
    }
}

/// Like the verifier's CFG check: every instruction reachable, none falls off the end.
fn check_cfg(insns: &[Insn]) {
    let mut seen = vec![false; insns.len()];
    let mut todo = vec![0usize];
    while let Some(pc) = todo.pop() {
        if std::mem::replace(&mut seen[pc], true) {
            continue;
        }
        match insns[pc].code() {
            JMP_EXIT => {}
            JMP_JEQ_K | JMP_JNE_K => todo.extend([pc + 1, pc + 1 + insns[pc].off() as usize]),
            _ => todo.push(pc + 1),
        }
        assert!(todo.iter().all(|&t| t < insns.len()), "falls off at {pc}");
    }
    assert!(
        seen.iter().all(|&s| s),
        "unreachable instruction in {insns:?}"
    );
}

/// The specification: per requested bit, the last matching rule decides.
fn model(rules: &[Rule], typ: i32, access: i32, major: u32, minor: u32) -> bool {
    let matches = |r: &&Rule, bit: i32| {
        r.typ.is_none_or(|t| t == typ)
            && r.major.is_none_or(|m| m as u32 == major)
            && r.minor.is_none_or(|m| m as u32 == minor)
            && r.access & bit != 0
    };
    let last = |bit| rules.iter().rev().find(|r| matches(r, bit));
    let bits = [ACC_MKNOD, ACC_READ, ACC_WRITE].into_iter();
    bits.filter(|bit| access & bit != 0)
        .all(|bit| last(bit).is_some_and(|r| r.allow))
}

/// A rule in devices.allow syntax with a sign: `+c 1:3 rw`, `-a *:* rwm`.
fn rule(s: &str) -> LinuxDeviceCgroup {
    let num = |n: &str| (n != "*").then(|| n.parse().unwrap());
    let (sign, rest) = s.split_at(1);
    let f: Vec<&str> = rest.split([' ', ':']).collect();
    let mut d = LinuxDeviceCgroup::default();
    d.set_allow(sign == "+")
        .set_typ(f[0].parse().ok())
        .set_major(num(f[1]))
        .set_minor(num(f[2]))
        .set_access(Some(f[3].to_string()));
    d
}

fn rules(list: &[&str]) -> Vec<LinuxDeviceCgroup> {
    list.iter().map(|s| rule(s)).collect()
}

/// Does the program allow this access, given as `c 1:3 rw`?
fn allows(insns: &[Insn], dev: &str) -> bool {
    let d = parse_rule(0, &rule(&format!("+{dev}"))).unwrap().unwrap();
    let (typ, major, minor) = (d.typ.unwrap(), d.major.unwrap(), d.minor.unwrap());
    run(insns, typ, d.access, major as u32, minor as u32)
}

/// Compile, check the CFG, and compare with the model on many devices.
fn compile(list: &[&str]) -> Vec<Insn> {
    let rules = rules(list);
    let insns = program(&rules).expect("valid rules");
    check_cfg(&insns);
    let parsed: Vec<Rule> = (rules.iter().enumerate())
        .filter_map(|(i, d)| parse_rule(i, d).unwrap())
        .collect();
    let numbers = [0, 1, 2, 3, 5, 7, 8, 10, 136, 200, 4095];
    for (typ, access) in (1..=ACC_ALL).flat_map(|a| [(DEV_BLOCK, a), (DEV_CHAR, a)]) {
        for (major, minor) in numbers.iter().flat_map(|&j| numbers.map(|n| (j, n))) {
            let got = run(&insns, typ, access, major, minor);
            let want = model(&parsed, typ, access, major, minor);
            assert_eq!(got, want, "{typ} {access} {major}:{minor} in {list:?}");
        }
    }
    insns
}

#[test]
fn allow_one_device() {
    assert!(!allows(&compile(&[]), "c 1:3 r"), "no rule: deny");
    let p = compile(&["-a *:* rwm", "+c 1:3 rw"]);
    assert!(allows(&p, "c 1:3 r") && allows(&p, "c 1:3 rw"));
    assert!(!allows(&p, "c 1:3 m") && !allows(&p, "c 1:3 rm"));
    assert!(!allows(&p, "c 1:5 r") && !allows(&p, "b 8:0 r") && !allows(&p, "b 1:3 r"));
}

#[test]
fn later_rules_override_earlier_ones() {
    let p = compile(&["+c 1:* rwm", "-c 1:3 w"]);
    assert!(allows(&p, "c 1:3 r") && allows(&p, "c 1:5 rw"));
    assert!(!allows(&p, "c 1:3 w") && !allows(&p, "c 1:3 rw"));
    let p = compile(&["-c 1:3 rwm", "+c *:* r"]);
    assert!(allows(&p, "c 1:3 r") && !allows(&p, "c 1:3 w"));
}

#[test]
fn wildcards() {
    let p = compile(&["+c 136:* rwm", "+a *:7 r"]);
    assert!(allows(&p, "c 136:0 rw") && allows(&p, "c 136:4095 rw"));
    assert!(!allows(&p, "b 136:0 r"));
    assert!(allows(&p, "b 8:7 r") && !allows(&p, "b 8:7 w"));
}

#[test]
fn allow_all_and_reset() {
    let p = compile(&["-a *:* rwm", "+c 1:3 r", "+a *:* rwm"]);
    assert_eq!(p.len(), 6 + 2, "allow-all makes earlier rules unreachable");
    assert!(allows(&p, "b 8:0 rwm"));
    assert!(!allows(
        &compile(&["+a *:* rwm", "-b 8:* w", "-a *:* rwm"]),
        "c 1:3 r"
    ));
    // No type means `a`, no access means rwm.
    let mut untyped = rule("+a *:* m");
    untyped.set_typ(None);
    let p = program(&[rule("-a *:* rwm"), untyped]).unwrap();
    assert!(allows(&p, "b 8:0 m") && !allows(&p, "b 8:0 r"));
    let mut all = LinuxDeviceCgroup::default();
    all.set_allow(true);
    assert!(allows(&program(&[all]).unwrap(), "b 8:0 rwm"));
}

#[test]
fn defaults() {
    let mut list = vec!["-a *:* rwm"];
    let texts: Vec<String> = default_allowed().iter().map(|d| format!("+{d}")).collect();
    list.extend(texts.iter().map(String::as_str));
    let p = compile(&list);
    assert!(allows(&p, "c 1:3 rw") && allows(&p, "c 136:2 rw") && allows(&p, "c 10:200 rw"));
    assert!(allows(&p, "c 4:1 m") && !allows(&p, "c 4:1 r"));
    assert!(allows(&p, "b 8:0 m") && !allows(&p, "b 8:0 rw"));
    assert_eq!(
        program(&default_allowed()).unwrap(),
        p,
        "deny-all first is a no-op"
    );
}

#[test]
fn invalid_rules() {
    let field = |d: &str| match program(&rules(&["-a *:* rwm", d])) {
        Err(Error::Invalid { field, .. }) => field,
        other => panic!("expected Invalid, got {other:?}"),
    };
    let at = |f: &str| format!("linux.resources.devices[1].{f}");
    assert_eq!(field("+c *:* rx"), at("access"));
    assert_eq!(field("+c *:* "), at("access"));
    assert_eq!(field("+u *:* r"), at("type"));
    assert_eq!(field("+c -2:* r"), at("major"));
    assert_eq!(field("+c 1:4294967296 r"), at("minor"));
    // Representable but impossible numbers never match; -1 is a wildcard.
    let p = compile(&["+c 2147483648:* rwm", "+b -1:* r"]);
    assert!(!allows(&p, "c 0:0 r") && allows(&p, "b 8:0 r"));
}

/// Removes the test cgroup even if the test fails.
struct RmDir(String);
impl Drop for RmDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Load and attach for real on empty cgroups (no process is ever moved).
#[test]
fn attach_and_replace_on_a_real_cgroup() {
    let is_v2 =
        |p: &&str| nix::sys::statfs::statfs(*p).is_ok_and(|s| s.filesystem_type().0 == 0x6367_7270);
    let base = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .find(is_v2);
    let (true, Some(base)) = (nix::unistd::geteuid().is_root(), base) else {
        skiff_conformance::skip!("needs root and cgroup2");
    };
    // Every kind of block passes the real verifier.
    let sets: [&[&str]; 4] = [
        &[],
        &["-a *:* rwm", "+c 1:3 rw"],
        &["+a *:* rwm", "-c 1:3 w"],
        &["-c 1:3 rwm", "+a *:* r"],
    ];
    let progs: Vec<OwnedFd> = (sets.iter().map(|s| rules(s)))
        .chain([default_allowed()])
        .map(|r| load(&program(&r).unwrap()).unwrap())
        .collect();
    let err = load(&[Insn::new(JMP_EXIT, 0, 0, 0, 0)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("verifier: ") && err.contains("R0"), "{err}");

    let cgroup = |suffix: &str| {
        let dir = format!("{base}/skiff-bpf-test-{}{suffix}", std::process::id());
        std::fs::create_dir(&dir).unwrap();
        let fd: OwnedFd = std::fs::File::open(&dir).unwrap().into();
        (RmDir(dir), fd)
    };
    use bpf::ATTACH_CGROUP_DEVICE as DEVICE;
    let query = |fd: &OwnedFd| bpf::prog_query(fd.as_fd(), DEVICE).unwrap();
    let attach = |fd: &OwnedFd, prog: &OwnedFd, flags| {
        bpf::prog_attach(fd.as_fd(), prog.as_fd(), DEVICE, flags, None).unwrap()
    };

    let (_rm, fd) = cgroup("");
    apply(fd.as_fd(), &default_allowed()).unwrap();
    let first = query(&fd);
    assert_eq!((first.ids.len(), first.flags), (1, bpf::F_ALLOW_MULTI));
    apply(fd.as_fd(), &rules(sets[1])).unwrap();
    let second = query(&fd);
    assert_eq!(second.ids.len(), 1, "replaced, not appended");
    assert_ne!(second.ids, first.ids);
    // Two more (foreign) programs: the attach-then-detach path removes all three.
    attach(&fd, &progs[2], bpf::F_ALLOW_MULTI);
    attach(&fd, &progs[3], bpf::F_ALLOW_MULTI);
    assert_eq!(query(&fd).ids.len(), 3);
    apply(fd.as_fd(), &[]).unwrap();
    assert_eq!(query(&fd).ids.len(), 1);

    // A program attached without BPF_F_ALLOW_MULTI is replaced in place.
    let (_rm2, fd2) = cgroup("-single");
    attach(&fd2, &progs[0], 0);
    let before = query(&fd2);
    assert_eq!((before.ids.len(), before.flags), (1, 0));
    apply(fd2.as_fd(), &default_allowed()).unwrap();
    let after = query(&fd2);
    assert_eq!((after.ids.len(), after.flags), (1, 0));
    assert_ne!(after.ids, before.ids);
}

#!/usr/bin/env python3
"""Regenerates tests/data/bad-configs/: one malformed or hostile config.json
per case (NN-name.json) and the substring its error must contain
(NN-name.expect). The files are the test data; this script only documents
how each was derived from the default config of the conformance suite.
Run from the repository root: python3 tests/data/gen-bad-configs.py"""

import copy
import json
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bad-configs")
CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
BASE = {
    "ociVersion": "1.2.0",
    "process": {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": ["true"],
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
        "cwd": "/",
        "capabilities": {k: CAPS for k in ["bounding", "effective", "permitted", "ambient"]},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": False},
    "hostname": "skiff",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    ],
    "linux": {
        "namespaces": [{"type": t} for t in ["pid", "network", "ipc", "uts", "mount"]],
        "maskedPaths": ["/proc/kcore"],
        "readonlyPaths": ["/proc/sys"],
    },
}
USERNS_MAPS = {
    "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
}
CASES = []


def case(name, expect, mutate=None, raw=None):
    CASES.append((name, expect, mutate, raw))


def userns(c, uid=None, gid=None):
    c["linux"]["namespaces"].append({"type": "user"})
    c["linux"]["uidMappings"] = uid if uid is not None else USERNS_MAPS["uidMappings"]
    c["linux"]["gidMappings"] = gid if gid is not None else USERNS_MAPS["gidMappings"]


def setp(path, value):
    def m(c):
        *parents, last = path
        for p in parents:
            c = c[p]
        c[last] = value
    return m


def delp(path):
    def m(c):
        *parents, last = path
        for p in parents:
            c = c[p]
        del c[last]
    return m


# --- not JSON / wrong top-level shape
case("empty-file", "config.json", raw="")
case("not-json", "line 1 column", raw="this is not json\n")
case("truncated", "EOF", raw=json.dumps(BASE, indent=2)[:200])
case("trailing-garbage", "trailing characters", raw=json.dumps(BASE) + " }{")
case("top-level-array", "root", raw="[]\n")
case("top-level-null", "config.json", raw="null\n")
case("nul-bytes", "config.json", raw='{"ociVersion": "1.2.0"\u0000}')
# --- wrong types
case("args-is-string", "process.args", setp(["process", "args"], "sh -c true"))
case("terminal-is-string", "process.terminal", setp(["process", "terminal"], "yes"))
case("uid-is-string", "process.user.uid", setp(["process", "user", "uid"], "0"))
case("env-is-object", "process.env", setp(["process", "env"], {"PATH": "/bin"}))
case("root-path-is-number", "root.path", setp(["root", "path"], 42))
case("mounts-is-object", "mounts", setp(["mounts"], {"destination": "/proc"}))
case("namespaces-is-string", "linux.namespaces", setp(["linux", "namespaces"], "pid,net"))
case("hostname-is-number", "hostname", setp(["hostname"], 1234))
case("oci-version-is-number", "ociVersion", setp(["ociVersion"], 1.2))
case("annotations-is-array", "annotations", setp(["annotations"], ["a=b"]))
case("caps-is-string", "process.capabilities.bounding",
     setp(["process", "capabilities", "bounding"], "CAP_KILL"))
case("masked-paths-is-string", "linux.maskedPaths", setp(["linux", "maskedPaths"], "/proc/kcore"))
case("hooks-prestart-is-object", "hooks.prestart", setp(["hooks"], {"prestart": {"path": "/bin/true"}}))
case("rlimit-hard-is-string", "process.rlimits[0].hard",
     setp(["process", "rlimits"], [{"type": "RLIMIT_NOFILE", "hard": "1024", "soft": 1024}]))
case("readonly-root-is-string", "root.readonly", setp(["root", "readonly"], "true"))
# --- missing required fields
case("no-oci-version", "ociVersion", delp(["ociVersion"]))
case("no-root", "root", delp(["root"]))
case("no-root-path", "root", delp(["root", "path"]))
case("no-process", "process", delp(["process"]))
case("no-cwd", "cwd", delp(["process", "cwd"]))
case("no-args", "process.args", delp(["process", "args"]))
case("empty-args", "process.args", setp(["process", "args"], []))
case("no-linux", "linux", delp(["linux"]))
case("mount-no-destination", "mounts[1]", setp(["mounts", 1], {"type": "tmpfs", "source": "tmpfs"}))
case("namespace-no-type", "linux.namespaces[0]", setp(["linux", "namespaces", 0], {"path": "/proc/1/ns/pid"}))
case("hook-no-path", "hooks.prestart[0]", setp(["hooks"], {"prestart": [{"args": ["x"]}]}))
case("user-uid-null", "process.user.uid", setp(["process", "user"], {"uid": None, "gid": 0}))
case("bind-mount-no-source", "mounts[2].source",
     lambda c: c["mounts"].append({"destination": "/mnt", "type": "bind", "options": ["rbind"]}))
# --- huge values
case("uid-over-u32", "process.user.uid", setp(["process", "user", "uid"], 4294967296))
case("rlimit-hard-1e30", "process.rlimits[0].hard",
     setp(["process", "rlimits"], [{"type": "RLIMIT_NOFILE", "hard": 10**30, "soft": 1}]))
case("rlimit-soft-over-hard", "process.rlimits[0]",
     setp(["process", "rlimits"], [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 4096}]))
case("oom-score-adj-5000", "process.oomScoreAdj", setp(["process", "oomScoreAdj"], 5000))
case("additional-gids-over-u32", "process.user.additionalGids",
     setp(["process", "user", "additionalGids"], [1, 1099511627776]))
case("umask-over-u32", "process.user.umask", setp(["process", "user", "umask"], 4294967296))
case("uid-map-range-overflows", "linux.uidMappings[0]",
     lambda c: userns(c, uid=[{"containerID": 4294967000, "hostID": 100000, "size": 65536}]))
case("uid-map-size-zero", "linux.uidMappings[0]",
     lambda c: userns(c, uid=[{"containerID": 0, "hostID": 100000, "size": 0}]))
case("too-many-uid-maps", "linux.uidMappings",
     lambda c: userns(c, uid=[{"containerID": i, "hostID": 100000 + i, "size": 1} for i in range(400)]))
case("hostname-too-long", "hostname", setp(["hostname"], "h" * 300))
case("hook-timeout-zero", "hooks.prestart[0].timeout",
     setp(["hooks"], {"prestart": [{"path": "/bin/true", "timeout": 0}]}))
case("huge-env-entry-count", "process.env[0]",
     setp(["process", "env"], ["NOEQUALS"] + ["K%d=v" % i for i in range(500)]))
# --- negative sizes and ids
case("uid-map-size-negative", "linux.uidMappings[0].size",
     lambda c: userns(c, uid=[{"containerID": 0, "hostID": 100000, "size": -1}]))
case("rlimit-negative", "process.rlimits[0].hard",
     setp(["process", "rlimits"], [{"type": "RLIMIT_NOFILE", "hard": -1, "soft": 1}]))
case("uid-negative", "process.user.uid", setp(["process", "user", "uid"], -1))
case("console-size-negative", "process.consoleSize.height",
     setp(["process", "consoleSize"], {"height": -5, "width": 80}))
case("hook-timeout-negative", "hooks.poststart[0].timeout",
     setp(["hooks"], {"poststart": [{"path": "/bin/true", "timeout": -1}]}))
case("device-major-negative", "linux.devices[0]",
     setp(["linux", "devices"], [{"path": "/dev/foo", "type": "c", "major": -1, "minor": 3}]))
case("memory-limit-negative", "linux.resources",
     setp(["linux", "resources"], {"memory": {"limit": -5}}))
case("pids-limit-huge", "linux.resources",
     setp(["linux", "resources"], {"pids": {"limit": 10**19}}))
# --- namespaces
case("unknown-namespace", "linux.namespaces[5].type",
     lambda c: c["linux"]["namespaces"].append({"type": "bogus"}))
case("empty-namespace-type", "linux.namespaces[0].type", setp(["linux", "namespaces", 0], {"type": ""}))
case("duplicate-namespace", "linux.namespaces[5]",
     lambda c: c["linux"]["namespaces"].append({"type": "pid"}))
case("namespace-relative-path", "linux.namespaces[1].path",
     setp(["linux", "namespaces", 1], {"type": "network", "path": "proc/1/ns/net"}))
case("namespace-missing-path", "linux.namespaces[1].path",
     setp(["linux", "namespaces", 1], {"type": "network", "path": "/proc/no-such/ns/net"}))
case("namespace-path-wrong-kind", "linux.namespaces",
     setp(["linux", "namespaces", 1], {"type": "network", "path": "/etc/hostname"}))
case("userns-without-maps", "linux.uidMappings",
     lambda c: c["linux"]["namespaces"].append({"type": "user"}))
case("maps-without-userns", "linux.uidMappings", lambda c: c["linux"].update(USERNS_MAPS))
case("hostname-without-uts", "hostname",
     setp(["linux", "namespaces"], [{"type": t} for t in ["pid", "mount"]]))
# --- mount destinations and paths with ..
case("mount-relative-destination", "mounts[0].destination", setp(["mounts", 0, "destination"], "proc"))
case("mount-empty-destination", "mounts[1].destination", setp(["mounts", 1, "destination"], ""))
case("mount-dotdot-destination", "mounts[1].destination", setp(["mounts", 1, "destination"], "/../../etc"))
case("mount-dotdot-middle", "mounts[1].destination", setp(["mounts", 1, "destination"], "/dev/../../../tmp"))
case("mount-bind-missing-source", "mounts[2]",
     lambda c: c["mounts"].append({"destination": "/mnt", "type": "bind",
                                   "source": "/no/such/dir/../x", "options": ["rbind"]}))
case("mount-unknown-fstype", "mounts[2]",
     lambda c: c["mounts"].append({"destination": "/mnt", "type": "bogusfs", "source": "none"}))
case("masked-relative", "linux.maskedPaths[0]", setp(["linux", "maskedPaths"], ["proc/kcore"]))
case("masked-dotdot", "linux.maskedPaths[1]", setp(["linux", "maskedPaths"], ["/proc/kcore", "/proc/../../etc/passwd"]))
case("readonly-dotdot", "linux.readonlyPaths[0]", setp(["linux", "readonlyPaths"], ["/../../usr"]))
case("readonly-relative", "linux.readonlyPaths[0]", setp(["linux", "readonlyPaths"], ["proc/sys"]))
case("cwd-relative", "process.cwd", setp(["process", "cwd"], "tmp"))
case("cwd-dotdot", "process.cwd", setp(["process", "cwd"], "/../../../etc"))
case("root-path-escape", "root.path", setp(["root", "path"], "../../../../../../../no-such-root"))
case("device-relative-path", "linux.devices[0].path",
     setp(["linux", "devices"], [{"path": "dev/foo", "type": "c", "major": 1, "minor": 3}]))
case("device-dotdot-path", "linux.devices[0].path",
     setp(["linux", "devices"], [{"path": "/dev/../etc/foo", "type": "c", "major": 1, "minor": 3}]))
case("device-bad-type", "linux.devices[0].type",
     setp(["linux", "devices"], [{"path": "/dev/foo", "type": "x", "major": 1, "minor": 3}]))
case("cgroups-path-dotdot", "linux.cgroupsPath", setp(["linux", "cgroupsPath"], "../../../../escape"))
# --- uid/gid maps that overlap
case("uid-maps-overlap-container", "linux.uidMappings[1]",
     lambda c: userns(c, uid=[{"containerID": 0, "hostID": 100000, "size": 1000},
                              {"containerID": 500, "hostID": 200000, "size": 1000}]))
case("uid-maps-overlap-host", "linux.uidMappings[1]",
     lambda c: userns(c, uid=[{"containerID": 0, "hostID": 100000, "size": 1000},
                              {"containerID": 5000, "hostID": 100500, "size": 1000}]))
case("gid-maps-overlap", "linux.gidMappings[1]",
     lambda c: userns(c, gid=[{"containerID": 0, "hostID": 100000, "size": 65536},
                              {"containerID": 0, "hostID": 300000, "size": 1}]))
# --- rlimits
case("rlimit-unknown-name", "process.rlimits[0].type",
     setp(["process", "rlimits"], [{"type": "RLIMIT_BOGUS", "hard": 1, "soft": 1}]))
case("rlimit-lowercase-name", "process.rlimits[0].type",
     setp(["process", "rlimits"], [{"type": "nofile", "hard": 1, "soft": 1}]))
case("rlimit-duplicate", "process.rlimits[1]",
     setp(["process", "rlimits"], [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
                                   {"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 2048}]))
# --- capabilities
# (An unknown capability name is not bad input: runc and crun warn and drop
# it, and so does skiff; tests/tests/parity_config.rs checks that.)
case("cap-set-is-object", "process.capabilities.bounding",
     setp(["process", "capabilities", "bounding"], {"CAP_KILL": True}))
case("cap-set-is-number", "process.capabilities.effective",
     setp(["process", "capabilities", "effective"], 5))
case("cap-number", "process.capabilities.permitted",
     setp(["process", "capabilities", "permitted"], [21]))
# --- seccomp (names linux.seccomp.* whether or not seccomp is built in)
case("seccomp-bad-default-action", "linux.seccomp",
     setp(["linux", "seccomp"], {"defaultAction": "SCMP_ACT_BOGUS"}))
case("seccomp-bad-syscall-action", "linux.seccomp",
     setp(["linux", "seccomp"], {"defaultAction": "SCMP_ACT_ALLOW",
                                 "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_EXPLODE"}]}))
case("seccomp-bad-arch", "linux.seccomp",
     setp(["linux", "seccomp"], {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}))
case("seccomp-bad-arg-op", "linux.seccomp",
     setp(["linux", "seccomp"], {"defaultAction": "SCMP_ACT_ALLOW",
                                 "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                                               "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_MAYBE"}]}]}))
case("seccomp-errno-string", "linux.seccomp",
     setp(["linux", "seccomp"], {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": "EPERM"}))
# --- hooks
case("hook-missing-binary", "hooks.createRuntime[0].path",
     setp(["hooks"], {"createRuntime": [{"path": "/no/such/hook"}]}))
case("hook-relative-path", "hooks.prestart[0].path",
     setp(["hooks"], {"prestart": [{"path": "bin/true"}]}))
case("hook-dotdot-path", "hooks.poststop[0].path",
     setp(["hooks"], {"poststop": [{"path": "/no/such/../../hook"}]}))
case("hook-is-directory", "hooks.createContainer[0].path",
     setp(["hooks"], {"createContainer": [{"path": "/tmp"}]}))
case("hook-not-executable", "hooks.poststart[0].path",
     setp(["hooks"], {"poststart": [{"path": "/etc/passwd"}]}))
# --- strings the kernel cannot take
case("env-without-equals", "process.env[1]", setp(["process", "env"], ["PATH=/bin", "JUSTAKEY"]))
case("env-with-nul", "process.env[0]", setp(["process", "env"], ["A=b\u0000c"]))
case("args-with-nul", "process.args[0]", setp(["process", "args"], ["tr\u0000ue"]))
case("hostname-with-nul", "hostname", setp(["hostname"], "a\u0000b"))
case("host-sysctl", "linux.sysctl", setp(["linux", "sysctl"], {"vm.swappiness": "0"}))
case("sysctl-dotdot", "linux.sysctl", setp(["linux", "sysctl"], {"net/../../vm/swappiness": "0"}))
case("oci-version-2", "ociVersion", setp(["ociVersion"], "2.0.0"))
case("oci-version-garbage", "ociVersion", setp(["ociVersion"], "latest"))
case("apparmor-profile", "process.apparmorProfile", setp(["process", "apparmorProfile"], "unconfined"))
case("rootfs-propagation-bogus", "linux.rootfsPropagation", setp(["linux", "rootfsPropagation"], "bogus"))
case("io-priority-bad-class", "process.ioPriority",
     setp(["process", "ioPriority"], {"class": "IOPRIO_CLASS_TURBO", "priority": 0}))
case("scheduler-bad-policy", "process.scheduler",
     setp(["process", "scheduler"], {"policy": "SCHED_FASTEST"}))
case("personality-bad-domain", "linux.personality",
     setp(["linux", "personality"], {"domain": "LINUX128"}))
case("time-offsets-without-timens", "linux.timeOffsets",
     setp(["linux", "timeOffsets"], {"monotonic": {"secs": 1}}))


def main():
    for f in os.listdir(OUT) if os.path.isdir(OUT) else []:
        os.remove(os.path.join(OUT, f))
    os.makedirs(OUT, exist_ok=True)
    for i, (name, expect, mutate, raw) in enumerate(CASES, 1):
        stem = os.path.join(OUT, "%03d-%s" % (i, name))
        if raw is None:
            c = copy.deepcopy(BASE)
            mutate(c)
            raw = json.dumps(c, indent=1 if len(json.dumps(c)) < 4000 else None) + "\n"
        with open(stem + ".json", "w") as f:
            f.write(raw)
        with open(stem + ".expect", "w") as f:
            f.write(expect + "\n")
    print("%d cases" % len(CASES))


main()

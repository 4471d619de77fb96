# shellcheck shell=bash
# Helpers for integration/vm/run-tests.sh. Sourced, not executed. Meant to
# run as root on a pure cgroup v2 host (the test VM of hack/vm).
#
# Environment (all optional):
#   RUNTIME    runtime under test (default: <checkout>/target/release/skiff;
#              a bare name such as `runc` is looked up in PATH)
#   IT_ROOT    --root for the runtime's state        (default /run/skiff-it)
#   IT_WORK    bundles and logs, on the guest's disk (default /var/tmp/skiff-it)
#   IT_REL     how a relative cgroupsPath resolves: parent (under the parent
#              of the runtime's own cgroup: runc, and skiff since it follows
#              runc there) or own (under its own cgroup); default: parent

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
IT_REPO=$(cd "$IT_DIR/../.." && pwd -P)

RUNTIME=${RUNTIME:-$IT_REPO/target/release/skiff}
if [[ $RUNTIME != */* ]]; then
	RUNTIME=$(command -v "$RUNTIME" || echo "$RUNTIME")
fi
RUNTIME_NAME=$(basename "$RUNTIME")
export RUNTIME

IT_ROOT=${IT_ROOT:-/run/skiff-it}
IT_WORK=${IT_WORK:-/var/tmp/skiff-it}
IT_BASE=$IT_WORK/base-rootfs
CG=/sys/fs/cgroup
# Absolute cgroupsPath values are /$CG_TOP/<container id>.
CG_TOP=skiff-it
IT_REL=${IT_REL:-parent}
export IT_ROOT IT_WORK IT_REL

# ------------------------------------------------------------- reporting --
# Inside one test (a separate bash process, see run-tests.sh --one):
# fail/skip record why in $IT_REASON and end the test.

# log and wait_for.
# shellcheck source=common.sh
. "$IT_DIR/common.sh"

fail() {
	printf '%s\n' "$*" >"$IT_REASON"
	log "FAIL: $*"
	exit 1
}

skip() {
	printf '%s\n' "$*" >"$IT_REASON"
	exit 77
}

# expect_eq WHAT GOT WANT
expect_eq() {
	[[ $2 == "$3" ]] || fail "$1: got '$2', want '$3'"
	log "ok: $1 = '$3'"
}

# expect_cg DIR FILE WANT: the cgroup interface file DIR/FILE reads WANT.
expect_cg() {
	local got
	[[ -e $1/$2 ]] || fail "no file $1/$2"
	got=$(cat "$1/$2") || fail "cannot read $1/$2"
	expect_eq "${1#"$CG"}/$2" "$got" "$3"
}

# ---------------------------------------------------------------- runtime --

# rt ARGS...: the runtime under test with our state root.
rt() { "$RUNTIME" --root "$IT_ROOT" "$@"; }

ctr_state() { rt state "$1" 2>/dev/null; }
ctr_status() { ctr_state "$1" | jq -r .status 2>/dev/null; }
ctr_pid() { ctr_state "$1" | jq -r .pid 2>/dev/null; }
status_is() { [[ $(ctr_status "$1") == "$2" ]]; }

# cg_of_pid PID: the cgroup of PID, relative to the mount (leading /).
cg_of_pid() { sed -n 's/^0:://p' "/proc/$1/cgroup" 2>/dev/null; }

# own_cg: our own cgroup (the runtime runs in it too).
own_cg() { cg_of_pid self; }

# cg_empty DIR: the cgroup holds no process.
cg_empty() { [[ ! -s $1/cgroup.procs ]]; }
gone() { [[ ! -e $1 ]]; }
pid_gone() { [[ ! -e /proc/$1 ]] || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

# ----------------------------------------------------------------- bundles --

# make_base_rootfs: a busybox root filesystem on the guest's own disk.
make_base_rootfs() {
	local bb=/bin/busybox r=$IT_BASE a
	[[ -x $bb ]] || { echo "no $bb (busybox-static)" >&2; return 1; }
	rm -rf "$r"
	mkdir -p "$r"/{bin,etc,dev,proc,sys,tmp,root,var/tmp,run}
	chmod 1777 "$r/tmp" "$r/var/tmp"
	cp "$bb" "$r/bin/busybox"
	# Symlinks to /bin/busybox: right both here and in the container.
	"$bb" --install -s "$r/bin" || return 1
	ln -s bin "$r/sbin"
	mkdir -p "$r/usr"
	ln -s ../bin "$r/usr/bin"
	ln -s ../bin "$r/usr/sbin"
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$r/etc/passwd"
	printf '%s\n' 'root:x:0:' 'tty:x:5:' 'nogroup:x:65534:' >"$r/etc/group"
	echo 'hosts: files' >"$r/etc/nsswitch.conf"
	echo '127.0.0.1 localhost' >"$r/etc/hosts"
	: >"$r/etc/resolv.conf"
}

# podman_image: localhost/skiff-it-bb from the busybox rootfs (no network).
podman_image() {
	command -v podman >/dev/null || skip "podman is not installed"
	podman image exists localhost/skiff-it-bb 2>/dev/null && return 0
	local err
	err=$(tar -C "$IT_BASE" -c . | podman import - localhost/skiff-it-bb 2>&1 >/dev/null) ||
		skip "podman import failed (not the runtime's fault): $(tail -n 2 <<<"$err" | tr '\n' ' ')"
}

bundle_of() { printf '%s/bundles/%s\n' "$IT_WORK" "$1"; }

# new_bundle ID ARG...: a fresh bundle for container ID running ARG...,
# with cgroupsPath /skiff-it/ID. Prints nothing; see bundle_of.
new_bundle() {
	local id=$1 b
	shift
	b=$(bundle_of "$id")
	rm -rf "$b"
	mkdir -p "$b"
	cp -a "$IT_BASE" "$b/rootfs"
	# Not `jq --args`: jq would take an argument such as -c as its own option.
	local a args='[]'
	for a in "$@"; do
		args=$(jq -c --arg a "$a" '. + [$a]' <<<"$args")
	done
	base_config | jq --arg id "$id" --arg cg "/$CG_TOP/$id" --argjson args "$args" \
		'.hostname = $id | .linux.cgroupsPath = $cg | .process.args = $args' >"$b/config.json"
}

# cfg ID FILTER [JQ ARGS...]: edit ID's config.json with jq.
cfg() {
	local id=$1 filter=$2 b
	shift 2
	b=$(bundle_of "$id")
	jq "$@" "$filter" "$b/config.json" >"$b/config.json.new" && mv "$b/config.json.new" "$b/config.json"
}

# script ID PATH TEXT: write an executable script into ID's rootfs.
script() {
	local f
	f=$(bundle_of "$1")/rootfs/$2
	printf '%s\n' "$3" >"$f"
	chmod 755 "$f"
}

# start_ctr ID [GLOBAL OPTS...]: `run -d` it. The container's stdio and the
# runtime's messages go to <bundle>/out (never a pipe: a detached container
# keeps it open).
start_ctr() {
	local id=$1 b
	shift
	b=$(bundle_of "$id")
	if ! rt "$@" run -d --bundle "$b" "$id" </dev/null >"$b/out" 2>&1; then
		fail "run -d $id failed: $(tail -n 3 "$b/out" | tr '\n' ' ')"
	fi
	wait_for 10 status_is "$id" running || fail "$id: status $(ctr_status "$id"), want running"
}

# run_fg ID [GLOBAL OPTS...]: `run` it in the foreground; output in
# <bundle>/out; returns the runtime's exit status.
run_fg() {
	local id=$1 b
	shift
	b=$(bundle_of "$id")
	rt "$@" run --bundle "$b" "$id" </dev/null >"$b/out" 2>&1
}

# rm_ctr ID [GLOBAL OPTS...]: `delete --force`, and check the state is gone.
rm_ctr() {
	local id=$1
	shift
	rt "$@" delete --force "$id" >&2 || fail "delete --force $id failed"
	if ctr_state "$id" >/dev/null; then fail "$id: state still there after delete"; fi
}

# tree_rm DIR: remove a cgroup subtree (killing what is left in it).
tree_rm() {
	local d=$1 sub
	[[ -d $d ]] || return 0
	for sub in "$d"/*/; do
		[[ -d $sub ]] && tree_rm "${sub%/}"
	done
	if [[ -s $d/cgroup.procs ]]; then
		[[ -e $d/cgroup.freeze ]] && echo 0 >"$d/cgroup.freeze" 2>/dev/null
		if [[ -e $d/cgroup.kill ]]; then
			echo 1 >"$d/cgroup.kill" 2>/dev/null
		else
			xargs -r kill -9 <"$d/cgroup.procs" 2>/dev/null
		fi
		wait_for 5 cg_empty "$d"
	fi
	rmdir "$d" 2>/dev/null
}

# Our own test ids all start with this.
# shellcheck disable=SC2034 # used by run-tests.sh
ID_PREFIX=it-

# The OCI config every test starts from (like `runc spec`, minus the
# terminal). Every test sets process.args and its resources on top.
base_config() {
	cat <<'EOF'
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": ["sh"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=dumb"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": false},
  "hostname": "skiff-it",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
  ],
  "linux": {
    "resources": {"devices": [{"allow": false, "access": "rwm"}]},
    "cgroupsPath": "/skiff-it/unset",
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
    "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
}
EOF
}

#!/bin/bash
# shellcheck disable=SC2317 # helpers and tests are called indirectly
# Rootless skiff on a pure cgroup v2 host (INSIDE the test VM, as root): an
# unprivileged user made here runs containers
#  - from a cgroup delegated to it (chowned as systemd's Delegate=yes does):
#    the container gets its own cgroup with its limits, pause/resume work,
#    the eBPF device filter is skipped, delete removes the cgroup;
#  - from a cgroup it does not own: without limits the container stays in
#    skiff's cgroup (noted in the debug log); a limit is refused by name.
# Prints PASS/FAIL/SKIP per test; exits 1 if any failed.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RL_USER=skiff-rl
RL_WORK=/var/tmp/skiff-rl
RL_XDG=$RL_WORK/xdg
RL_BIN=$RL_WORK/skiff
DELEG=$CG/skiff-rl-deleg
NODELEG=$CG/skiff-rl-nodeleg
IT_BASE=$RL_WORK/base-rootfs
failed=0

setup() {
	userdel "$RL_USER" 2>/dev/null
	useradd --no-create-home --user-group --shell /bin/sh "$RL_USER" || return 1
	RL_UID=$(id -u "$RL_USER") RL_GID=$(id -g "$RL_USER")
	rm -rf "$RL_WORK"
	mkdir -p "$RL_XDG" "$RL_WORK/bundles"
	chmod 755 "$RL_WORK" "$RL_WORK/bundles"
	chown "$RL_USER:" "$RL_XDG"
	chmod 700 "$RL_XDG"
	install -m 755 "$RUNTIME" "$RL_BIN" || return 1
	make_base_rootfs || return 1
	# Delegation as systemd does it: the directory and the three files.
	echo "+pids +memory" >"$CG/cgroup.subtree_control" || return 1
	mkdir -p "$DELEG/shell" "$NODELEG/shell"
	chown "$RL_USER:" "$DELEG" "$DELEG"/cgroup.{procs,subtree_control,threads} "$DELEG/shell" "$DELEG/shell"/cgroup.{procs,threads}
}

cleanup() {
	local d
	for d in "$RL_XDG"/skiff/*/; do
		[[ -d $d ]] && as_user "$NODELEG/shell" "$RL_BIN" delete --force "$(basename "$d")" >/dev/null 2>&1
	done
	tree_rm "$DELEG"
	tree_rm "$NODELEG"
	userdel "$RL_USER" 2>/dev/null
	rm -rf "$RL_WORK"
}

# as_user CGROUP CMD...: CMD as the user, started from cgroup dir CGROUP.
as_user() {
	local cg=$1
	shift
	(
		echo "$BASHPID" >"$cg/cgroup.procs" || exit 125
		exec setpriv --reuid="$RL_UID" --regid="$RL_GID" --init-groups \
			env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin XDG_RUNTIME_DIR="$RL_XDG" "$@"
	)
}

# rl CGROUP ARGS...: skiff as the user (debug log on stderr).
rl() {
	local cg=$1
	shift
	as_user "$cg" "$RL_BIN" --debug "$@"
}

# rl_bundle ID ARG...: a bundle from `skiff spec --rootless` as the user.
rl_bundle() {
	local id=$1 b a args='[]'
	shift
	b=$RL_WORK/bundles/$id
	rm -rf "$b"
	mkdir -p "$b"
	cp -a "$IT_BASE" "$b/rootfs"
	chown "$RL_USER:" "$b"
	as_user "$NODELEG/shell" "$RL_BIN" spec --rootless --bundle "$b" || return 1
	for a in "$@"; do
		args=$(jq -c --arg a "$a" '. + [$a]' <<<"$args")
	done
	jq --argjson args "$args" '.process.terminal = false | .process.args = $args | .root.readonly = false' \
		"$b/config.json" >"$b/c.json" && mv "$b/c.json" "$b/config.json"
}

rl_cfg() {
	local b=$RL_WORK/bundles/$1
	jq "$2" "$b/config.json" >"$b/c.json" && mv "$b/c.json" "$b/config.json"
}

rl_status() { rl "$NODELEG/shell" state "$1" 2>/dev/null | jq -r .status; }
rl_pid() { rl "$NODELEG/shell" state "$1" 2>/dev/null | jq -r .pid; }
rl_status_is() { [[ $(rl_status "$1") == "$2" ]]; }

test_delegated() {
	local id=rl-deleg b d pid
	rl_bundle $id sleep 1000 || fail "spec --rootless"
	rl_cfg $id '.linux.resources = {pids: {limit: 20}, memory: {limit: 67108864},
		devices: [{allow: false, access: "rwm"}]}'
	b=$RL_WORK/bundles/$id
	rl "$DELEG/shell" run -d --bundle "$b" $id </dev/null >"$b/out" 2>&1 ||
		fail "run -d: $(tail -n 3 "$b/out" | tr '\n' ' ')"
	grep -q 'rootless: no device filter' "$b/out" || fail "no debug note about the device filter: $(cat "$b/out")"
	pid=$(rl_pid $id)
	d=$DELEG/$id
	expect_eq "cgroup of init" "$(cg_of_pid "$pid")" "/skiff-rl-deleg/$id"
	expect_eq "init's host uid" "$(stat -c %u "/proc/$pid")" "$RL_UID"
	expect_cg "$d" pids.max 20
	expect_cg "$d" memory.max 67108864
	rl "$NODELEG/shell" pause $id 2>/dev/null || fail "pause"
	expect_eq "status after pause" "$(rl_status $id)" paused
	expect_cg "$d" cgroup.freeze 1
	rl "$NODELEG/shell" resume $id 2>/dev/null || fail "resume"
	expect_eq "status after resume" "$(rl_status $id)" running
	expect_eq "exec id -u" "$(rl "$NODELEG/shell" exec $id id -u 2>/dev/null)" 0
	rl "$NODELEG/shell" delete --force $id 2>/dev/null || fail "delete --force"
	wait_for 5 gone "$d" || fail "$d still there after delete"
	gone "$RL_XDG/skiff/$id" || fail "state dir left"
}

test_delegated-absolute() {
	local id=rl-abs b
	rl_bundle $id sh -c 'cat /proc/self/cgroup' || fail "spec --rootless"
	rl_cfg $id '.linux.cgroupsPath = "/skiff-rl-deleg/abs" | .linux.resources = {pids: {limit: 7}}'
	b=$RL_WORK/bundles/$id
	rl "$DELEG/shell" run --bundle "$b" $id </dev/null >"$b/out" 2>"$b/err" ||
		fail "run: $(tail -n 3 "$b/err" | tr '\n' ' ')"
	# The cgroup namespace is rooted at the container's cgroup.
	expect_eq "cgroup inside" "$(cat "$b/out")" "0::/"
	gone "$DELEG/abs" || fail "$DELEG/abs left after run"
}

test_not-delegated() {
	local id=rl-nodeleg b out
	rl_bundle $id sh -c 'cat /proc/self/cgroup' || fail "spec --rootless"
	b=$RL_WORK/bundles/$id
	rl "$NODELEG/shell" run --bundle "$b" $id </dev/null >"$b/out" 2>"$b/err" ||
		fail "run without limits: $(tail -n 3 "$b/err" | tr '\n' ' ')"
	grep -q 'rootless: not using cgroup' "$b/err" || fail "no debug note: $(cat "$b/err")"
	# Its own cgroup namespace, rooted in skiff's cgroup.
	expect_eq "cgroup inside" "$(cat "$b/out")" "0::/"
	rl_cfg $id '.linux.resources = {pids: {limit: 10}}'
	if rl "$NODELEG/shell" run --bundle "$b" $id </dev/null >"$b/out" 2>"$b/err"; then
		fail "a pids limit without a delegated cgroup was accepted"
	fi
	out=$(grep 'level=error' "$b/err")
	[[ $out == *linux.resources.pids*delegated* ]] || fail "error: $out"
	log "ok: refused: $out"
	gone "$RL_XDG/skiff/$id" || fail "state dir left"
}

test_no-leftovers() {
	local p left=()
	[[ -z $(ls -A "$RL_XDG/skiff" 2>/dev/null) ]] || left+=("state: $(ls -A "$RL_XDG/skiff")")
	for p in "$DELEG"/*/; do
		[[ ${p%/} == "$DELEG/shell" ]] || left+=("cgroup $p")
	done
	for p in /proc/[0-9]*; do
		[[ $(stat -c %u "$p" 2>/dev/null) == "$RL_UID" ]] && left+=("process ${p#/proc/}")
	done
	((${#left[@]} == 0)) || fail "left behind: ${left[*]}"
}

run_one() {
	local name=$1 rc=0
	IT_REASON=$(mktemp)
	export IT_REASON
	(set -eE; "test_$name") || rc=$?
	case $rc in
	0) echo "PASS rootless-$name" ;;
	77) echo "SKIP rootless-$name: $(cat "$IT_REASON")" ;;
	*)
		echo "FAIL rootless-$name: $(cat "$IT_REASON")"
		failed=1
		;;
	esac
	rm -f "$IT_REASON"
}

if [[ ! -e $CG/cgroup.controllers ]]; then
	echo "SKIP rootless: no cgroup v2 at $CG"
	exit 0
fi
if ! command -v newuidmap >/dev/null || ! command -v setpriv >/dev/null; then
	echo "SKIP rootless: setpriv or newuidmap missing"
	exit 0
fi
if ! setup; then
	echo "FAIL rootless-setup"
	cleanup
	exit 2
fi
for t in delegated delegated-absolute not-delegated; do
	run_one "$t"
done
run_one no-leftovers
cleanup
exit "$failed"

#!/bin/bash
# The cgroup v1 test stage, INSIDE the test VM booted with a v1 layout
# (hack/vm/run --cgroup legacy or --cgroup hybrid), as root, in one boot:
#
#   1. conformance executables (tests/tests/*.rs, listed by stage-v1.sh in
#      target/release/v1-conformance-tests): cgroup_v1 (limits, placement,
#      pause, update, stats, exec, OOM, 200 lifecycles; runc through the same
#      steps as the reference), and lifecycle, exec, crash, check, and
#      checkpoint (CRIU restores into the v1 cgroups);
#   2. the shim under containerd 1.6 with ctr, skiff's shim, and runc's
#      shim where skiff's did not pass (all: IT_REFERENCE=all): a memory
#      limit lands in memory.limit_in_bytes, v1 metrics, pause/resume
#      through the freezer, an OOM kill reported before the exit, nothing
#      left behind; podman (cgroupfs manager) with --memory and
#      --pids-limit, with skiff and runc as its runtime; the systemd driver
#      (the runtime's --systemd-cgroup: a transient scope, limits in its v1
#      directories, update, delete) and podman's systemd cgroup manager;
#      CRI pods (skiff-cri-test) with the cgroupfs handlers and skiff's
#      systemd-driver one.
#
#   integration/vm/run-v1.sh [PART...]   # parts: conformance shim
#
# Prints PASS/FAIL/SKIP lines named v1-<layout>/...; a shim test skiff fails
# that runc passes is a FAIL, one both fail a SKIP. Exits 1 if any failed.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
# shellcheck source=conformance-lib.sh
source "$here/conformance-lib.sh"
# shellcheck source=local-bins.sh
source "$here/local-bins.sh"
R=$repo/target/release
W=${IT_V1_WORK:-/var/tmp/skiff-v1}
fails=0

# checkpoint: a counting container checkpointed and restored with CRIU,
# its cgroup in every v1 hierarchy (the v2 boot's suite-criu.sh runs the
# rest, with runc as the reference).
read -ra CONFORMANCE <<<"${IT_V1_CONFORMANCE:-cgroup_v1 lifecycle exec crash check checkpoint}"
SHIM_TESTS=(limit metrics pause_resume oom podman systemd podman_systemd cri cri_systemd nothing_left)

parts=("$@")
((${#parts[@]})) || parts=(conformance shim)
rm -rf "$W"
mkdir -p "$W"
local_bins "$R/skiff" "$repo/integration/cri/target/release/skiff-cri-test" &&
	local_bins_listed "$R/v1-conformance-tests" || exit 1

if [[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]]; then
	echo "FAIL v1/layout: this VM booted with pure cgroup v2"
	exit 1
fi
layout=legacy
[[ ! -e /sys/fs/cgroup/unified/cgroup.procs ]] || layout=hybrid
P=v1-$layout
echo "PASS $P/layout ($(uname -r), $(awk -F: '$1 != 0 {print $2}' /proc/self/cgroup | sort | tr '\n' ' '))"

# part_conformance: the chosen test executables.
part_conformance() {
	local n=0 why
	# CRIU from the staged Debian packages; without it checkpoint.rs skips.
	why=$("$repo/integration/criu/install.sh") || echo "# criu: $why"
	SKIFF_BIN=$R/skiff IT_CONFORMANCE_FILE_TIMEOUT=${IT_V1_FILE_TIMEOUT:-600} CONFORMANCE_TABLES=1 SKIFF_V1_LIFECYCLES=50 \
		conformance_files "$P" "$R/v1-conformance-tests" "$W" "${CONFORMANCE[@]}" || n=$?
	((fails += n))
}

# The memory hierarchy's directory of ctr's container ID (cgroupsPath /NS/ID).
memdir() { echo "/sys/fs/cgroup/memory/$NS/$1"; }

t_limit() {
	"${C[@]}" run -d "${RT[@]}" --memory-limit 67108864 "$IMG" l1 sleep 600 >/dev/null || return 1
	expect "memory.limit_in_bytes" "$(cat "$(memdir l1)/memory.limit_in_bytes")" 67108864 || return 1
	local pid
	pid=$("${C[@]}" task ls | awk '$1 == "l1" {print $2}')
	grep -q ":memory:/$NS/l1\$" "/proc/$pid/cgroup" || { log "init's cgroups: $(cat "/proc/$pid/cgroup")"; return 1; }
	kill_and_rm l1
}

t_metrics() {
	"${C[@]}" run -d "${RT[@]}" --memory-limit 67108864 "$IMG" m1 sleep 600 >/dev/null || return 1
	local j
	j=$("${C[@]}" task metrics --format json m1) || return 1
	# v1 metrics: memory.usage.limit and pids.current.
	expect "metrics memory.usage.limit" "$(jq -r '.memory.usage.limit' <<<"$j")" 67108864 || { log "metrics: $j"; return 1; }
	jq -e '.pids.current == 1 and .cpu.usage.total > 0' <<<"$j" >/dev/null || { log "metrics: $j"; return 1; }
	kill_and_rm m1
}

t_pause_resume() {
	"${C[@]}" run -d "${RT[@]}" "$IMG" pr1 sleep 600 >/dev/null || return 1
	"${C[@]}" task pause pr1 || return 1
	wait_status pr1 PAUSED || return 1
	expect "freezer.state" "$(cat "/sys/fs/cgroup/freezer/$NS/pr1/freezer.state")" FROZEN || return 1
	"${C[@]}" task resume pr1 || return 1
	wait_status pr1 RUNNING || return 1
	expect "freezer.state" "$(cat "/sys/fs/cgroup/freezer/$NS/pr1/freezer.state")" THAWED || return 1
	kill_and_rm pr1
}

t_oom() { shim_oom_test; }

# podman with $RT_BIN as its OCI runtime: the limits land in the v1 files.
t_podman() { podman_test cgroupfs; }
t_podman_systemd() { podman_test systemd; }
podman_test() {
	command -v podman >/dev/null || { log "podman is not installed"; return 1; }
	local id pid ok=0
	id=$(timeout 150 podman --runtime "$RT_BIN" --cgroup-manager "$1" run -d --network none \
		--security-opt seccomp=unconfined --memory 64m --pids-limit 50 localhost/skiff-busybox sleep 600) ||
		{ log "podman run: $id"; return 1; }
	pid=$(podman inspect -f '{{.State.Pid}}' "$id")
	file() { echo "/sys/fs/cgroup/$1$(awk -F: -v c="$1" '$2 == c {print $3}' "/proc/$pid/cgroup")/$2"; }
	expect "memory.limit_in_bytes" "$(cat "$(file memory memory.limit_in_bytes)")" 67108864 &&
		expect "pids.max" "$(cat "$(file pids pids.max)")" 50 && ok=1
	timeout 60 podman rm -f -t 0 "$id" >/dev/null 2>&1
	((ok))
}

# A CRI pod through containerd's CRI plugin with the handler of $RT_BIN_NAME
# (cgroupfs), and skiff's systemd-driver handler (runc has none configured).
t_cri() {
	[[ -x $CRI_TEST ]] || { log "no $CRI_TEST (make build builds it)"; return 1; }
	timeout 300 "$CRI_TEST" pod "$RT_BIN_NAME" "$IMG" /skiff-it-pods
}
t_cri_systemd() {
	[[ $RT_BIN_NAME == skiff ]] || { log "no systemd-driver CRI handler for $RT_BIN_NAME here"; return 1; }
	[[ -x $CRI_TEST ]] || { log "no $CRI_TEST (make build builds it)"; return 1; }
	SKIFF_CRI_STATE_ROOT=$SYSTEMD_HANDLER_ROOT timeout 300 "$CRI_TEST" pod skiff-systemd "$IMG" skiff_it.slice
}

# devices_kept DIR: after a daemon-reload the scope still denies by default
# and allows /dev/null (systemd re-applied its own device properties).
devices_kept() {
	local list
	list=$(cat "$1/devices.list")
	grep -q '^c 1:3 rwm$' <<<"$list" && ! grep -q '^a ' <<<"$list" ||
		{ log "devices.list after daemon-reload: $(tr '\n' ' ' <<<"$list")"; return 1; }
}

# The runtime's systemd driver on v1: a scope in system.slice with the
# limits in each hierarchy's directory of it, and its device rules kept
# across a daemon-reload.
t_systemd() {
	local b=$W/sd-bundle id=it-v1sd unit=skiff-it-v1sd.scope pid ok=0
	rm -rf "$b"
	SKIFF=$R/skiff "$repo/hack/mkbundle" "$b" sleep 600 >/dev/null 2>&1 || { log "mkbundle failed"; return 1; }
	jq '.linux.cgroupsPath = "system.slice:skiff:it-v1sd" | .linux.resources = {memory: {limit: 67108864}, pids: {limit: 30}}' \
		"$b/config.json" >"$b/c.json" && mv "$b/c.json" "$b/config.json"
	local rt=("$RT_BIN" --root "$W/sd-root-$RT_BIN_NAME" --systemd-cgroup)
	"${rt[@]}" create --bundle "$b" "$id" </dev/null >/dev/null 2>"$W/sd.err" || { log "create: $(cat "$W/sd.err")"; return 1; }
	pid=$("${rt[@]}" state "$id" | jq -r .pid)
	{
		expect "systemctl is-active $unit" "$(systemctl is-active $unit 2>&1)" active &&
			expect "init's memory cgroup" "$(awk -F: '$2 == "memory" {print $3}' "/proc/$pid/cgroup")" "/system.slice/$unit" &&
			expect "memory.limit_in_bytes" "$(cat "/sys/fs/cgroup/memory/system.slice/$unit/memory.limit_in_bytes")" 67108864 &&
			expect "pids.max" "$(cat "/sys/fs/cgroup/pids/system.slice/$unit/pids.max")" 30 &&
			"${rt[@]}" update --memory 100663296 "$id" 2>"$W/sd.err" &&
			expect "memory.limit_in_bytes after update" "$(cat "/sys/fs/cgroup/memory/system.slice/$unit/memory.limit_in_bytes")" 100663296 &&
			systemctl daemon-reload &&
			devices_kept "/sys/fs/cgroup/devices/system.slice/$unit" &&
			ok=1
	} || log "$(cat "$W/sd.err" 2>/dev/null)"
	"${rt[@]}" delete --force "$id" >/dev/null 2>&1
	sleep 1
	((ok)) || return 1
	! systemctl is-active -q $unit || { log "$unit still active after delete"; return 1; }
	local left
	left=$(find /sys/fs/cgroup/*/system.slice -maxdepth 1 -name "$unit" 2>/dev/null)
	[[ -z $left ]] || { log "left after delete: $left"; return 1; }
}

t_nothing_left() {
	sleep 1
	! grep -q "io.containerd.runtime.v2.task/$NS/" /proc/mounts || { log "mounts left"; return 1; }
	local left
	left=$(find /sys/fs/cgroup/*/"$NS" -mindepth 1 -type d 2>/dev/null)
	[[ -z $left ]] || { log "cgroups left: $left"; return 1; }
}

# part_shim: each test with skiff's shim, then with runc's, the reference,
# where skiff's did not pass (every test with IT_REFERENCE=all:
# reference_always, common.sh); a table, then the verdicts.
part_shim() {
	source "$here/shim-lib.sh"
	shim_setup >"$W/shim-setup.out" 2>&1 || { cat "$W/shim-setup.out"; ((fails++)); return; }
	declare -A res
	local rt t rc
	for rt in skiff runc; do
		RT=(--runtime "io.containerd.$rt.v2")
		RT_BIN=runc RT_BIN_NAME=$rt
		[[ $rt == runc ]] || RT_BIN=$R/skiff
		for t in "${SHIM_TESTS[@]}"; do
			if [[ $rt == runc && ${res[$t/skiff]} == PASS ]] && ! reference_always; then
				res[$t/runc]=not-run
				continue
			fi
			rc=0
			(set +e; "t_$t") >"$W/shim-$rt-$t.log" 2>&1 || rc=$?
			if ((rc == 0)); then res[$t/$rt]=PASS; else res[$t/$rt]=FAIL; cleanup_all >/dev/null 2>&1; fi
		done
	done
	printf '  %-7s %-6s %s\n' runc skiff "shim on cgroup v1 ($layout)"
	for t in "${SHIM_TESTS[@]}"; do
		printf '  %-7s %-6s %s\n' "${res[$t/runc]}" "${res[$t/skiff]}" "$t"
	done
	for t in "${SHIM_TESTS[@]}"; do
		case ${res[$t/skiff]}/${res[$t/runc]} in
		PASS/*) echo "PASS $P/shim/$t" ;;
		FAIL/FAIL) echo "SKIP $P/shim/$t: runc's shim fails it too: $(tail -n 1 "$W/shim-runc-$t.log")" ;;
		*)
			echo "FAIL $P/shim/$t: $(tail -n 3 "$W/shim-skiff-$t.log" | tr '\n' ' ')"
			((fails++))
			;;
		esac
	done
}

for part in "${parts[@]}"; do
	case $part in
	conformance) part_conformance ;;
	shim) part_shim ;;
	*) echo "FAIL $P/$part: no such part (conformance shim)"; ((fails++)) ;;
	esac
done
echo "$P: $fails failed"
((fails == 0))

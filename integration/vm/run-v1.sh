#!/bin/bash
# The cgroup v1 test stage, INSIDE the test VM booted with a v1 layout
# (hack/vm/run --cgroup legacy or --cgroup hybrid), as root, in one boot:
#
#   1. conformance executables (tests/tests/*.rs, listed by stage-v1.sh in
#      target/release/v1-conformance-tests): cgroup_v1 (limits, placement,
#      pause, update, stats, exec, OOM, 200 lifecycles; runc through the same
#      steps as the reference), and lifecycle, exec, crash, check;
#   2. the shim under containerd 1.6 with ctr, skiff's shim and runc's shim
#      side by side: a memory limit lands in memory.limit_in_bytes, v1
#      metrics, pause/resume through the freezer, an OOM kill reported
#      before the exit, nothing left behind; podman (cgroupfs manager) with
#      --memory and --pids-limit, with skiff and runc as its runtime.
#
#   integration/vm/run-v1.sh [PART...]   # parts: conformance shim
#
# Prints PASS/FAIL/SKIP lines named v1-<layout>/...; a shim test skiff fails
# that runc passes is a FAIL, one both fail a SKIP. Exits 1 if any failed.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
R=$repo/target/release
W=${IT_V1_WORK:-/var/tmp/skiff-v1}
fails=0

CONFORMANCE=(cgroup_v1 lifecycle exec crash check)
SHIM_TESTS=(limit metrics pause_resume oom podman nothing_left)

parts=("$@")
((${#parts[@]})) || parts=(conformance shim)
rm -rf "$W"
mkdir -p "$W"

if [[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]]; then
	echo "FAIL v1/layout: this VM booted with pure cgroup v2"
	exit 1
fi
layout=legacy
[[ ! -e /sys/fs/cgroup/unified/cgroup.procs ]] || layout=hybrid
P=v1-$layout
echo "PASS $P/layout ($(uname -r), $(awk -F: '$1 != 0 {print $2}' /proc/self/cgroup | sort | tr '\n' ' '))"

# part_conformance: libtest's verdicts turned into lines; a test that
# recorded a skip (tests/src/skip.rs) is a SKIP.
part_conformance() {
	local name exe out skips t verdict t1
	for name in "${CONFORMANCE[@]}"; do
		exe=$(awk -v n="$name" '$1 == n { print $2 }' "$R/v1-conformance-tests" 2>/dev/null)
		if [[ -z $exe || ! -x $exe ]]; then
			echo "FAIL $P/conformance/$name: no executable (stage-v1.sh lists them in $R/v1-conformance-tests)"
			((fails++))
			continue
		fi
		out=$W/conf-$name.out skips=$W/conf-$name.skips t1=$SECONDS
		: >"$skips"
		(cd "$repo/tests" && SKIFF_BIN=$R/skiff SKIFF_SKIP_LOG=$skips \
			timeout "${IT_V1_FILE_TIMEOUT:-600}" "$exe" --test-threads=2 --nocapture) >"$out" 2>"$W/conf-$name.err"
		echo "# $P conformance $name: $((SECONDS - t1))s"
		# cgroup_v1's table of skiff and runc.
		grep '^  cgroup v1 ' "$W/conf-$name.err" || true
		while read -r t verdict; do
			case $verdict in
			ok)
				if grep -q "/$t"$'\t' "$skips"; then
					echo "SKIP $P/conformance/$name/$t: $(grep -m1 "/$t"$'\t' "$skips" | cut -f2)"
				else
					echo "PASS $P/conformance/$name/$t"
				fi
				;;
			ignored) echo "SKIP $P/conformance/$name/$t: #[ignore]d" ;;
			*)
				echo "FAIL $P/conformance/$name/$t"
				((fails++))
				;;
			esac
		done < <(sed -n 's/^test \(.*\) \.\.\. \(ok\|FAILED\|ignored\).*/\1 \2/p' "$out")
		if ! grep -q '^test result:' "$out"; then
			echo "FAIL $P/conformance/$name: the executable ended without a result: $(tail -n 3 "$W/conf-$name.err" | tr '\n' ' ')"
			((fails++))
		fi
		grep -A30 '^failures:' "$out" | head -n 60 | sed "s/^/  [$name] /" >&2
	done
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

t_oom() {
	local ev=$IT_TMP/events.oom rc=0
	"${C[@]}" events >"$ev" 2>&1 &
	local evpid=$!
	sleep 1
	"${C[@]}" run --rm "${RT[@]}" --memory-limit 33554432 "$IMG" oom1 \
		sh -c 'echo 0 >/proc/self/oom_score_adj; x=$(head -c 200000000 /dev/zero | tr "\000" a); echo survived' \
		>/dev/null 2>&1 || rc=$?
	sleep 2
	kill "$evpid" 2>/dev/null
	wait "$evpid" 2>/dev/null
	expect "oom exit code" "$rc" 137 || return 1
	local o e
	o=$(grep -n '/tasks/oom' "$ev" | head -1 | cut -d: -f1)
	e=$(grep -n '/tasks/exit.*oom1' "$ev" | head -1 | cut -d: -f1)
	[[ -n $o && -n $e && $o -lt $e ]] || { log "events (the OOM must come before the exit): $(cat "$ev")"; return 1; }
}

# podman with $RT_BIN as its OCI runtime: the limits land in the v1 files.
t_podman() {
	command -v podman >/dev/null || { log "podman is not installed"; return 1; }
	local id pid ok=0
	id=$(timeout 150 podman --runtime "$RT_BIN" --cgroup-manager cgroupfs run -d --network none \
		--security-opt seccomp=unconfined --memory 64m --pids-limit 50 localhost/skiff-busybox sleep 600) ||
		{ log "podman run: $id"; return 1; }
	pid=$(podman inspect -f '{{.State.Pid}}' "$id")
	file() { echo "/sys/fs/cgroup/$1$(awk -F: -v c="$1" '$2 == c {print $3}' "/proc/$pid/cgroup")/$2"; }
	expect "memory.limit_in_bytes" "$(cat "$(file memory memory.limit_in_bytes)")" 67108864 &&
		expect "pids.max" "$(cat "$(file pids pids.max)")" 50 && ok=1
	timeout 60 podman rm -f -t 0 "$id" >/dev/null 2>&1
	((ok))
}

t_nothing_left() {
	sleep 1
	! grep -q "io.containerd.runtime.v2.task/$NS/" /proc/mounts || { log "mounts left"; return 1; }
	local left
	left=$(find /sys/fs/cgroup/*/"$NS" -mindepth 1 -type d 2>/dev/null)
	[[ -z $left ]] || { log "cgroups left: $left"; return 1; }
}

# part_shim: each test with runc's shim, then skiff's; a table, then the
# verdicts.
part_shim() {
	source "$here/shim-lib.sh"
	shim_setup >"$W/shim-setup.out" 2>&1 || { cat "$W/shim-setup.out"; ((fails++)); return; }
	declare -A res
	local rt t rc
	for rt in runc skiff; do
		RT=(--runtime "io.containerd.$rt.v2")
		RT_BIN=runc
		[[ $rt == runc ]] || RT_BIN=$R/skiff
		for t in "${SHIM_TESTS[@]}"; do
			rc=0
			(set +e; "t_$t") >"$W/shim-$rt-$t.log" 2>&1 || rc=$?
			if ((rc == 0)); then res[$t/$rt]=PASS; else res[$t/$rt]=FAIL; cleanup_all >/dev/null 2>&1; fi
		done
	done
	printf '  %-6s %-6s %s\n' runc skiff "shim on cgroup v1 ($layout)"
	for t in "${SHIM_TESTS[@]}"; do
		printf '  %-6s %-6s %s\n' "${res[$t/runc]}" "${res[$t/skiff]}" "$t"
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

#!/bin/bash
# containerd shim tests (INSIDE the test VM, as root): containerd 1.6 drives
# target/release/containerd-shim-skiff-v2 through ctr, with a busybox image
# built locally (buildah, no registry). Prints PASS/FAIL/SKIP lines; exits 1
# if any test failed. Run by run-all.sh; alone:
#   hack/vm/run --timeout 900 integration/vm/suite-shim.sh [TEST...]
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)

# ---------------------------------------------------------------- helpers --
SHIM=$repo/target/release/containerd-shim-skiff-v2
IT_TMP=${IT_TMP:-/var/tmp/skiff-shim-it}
IMG=docker.io/library/skiff-busybox:latest
PAUSE=docker.io/library/skiff-pause:latest
CRI_TEST=$repo/integration/cri/target/release/skiff-cri-test
NS=skiff-it
C=(timeout --foreground 60 ctr -n "$NS")
RT=(--runtime io.containerd.skiff.v2)

log() { printf '  %s\n' "$*" >&2; }

# expect WHAT GOT WANT
expect() {
	[[ $2 == "$3" ]] && return 0
	log "$1: got '$2', want '$3'"
	return 1
}

# wait_for SECS CMD...: poll CMD every 0.2s until it succeeds.
wait_for() {
	local secs=$1 i
	shift
	for ((i = 0; i < secs * 5; i++)); do
		"$@" && return 0
		sleep 0.2
	done
	"$@"
}

task_status() { "${C[@]}" task ls 2>/dev/null | awk -v id="$1" '$1==id{print $3}'; }

# wait_status ID STATUS [SECS]
wait_status() {
	local i secs=${3:-20}
	for ((i = 0; i < secs * 5; i++)); do
		[[ $(task_status "$1") == "$2" ]] && return 0
		sleep 0.2
	done
	log "$1: status '$(task_status "$1")', want $2"
	return 1
}

gone_or_stopped() {
	local st
	st=$(task_status "$1")
	[[ -z $st || $st == STOPPED ]]
}

# kill_and_rm ID: stop the task, delete it and the container.
kill_and_rm() {
	"${C[@]}" task kill -s KILL "$1" >/dev/null 2>&1
	wait_status "$1" STOPPED >/dev/null 2>&1
	"${C[@]}" task rm "$1" >/dev/null 2>&1
	"${C[@]}" container rm "$1" >/dev/null 2>&1
	[[ -z $("${C[@]}" container ls -q | grep -x "$1") ]]
}

cleanup_all() {
	local id
	for id in $("${C[@]}" task ls -q 2>/dev/null); do
		"${C[@]}" task kill -a -s KILL "$id" >/dev/null 2>&1
		"${C[@]}" task rm -f "$id" >/dev/null 2>&1
	done
	for id in $("${C[@]}" container ls -q 2>/dev/null); do
		"${C[@]}" container rm "$id" >/dev/null 2>&1
	done
}

# A busybox image from busybox-static, built with buildah and imported.
build_image() {
	local c mnt tar=$IT_TMP/busybox.tar a
	c=$(buildah from scratch) || return 1
	mnt=$(buildah mount "$c") || return 1
	mkdir -p "$mnt/bin" "$mnt/tmp" "$mnt/etc"
	cp /bin/busybox "$mnt/bin/busybox"
	for a in $("$mnt/bin/busybox" --list); do
		[[ -e $mnt/bin/$a ]] || ln -s busybox "$mnt/bin/$a"
	done
	echo 'root:x:0:0:root:/:/bin/sh' >"$mnt/etc/passwd"
	echo 'root:x:0:' >"$mnt/etc/group"
	buildah umount "$c" >/dev/null
	buildah config --cmd '["/bin/sh"]' --env PATH=/bin "$c" >/dev/null
	buildah commit -q "$c" skiff-busybox >/dev/null || return 1
	# The CRI sandbox ("pause") image: the same, sleeping forever.
	buildah config --cmd '["/bin/sleep","2147483647"]' "$c" >/dev/null
	buildah commit -q "$c" skiff-pause >/dev/null || return 1
	buildah rm "$c" >/dev/null
	local ns
	for ns in "$NS" k8s.io; do
		rm -f "$tar"
		buildah push -q skiff-busybox "oci-archive:$tar:$IMG" >/dev/null || return 1
		ctr -n "$ns" image import "$tar" >/dev/null || return 1
		rm -f "$tar"
		buildah push -q skiff-pause "oci-archive:$tar:$PAUSE" >/dev/null || return 1
		ctr -n "$ns" image import "$tar" >/dev/null || return 1
	done
	"${C[@]}" image ls -q | grep -qx "$IMG"
}

# containerd's config: the CRI plugin with runtime handlers skiff (cgroupfs)
# and skiff-systemd (SystemdCgroup through the CRI runtime options file).
write_config() {
	cat >/etc/containerd/skiff-systemd.toml <<-EOT
		SystemdCgroup = true
	EOT
	cat >/etc/containerd/config.toml <<-EOT
		version = 2
		[plugins."io.containerd.grpc.v1.cri"]
		  sandbox_image = "$PAUSE"
		[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
		  runtime_type = "io.containerd.runc.v2"
		[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.skiff]
		  runtime_type = "io.containerd.skiff.v2"
		[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.skiff-systemd]
		  runtime_type = "io.containerd.skiff.v2"
		[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.skiff-systemd.options]
		  ConfigPath = "/etc/containerd/skiff-systemd.toml"
	EOT
}

# Install the shim on PATH, start containerd, import the image.
shim_setup() {
	if [[ ! -x $SHIM ]]; then
		echo "SKIP shim: $SHIM is not built"
		return 1
	fi
	if ! command -v ctr >/dev/null || ! command -v buildah >/dev/null; then
		echo "SKIP shim: ctr or buildah missing in the VM"
		return 1
	fi
	mkdir -p "$IT_TMP"
	install -m 755 "$SHIM" /usr/local/bin/containerd-shim-skiff-v2
	mkdir -p /etc/containerd
	write_config
	systemctl restart containerd
	wait_for 30 ctr version >/dev/null 2>&1 || {
		echo "FAIL shim: containerd does not answer"
		exit 1
	}
	build_image || {
		echo "FAIL shim: cannot build the busybox image"
		exit 1
	}
}

# shim_run_tests [NAME...]: run t_NAME (all, in file order, by default).
shim_run_tests() {
	local names=("$@") t rc pass=0 failed=0 skipped=0 t0
	if ((${#names[@]} == 0)); then
		mapfile -t names < <(declare -F | awk '{print $3}' | grep '^t_' | sed 's/^t_//' |
			while read -r n; do echo "$(grep -n "^t_$n()" "${BASH_SOURCE[0]}" | cut -d: -f1) $n"; done |
			sort -n | cut -d' ' -f2)
	fi
	for t in "${names[@]}"; do
		t0=$SECONDS
		rc=0
		(set +e; "t_$t") || rc=$?
		case $rc in
		0) echo "PASS shim/$t ($((SECONDS - t0))s)"; ((pass++)) ;;
		77) echo "SKIP shim/$t"; ((skipped++)) ;;
		*)
			echo "FAIL shim/$t ($((SECONDS - t0))s)"
			((failed++))
			journalctl -u containerd --since "-$((SECONDS - t0 + 5))s" --no-pager 2>/dev/null |
				grep -iE 'skiff|shim|error' | tail -n 15 | sed 's/^/  | /' >&2
			cleanup_all
			;;
		esac
	done
	echo "shim: $pass passed, $failed failed, $skipped skipped"
	((failed == 0))
}

shim_setup || exit 0

# Each test: a function; `t_NAME`. Return 0 pass, 1 fail, 77 skip.

t_exit_code() {
	local rc=0 out
	out=$("${C[@]}" run --rm "${RT[@]}" "$IMG" ec1 sh -c 'echo out-$((6*7)); exit 7' 2>&1) || rc=$?
	expect "exit code" "$rc" 7 && expect "stdout" "$out" out-42
}

t_terminal() {
	local out
	out=$(script -qec "${C[*]} run --rm -t ${RT[*]} $IMG tt1 sh -c 'tty; test -t 0 && echo is-a-tty'" /dev/null 2>&1 | tr -d '\r\000')
	grep -qE '/dev/(console|pts/[0-9]+)$' <<<"$out" && grep -q '^is-a-tty$' <<<"$out" ||
		{ log "output: $out"; return 1; }
}

t_exec() {
	"${C[@]}" run -d "${RT[@]}" "$IMG" ex1 sleep 600 >/dev/null || return 1
	local out rc=0
	out=$("${C[@]}" task exec --exec-id e1 ex1 sh -c 'echo in-$(cat /proc/1/comm); exit 3' 2>&1) || rc=$?
	expect "exec exit code" "$rc" 3 && expect "exec stdout" "$out" in-sleep || return 1
	out=$(echo piped | "${C[@]}" task exec --exec-id e2 ex1 cat 2>&1)
	expect "exec stdin" "$out" piped || return 1
	out=$(script -qec "${C[*]} task exec -t --exec-id e3 ex1 tty" /dev/null 2>&1 | tr -d '\r\000')
	grep -qE '^/dev/pts/[0-9]+$' <<<"$out" || { log "exec tty: $out"; return 1; }
	kill_and_rm ex1
}

# A failed exec (its error comes back from the create/exec helper) names
# the binary, leaves the container running and the next exec working.
t_exec_error() {
	"${C[@]}" run -d "${RT[@]}" "$IMG" xe1 sleep 600 >/dev/null || return 1
	local out rc=0
	out=$("${C[@]}" task exec --exec-id bad xe1 /no-such-binary 2>&1) && rc=1
	grep -q "no-such-binary" <<<"$out" || { log "exec error: $out"; return 1; }
	((rc == 0)) || { log "exec of a missing binary succeeded"; return 1; }
	wait_status xe1 RUNNING || return 1
	out=$("${C[@]}" task exec --exec-id good xe1 echo fine 2>&1)
	expect "exec after a failed exec" "$out" fine || return 1
	kill_and_rm xe1
}

# io as a file: `--log-uri file://` gets stdout and stderr appended.
t_log_file() {
	local d=/tmp/skiff-it-log
	rm -rf "$d"
	"${C[@]}" run --rm --log-uri "file://$d/file.log" "${RT[@]}" "$IMG" lf1 \
		sh -c 'echo to-out; echo to-err >&2' >/dev/null 2>&1 || return 1
	grep -qx to-out "$d/file.log" && grep -qx to-err "$d/file.log" ||
		{ log "file log: $(cat "$d/file.log" 2>&1)"; return 1; }
}

# io through a logging binary (containerd's protocol: stdout on fd 3, stderr
# on fd 4, fd 5 closed when ready; the URI query gives its arguments).
t_log_binary() {
	local d=/tmp/skiff-it-log
	rm -rf "$d" && mkdir -p "$d"
	cat >"$d/logger" <<-'SH'
		#!/bin/sh
		exec 5>&-
		{ sed 's/^/out: /' <&3 & sed 's/^/err: /' <&4 & wait; } >>"$1"
		echo "for $CONTAINER_NAMESPACE/$CONTAINER_ID" >>"$1"
	SH
	chmod +x "$d/logger"
	"${C[@]}" run --rm --log-uri "binary://$d/logger?$d/bin.log" "${RT[@]}" "$IMG" lb1 \
		sh -c 'echo to-out; echo to-err >&2' >/dev/null 2>&1 || return 1
	wait_for 10 grep -q "^for " "$d/bin.log" || { log "no logger output: $(cat "$d/bin.log" 2>&1)"; return 1; }
	grep -qx "out: to-out" "$d/bin.log" && grep -qx "err: to-err" "$d/bin.log" &&
		grep -qx "for $NS/lb1" "$d/bin.log" || { log "binary log: $(cat "$d/bin.log")"; return 1; }
}

t_kill() {
	# pid 1 ignores TERM without a handler: give it one.
	"${C[@]}" run -d "${RT[@]}" "$IMG" k1 sh -c 'trap "exit 5" TERM; while :; do sleep 0.2; done' >/dev/null || return 1
	sleep 1
	"${C[@]}" task kill -s TERM k1 || return 1
	wait_status k1 STOPPED || return 1
	"${C[@]}" task rm k1 >/dev/null 2>&1
	"${C[@]}" container rm k1 || return 1
	# kill --all: init and a background child in the container.
	"${C[@]}" run -d "${RT[@]}" "$IMG" k2 sh -c 'sleep 600 & exec sleep 700' >/dev/null || return 1
	sleep 1
	local n
	n=$("${C[@]}" task ps k2 | tail -n +2 | wc -l)
	expect "processes before kill --all" "$n" 2 || return 1
	"${C[@]}" task kill -a -s KILL k2 || return 1
	wait_status k2 STOPPED || return 1
	"${C[@]}" task rm k2 >/dev/null 2>&1
	"${C[@]}" container rm k2
}

t_pause_resume() {
	"${C[@]}" run -d "${RT[@]}" "$IMG" pr1 sleep 600 >/dev/null || return 1
	"${C[@]}" task pause pr1 || return 1
	wait_status pr1 PAUSED || return 1
	expect "cgroup.freeze" "$(cat "/sys/fs/cgroup/$NS/pr1/cgroup.freeze")" 1 || return 1
	"${C[@]}" task resume pr1 || return 1
	wait_status pr1 RUNNING || return 1
	expect "cgroup.freeze" "$(cat "/sys/fs/cgroup/$NS/pr1/cgroup.freeze")" 0 || return 1
	kill_and_rm pr1
}

t_metrics() {
	"${C[@]}" run -d "${RT[@]}" --memory-limit 67108864 "$IMG" m1 sleep 600 >/dev/null || return 1
	local j
	j=$("${C[@]}" task metrics --format json m1) || return 1
	# v2 metrics carry usage_usec and memory.usage_limit (v1 has neither).
	expect "metrics usage_limit" "$(jq -r '.memory.usage_limit' <<<"$j")" 67108864 || return 1
	jq -e '.cpu.usage_usec >= 0 and .pids.current == 1' <<<"$j" >/dev/null ||
		{ log "metrics: $j"; return 1; }
	kill_and_rm m1
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
	grep -q '/tasks/oom.*oom1' "$ev" || { log "events: $(cat "$ev")"; return 1; }
	# The OOM comes before the exit.
	local o e
	o=$(grep -n '/tasks/oom' "$ev" | head -1 | cut -d: -f1)
	e=$(grep -n '/tasks/exit.*oom1' "$ev" | head -1 | cut -d: -f1)
	[[ -n $o && -n $e && $o -lt $e ]] || { log "events: $(cat "$ev")"; return 1; }
}

# Ten containers at once, each with its own shim; reports the shims' RSS
# (one pod, then ten: not asserted).
rss_of() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
t_many() {
	local i n=10 p total=0 dir=/run/containerd/io.containerd.runtime.v2.task/$NS
	"${C[@]}" run -d "${RT[@]}" "$IMG" many0 sleep 600 >/dev/null || return 1
	sleep 1
	p=$(cat "$dir/many0/shim.pid") || return 1
	echo "  shim RSS, 1 pod: $(rss_of "$p") KiB"
	for ((i = 1; i < n; i++)); do
		"${C[@]}" run -d "${RT[@]}" "$IMG" many$i sleep 600 >/dev/null &
	done
	wait
	local running
	running=$("${C[@]}" task ls | grep -c '^many.*RUNNING')
	expect "running containers" "$running" "$n" || return 1
	for ((i = 0; i < n; i++)); do
		p=$(cat "$dir/many$i/shim.pid") || return 1
		total=$((total + $(rss_of "$p")))
	done
	echo "  shim RSS, $n pods: $total KiB in all, $((total / n)) KiB per shim"
	for ((i = 0; i < n; i++)); do kill_and_rm many$i & done
	wait
	expect "leftover tasks" "$("${C[@]}" task ls -q | grep -c '^many')" 0
}

t_shim_crash() {
	"${C[@]}" run -d "${RT[@]}" "$IMG" crash1 sleep 600 >/dev/null || return 1
	local spid bundle=/run/containerd/io.containerd.runtime.v2.task/$NS/crash1
	spid=$(cat "$bundle/shim.pid")
	local cpid
	cpid=$("${C[@]}" task ls | awk '$1=="crash1"{print $2}')
	[[ -n $spid && -n $cpid ]] || return 1
	kill -9 "$spid"
	# containerd runs `shim delete`, then forgets the task (or shows it stopped).
	wait_for 30 gone_or_stopped crash1 ||
		{ log "task still $(task_status crash1)"; return 1; }
	wait_for 10 bash -c "! kill -0 $cpid 2>/dev/null" || { log "container process $cpid survived"; return 1; }
	"${C[@]}" task rm crash1 >/dev/null 2>&1
	"${C[@]}" container rm crash1 || return 1
	! grep -q "$bundle/rootfs" /proc/mounts || { log "rootfs still mounted"; return 1; }
	[[ ! -d /sys/fs/cgroup/$NS/crash1 ]] || { log "cgroup left"; return 1; }
}

t_containerd_restart() {
	"${C[@]}" run -d "${RT[@]}" "$IMG" rs1 sleep 600 >/dev/null || return 1
	systemctl restart containerd || return 1
	wait_for 30 "${C[@]}" version >/dev/null 2>&1 || return 1
	wait_status rs1 RUNNING || return 1
	local out
	out=$("${C[@]}" task exec --exec-id after rs1 echo still-here 2>&1)
	expect "exec after restart" "$out" still-here || return 1
	kill_and_rm rs1
}

# CRI, as the kubelet: a pod with two containers on one shim (cgroupfs).
t_cri() {
	[[ -x $CRI_TEST ]] || { log "no $CRI_TEST (make build builds it)"; return 77; }
	timeout 300 "$CRI_TEST" skiff "$IMG" /skiff-it-pods
}

# The same pod with the systemd cgroup driver.
t_cri_systemd() {
	[[ -x $CRI_TEST ]] || { log "no $CRI_TEST (make build builds it)"; return 77; }
	timeout 300 "$CRI_TEST" skiff-systemd "$IMG" skiff_it.slice
}

t_nothing_left() {
	sleep 1
	local n
	n=$(pgrep -c -f containerd-shim-skiff-v2)
	expect "shims left" "$n" 0 || { pgrep -af containerd-shim-skiff-v2 >&2; return 1; }
	! grep -q "io.containerd.runtime.v2.task/$NS/" /proc/mounts || { log "mounts left"; return 1; }
	local cgs
	cgs=$(find "/sys/fs/cgroup/$NS" -mindepth 1 -type d 2>/dev/null | wc -l)
	expect "cgroups left" "$cgs" 0
}

shim_run_tests "$@"

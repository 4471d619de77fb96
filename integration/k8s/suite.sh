#!/bin/bash
# Kubernetes for real (INSIDE the test VM, as root): a single-node cluster
# (integration/k8s/cluster.sh: etcd, kube-apiserver, kubelet, containerd
# 2.x) runs the same pods with RuntimeClass `skiff` (containerd-shim-skiff-
# v2) and `runc` (containerd-shim-runc-v2, the reference; by default only
# when skiff failed a test: K8S_REFERENCE below), each in a namespace named
# for it, and checks them through kubectl.
# Prints a table (test, runc, skiff), PASS/FAIL/SKIP lines, and exits 1 if
# skiff fails a test that runc passes. The VM has no Go: the host stages
# the binaries (integration/k8s/stage.sh, integration/containerd2/stage.sh;
# `make k8s-test` does both and runs this in its own boot: run.sh):
#   SKIFF_VM_MEM=4G hack/vm/run --timeout 3600 integration/k8s/suite.sh [TEST...]
set -uo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
source "$repo/integration/vm/shim-lib.sh"
source "$repo/integration/vm/containerd2-lib.sh"
source "$here/cluster.sh"
source "$here/pods.sh"
# shellcheck source=../vm/local-bins.sh
source "$repo/integration/vm/local-bins.sh"

HANDLERS=(skiff runc)
K8S_HOSTPATH=/var/tmp/skiff-k8s
OUT=${IT_LOG_DIR:+$IT_LOG_DIR/k8s}
OUT=${OUT:-/var/tmp/skiff-k8s-logs}
# Pods per round and rounds of the create/delete loop (K8S_LOOP_ROUNDS),
# and the handlers that run it (`make test` runs two rounds with skiff
# only: runc's loop, 160 s under emulation, only measured the reference's
# time, and skiff's third round took ~48 s).
LOOP_PODS=10
LOOP_ROUNDS=${K8S_LOOP_ROUNDS:-3}
LOOP_HANDLERS=" ${K8S_LOOP_HANDLERS:-skiff runc} "

# PASS/FAIL/SKIP lines are named k8s/TEST, or k8s-systemd/TEST with the
# kubelet's systemd driver.
name=k8s
[[ $K8S_CGROUP_DRIVER == systemd ]] && name=k8s-systemd
k8s_staged || { echo "SKIP k8s: not staged (on the host: integration/k8s/stage.sh)"; exit 0; }
cd2_staged || { echo "SKIP k8s: containerd 2.x not staged (on the host: integration/containerd2/stage.sh)"; exit 0; }
mkdir -p "$OUT"
t0=$SECONDS
# kubectl alone runs ~150 times.
local_bins "$K8S_BIN"/{kubectl,kubelet,kube-apiserver,etcd} "$CD2_BIN"/* || exit 1
# diagnose: what the cluster's processes wait on, on stdout (the
# watchdog's report when the stage nears its time limit; the watchdog
# sends it to stderr and the console).
diagnose() {
	local p
	echo "# $name: running for $((SECONDS - t0))s, in test '$(cat "$OUT/current" 2>/dev/null)'; what it waits on:"
	echo "load $(cat /proc/loadavg); $(free -m | awk '/^Mem:/ {print "memory used " $3 " of " $2 " MiB"}')"
	ps -eo pid,ppid,stat,etimes,wchan:22,args --sort=pid |
		awk 'NR == 1 || /containerd|skiff|kube|etcd|ctr |pause|sleep|dd / && !/awk/' | cut -c1-170 | head -n 50
	# Kernel stacks of what is in D state, of the shims' create/exec
	# helpers (a shim's child with its command line) and of skiff commands.
	for p in $(ps -eo pid=,ppid=,stat=,args= | awk '$3 ~ /^D/ || ($2 != 1 && $4 ~ /containerd-shim-skiff/) || $4 ~ /(^|\/)skiff$/ {print $1}'); do
		echo "stack $p ($(cat "/proc/$p/comm" 2>/dev/null)): $(awk '{print $2}' "/proc/$p/stack" 2>/dev/null | head -n 6 | tr '\n' ' ')"
	done
	echo "pods:"
	timeout 30 "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" get pods -A -o wide --request-timeout=20s 2>&1 | head -n 30
	echo "containerd, last lines:"
	journalctl -u containerd -n 15 --no-pager -o cat 2>&1 | cut -c1-250
	echo "kubelet, last errors:"
	journalctl -u skiff-kubelet -n 400 --no-pager -o cat 2>&1 | grep -E '^E[0-9]{4}' | tail -n 10 | cut -c1-250
	echo "kernel, last lines:"
	dmesg 2>&1 | tail -n 15
}
# The watchdog: K8S_DIAG_AFTER seconds after the suite began (run.sh sets
# it a little before the VM's time limit) a hung stage says where it hangs.
watchdog=''
if [[ ${K8S_DIAG_AFTER:-0} =~ ^[1-9][0-9]*$ ]]; then
	# To the console too (hack/vm/run shows its tail on a timeout): it
	# does not go through the shared directory the guest's output does.
	(sleep "$K8S_DIAG_AFTER" && diagnose >"$OUT/diagnose.txt" 2>&1
	while IFS= read -r l; do printf '<3>k8s: %.900s\n' "$l" >/dev/kmsg; done <"$OUT/diagnose.txt"
	cat "$OUT/diagnose.txt" >&2) &
	watchdog=$!
fi
trap '[[ -n $watchdog ]] && kill $watchdog 2>/dev/null; for u in skiff-kubelet skiff-apiserver containerd; do journalctl -u $u --no-pager >"$OUT/$u.log" 2>&1; done; k8s_stop >/dev/null 2>&1' EXIT
k8s_containerd || { echo "FAIL $name/setup: containerd 2.x with the shim"; exit 1; }
k8s_start >"$OUT/start.log" 2>&1 || {
	echo "FAIL $name/setup: $(tail -n 1 "$OUT/start.log")"
	exit 1
}
echo "# $name: $("$K8S_BIN/kubelet" --version), $(containerd --version | awk '{print $1, $3}'), kubelet cgroup driver $K8S_CGROUP_DRIVER, up in $((SECONDS - t0))s"

# ------------------------------------------------------------- helpers --
# kn ARGS...: kubectl in the namespace of the handler under test ($H).
kn() { k -n "$H" "$@"; }
# field POD JSONPATH: one field of a pod.
field() { kn get pod "$1" -o "jsonpath=$2" 2>/dev/null; }
# wait_field SECS POD JSONPATH CMP VALUE: until the field CMP (eq: equals,
# ge: >= as a number) VALUE; logs the last value on timeout.
wait_field() {
	local secs=$1 pod=$2 path=$3 cmp=$4 want=$5 got end=$((SECONDS + $1))
	while :; do
		got=$(field "$pod" "$path")
		case $cmp in
		eq) [[ $got == "$want" ]] && return 0 ;;
		ge) [[ $got =~ ^[0-9]+$ ]] && ((got >= want)) && return 0 ;;
		esac
		((SECONDS < end)) || break
		sleep 2
	done
	log "$H/$pod: $path is '$got' after ${secs}s, want $cmp $want"
	return 1
}
# wait_ready POD [SECS]
wait_ready() { kn wait --for=condition=Ready "pod/$1" --timeout "${2:-300}s" >/dev/null || { log "$H/$1 not Ready: $(pod_why "$1")"; return 1; }; }
pod_why() { field "$1" '{.status.phase} {.status.containerStatuses[*].state}'; }
# has TEXT WANT: TEXT contains WANT (logs both otherwise).
has() { [[ $1 == *"$2"* ]] && return 0; log "$H: want '$2' in: $1"; return 1; }
ids_of() { field "$1" '{.status.containerStatuses[*].containerID} {.status.initContainerStatuses[*].containerID}' | tr ' ' '\n' | sed -n 's#^containerd://##p'; }
# sandbox_of CONTAINER_ID: the pod sandbox id (containerd's label).
sandbox_of() { ctr -n k8s.io container info "$1" 2>/dev/null | jq -r '.Labels["io.kubernetes.cri.sandbox-id"] // empty'; }

# leftovers WORD...: what deleted pods left behind, WORDs being their uids
# and container and sandbox ids: cgroups, mounts, processes (by cgroup or
# command line), state directories, kubelet pod directories; empty when
# nothing. One pass for all words (each process costs under emulation).
leftovers() {
	local re='' w p
	(($#)) || return 0
	# "[a]bc" finds abc but not itself in grep's own command line.
	for w in "$@"; do re+="${re:+|}[${w:0:1}]${w:1}"; done
	re=${re//-/[-_]}
	find /sys/fs/cgroup/kubepods* -type d 2>/dev/null | grep -E "$re"
	grep -E "$re" /proc/mounts | awk '{print "mount " $2}'
	grep -laE "$re" /proc/[0-9]*/cgroup /proc/[0-9]*/cmdline 2>/dev/null |
		while IFS=/ read -r _ _ p _; do echo "process $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"; done
	for w in "$@"; do
		for p in /run/containerd/io.containerd.runtime.v2.task/k8s.io/$w /run/containerd/{skiff,runc}/k8s.io/$w \
			/var/lib/kubelet/pods/$w; do
			[[ -e $p ]] && echo "state $p"
		done
	done
}
# identity POD: "UID ID..." of a running pod (containers and sandbox).
identity() {
	local uid ids s
	uid=$(field "$1" '{.metadata.uid}')
	ids=$(ids_of "$1")
	s=$(sandbox_of "$(head -n 1 <<<"$ids")")
	echo "$uid" $ids $s
}
# gone_clean SECS WORD...: wait until nothing is left (leftovers).
gone_clean() {
	local secs=$1 left end=$((SECONDS + $1))
	shift
	while :; do
		left=$(leftovers "$@")
		[[ -z $left ]] && return 0
		((SECONDS < end)) || break
		sleep 3
	done
	log "$H: left behind after ${secs}s: $(head -n 5 <<<"$left" | tr '\n' ';')"
	return 1
}
# handler_clean SECS: no shim of handler $H runs and it keeps no state
# directory (its namespace has no pod left).
handler_clean() {
	local end=$((SECONDS + $1)) shims dirs
	while :; do
		shims=$(pgrep -c -f "containerd-shim-$H-v2")
		dirs=$(find "/run/containerd/$H/k8s.io" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
		((shims == 0 && dirs == 0)) && return 0
		((SECONDS < end)) || break
		sleep 3
	done
	log "$H: $shims containerd-shim-$H-v2 left, $dirs state directories in /run/containerd/$H/k8s.io"
	return 1
}
# uids [SELECTOR]: the uids of the pods (all, or those the label selector
# picks) in the namespace.
uids() { kn get pods ${1:+-l "$1"} -o 'jsonpath={.items[*].metadata.uid}'; }

# --------------------------------------------------------------- tests --
# Each t_NAME runs with $H set; returns 0 (pass) or 1.
# The shim is found by its argv[0]: its /proc/PID/exe is "/" (skiff's shim
# runs from a detached read-only mount of itself, CVE-2019-5736).
t_running() {
	wait_ready basic || return 1
	local id pid parent argv0
	id=$(ids_of basic | head -n 1)
	pid=$(ctr -n k8s.io task ls 2>/dev/null | awk -v id="$id" '$1 == id {print $2}')
	parent=$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
	argv0=$(tr '\0' '\n' <"/proc/$parent/cmdline" 2>/dev/null | head -n 1)
	[[ ${argv0##*/} == "containerd-shim-$H-v2" ]] ||
		{ log "$H: container $id (pid '$pid') has parent $parent: '$argv0'"; return 1; }
}
# The container's cgroup (as the host sees it) is where the kubelet's
# driver puts it: <pod cgroup>/<id> (cgroupfs) or a cri-containerd-<id>.scope
# in the pod's slice (systemd).
t_cgroup_path() {
	wait_ready basic || return 1
	local id uid pid cg want
	id=$(ids_of basic | head -n 1)
	uid=$(field basic '{.metadata.uid}')
	pid=$(ctr -n k8s.io task ls 2>/dev/null | awk -v id="$id" '$1 == id {print $2}')
	cg=$(sed -n 's/^0:://p' "/proc/$pid/cgroup" 2>/dev/null)
	if [[ $K8S_CGROUP_DRIVER == systemd ]]; then
		want="^/kubepods.slice/.*kubepods-[a-z-]*pod${uid//-/_}\.slice/cri-containerd-$id\.scope$"
	else
		want="^/kubepods/.*pod$uid/$id$"
	fi
	[[ $cg =~ $want ]] || { log "$H: container cgroup '$cg', want $want"; return 1; }
}
t_logs() { wait_ready basic && has "$(kn logs basic)" hello-from-basic; }
t_exec() {
	local out rc=0
	out=$(kn exec basic -- cat /etc/hostname) && [[ $out == basic ]] || { log "$H: exec printed '$out'"; return 1; }
	kn exec basic -- sh -c 'exit 3' 2>/dev/null || rc=$?
	[[ $rc == 3 ]] || { log "$H: exec of 'exit 3' gave $rc"; return 1; }
}
# script(1) gives kubectl a terminal. script reads its stdin to the end
# and hangs up on the command at EOF (in the VM, before it printed
# anything), so its stdin ends only a moment after kubectl has. timeout
# --foreground keeps kubectl in the terminal's foreground process group
# (else it stops at its first terminal mode change).
t_exec_tty() {
	local out done=$OUT/tty-$H.done
	rm -f "$done"
	out=$(script -qec "timeout --foreground 120 $K8S_BIN/kubectl --kubeconfig $KUBECONFIG_ADMIN -n $H exec -it basic -- sh -c 'tty; echo tty-ok'; touch $done" /dev/null \
		< <(t=0; until [[ -e $done ]] || ((t++ > 150)); do sleep 1; done))
	has "$out" /dev/pts/ && has "$out" tty-ok
}
# kubectl attach does not end when its stdin does (the container's stdin
# stays open: stdinOnce is false), so it runs in the background until the
# container has echoed the line.
t_attach() {
	local apid end=$((SECONDS + 120)) rc=0
	# $! is timeout's pid, which passes the TERM on to kubectl.
	echo attached-line | timeout 150 "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" \
		-n "$H" attach -i basic -c c >/dev/null 2>&1 &
	apid=$!
	until [[ $(kn logs basic) == *"got attached-line"* ]]; do
		((SECONDS < end)) || { log "$H: no 'got attached-line' in the logs"; rc=1; break; }
		sleep 2
	done
	kill "$apid" 2>/dev/null
	wait "$apid" 2>/dev/null
	return "$rc"
}
t_cp() {
	head -c 100000 /dev/urandom >"$OUT/cp-$H.in"
	kn cp "$OUT/cp-$H.in" basic:/tmp/cp.in >/dev/null &&
		kn cp basic:/tmp/cp.in "$OUT/cp-$H.out" >/dev/null &&
		cmp "$OUT/cp-$H.in" "$OUT/cp-$H.out"
}
t_limits() {
	local cpu mem
	cpu=$(kn exec basic -- cat /sys/fs/cgroup/cpu.max)
	mem=$(kn exec basic -- cat /sys/fs/cgroup/memory.max)
	expect "$H cpu.max" "$cpu" "50000 100000" && expect "$H memory.max" "$mem" 67108864
}
t_oom() {
	wait_field 300 oom '{.status.phase}' eq Failed &&
		wait_field 10 oom '{.status.containerStatuses[0].state.terminated.reason}' eq OOMKilled &&
		wait_field 10 oom '{.status.containerStatuses[0].state.terminated.exitCode}' eq 137
}
t_oom_restart() {
	wait_field 300 oomloop '{.status.containerStatuses[0].restartCount}' ge 1 &&
		wait_field 60 oomloop '{.status.containerStatuses[0].lastState.terminated.reason}' eq OOMKilled
}
t_probe_exec() { wait_field 300 live '{.status.containerStatuses[0].restartCount}' ge 1; }
t_probe_tcp() {
	wait_ready ready && sleep 10 && wait_ready ready 5 &&
		wait_field 1 ready '{.status.containerStatuses[0].restartCount}' eq 0
}
t_restart_policy() {
	wait_field 300 never-fail '{.status.phase}' eq Failed &&
		wait_field 1 never-fail '{.status.containerStatuses[0].restartCount}' eq 0 &&
		wait_field 300 onfailure-fail '{.status.containerStatuses[0].restartCount}' ge 1 &&
		wait_field 300 onfailure-ok '{.status.phase}' eq Succeeded &&
		wait_field 300 always-ok '{.status.containerStatuses[0].restartCount}' ge 1
}
t_init_sidecar() {
	wait_ready init || return 1
	local out
	out=$(kn logs init -c main)
	has "$out" init-done && has "$out" sidecar-up &&
		wait_field 1 init '{.status.initContainerStatuses[?(@.name=="sidecar")].started}' eq true
}
t_share_pid() {
	wait_ready sharepid && has "$(kn exec sharepid -c b -- ps)" "sleep 3601"
}
# sec_log CONTAINER: the output of one container of pod sec.
sec_log() { wait_field 300 sec '{.status.phase}' eq Succeeded >/dev/null && kn logs sec -c "$1"; }
t_run_as_user() {
	local o
	o=$(sec_log user)
	has "$o" "uid=1000 gid=3000 groups=" && [[ " $(sed -n 's/.*groups=\([0-9 ]*\) data=.*/\1/p' <<<"$o") " == *" 2000 "* ]] ||
		{ log "$H: no supplementary group 2000 (fsGroup) in: $o"; return 1; }
}
t_fs_group() { local o; o=$(sec_log user); has "$o" "data=2000" && has "$o" data-writable; }
t_read_only_root() { local o; o=$(sec_log rofs); has "$o" root-readonly && has "$o" tmp-writable; }
t_capabilities() { local o; o=$(sec_log caps); has "$o" "CapEff:	0000000000001000" && has "$o" "CapBnd:	0000000000001000"; }
t_no_new_privs() { has "$(sec_log nnp)" "NoNewPrivs:	1"; }
t_seccomp_default() { has "$(sec_log seccomp)" "Seccomp:	2"; }
t_privileged() {
	local o last want
	o=$(sec_log priv) || return 1
	last=$(tail -n 1 <<<"$o")
	[[ $last =~ ^[0-9]+$ ]] || { log "$H: no cap_last_cap in: $o"; return 1; }
	want=$(printf '%016x' $(((1 << (last + 1)) - 1)))
	has "$o" "CapEff:	$want" && has "$o" "Seccomp:	0" &&
		[[ $(sed -n 's/^devices=//p' <<<"$o") -gt 20 ]] || { log "$H: privileged: $o"; return 1; }
}
t_volumes() {
	wait_field 300 vols '{.status.phase}' eq Succeeded &&
		has "$(kn logs vols)" "empty=ok host=hostpath-ok cm=hello-cm secret=s3cret" &&
		has "$(cat "$K8S_HOSTPATH/$H/out" 2>/dev/null)" written-in-pod
}
t_delete_graceful() {
	wait_ready grace || return 1
	local who t
	read -ra who <<<"$(identity grace)"
	t=$SECONDS
	kn delete pod grace --timeout 100s >/dev/null || return 1
	((SECONDS - t < 100)) || { log "$H: the delete took $((SECONDS - t))s"; return 1; }
	has "$(cat "$K8S_HOSTPATH/$H/grace")" got-term && gone_clean 120 "${who[@]}"
}
t_delete_force() {
	wait_ready force || return 1
	local who
	read -ra who <<<"$(identity force)"
	kn delete pod force --force --grace-period 0 >/dev/null 2>&1 || return 1
	gone_clean 180 "${who[@]}"
}
# After every pod of the namespace is deleted: no shim or state directory
# of this handler is left, nor cgroup, mount, process or kubelet directory
# of any of its pods.
t_nothing_left() {
	local u
	u=$(uids) || return 1
	kn delete pod --all --timeout 280s >/dev/null || return 1
	# shellcheck disable=SC2086 # uids are words
	gone_clean 180 $u && handler_clean 150
}
# Rounds of pods created at once and deleted (after nothing_left: the
# namespace starts empty), then nothing left of any of them.
t_loop() {
	local r i names all=()
	for ((r = 1; r <= LOOP_ROUNDS; r++)); do
		names=()
		for ((i = 1; i <= LOOP_PODS; i++)); do names+=("loop-$r-$i"); done
		pod_plain "$H" "${names[@]}" | sed "s/^metadata: {name: \(loop-[0-9-]*\), /metadata: {name: \1, labels: {loop: \"$r\"}, /" |
			kn apply -f - >/dev/null || return 1
		kn wait --for=condition=Ready pod -l "loop=$r" --timeout 600s >/dev/null ||
			{ log "$H: round $r not Ready: $(kn get pods -l "loop=$r" --no-headers | grep -v Running | head -n 3 | tr '\n' ';')"; return 1; }
		# shellcheck disable=SC2207 # uids are words
		all+=($(uids "loop=$r"))
		kn delete pod -l "loop=$r" --timeout 280s >/dev/null || return 1
	done
	((${#all[@]} == LOOP_ROUNDS * LOOP_PODS)) || { log "$H: ${#all[@]} uids, want $((LOOP_ROUNDS * LOOP_PODS))"; return 1; }
	gone_clean 180 "${all[@]}" && handler_clean 150
}

TESTS=(running cgroup_path logs exec exec_tty attach cp limits oom oom_restart probe_exec
	probe_tcp restart_policy init_sidecar share_pid run_as_user fs_group
	read_only_root capabilities no_new_privs seccomp_default privileged
	volumes delete_graceful delete_force nothing_left loop)
(($#)) && TESTS=("$@")

# apply_pods H: the handler's namespace and every pod of its tests, at once.
apply_pods() {
	local H=$1
	mkdir -p "$K8S_HOSTPATH/$H"
	echo hostpath-ok >"$K8S_HOSTPATH/$H/probe"
	k create namespace "$H" >/dev/null || { echo "FAIL $name/setup: cannot create namespace $H"; return 1; }
	{ pod_basic "$H"; pod_oom "$H"; pod_probes "$H"; pod_policies "$H"; pod_init "$H"
		pod_sharepid "$H"; pod_sec "$H"; pod_vols "$H"; pod_grace "$H"; pod_plain "$H" force; } >"$OUT/pods-$H.yaml"
	k apply -f "$OUT/pods-$H.yaml" >"$OUT/apply-$H.log" 2>&1 ||
		{ echo "FAIL $name/setup: kubectl apply: $(tail -n 2 "$OUT/apply-$H.log" | tr '\n' ' ')"; return 1; }
}

# run_handler H: the tests with handler H; results-H has "test state
# seconds" lines.
run_handler() {
	local t t1 st
	H=$1
	: >"$OUT/results-$H"
	for t in "${TESTS[@]}"; do
		t1=$SECONDS
		echo "$t/$H" >"$OUT/current"
		if [[ $t == loop && $LOOP_HANDLERS != *" $H "* ]]; then
			st=skipped
			: >"$OUT/$t-$H.err"
		elif ("t_$t") 2>"$OUT/$t-$H.err"; then st=passed; else st=failed; fi
		echo "$t $st $((SECONDS - t1))" >>"$OUT/results-$H"
		# As each test ends (a stage stopped at its timeout still shows
		# how far it got, and why a test failed).
		echo "# $name $H: $t $st in $((SECONDS - t1))s"
		sed "s#^#  [$t/$H] #" "$OUT/$t-$H.err" >&2
	done
}

# K8S_REFERENCE=failed (the default, for time: runc's pods beside skiff's
# took CPU from them, ~1/3 of the stage under emulation) runs skiff's tests
# first and runc's, the reference, only when skiff did not pass every one,
# and then all of them (a test alone may need an earlier one); runc's column
# reads not-run otherwise. K8S_REFERENCE=all creates both handlers' pods at
# once and runs their tests side by side (each waits mostly on kubectl and
# the kubelet).
if [[ ${K8S_REFERENCE:-failed} == all ]]; then
	for H in "${HANDLERS[@]}"; do apply_pods "$H" || exit 1; done
	for H in "${HANDLERS[@]}"; do run_handler "$H" & done
	wait
else
	apply_pods skiff || exit 1
	run_handler skiff
	: >"$OUT/results-runc"
	if awk '$2 == "failed" { bad = 1 } END { exit !bad }' "$OUT/results-skiff"; then
		echo "# $name: skiff failed a test: runc's run, the reference"
		apply_pods runc || exit 1
		run_handler runc
	fi
fi
declare -A result secs
for H in "${HANDLERS[@]}"; do
	while read -r t st n; do
		result[$t/$H]=$st secs[$t/$H]=$n
	done <"$OUT/results-$H"
done

printf '%-8s %-8s %s\n' runc skiff test
for t in "${TESTS[@]}"; do
	printf '%-8s %-8s %s\n' "${result[$t/runc]:-not-run}" "${result[$t/skiff]:-missing}" "$t"
done
fails=0
for t in "${TESTS[@]}"; do
	r=${result[$t/runc]:-missing} s=${result[$t/skiff]:-missing}
	if [[ $s == passed ]]; then
		echo "PASS $name/$t (${secs[$t/skiff]:-?}s${secs[$t/runc]:+; runc ${secs[$t/runc]}s})"
	elif [[ $s == skipped ]]; then
		echo "SKIP $name/$t: not run with skiff (K8S_LOOP_HANDLERS:$LOOP_HANDLERS)"
	elif [[ $r == passed ]]; then
		echo "FAIL $name/$t (runc passes it)"
		((fails++))
	elif [[ $r == skipped || $r == missing ]]; then
		echo "FAIL $name/$t (not run with runc, no reference to excuse it)"
		((fails++))
	else
		echo "SKIP $name/$t: runc fails it too (the test or the VM, not skiff)"
	fi
done
echo "$name: ${#TESTS[@]} tests, $fails failed only with skiff, stage $((SECONDS - t0))s"
((fails == 0))

#!/bin/bash
# Host side of the Kubernetes stage (`make k8s-test`, after the binaries are
# built and staged): boots of the test VM, one per part of IT_K8S_PARTS
# (default "cgroupfs systemd"): integration/k8s/suite.sh (PASS/FAIL/SKIP
# lines and a table) with 4 GiB of memory and the kubelet's cgroup driver
# of that name. With both, the systemd boot runs only the tests where the
# driver matters; alone, either runs every test (`make test` runs systemd
# alone). IT_K8S_LOOP_HANDLERS (default "skiff runc") names the handlers
# that run the pod loop and IT_K8S_LOOP_ROUNDS (default 3) its rounds of
# 10 pods; IT_K8S_REFERENCE (default failed: runc's tests
# only when skiff failed one; all: side by side) is suite.sh's
# K8S_REFERENCE. (critest against containerd 2.x runs in `make
# vm-test`: integration/vm/suite-critest2.sh.)
#
#   integration/k8s/run.sh [TEST...]
#
# Prints `SKIP k8s: ...` and exits 0 when the VM image cannot be built or
# this is not root; exits with the worst status of the parts otherwise (124:
# a VM run timed out after IT_K8S_TIMEOUT seconds, default 3600).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
t0=$SECONDS
# shellcheck source=../../hack/vm/lib.sh
. "$repo/hack/vm/lib.sh"
vm_ready_or_skip k8s || exit 0
cd "$repo" || exit 2
parts=${IT_K8S_PARTS:-cgroupfs systemd}
# The tests where the driver matters (placement, limits, OOM, deletion,
# leftovers): the systemd boot's share when the cgroupfs boot runs too.
# TEST arguments pick the tests of both.
systemd_tests=(running cgroup_path exec limits oom oom_restart delete_force nothing_left)
(($#)) && systemd_tests=("$@")
# The suite prints what the cluster waits on (K8S_DIAG_AFTER) 100 s
# before the VM's limit stops it.
limit=${IT_K8S_TIMEOUT:-3600}
rc=0
for part in $parts; do
	r=0
	case $part in
	cgroupfs | systemd)
		tests=("$@")
		[[ $part == systemd && " $parts " == *" cgroupfs "* ]] && tests=("${systemd_tests[@]}")
		SKIFF_VM_MEM=${SKIFF_VM_MEM:-4G} "$repo/hack/vm/run" --no-build --timeout "$limit" \
			-e "K8S_CGROUP_DRIVER=$part" -e "K8S_DIAG_AFTER=$((limit >= 200 ? limit - 100 : 0))" -e "K8S_LOOP_HANDLERS=${IT_K8S_LOOP_HANDLERS:-skiff runc}" \
			-e "K8S_LOOP_ROUNDS=${IT_K8S_LOOP_ROUNDS:-3}" \
			-e "K8S_REFERENCE=${IT_K8S_REFERENCE:-failed}" \
			${IT_LOG_DIR:+-e "IT_LOG_DIR=$IT_LOG_DIR/$part"} \
			integration/k8s/suite.sh "${tests[@]}" || r=$?
		;;
	*) echo "FAIL k8s/setup: unknown part '$part' in IT_K8S_PARTS"; r=2 ;;
	esac
	((r > rc)) && rc=$r
done
echo "# k8s stage: exit $rc in $((SECONDS - t0))s"
exit "$rc"

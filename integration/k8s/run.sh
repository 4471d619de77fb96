#!/bin/bash
# Host side of the Kubernetes stage (`make k8s-test`, after the binaries are
# built and staged): boots of the test VM with 4 GiB of memory run
# integration/k8s/suite.sh, which prints PASS/FAIL/SKIP lines and a table:
# one with the kubelet's cgroupfs driver, one with systemd
# (IT_K8S_DRIVERS="cgroupfs systemd" by default).
#
#   integration/k8s/run.sh [TEST...]
#
# Prints `SKIP k8s: ...` and exits 0 when the VM image cannot be built or
# this is not root; exits with the suite's status otherwise (124: the VM
# run timed out after IT_K8S_TIMEOUT seconds, default 3600).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
t0=$SECONDS
# shellcheck source=../../hack/vm/lib.sh
. "$repo/hack/vm/lib.sh"
vm_ready_or_skip k8s || exit 0
cd "$repo" || exit 2
# One boot per kubelet cgroup driver: every test with cgroupfs; with
# systemd the tests where the driver matters (placement, limits, OOM,
# deletion, leftovers). TEST arguments pick the tests of both.
systemd_tests=(running cgroup_path exec limits oom oom_restart delete_force nothing_left)
(($#)) && systemd_tests=("$@")
rc=0
for driver in ${IT_K8S_DRIVERS:-cgroupfs systemd}; do
	tests=("$@")
	[[ $driver == systemd ]] && tests=("${systemd_tests[@]}")
	SKIFF_VM_MEM=${SKIFF_VM_MEM:-4G} "$repo/hack/vm/run" --no-build --timeout "${IT_K8S_TIMEOUT:-3600}" \
		-e "K8S_CGROUP_DRIVER=$driver" ${IT_LOG_DIR:+-e "IT_LOG_DIR=$IT_LOG_DIR/$driver"} \
		integration/k8s/suite.sh "${tests[@]}" || rc=$?
done
echo "# k8s stage: exit $rc in $((SECONDS - t0))s"
exit "$rc"

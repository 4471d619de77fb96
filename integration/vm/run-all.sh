#!/bin/bash
# Everything the VM stage runs, in one boot (INSIDE the test VM, as root):
# run-tests.sh (cgroup v2, systemd, podman), then every integration/vm/suite-*.sh
# in name order. Each suite prints PASS/FAIL/SKIP lines and exits non-zero on
# failure. Arguments are passed to run-tests.sh only; with arguments the extra
# suites are not run. IT_VM_SUITES_OUT names suites left out (`critest` for
# suite-critest.sh): each prints one SKIP line saying so. Exit status: the
# worst (highest) status of any part.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
# shellcheck source=local-bins.sh
source "$here/local-bins.sh"
local_bins "$repo/target/release/skiff" "$repo"/integration/containerd2/.bin/* "$repo"/integration/containerd2/.bin17/* \
	"$repo"/integration/critest/.bin/* "$repo/integration/cri/target/release/skiff-cri-test" || exit 1
worst=0
run_part() {
	local rc=0 t0=$SECONDS
	echo "# ---- $1"
	"$@" || rc=$?
	echo "# ---- $1: exit $rc in $((SECONDS - t0))s"
	((rc > worst)) && worst=$rc
	return 0
}
run_part "$here/run-tests.sh" "$@"
if (($# == 0)); then
	for s in "$here"/suite-*.sh; do
		[[ -e $s ]] || continue
		n=${s##*/suite-}
		n=${n%.sh}
		if [[ " ${IT_VM_SUITES_OUT:-} " == *" $n "* ]]; then
			echo "SKIP $n: left out (IT_VM_SUITES_OUT); alone: hack/vm/run --timeout 3000 integration/vm/suite-$n.sh"
			continue
		fi
		run_part "$s"
	done
fi
exit "$worst"

#!/bin/bash
# The cgroup files of the OCI runtime-tools validation suite (INSIDE the test
# VM, as root): integration/runtime-tools/run.sh with RT_ENV=vm runs
# validation/linux_cgroups_{pids,relative_pids} and delete_resources (all
# linux_cgroups_* with RT_VM_ALL=1) against Debian's runc and
# target/release/skiff and prints PASS/FAIL/SKIP lines (see
# integration/runtime-tools/README.md). The VM has no Go: the host stages the
# static test binaries into integration/runtime-tools/.suite first
# (`integration/runtime-tools/run.sh --stage-vm`, done by `make vm-test`).
# Run by run-all.sh; alone:
#   hack/vm/run --timeout 900 integration/vm/suite-runtime-tools.sh
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)

if [[ ! -x $repo/integration/runtime-tools/.suite/bin/runtimetest ]]; then
	echo "SKIP runtime-tools: the suite is not staged (on the host: integration/runtime-tools/run.sh --stage-vm)"
	exit 0
fi
# Logs stay on the guest disk unless RT_LOG_DIR (or IT_LOG_DIR) names a
# path in the checkout.
export RT_ENV=vm RT_LOG_DIR=${RT_LOG_DIR:-${IT_LOG_DIR:+$IT_LOG_DIR/runtime-tools}}
[[ -n $RT_LOG_DIR ]] || RT_LOG_DIR=/var/tmp/skiff-rt-logs
# RUNTIME (forwarded by stage.sh for run-tests.sh) is not ours: the suite
# always runs runc and skiff side by side.
unset RUNTIME
# The files runc passes on this cgroup v2 VM. The other twelve read limits
# back from cgroup v1 files: runc and skiff both fail them here, so `make
# test` does not spend ~4 min of emulation on them; RT_VM_ALL=1 runs every
# one (also in a legacy v1 boot: `hack/vm/run --cgroup legacy ...`, where
# runc passes 6 of the 15 files and skiff the same 6, measured 2026-12-05).
files=(delete_resources linux_cgroups_pids linux_cgroups_relative_pids)
[[ ${RT_VM_ALL:-} == 1 ]] && files=()
exec "$repo/integration/runtime-tools/run.sh" "${files[@]}"

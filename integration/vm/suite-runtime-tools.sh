#!/bin/bash
# The cgroup files of the OCI runtime-tools validation suite (INSIDE the test
# VM, as root): integration/runtime-tools/run.sh with RT_ENV=vm runs
# validation/linux_cgroups_* and delete_resources against Debian's runc and
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
exec "$repo/integration/runtime-tools/run.sh"

#!/bin/bash
# The shim under containerd 1.7 (INSIDE the test VM, as root): 1.7's
# containerd, ctr and runc shim (hack/thirdparty/containerd with
# CD_VERSION=v1.7.x, staged by the host into integration/containerd2/.bin17)
# are bind-mounted over Debian's 1.6 on an empty state, and a chosen set of
# suite-shim.sh's tests runs against them: ctr, and CRI with each way of
# getting the systemd cgroup driver (docs/containerd.md): the handler's
# options file (SystemdCgroup, and a Root whose use shows the file reached
# the shim) and a `.slice` parent alone. Afterwards containerd 1.6 runs
# again on its own state. Alone:
#   hack/vm/run --timeout 1200 integration/vm/suite-containerd17.sh [TEST...]
set -uo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
source "$here/containerd2-lib.sh"
TESTS=(exit_code exec metrics oom cri cri_systemd cri_systemd_plain nothing_left)
(($#)) && TESTS=("$@")

cd2_staged "$CD17_BIN" ||
	{ echo "SKIP containerd17: not staged (on the host: integration/containerd2/stage.sh)"; exit 0; }
trap cd2_restore EXIT
cd2_use "$CD17_BIN" v1.7. containerd17 || exit 1

cd2_shim_tests shim17 "${TESTS[@]}"

#!/bin/bash
# The shim under containerd 2.x (INSIDE the test VM, as root): the
# containerd and ctr that hack/thirdparty/containerd builds (staged by the
# host into integration/containerd2/.bin: the VM has no Go) are bind-mounted
# over Debian's 1.6 binaries, on an empty /var/lib/containerd and
# /run/containerd, and a chosen set of suite-shim.sh's tests runs against
# them: task API v3, containerd 2.x's shim start protocol, ctr and CRI.
# Afterwards containerd 1.6 runs again on its own state. Alone:
#   hack/vm/run --timeout 1200 integration/vm/suite-containerd2.sh [TEST...]
set -uo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
source "$here/containerd2-lib.sh"
# One of each kind: ctr lifecycle, io, exec, signals, pause, stats, OOM,
# shim crash and containerd restart, CRI (cgroupfs; systemd through the
# options file and through a .slice parent alone), checkpoint and restore
# through ctr, the task's checkpoint alone (into --image-path), the
# kubelet's checkpoint through CRI, and nothing left behind.
TESTS=(exit_code shared_pidns_exit terminal exec exec_error log_file log_binary kill pause_resume
	metrics oom shim_crash containerd_restart cri cri_systemd cri_systemd_plain
	cri_remove_exited cri_remove_exited_runc cri_short_lived_logs checkpoint checkpoint_runc
	task_checkpoint task_checkpoint_runc cri_checkpoint cri_checkpoint_runc nothing_left)
(($#)) && TESTS=("$@")

cd2_staged || { echo "SKIP containerd2: not staged (on the host: integration/containerd2/stage.sh)"; exit 0; }
trap cd2_restore EXIT
cd2_use || exit 1

cd2_shim_tests shim2 "${TESTS[@]}"

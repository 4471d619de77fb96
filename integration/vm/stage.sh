#!/bin/bash
# Host side of the cgroup v2 test stage: build (or reuse) the test VM image,
# then run integration/vm/run-all.sh inside one VM boot and exit with its
# status. Run as root from anywhere:
#
#   integration/vm/stage.sh [TEST...]          # RUNTIME defaults to skiff
#   RUNTIME=runc integration/vm/stage.sh       # the same tests against runc
#
# - The runtime binary must already be built on the host
#   (cargo build --release); the VM has no Rust toolchain.
# - If the image cannot be built (e.g. the Debian mirror is unreachable),
#   prints `SKIP vm: <why>` and exits 0.
# - Exit status: 0 all passed (or skipped); 1 some test failed; 2 the
#   in-VM setup failed; 124 the VM run timed out (IT_VM_TIMEOUT seconds,
#   default 3600: the boot takes ~21-23 min on a usual 2-core host, and TCG
#   has been seen running 1.5-1.9 times slower on a slow day); 125 the VM
#   gave no result.
# - Passes RUNTIME, IT_* and SKIFF_VM_* on to the VM run / hack/vm.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
t0=$SECONDS

elapsed() { echo "# vm stage: $1 in $((SECONDS - t0))s"; }

# shellcheck source=../../hack/vm/lib.sh
. "$repo/hack/vm/lib.sh"
vm_ready_or_skip vm || { elapsed "skipped"; exit 0; }

args=(--no-build --timeout "${IT_VM_TIMEOUT:-3600}")
# RUNTIME is resolved in the VM: a bare name (runc) is looked up there.
[[ -z ${RUNTIME:-} ]] || args+=(-e "RUNTIME=$RUNTIME")
for v in $(compgen -e); do
	case $v in IT_VM_TIMEOUT) ;; IT_*) args+=(-e "$v=${!v}") ;; esac
done

cd "$repo" || exit 2
rc=0
"$repo/hack/vm/run" "${args[@]}" integration/vm/run-all.sh "$@" || rc=$?
case $rc in
0) elapsed "passed" ;;
124) elapsed "timed out (IT_VM_TIMEOUT=${IT_VM_TIMEOUT:-3600})" ;;
125) elapsed "no result from the VM (see the [skiff-vm] lines above)" ;;
*) elapsed "failed (exit $rc)" ;;
esac
exit "$rc"

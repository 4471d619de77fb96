#!/bin/bash
# Host side of the cgroup v1 test stage: list the conformance executables
# (built by make conformance's cargo test, with the same selection, so
# nothing is rebuilt), then boot the test
# VM (the same image as the v2 stage) once with the legacy layout and once
# with the hybrid one, and run integration/vm/run-v1.sh in each.
#
#   integration/vm/stage-v1.sh [LAYOUT[:PART,...]...]    # as root
#
# By default `legacy hybrid:shim`: every part on legacy; on hybrid only the
# shim part, as this host is hybrid and the conformance stage runs the same
# executables here (cgroup_v1's 200 lifecycles take ~2 minutes under TCG).
#
# Prints `SKIP vm-v1: <why>` and exits 0 when the image cannot be built;
# exits 1 if a boot's tests failed (124: a run took longer than
# IT_V1_TIMEOUT seconds, default 1200; 125: the VM gave no result).
# IT_REFERENCE (failed or all: runc's shim where skiff's did not pass, or
# always) goes to run-v1.sh.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
t0=$SECONDS
cd "$repo" || exit 2
R=target/release
for f in "$R/skiff" "$R/containerd-shim-skiff-v2"; do
	[[ -x $f ]] || { echo "FAIL vm-v1: $f is missing (make build)"; exit 1; }
done
# `<name> <path>` of each conformance test executable.
cargo test --profile qa --workspace --test '*' --no-run --message-format=json 2>/dev/null |
	jq -r 'select(.reason == "compiler-artifact" and .executable != null and (.target.kind | index("test")))
		| "\(.target.name) \(.executable)"' | sort >"$R/v1-conformance-tests.tmp" &&
	mv "$R/v1-conformance-tests.tmp" "$R/v1-conformance-tests" ||
	{ echo "FAIL vm-v1: cannot build the conformance test executables"; exit 1; }
# shellcheck source=../../hack/vm/lib.sh
. "$repo/hack/vm/lib.sh"
vm_ready_or_skip vm-v1 || exit 0
layouts=("$@")
((${#layouts[@]})) || layouts=(legacy hybrid:shim)
rc=0
for spec in "${layouts[@]}"; do
	layout=${spec%%:*} parts=()
	[[ $spec != *:* ]] || IFS=, read -ra parts <<<"${spec#*:}"
	t1=$SECONDS
	r=0
	"$repo/hack/vm/run" --cgroup "$layout" --no-build --timeout "${IT_V1_TIMEOUT:-1200}" \
		${IT_REFERENCE:+-e "IT_REFERENCE=$IT_REFERENCE"} integration/vm/run-v1.sh "${parts[@]}" || r=$?
	echo "# vm-v1 $layout: exit $r in $((SECONDS - t1))s"
	((r == 0)) || rc=1
done
echo "# vm-v1 stage: exit $rc in $((SECONDS - t0))s"
exit "$rc"

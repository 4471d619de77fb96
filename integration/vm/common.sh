# shellcheck shell=bash
# The helpers every VM test script shares (sourced by lib.sh and
# shim-lib.sh).

log() { printf '  %s\n' "$*" >&2; }

# wait_for SECS CMD...: poll CMD every 0.1s until it succeeds; 1 on timeout.
wait_for() {
	local secs=$1 i
	shift
	for ((i = 0; i < secs * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	"$@"
}

# skiff_passed_what_runc_failed NAME PASSED: NAME is runc's run of a test
# (NAME_runc or NAME-runc, the reference) and its twin, NAME without the
# suffix, is among the space-separated names PASSED (run before it). The
# runners then count NAME's failure as a SKIP naming it, not a failure:
# skiff is not behind runc there (seen once in CI: runc's shim's restore
# on containerd 2.4.2, "criu failed: type NOTIFY errno 0").
skiff_passed_what_runc_failed() {
	local twin=${1%[_-]runc}
	[[ $twin != "$1" && " $2 " == *" $twin "* ]]
}

# reference_not_needed NAME PASSED: NAME is runc's run of a test whose twin
# passed (as above), and IT_REFERENCE is not `all`: the runners skip it.
# The default, IT_REFERENCE=failed, is for make test's time (the shim's and
# CRIU's references took ~200 s of the vm stage), as critest's
# (CRITEST_REFERENCE), the arm64 stage's and the kubelet's references run
# only where skiff did not pass.
reference_not_needed() {
	[[ ${IT_REFERENCE:-failed} != all ]] && skiff_passed_what_runc_failed "$1" "$2"
}

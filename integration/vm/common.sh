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

# reference_always: IT_REFERENCE=all, runc's run of every test that has
# one. The default, IT_REFERENCE=failed, runs runc's twin of a test only
# where skiff's did not pass, for make test's time (the shim's and CRIU's
# references took ~200 s of the vm stage), as critest's
# (CRITEST_REFERENCE), the arm64 stage's and the kubelet's references do.
reference_always() {
	[[ ${IT_REFERENCE:-failed} == all ]]
}

# reference_not_needed NAME PASSED: NAME is runc's run of a test whose twin
# passed (as above), and not reference_always: the runners skip it.
reference_not_needed() {
	! reference_always && skiff_passed_what_runc_failed "$1" "$2"
}

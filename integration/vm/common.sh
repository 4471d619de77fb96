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

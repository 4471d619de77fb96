# Running the conformance suite's test executables (tests/tests/*.rs, built
# on the host) inside a test VM; sourced by run-arm64.sh and run-v1.sh, with
# $repo set.
# shellcheck shell=bash

# conformance_files LABEL LIST WORKDIR NAME...: run each named executable of
# LIST (`<name> <path>` lines) from tests/ with --test-threads=2, the
# caller's SKIFF_* environment, and SKIFF_SKIP_LOG set; libtest's verdicts
# become PASS/FAIL/SKIP lines named LABEL/conformance/NAME/TEST (a test that
# recorded a skip, tests/src/skip.rs, is a SKIP) and failures' output goes
# to stderr. With CONFORMANCE_TABLES=1 the tests run with --nocapture and
# their stderr lines starting with two spaces (a table, such as cgroup_v1's
# skiff/runc one) are passed on. Each file may run
# IT_CONFORMANCE_FILE_TIMEOUT seconds (300; then SIGKILL after 30 more, and
# the processes still running are listed on stderr).
# Returns the number of failures (at most 255).
conformance_files() {
	local label=$1 list=$2 work=$3 name exe out err skips t verdict t1 rc failed=0 flags=()
	shift 3
	[[ ${CONFORMANCE_TABLES:-0} != 1 ]] || flags=(--nocapture)
	for name in "$@"; do
		exe=$(awk -v n="$name" '$1 == n { print $2 }' "$list" 2>/dev/null)
		if [[ -z $exe || ! -x $exe ]]; then
			echo "FAIL $label/conformance/$name: no executable listed in $list"
			((failed++))
			continue
		fi
		out=$work/conf-$name.out err=$work/conf-$name.err skips=$work/conf-$name.skips t1=$SECONDS
		: >"$skips"
		rc=0
		(cd "$repo/tests" && SKIFF_SKIP_LOG=$skips \
			timeout -k 30 "${IT_CONFORMANCE_FILE_TIMEOUT:-300}" "$exe" --test-threads=2 "${flags[@]}") >"$out" 2>"$err" || rc=$?
		echo "# $label conformance $name: $((SECONDS - t1))s"
		# Stopped at its time limit: what was still running, and where.
		if ((rc == 124 || rc == 137)); then
			echo "  [$name] stopped after ${IT_CONFORMANCE_FILE_TIMEOUT:-300}s; processes:" >&2
			ps -eo pid,ppid,stat,etimes,wchan:24,args | grep -v ' \[' | cut -c1-200 | sed "s/^/  [$name] /" >&2
		fi
		[[ ${CONFORMANCE_TABLES:-0} != 1 ]] || grep '^  [^ ]' "$err"
		while read -r t verdict; do
			case $verdict in
			ok)
				if grep -q "/$t"$'\t' "$skips"; then
					echo "SKIP $label/conformance/$name/$t: $(grep -m1 "/$t"$'\t' "$skips" | cut -f2)"
				else
					echo "PASS $label/conformance/$name/$t"
				fi
				;;
			ignored) echo "SKIP $label/conformance/$name/$t: #[ignore]d (a heavy stage's)" ;;
			*)
				echo "FAIL $label/conformance/$name/$t"
				((failed++))
				;;
			esac
		done < <(sed -n 's/^test \(.*\) \.\.\. \(ok\|FAILED\|ignored\).*/\1 \2/p' "$out")
		if ! grep -q '^test result:' "$out"; then
			echo "FAIL $label/conformance/$name: the executable ended without a result: $(tail -n 3 "$err" | tr '\n' ' ')"
			((failed++))
		fi
		grep -A30 '^failures:' "$out" | head -n 60 | sed "s/^/  [$name] /" >&2
	done
	return $((failed > 255 ? 255 : failed))
}

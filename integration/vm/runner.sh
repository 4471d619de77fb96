# shellcheck shell=bash
# The test runner shared by run-tests.sh and the integration/vm/suite-*.sh
# files. Sourced after lib.sh and after the suite has defined TESTS and its
# test_* functions; the suite then calls `main "$@"`:
#   SUITE [--list] [TEST...]     run all (or the named) tests, one bash
#                                process each, PASS/FAIL/SKIP per test
#   SUITE --one TEST             run one test in this process
# A suite may define suite_setup (run once before the tests; non-zero =
# setup failure, exit 2).

# One test, in this process (called through --one by the runner).
run_one() {
	local name=$1
	declare -F "test_$name" >/dev/null || { echo "no such test: $name" >&2; exit 2; }
	: "${IT_REASON:=$IT_WORK/reason.$name}"
	set -eE
	trap '[[ -s $IT_REASON ]] || echo "line $LINENO: \`$BASH_COMMAND\` exited $?" >"$IT_REASON"' ERR
	"test_$name"
}

# After a test: force-delete the containers it left (that is no verdict on
# the runtime; no-leftovers checks what delete itself leaves).
after_test() {
	local id
	[[ -d $IT_ROOT ]] || return 0
	for id in "$IT_ROOT"/*; do
		[[ -e $id ]] || continue
		id=${id##*/}
		echo "  cleanup after $1: delete --force $id" >&2
		rt delete --force "$id" >/dev/null 2>&1 ||
			rt --systemd-cgroup delete --force "$id" >/dev/null 2>&1 ||
			echo "  cleanup: cannot delete $id" >&2
	done
}

# Remove all we made, whatever the runtime did (at exit).
final_cleanup() {
	local id d
	if [[ -d $IT_ROOT ]]; then
		for id in "$IT_ROOT"/*; do
			[[ -e $id ]] || continue
			id=${id##*/}
			rt delete --force "$id" >/dev/null 2>&1 || rt --systemd-cgroup delete --force "$id" >/dev/null 2>&1
		done
	fi
	tree_rm "$CG/$CG_TOP"
	for d in "$CG"/$ID_PREFIX* "$CG$(dirname "$(own_cg)")"/$ID_PREFIX* "$CG$(own_cg)"/$ID_PREFIX*; do
		[[ -d $d ]] && tree_rm "$d"
	done
	systemctl stop 'skiff-it-*.scope' >/dev/null 2>&1
	rm -rf "$IT_ROOT" "$IT_WORK"
}

main() {
	local list=0 names=() name rc reason t0 t1 pass=0 failn=0 skipn=0 failed=() passed_now=
	while (($#)); do
		case $1 in
		--one) shift; run_one "$1"; exit 0 ;;
		--list) list=1 ;;
		-h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
		-*) echo "unknown option $1" >&2; exit 2 ;;
		*) names+=("$1") ;;
		esac
		shift
	done
	if ((list)); then printf '%s\n' "${TESTS[@]}"; exit 0; fi
	((${#names[@]})) || names=("${TESTS[@]}")

	# Set-up problems are not test failures: exit 2.
	local why=''
	[[ $EUID == 0 ]] || why="must run as root"
	[[ -n $why || $(stat -fc %T $CG) == cgroup2fs ]] || why="$CG is not cgroup2 (not a pure cgroup v2 host; run it in the VM: hack/vm/run $0)"
	[[ -n $why || -x $RUNTIME ]] || why="runtime $RUNTIME is not executable (cargo build --release?)"
	command -v jq >/dev/null || why="jq is missing"
	if [[ -n $why ]]; then
		echo "FAIL setup: $why"
		exit 2
	fi
	trap final_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	rm -rf "$IT_WORK"
	mkdir -p "$IT_WORK/logs" "$IT_WORK/bundles"
	make_base_rootfs || { echo "FAIL setup: cannot make the busybox rootfs"; exit 2; }
	[[ -L $IT_BASE/bin/sh && -L $IT_BASE/bin/sleep ]] || { echo "FAIL setup: no applet links in the busybox rootfs"; exit 2; }
	if declare -F suite_setup >/dev/null; then
		suite_setup || { echo "FAIL setup: suite_setup failed"; exit 2; }
	fi

	echo "# runtime: $RUNTIME ($("$RUNTIME" --version 2>&1 | head -n 1))"
	echo "# kernel $(uname -r); controllers: $(cat $CG/cgroup.controllers); our cgroup: $(own_cg); relative paths: $IT_REL"
	t0=$SECONDS
	for name in "${names[@]}"; do
		local reasonf=$IT_WORK/reason.$name logf=$IT_WORK/logs/$name.log ts=$SECONDS
		rm -f "$reasonf"
		if reference_not_needed "$name" "$passed_now"; then
			echo "SKIP $name: the reference, runc, runs only where skiff's ${name%-runc} did not pass (IT_REFERENCE=all runs it)"
			((skipn++))
			continue
		fi
		rc=0
		IT_REASON=$reasonf timeout -k 5 "${IT_TEST_TIMEOUT:-120}" bash "$0" --one "$name" >"$logf" 2>&1 || rc=$?
		reason=$(cat "$reasonf" 2>/dev/null)
		case $rc in
		0) echo "PASS $name ($((SECONDS - ts))s)"; ((pass++)); passed_now+="$name " ;;
		77) echo "SKIP $name: $reason"; ((skipn++)) ;;
		*)
			[[ $rc != 124 ]] || reason="timed out after ${IT_TEST_TIMEOUT:-120}s${reason:+ ($reason)}"
			# NAME-runc, runc's run of NAME, failing where skiff passed
			# is a SKIP (its log below; common.sh).
			if skiff_passed_what_runc_failed "$name" "$passed_now"; then
				echo "SKIP $name: the reference, runc, failed it where skiff passed ${name%-runc}: ${reason:-exit $rc} ($((SECONDS - ts))s)"
				((skipn++))
			else
				echo "FAIL $name: ${reason:-exit $rc} ($((SECONDS - ts))s)"
				((failn++))
				failed+=("$name")
			fi
			if [[ ${IT_VERBOSE:-1} != 0 ]]; then
				tail -n "${IT_LOG_LINES:-15}" "$logf" | sed 's/^/    | /'
			fi
			;;
		esac
		after_test "$name" 2>>"$IT_WORK/logs/cleanup.log"
	done
	t1=$SECONDS
	echo "# $pass passed, $failn failed, $skipn skipped in $((t1 - t0))s (runtime $RUNTIME_NAME)${failed:+; failed: ${failed[*]}}"
	if [[ -n ${IT_LOG_DIR:-} ]]; then
		mkdir -p "$IT_LOG_DIR" && cp "$IT_WORK"/logs/*.log "$IT_LOG_DIR"/ 2>/dev/null
	fi
	((failn == 0))
}


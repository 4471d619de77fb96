#!/bin/bash
# The arm64 test stage, INSIDE the arm64 test VM (hack/vm/run --arch arm64),
# as root, in one boot, with the aarch64 binaries of hack/build-arm64:
#
#   1. run-tests.sh's cgroup and lifecycle tests with skiff and, unless
#      skiff passed them all, with runc (Debian's arm64 runc) as the
#      reference (versus, below);
#      suite-security.sh's AppArmor and netDevices tests the same way;
#   2. the conformance suite (tests/tests/*.rs, cross-built) with the arm64
#      skiff: namespaces, rootfs, seccomp (the native arch is AARCH64),
#      exec, lifecycle, escapes, parity with runc, ...;
#   3. suite-shim.sh's ctr tests and CRI pods (cgroupfs and systemd, rshared
#      with skiff's shim and runc's) with the arm64 shim under containerd.
#
#   integration/vm/run-arm64.sh [PART...]   # parts: cgroup security conformance shim
#
# Prints a runc/skiff table for part 1 and PASS/FAIL/SKIP lines named
# arm64/...; a test skiff fails that runc passes is a FAIL, one both fail a
# SKIP. Exits 1 if any test failed.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
# shellcheck source=conformance-lib.sh
source "$here/conformance-lib.sh"
# shellcheck source=local-bins.sh
source "$here/local-bins.sh"
A=$repo/target/aarch64-unknown-linux-gnu/release
W=${IT_ARM64_WORK:-/var/tmp/skiff-arm64}
t0=$SECONDS
fails=0

# The parts' tests: each covers a subsystem at modest cost under TCG.
CG_TESTS=(memory memory-oom events-stats pids cpu devices freeze exec-cgroup update
	ps-kill-delete crash-cgroup cgpath-relative systemd check no-leftovers)
# Every conformance executable but those in CONFORMANCE_OUT.
# stress: its tests are #[ignore]d (make stress runs them on the host).
# robust_bad_configs: config validation, the same code on every arch; its
# 228 creates take ~1.5 min under TCG, so it runs on amd64 only. (Its
# earlier "stall" here was one wrongly accepted entry, memory limit -5,
# whose container every later entry waited 5 s for: fixed.)
# robust_fuzz_corpus: parsers, the same code on every arch; its 1,573
# corpus files, read through the 9p share, took 19 s under TCG.
CONFORMANCE_OUT=(stress robust_bad_configs robust_fuzz_corpus)
mapfile -t CONFORMANCE < <(awk -v out=" ${CONFORMANCE_OUT[*]} " 'index(out, " " $1 " ") == 0 { print $1 }' "$A/conformance-tests")
SECURITY_TESTS=(apparmor apparmor-exec net-devices)
SHIM_TESTS=(exit_code terminal exec exec_error kill pause_resume metrics oom many
	log_fifo_unread cri cri_systemd cri_rshared cri_rshared_runc nothing_left)

parts=("$@")
((${#parts[@]})) || parts=(cgroup security conformance shim)
rm -rf "$W"
mkdir -p "$W"
local_bins "$A/skiff" "$A/sysno" "$repo/integration/cri/target/aarch64-unknown-linux-gnu/release/skiff-cri-test" &&
	local_bins_listed "$A/conformance-tests" || exit 1

if [[ $(uname -m) != aarch64 ]]; then
	echo "FAIL arm64/kernel: this VM is $(uname -m), not aarch64"
	exit 1
fi
echo "PASS arm64/kernel ($(uname -r), $(nproc) cpus, $(stat -fc %T /sys/fs/cgroup))"

# versus PART SCRIPT TEST...: a run-tests.sh-style SCRIPT with skiff, then
# with runc (the reference), then a table and the verdicts named
# arm64/PART/TEST. With IT_ARM64_REFERENCE=failed (the default, for time:
# runc's runs were about half of the cgroup and security parts' 358 s of the
# stage's 835 s) runc runs only when skiff did not pass every test, and then
# all of them (a test alone could fail for want of an earlier one); its
# column reads not-run otherwise. IT_ARM64_REFERENCE=all always runs runc.
versus() {
	local part=$1 script=$2 rt bin t st skiff_failed
	shift 2
	declare -A res
	for rt in skiff runc; do
		if [[ $rt == runc && ${IT_ARM64_REFERENCE:-failed} == failed ]]; then
			skiff_failed=
			for t in "$@"; do [[ ${res[$t/skiff]:-} == PASS ]] || skiff_failed=1; done
			[[ -n $skiff_failed ]] || break
		fi
		bin=runc
		[[ $rt == runc ]] || bin=$A/skiff
		RUNTIME=$bin IT_ROOT=/run/skiff-it-$rt "$here/$script" "$@" \
			>"$W/$part-$rt.out" 2>"$W/$part-$rt.err"
		while read -r st t; do
			res[$t/$rt]=$st
		done < <(sed -n 's/^\(PASS\|FAIL\|SKIP\) \([^ :]*\).*/\1 \2/p' "$W/$part-$rt.out")
		grep '^FAIL' "$W/$part-$rt.out" | sed "s/^/  [$rt] /" >&2
	done
	printf '  %-7s %-6s %s\n' runc skiff "$part"
	for t in "$@"; do
		printf '  %-7s %-6s %s\n' "${res[$t/runc]:-not-run}" "${res[$t/skiff]:-none}" "$t"
	done
	for t in "$@"; do
		case ${res[$t/skiff]:-none}/${res[$t/runc]:-none} in
		PASS/*) echo "PASS arm64/$part/$t" ;;
		SKIP/*) echo "SKIP arm64/$part/$t: $(grep -m1 "^SKIP $t:" "$W/$part-skiff.out" | cut -d: -f2-)" ;;
		*/PASS)
			echo "FAIL arm64/$part/$t (runc passes it)"
			((fails++))
			;;
		*/none)
			echo "FAIL arm64/$part/$t (no result from runc to excuse it)"
			((fails++))
			;;
		*) echo "SKIP arm64/$part/$t: skiff ${res[$t/skiff]:-none}, runc ${res[$t/runc]:-none} too (the test or the VM)" ;;
		esac
	done
}

part_cgroup() { versus cgroup run-tests.sh "${CG_TESTS[@]}"; }
part_security() { versus security suite-security.sh "${SECURITY_TESTS[@]}"; }

# part_conformance: the chosen test executables with the arm64 skiff.
part_conformance() {
	local n=0
	SKIFF_BIN=$A/skiff SKIFF_TEST_SYSNO=$A/sysno IT_CONFORMANCE_FILE_TIMEOUT=${IT_ARM64_FILE_TIMEOUT:-300} \
		conformance_files arm64 "$A/conformance-tests" "$W" "${CONFORMANCE[@]}" || n=$?
	((fails += n))
}

# part_shim: suite-shim.sh's chosen tests with the arm64 shim.
part_shim() {
	local line
	while IFS= read -r line; do
		case $line in
		PASS\ shim/* | FAIL\ shim/* | SKIP\ shim/*) echo "${line/ shim\// arm64/shim/}" ;;
		*) echo "$line" ;;
		esac
		[[ $line != FAIL\ * ]] || ((fails++))
	done < <(IT_SHIM=$A/containerd-shim-skiff-v2 \
		IT_CRI_TEST=$repo/integration/cri/target/aarch64-unknown-linux-gnu/release/skiff-cri-test \
		"$here/suite-shim.sh" "${SHIM_TESTS[@]}" 2>&1)
}

for p in "${parts[@]}"; do
	t1=$SECONDS
	case $p in
	cgroup | security | conformance | shim) "part_$p" ;;
	*)
		echo "FAIL arm64/$p: no such part (cgroup, security, conformance, shim)"
		((fails++))
		;;
	esac
	echo "# arm64 $p: $((SECONDS - t1))s"
done
echo "# arm64 stage: $fails failed, $((SECONDS - t0))s in the VM"
((fails == 0))

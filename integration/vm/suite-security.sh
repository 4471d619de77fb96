#!/bin/bash
# shellcheck disable=SC2016,SC2317 # container scripts are single-quoted on purpose; helpers are called indirectly
# Security-profile tests that need the VM's kernel (AppArmor, dummy network
# devices). Runs as root INSIDE the test VM, like run-tests.sh:
#
#   hack/vm/run integration/vm/suite-security.sh [TEST...]
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TESTS=(apparmor apparmor-exec net-devices)

AA_PROFILE=skiff-it-deny

aa_ready() {
	[[ $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null) == Y ]] || skip "AppArmor is not enabled in this kernel"
	command -v apparmor_parser >/dev/null || skip "apparmor_parser is missing (apparmor package)"
	mountpoint -q /sys/kernel/security || mount -t securityfs securityfs /sys/kernel/security
	local f=$IT_WORK/$AA_PROFILE.profile
	cat >"$f" <<-PROFILE
		profile $AA_PROFILE flags=(attach_disconnected,mediate_deleted) {
		  file,
		  capability,
		  network,
		  mount,
		  umount,
		  pivot_root,
		  signal,
		  ptrace,
		  unix,
		  deny /tmp/forbidden* w,
		}
	PROFILE
	apparmor_parser -r "$f" || fail "apparmor_parser could not load $f"
}

# The container's process runs confined by the profile from the config.
test_apparmor() {
	local id=it-aa b
	aa_ready
	new_bundle $id sh -c 'cat /proc/self/attr/current; touch /tmp/ok && echo ok-written; touch /tmp/forbidden 2>/dev/null && echo forbidden-written; true'
	cfg $id '.process.apparmorProfile = $p' --arg p "$AA_PROFILE"
	run_fg $id || fail "run failed: $(tail -n 3 "$(bundle_of $id)/out" | tr '\n' ' ')"
	b=$(bundle_of $id)
	grep -qx "$AA_PROFILE (enforce)" "$b/out" || fail "not confined: $(tr '\n' ' ' <"$b/out")"
	grep -qx ok-written "$b/out" || fail "allowed write failed: $(tr '\n' ' ' <"$b/out")"
	if grep -q forbidden-written "$b/out"; then fail "the profile's deny rule did not apply"; fi
	# A profile that is not loaded is a clear error.
	new_bundle it-aa2 true
	cfg it-aa2 '.process.apparmorProfile = "skiff-it-no-such-profile"'
	if run_fg it-aa2; then fail "a missing profile was accepted"; fi
	grep -q apparmorProfile "$(bundle_of it-aa2)/out" || fail "error does not name process.apparmorProfile: $(cat "$(bundle_of it-aa2)/out")"
}

# exec inherits the container's profile, and --apparmor sets another.
test_apparmor-exec() {
	local id=it-aaexec out
	aa_ready
	new_bundle $id sleep 1000
	cfg $id '.process.apparmorProfile = $p' --arg p "$AA_PROFILE"
	start_ctr $id
	out=$(rt exec $id cat /proc/self/attr/current) || fail "exec failed"
	expect_eq "exec's profile" "$out" "$AA_PROFILE (enforce)"
	out=$(rt exec --apparmor unconfined $id cat /proc/self/attr/current) || fail "exec --apparmor failed"
	expect_eq "exec --apparmor unconfined" "$out" "unconfined"
	rm_ctr $id
}

# A host dummy device is moved into the container's netns, renamed.
test_net-devices() {
	local id=it-netdev b
	ip link add skitdummy0 type dummy 2>/dev/null || skip "cannot make a dummy interface (no dummy module)"
	new_bundle $id sh -c 'ip -o link show; sleep 1000'
	cfg $id '.linux.netDevices = {"skitdummy0": {"name": "ctr7"}}'
	start_ctr $id
	b=$(bundle_of $id)
	wait_for 5 grep -q ctr7 "$b/out" || fail "ctr7 not in the container: $(tr '\n' ' ' <"$b/out")"
	if ip link show skitdummy0 >/dev/null 2>&1; then fail "skitdummy0 is still on the host"; fi
	rm_ctr $id
	# A dummy device goes away with the container's network namespace.
	wait_for 5 bash -c '! ip link show skitdummy0 >/dev/null 2>&1 && ! ip link show ctr7 >/dev/null 2>&1' ||
		fail "the device came back to the host"
}

# shellcheck source-path=SCRIPTDIR source=runner.sh
. "$(dirname "${BASH_SOURCE[0]}")/runner.sh"

main "$@"

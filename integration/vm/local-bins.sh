# Executables of the checkout run from the test VM's own disk, not through
# the 9p share (INSIDE the test VM, as root; sourced). The share is mounted
# with cache=mmap, which keeps no pages between runs: every exec reads the
# binary from the host again. Measured in the VM (TCG): `skiff --version`
# 80-130 ms from the share against 10 ms from the disk, `ctr --version`
# 0.5-0.6 s against 0.08 s, a `kubectl get pod` 2.2 s against 0.6 s.
# shellcheck shell=bash

LOCAL_BINS_DIR=/var/tmp/skiff-local-bins

# local_bins FILE...: copy each FILE (an executable of the checkout) to the
# VM's disk and bind the copy over FILE, so that every path naming it
# (scripts, containerd's and the tests' configuration, the conformance
# lists) runs the same bytes from the disk. A FILE that is missing or not
# executable is left alone. Fails with a FAIL line naming the file if a copy
# or bind fails.
local_bins() {
	local f dst
	mkdir -p "$LOCAL_BINS_DIR" || return 1
	for f in "$@"; do
		[[ -f $f && -x $f ]] || continue
		dst=$LOCAL_BINS_DIR/$(printf '%s' "$f" | sha256sum | cut -c1-12)-${f##*/}
		[[ -e $dst ]] && continue
		cp "$f" "$dst" && mount --bind "$dst" "$f" ||
			{ echo "FAIL local-bins: cannot run $f from the VM's disk"; return 1; }
	done
}

# local_bins_listed LIST: local_bins for the executables a conformance list
# (`<name> <path>` lines) names.
local_bins_listed() {
	[[ -f $1 ]] || return 0
	# shellcheck disable=SC2046 # paths without spaces, one word each
	local_bins $(awk '{ print $2 }' "$1")
}

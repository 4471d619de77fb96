# containerd 2.x in place of Debian's 1.6 (INSIDE the test VM, as root;
# sourced, with $repo set): the containerd, ctr and containerd-shim-runc-v2
# that the host staged into integration/containerd2/.bin
# (hack/thirdparty/containerd) are bind-mounted over 1.6's binaries, on an empty /var/lib/containerd and
# /run/containerd; cd2_restore runs 1.6 again on its own state.
# shellcheck shell=bash

CD2_BIN=$repo/integration/containerd2/.bin

# cd2_staged: the 2.x binaries are there.
cd2_staged() { [[ -x $CD2_BIN/containerd && -x $CD2_BIN/ctr && -x $CD2_BIN/containerd-shim-runc-v2 ]]; }

# cd2_use: stop containerd and bind 2.x and an empty state over 1.6's (it
# is started again by whoever writes its config next); fails, with a FAIL
# line naming what, if it cannot or if the result is not 2.x.
cd2_use() {
	local version
	systemctl stop containerd
	mkdir -p /var/lib/containerd /run/containerd /var/lib/containerd2 /run/containerd2
	mount --bind /var/lib/containerd2 /var/lib/containerd &&
		mount --bind /run/containerd2 /run/containerd &&
		mount --bind "$CD2_BIN/containerd" /usr/bin/containerd &&
		mount --bind "$CD2_BIN/ctr" /usr/bin/ctr &&
		mount --bind "$CD2_BIN/containerd-shim-runc-v2" /usr/bin/containerd-shim-runc-v2 ||
		{ echo "FAIL containerd2: cannot bind containerd 2.x and its state over 1.6's"; return 1; }
	version=$(containerd --version)
	echo "# containerd under test: $version"
	[[ $version == *" v2."* ]] || { echo "FAIL containerd2: $CD2_BIN/containerd is not 2.x: $version"; return 1; }
}

# cd2_restore: containerd 1.6 on its own state again.
cd2_restore() {
	systemctl stop containerd
	umount /usr/bin/containerd /usr/bin/ctr /usr/bin/containerd-shim-runc-v2 /var/lib/containerd /run/containerd 2>/dev/null
	systemctl start containerd
	echo "# containerd restored: $(containerd --version)"
}

# containerd 2.x (or 1.7) in place of Debian's 1.6 (INSIDE the test VM, as
# root; sourced, with $repo set): the containerd, ctr and
# containerd-shim-runc-v2 that the host staged into
# integration/containerd2/.bin (.bin17: 1.7; hack/thirdparty/containerd) are
# bind-mounted over 1.6's binaries, on an empty /var/lib/containerd and
# /run/containerd; cd2_restore runs 1.6 again on its own state.
# shellcheck shell=bash

CD2_BIN=$repo/integration/containerd2/.bin
CD17_BIN=$repo/integration/containerd2/.bin17

# cd2_staged [BIN]: the binaries are there (BIN: 2.x's by default).
cd2_staged() {
	local b=${1:-$CD2_BIN}
	[[ -x $b/containerd && -x $b/ctr && -x $b/containerd-shim-runc-v2 ]]
}

# cd2_use [BIN VERSION NAME]: stop containerd and bind BIN's containerd
# (2.x by default) and an empty state over 1.6's (it is started again by
# whoever writes its config next); fails, with a FAIL line for NAME
# (containerd2) naming what, if it cannot or if the result's version does
# not start with VERSION (v2.).
cd2_use() {
	local bin=${1:-$CD2_BIN} want=${2:-v2.} name=${3:-containerd2} version
	systemctl stop containerd
	mkdir -p /var/lib/containerd /run/containerd "/var/lib/$name" "/run/$name"
	mount --bind "/var/lib/$name" /var/lib/containerd &&
		mount --bind "/run/$name" /run/containerd &&
		mount --bind "$bin/containerd" /usr/bin/containerd &&
		mount --bind "$bin/ctr" /usr/bin/ctr &&
		mount --bind "$bin/containerd-shim-runc-v2" /usr/bin/containerd-shim-runc-v2 ||
		{ echo "FAIL $name: cannot bind $bin's containerd and its state over 1.6's"; return 1; }
	version=$(containerd --version)
	echo "# containerd under test: $version"
	[[ $version == *" $want"* ]] || { echo "FAIL $name: $bin/containerd is not $want: $version"; return 1; }
}

# cd2_restore: containerd 1.6 on its own state again.
cd2_restore() {
	systemctl stop containerd
	umount /usr/bin/containerd /usr/bin/ctr /usr/bin/containerd-shim-runc-v2 /var/lib/containerd /run/containerd 2>/dev/null
	systemctl start containerd
	echo "# containerd restored: $(containerd --version)"
}

# cd2_shim_tests PREFIX TEST...: suite-shim.sh's setup (config version 2,
# which 2.x migrates) and TESTs against the containerd bound now, their
# PASS/FAIL/SKIP lines renamed PREFIX/; then the server version they ran
# against. Returns the suite's status.
cd2_shim_tests() {
	local prefix=$1 rc=0 server
	shift
	"$repo/integration/vm/suite-shim.sh" "$@" > >(sed -u "s#^\(PASS\|FAIL\|SKIP\) shim/#\1 $prefix/#") 2>&1 || rc=$?
	wait
	server=$(ctr version 2>/dev/null | awk '/^Server:/{s=1} s && /Version:/{print $2; exit}')
	echo "# containerd server version during the tests: ${server:-unknown}"
	return "$rc"
}

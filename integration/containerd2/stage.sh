#!/bin/bash
# Stage containerd 2.x for the test VM (on the host): build containerd and
# ctr from the Go module proxy (hack/thirdparty/containerd, cached outside
# the checkout) and copy them into .bin beside this script (git-ignored),
# where integration/vm/suite-containerd2.sh finds them. Without a Go that
# can build it prints a SKIP line and stages nothing (the suite then skips
# too).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
rc=0
dir=$("$repo/hack/thirdparty/containerd") || rc=$?
if ((rc == 3)); then
	echo "SKIP containerd2: no Go that can build containerd 2.x"
	exit 0
fi
((rc == 0)) || { echo "containerd2: the build failed (exit $rc)" >&2; exit 1; }
mkdir -p "$here/.bin"
install -m 755 "$dir/bin/containerd" "$dir/bin/ctr" "$here/.bin/"

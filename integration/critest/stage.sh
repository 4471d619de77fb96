#!/bin/bash
# Stage critest for the test VM (on the host): build it from the Go module
# proxy (hack/thirdparty/critest, cached outside the checkout) and the
# nonewprivs and pause stand-ins (nnp.c, pause.c, static), and copy them
# into .bin beside this script (git-ignored), where
# integration/vm/suite-critest.sh finds them.
# Without Go >= 1.26 prints a SKIP line and stages nothing (the suite then
# skips too).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
rc=0
dir=$("$repo/hack/thirdparty/critest") || rc=$?
if ((rc == 3)); then
	echo "SKIP critest: no Go >= 1.26 to build it"
	exit 0
fi
((rc == 0)) || { echo "critest: the build failed (exit $rc)" >&2; exit 1; }
mkdir -p "$here/.bin"
install -m 755 "$dir/bin/critest" "$here/.bin/critest"
cc -static -Os -o "$here/.bin/nnp" "$here/nnp.c"
cc -static -Os -o "$here/.bin/pause" "$here/pause.c"

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
# shellcheck source=../../hack/thirdparty/lib.sh
. "$repo/hack/thirdparty/lib.sh"
tp_stage critest "$repo/hack/thirdparty/critest" "$here/.bin" bin/critest bin/ginkgo
[[ -x $here/.bin/critest ]] || exit 0
cc -static -Os -o "$here/.bin/nnp" "$here/nnp.c"
cc -static -Os -o "$here/.bin/pause" "$here/pause.c"

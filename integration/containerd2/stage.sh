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
# shellcheck source=../../hack/thirdparty/lib.sh
. "$repo/hack/thirdparty/lib.sh"
tp_stage containerd2 "$repo/hack/thirdparty/containerd" "$here/.bin" bin/containerd bin/ctr bin/containerd-shim-runc-v2

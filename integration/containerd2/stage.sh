#!/bin/bash
# Stage containerd 2.x and 1.7 for the test VM (on the host): build
# containerd, ctr and containerd-shim-runc-v2 from the Go module proxy
# (hack/thirdparty/containerd, cached outside the checkout) and copy them
# into .bin (2.x) and .bin17 (1.7) beside this script (git-ignored), where
# integration/vm/suite-containerd2.sh and suite-containerd17.sh find them.
# Without a Go that can build them it prints SKIP lines and stages nothing
# (the suites then skip too).
set -euo pipefail
CONTAINERD17_VERSION=v1.7.35
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
# shellcheck source=../../hack/thirdparty/lib.sh
. "$repo/hack/thirdparty/lib.sh"
tp_stage containerd2 "$repo/hack/thirdparty/containerd" "$here/.bin" bin/containerd bin/ctr bin/containerd-shim-runc-v2
# containerd 1.7 as well, for the shim's CRI tests (integration/vm/suite-containerd17.sh).
CD_VERSION=$CONTAINERD17_VERSION tp_stage containerd17 "$repo/hack/thirdparty/containerd" "$here/.bin17" \
	bin/containerd bin/ctr bin/containerd-shim-runc-v2

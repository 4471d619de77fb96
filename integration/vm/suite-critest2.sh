#!/bin/bash
# critest against containerd 2.x (staged by integration/containerd2/stage.sh)
# in place of Debian's 1.6, in the same boot as suite-critest.sh: it reuses
# the registry and the stand-in images that suite left running. Lines are
# named critest2/; handlers skiff and runc (the reference, on the specs
# skiff did not pass) as there. Alone:
#   hack/vm/run --timeout 3000 [-e CRITEST_REFERENCE=all] integration/vm/suite-critest2.sh [GINKGO_FOCUS]
CRITEST_CONTAINERD=2 \
	exec "$(dirname "${BASH_SOURCE[0]}")/suite-critest.sh" "$@"

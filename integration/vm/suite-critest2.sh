#!/bin/bash
# critest against containerd 2.x (staged by integration/containerd2/stage.sh)
# in place of Debian's 1.6, in the same boot as suite-critest.sh: it reuses
# the registry and the stand-in images that suite left running. Lines are
# named critest2/; handlers skiff and runc (the reference) as there, but
# runc runs only the specs skiff did not pass (CRITEST_REFERENCE=failed:
# the verdict is the same, and it saves runc's whole run, ~4 min of
# `make test`; critest on 1.6 keeps runc's whole run). Alone:
#   hack/vm/run --timeout 3000 [-e CRITEST_REFERENCE=all] integration/vm/suite-critest2.sh [GINKGO_FOCUS]
CRITEST_CONTAINERD=2 CRITEST_REFERENCE=${CRITEST_REFERENCE:-failed} \
	exec "$(dirname "${BASH_SOURCE[0]}")/suite-critest.sh" "$@"

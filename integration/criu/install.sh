#!/bin/bash
# Install the CRIU that stage.sh staged (INSIDE the test VM, as root), unless
# a criu is installed already, and check that it runs on this kernel.
# Prints nothing and exits 0 when CRIU works; otherwise prints the reason
# to skip on one line and exits 1. Used by integration/vm/suite-criu.sh and
# by suite-shim.sh's checkpoint tests (containerd 2.x's suite runs before
# suite-criu.sh in the VM stage's boot).
set -uo pipefail
debs=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/.debs
if ! command -v criu >/dev/null; then
	if ! compgen -G "$debs/*.deb" >/dev/null; then
		echo "CRIU not staged (on the host: integration/criu/stage.sh)"
		exit 1
	fi
	if ! out=$(dpkg --force-depends -i "$debs"/*.deb 2>&1); then
		echo "dpkg -i of the staged CRIU failed: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
		exit 1
	fi
fi
if ! out=$(criu check 2>&1); then
	echo "criu check fails on kernel $(uname -r): $(grep -m1 Error <<<"$out")"
	exit 1
fi

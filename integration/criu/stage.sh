#!/bin/bash
# Stage CRIU for the test VM (on the host): Debian's criu package and the
# libraries it needs that the VM image lacks, downloaded with apt into
# .debs beside this script (git-ignored). integration/vm/suite-criu.sh
# installs them in the guest, so the image (and its cache key) stays as it
# is. crit's Python dependencies are left out: skiff and runc drive CRIU
# through its RPC socket and never run crit. Without apt's lists it prints
# SKIP and stages nothing (the suite then skips too).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
PKGS=(criu libnet1 libnftables1 libprotobuf-c1 libnl-3-200 libjansson4)
out=$here/.debs
want=$(for p in "${PKGS[@]}"; do apt-cache policy "$p" 2>/dev/null | awk -v p="$p" '/Candidate:/ {print p "_" $2}'; done)
if [[ -n $want && -d $out ]] && diff <(echo "$want") "$out/versions" >/dev/null 2>&1; then
	echo "criu: staged $(echo "$want" | head -n1) (cached)"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! (cd "$tmp" && apt-get download -q "${PKGS[@]}" >"$tmp/log" 2>&1); then
	echo "SKIP criu: apt-get download ${PKGS[*]} failed: $(tail -n 2 "$tmp/log" | tr '\n' ' ')"
	exit 0
fi
rm -rf "$out"
mkdir -p "$out"
mv "$tmp"/*.deb "$out"/
echo "$want" >"$out/versions"
echo "criu: staged $(echo "$want" | head -n1) with ${#PKGS[@]} packages into $out"

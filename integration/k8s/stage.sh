#!/bin/bash
# Stage Kubernetes for the test VM (on the host): build etcd, kube-apiserver,
# kubelet and kubectl from the Go module proxy (hack/thirdparty/kubernetes,
# cached outside the checkout), copy them into .bin beside this script
# (git-ignored), and make the service-account signing key pair there (the
# VM has no openssl). integration/vm/suite-k8s.sh finds them there; it also
# needs containerd 2.x (integration/containerd2/stage.sh). Without a Go
# that can build them it prints a SKIP line and stages nothing (the suite
# then skips too).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
# shellcheck source=../../hack/thirdparty/lib.sh
. "$repo/hack/thirdparty/lib.sh"
tp_stage kubernetes "$repo/hack/thirdparty/kubernetes" "$here/.bin" \
	bin/etcd bin/kube-apiserver bin/kubelet bin/kubectl
[[ -x $here/.bin/kubelet ]] || exit 0
if [[ ! -s $here/.bin/sa.pub ]]; then
	openssl genrsa -out "$here/.bin/sa.key" 2048 2>/dev/null
	openssl rsa -in "$here/.bin/sa.key" -pubout -out "$here/.bin/sa.pub" 2>/dev/null
fi

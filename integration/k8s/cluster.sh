# A single-node Kubernetes in the test VM (INSIDE it, as root; sourced,
# with $repo set): etcd, kube-apiserver and kubelet as transient systemd
# units, on containerd 2.x (containerd2-lib.sh) with the runtime handlers
# `skiff` and `runc` (shim-lib.sh's config) and a CNI bridge. No scheduler
# or controller-manager: every pod names its node. The binaries and the
# service-account key pair come from integration/k8s/.bin (staged by the
# host: integration/k8s/stage.sh).
#
# Shortcuts for a test VM, not for a real node: the API allows every
# authenticated user (token file), the kubelet serves anyone (anonymous,
# AlwaysAllow), TLS is self-signed and not verified.
# shellcheck shell=bash

K8S_BIN=$repo/integration/k8s/.bin
K8S_DIR=${K8S_DIR:-/var/lib/skiff-k8s}
NODE=skiff-node
NODE_IP=10.99.0.1
KUBECONFIG_ADMIN=$K8S_DIR/admin.conf
# Generous: the VM runs under software emulation.
K8S_START_SECS=${K8S_START_SECS:-900}
# The kubelet's cgroup driver: cgroupfs, or systemd (then runc's handler
# gets SystemdCgroup, which is also what containerd reports to the kubelet;
# skiff's shim needs nothing: it takes the systemd driver from the
# `slice:prefix:name` cgroupsPath the CRI plugin makes for a .slice parent).
K8S_CGROUP_DRIVER=${K8S_CGROUP_DRIVER:-cgroupfs}

# k ARGS...: kubectl as the cluster admin (at most 5 minutes a call).
k() { timeout 300 "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# k8s_staged: every binary and the key pair are there.
k8s_staged() {
	local f
	for f in etcd kube-apiserver kubelet kubectl sa.key sa.pub; do
		[[ -e $K8S_BIN/$f ]] || return 1
	done
}

# kubeconfig USER TOKEN: a kubeconfig for the API server on this node.
kubeconfig() {
	cat <<-EOT
		apiVersion: v1
		kind: Config
		clusters:
		- name: skiff
		  cluster: {server: "https://$NODE_IP:6443", insecure-skip-tls-verify: true}
		users:
		- name: $1
		  user: {token: "$2"}
		contexts:
		- name: skiff
		  context: {cluster: skiff, user: $1}
		current-context: skiff
	EOT
}

# unit NAME CMD...: run CMD as the transient service skiff-NAME.
unit() {
	local name=$1
	shift
	systemctl reset-failed "skiff-$name" 2>/dev/null
	systemd-run --unit "skiff-$name" --collect "$@" >/dev/null
}

# k8s_network: a dummy interface with the node's address and a default
# route (the VM has no network; kubelet and the API server want an address
# to advertise), and the CNI bridge config for pods.
k8s_network() {
	ip link add k8s0 type dummy 2>/dev/null
	ip addr replace "$NODE_IP/24" dev k8s0 && ip link set k8s0 up || return 1
	ip route show default | grep -q . || ip route add default dev k8s0 || return 1
	mkdir -p /etc/cni/net.d
	cat >/etc/cni/net.d/10-skiff-k8s.conflist <<-EOT
		{"cniVersion": "0.4.0", "name": "skiff-k8s", "plugins": [
		  {"type": "bridge", "bridge": "cni-k8s", "isGateway": true, "ipMasq": false,
		   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.78.0/24"}]],
		            "routes": [{"dst": "0.0.0.0/0"}]}},
		  {"type": "portmap", "capabilities": {"portMappings": true}},
		  {"type": "loopback"}]}
	EOT
}

# k8s_containerd: containerd 2.x with the handlers, the busybox and pause
# images (shim_setup) and CNI from Debian's plugins.
k8s_containerd() {
	cd2_use || return 1
	shim_setup || return 1
	cat >>/etc/containerd/config.toml <<-EOT
		[plugins."io.containerd.grpc.v1.cri".cni]
		  bin_dir = "/usr/lib/cni"
		  conf_dir = "/etc/cni/net.d"
	EOT
	if [[ $K8S_CGROUP_DRIVER == systemd ]]; then
		cat >>/etc/containerd/config.toml <<-EOT
			[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
			  SystemdCgroup = true
		EOT
	fi
	systemctl restart containerd
	wait_for 60 ctr version >/dev/null 2>&1
}

# k8s_start: etcd, the API server and the kubelet; returns when the node is
# Ready and the RuntimeClasses `skiff` and `runc` exist. Fails with a line
# naming the part that did not come up.
k8s_start() {
	local t0=$SECONDS pki=$K8S_DIR/pki
	rm -rf "$K8S_DIR"
	mkdir -p "$pki" "$K8S_DIR/etcd"
	k8s_network || { echo "k8s: cannot set up the node's address"; return 1; }
	printf '%s\n' "skiff-admin-token,admin,admin,system:masters" \
		"skiff-node-token,system:node:$NODE,system:node:$NODE,system:nodes" >"$pki/tokens.csv"
	kubeconfig admin skiff-admin-token >"$KUBECONFIG_ADMIN"
	kubeconfig "system:node:$NODE" skiff-node-token >"$K8S_DIR/kubelet.conf"

	unit etcd "$K8S_BIN/etcd" --name default --data-dir "$K8S_DIR/etcd" --unsafe-no-fsync \
		--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
		--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster default=http://127.0.0.1:2380 || { echo "k8s: cannot start etcd"; return 1; }
	unit apiserver "$K8S_BIN/kube-apiserver" --etcd-servers http://127.0.0.1:2379 \
		--bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port 6443 \
		--cert-dir "$pki" --token-auth-file "$pki/tokens.csv" --authorization-mode AlwaysAllow \
		--service-account-issuer https://kubernetes.default.svc \
		--service-account-key-file "$K8S_BIN/sa.pub" --service-account-signing-key-file "$K8S_BIN/sa.key" \
		--service-cluster-ip-range 10.96.0.0/16 --allow-privileged \
		--disable-admission-plugins ServiceAccount,TaintNodesByCondition \
		--kubelet-preferred-address-types InternalIP ||
		{ echo "k8s: cannot start kube-apiserver"; return 1; }
	every 5 "$K8S_START_SECS" k get --raw /readyz >/dev/null 2>&1 ||
		{ echo "k8s: the API server is not ready after ${K8S_START_SECS}s: $(k8s_journal apiserver)"; return 1; }
	log "API server ready after $((SECONDS - t0))s"

	cat >"$K8S_DIR/kubelet.yaml" <<-EOT
		apiVersion: kubelet.config.k8s.io/v1beta1
		kind: KubeletConfiguration
		address: $NODE_IP
		readOnlyPort: 0
		authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
		authorization: {mode: AlwaysAllow}
		cgroupDriver: $K8S_CGROUP_DRIVER
		containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
		failSwapOn: false
		resolvConf: ""
		imageGCHighThresholdPercent: 100
		imageGCLowThresholdPercent: 99
		evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
		serializeImagePulls: false
		nodeStatusUpdateFrequency: 10s
		syncFrequency: 10s
	EOT
	unit kubelet "$K8S_BIN/kubelet" --config "$K8S_DIR/kubelet.yaml" --kubeconfig "$K8S_DIR/kubelet.conf" \
		--hostname-override "$NODE" --node-ip "$NODE_IP" --root-dir /var/lib/kubelet ||
		{ echo "k8s: cannot start the kubelet"; return 1; }
	every 5 "$K8S_START_SECS" k8s_node_ready ||
		{ echo "k8s: node $NODE not Ready after ${K8S_START_SECS}s: $(k8s_journal kubelet)"; return 1; }
	log "node Ready after $((SECONDS - t0))s"
	k apply -f - >/dev/null <<-EOT || { echo "k8s: cannot create the RuntimeClasses"; return 1; }
		apiVersion: node.k8s.io/v1
		kind: RuntimeClass
		metadata: {name: skiff}
		handler: skiff
		---
		apiVersion: node.k8s.io/v1
		kind: RuntimeClass
		metadata: {name: runc}
		handler: runc
	EOT
}

# every SECS_BETWEEN SECS CMD...: run CMD every SECS_BETWEEN seconds until it
# succeeds, for at most SECS (kubectl is slow to start under emulation:
# polling it faster would slow down what it waits for).
every() {
	local step=$1 end=$((SECONDS + $2))
	shift 2
	until "$@"; do
		((SECONDS < end)) || return 1
		sleep "$step"
	done
}

# k8s_node_ready: the node reports Ready.
k8s_node_ready() {
	[[ $(k get node "$NODE" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}

# k8s_journal NAME: the last error-looking lines of unit skiff-NAME, one line.
k8s_journal() {
	journalctl -u "skiff-$1" --no-pager 2>/dev/null | grep -iE 'error|fail|fatal' | tail -n 4 | tr '\n' ' '
}

# k8s_stop: the kubelet, every CRI pod left, the API server and etcd, the
# kubelet's cgroups and mounts; then containerd 1.6 again.
k8s_stop() {
	local id d
	systemctl stop skiff-kubelet 2>/dev/null
	for id in $(ctr -n k8s.io task ls -q 2>/dev/null); do
		ctr -n k8s.io task kill -a -s KILL "$id" >/dev/null 2>&1
	done
	sleep 1
	for id in $(ctr -n k8s.io task ls -q 2>/dev/null); do
		ctr -n k8s.io task rm -f "$id" >/dev/null 2>&1
	done
	for id in $(ctr -n k8s.io container ls -q 2>/dev/null); do
		ctr -n k8s.io container rm "$id" >/dev/null 2>&1
	done
	systemctl stop skiff-apiserver skiff-etcd 2>/dev/null
	grep -o ' /var/lib/kubelet[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
	if [[ -d /sys/fs/cgroup/kubepods ]]; then
		find /sys/fs/cgroup/kubepods -depth -type d -exec rmdir {} + 2>/dev/null
	fi
	for d in /run/netns/cni-*; do
		[[ -e $d ]] && ip netns delete "${d##*/}" 2>/dev/null
	done
	ip link delete cni-k8s 2>/dev/null
	ip link delete k8s0 2>/dev/null
	rm -f /etc/cni/net.d/10-skiff-k8s.conflist
	cd2_restore
}

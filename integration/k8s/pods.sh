# The pods of the Kubernetes tests (INSIDE the test VM; sourced by
# integration/vm/suite-k8s.sh, with $NODE, $IMG and $K8S_HOSTPATH set).
# Each function prints one pod for namespace and RuntimeClass $1 (the
# handler under test: skiff or runc). Pods name their node (no scheduler)
# and use the locally imported busybox image (no pulls).
# shellcheck shell=bash

# pod_head NS NAME RESTART_POLICY [GRACE]: the fields every test pod has
# (GRACE: terminationGracePeriodSeconds, default 2).
pod_head() {
	cat <<-EOT
		---
		apiVersion: v1
		kind: Pod
		metadata: {name: $2, namespace: $1}
		spec:
		  nodeName: $NODE
		  runtimeClassName: $1
		  restartPolicy: $3
		  terminationGracePeriodSeconds: ${4:-2}
		  dnsPolicy: Default
	EOT
}

# ctr_head NAME: the start of a container entry (under containers:).
ctr_head() {
	cat <<-EOT
		  - name: $1
		    image: $IMG
		    imagePullPolicy: Never
	EOT
}

# basic: logs, exec, attach, cp and the cpu and memory limits; stdin open
# for attach (it echoes each line it reads).
pod_basic() {
	pod_head "$1" basic Always
	echo "  containers:"
	ctr_head c
	cat <<-'EOT'
		    stdin: true
		    command: [sh, -c, 'echo hello-from-$(hostname); while read -r l; do echo "got $l"; done; sleep 100000']
		    resources:
		      limits: {cpu: 500m, memory: 64Mi}
	EOT
}

# oom: a 64 MiB buffer (dd) under a 32 MiB limit, never restarted;
# oomloop: the same, restarted.
pod_oom() {
	local name policy
	for name in oom oomloop; do
		policy=Never
		[[ $name == oomloop ]] && policy=Always
		pod_head "$1" "$name" "$policy"
		echo "  containers:"
		ctr_head c
		cat <<-'EOT'
			    command: [dd, if=/dev/zero, of=/dev/null, bs=64M, count=1]
			    resources:
			      limits: {memory: 32Mi}
		EOT
	done
}

# live: an exec liveness probe that starts failing after 3 s;
# ready: tcp readiness and liveness probes on busybox httpd.
pod_probes() {
	pod_head "$1" live Always
	echo "  containers:"
	ctr_head c
	cat <<-'EOT'
		    command: [sh, -c, 'touch /tmp/healthy; sleep 3; rm /tmp/healthy; sleep 100000']
		    livenessProbe:
		      exec: {command: [cat, /tmp/healthy]}
		      periodSeconds: 2
		      failureThreshold: 1
		      timeoutSeconds: 20
	EOT
	pod_head "$1" ready Always
	echo "  containers:"
	ctr_head c
	cat <<-'EOT'
		    command: [httpd, -f, -p, "8080", -h, /tmp]
		    readinessProbe:
		      tcpSocket: {port: 8080}
		      periodSeconds: 2
		    livenessProbe:
		      tcpSocket: {port: 8080}
		      periodSeconds: 5
		      failureThreshold: 6
		      timeoutSeconds: 10
	EOT
}

# The restart policies: a container that exits 1 (Never, OnFailure) or 0
# (OnFailure, Always).
pod_policies() {
	local spec name policy code
	for spec in never-fail:Never:1 onfailure-fail:OnFailure:1 onfailure-ok:OnFailure:0 always-ok:Always:0; do
		IFS=: read -r name policy code <<<"$spec"
		pod_head "$1" "$name" "$policy"
		echo "  containers:"
		ctr_head c
		echo "    command: [sh, -c, 'sleep 1; exit $code']"
	done
}

# init: an init container writes into an emptyDir, a sidecar (an init
# container that keeps running) marks that it runs, the main container
# prints both.
pod_init() {
	pod_head "$1" init Always
	cat <<-'EOT'
		  volumes: [{name: work, emptyDir: {}}]
		  initContainers:
	EOT
	ctr_head init
	cat <<-'EOT'
		    command: [sh, -c, 'echo init-done > /work/init']
		    volumeMounts: [{name: work, mountPath: /work}]
	EOT
	ctr_head sidecar
	cat <<-'EOT'
		    restartPolicy: Always
		    command: [sh, -c, 'echo sidecar-up > /work/sidecar; sleep 100000']
		    volumeMounts: [{name: work, mountPath: /work}]
		  containers:
	EOT
	ctr_head main
	cat <<-'EOT'
		    command: [sh, -c, 'while [ ! -e /work/sidecar ]; do sleep 1; done; cat /work/init /work/sidecar; sleep 100000']
		    volumeMounts: [{name: work, mountPath: /work}]
	EOT
}

# sharepid: two containers in one pid namespace.
pod_sharepid() {
	pod_head "$1" sharepid Always
	echo "  shareProcessNamespace: true"
	echo "  containers:"
	ctr_head a
	echo "    command: [sleep, '3601']"
	ctr_head b
	echo "    command: [sleep, '3602']"
}

# sec: one container per securityContext setting; each prints what it
# sees and exits 0.
pod_sec() {
	pod_head "$1" sec Never
	cat <<-'EOT'
		  securityContext: {fsGroup: 2000}
		  volumes: [{name: data, emptyDir: {}}, {name: tmp, emptyDir: {}}]
		  containers:
	EOT
	ctr_head user
	cat <<-'EOT'
		    securityContext: {runAsUser: 1000, runAsGroup: 3000}
		    command: [sh, -c, 'echo "uid=$(id -u) gid=$(id -g) groups=$(id -G) data=$(stat -c %g /data)"; touch /data/f && echo data-writable']
		    volumeMounts: [{name: data, mountPath: /data}]
	EOT
	ctr_head rofs
	cat <<-'EOT'
		    securityContext: {readOnlyRootFilesystem: true}
		    command: [sh, -c, 'touch /x 2>/dev/null && echo root-writable || echo root-readonly; touch /tmp/y && echo tmp-writable']
		    volumeMounts: [{name: tmp, mountPath: /tmp}]
	EOT
	ctr_head caps
	cat <<-'EOT'
		    securityContext: {capabilities: {drop: [ALL], add: [NET_ADMIN]}}
		    command: [sh, -c, 'grep -E "^Cap(Eff|Bnd):" /proc/self/status']
	EOT
	ctr_head nnp
	cat <<-'EOT'
		    securityContext: {allowPrivilegeEscalation: false}
		    command: [sh, -c, 'grep NoNewPrivs /proc/self/status']
	EOT
	ctr_head seccomp
	cat <<-'EOT'
		    securityContext: {seccompProfile: {type: RuntimeDefault}}
		    command: [sh, -c, 'grep "^Seccomp:" /proc/self/status']
	EOT
	ctr_head priv
	cat <<-'EOT'
		    securityContext: {privileged: true}
		    command: [sh, -c, 'grep -E "^(CapEff|Seccomp):" /proc/self/status; echo "devices=$(ls /dev | wc -l)"; cat /proc/sys/kernel/cap_last_cap']
	EOT
}

# vols: emptyDir, hostPath, configMap and secret volumes (the configMap
# and the secret come first).
pod_vols() {
	cat <<-EOT
		---
		apiVersion: v1
		kind: ConfigMap
		metadata: {name: cm, namespace: $1}
		data: {greeting: hello-cm}
		---
		apiVersion: v1
		kind: Secret
		metadata: {name: sec, namespace: $1}
		stringData: {password: s3cret}
	EOT
	pod_head "$1" vols Never
	cat <<-EOT
		  volumes:
		  - {name: empty, emptyDir: {}}
		  - {name: host, hostPath: {path: $K8S_HOSTPATH/$1, type: Directory}}
		  - {name: cm, configMap: {name: cm}}
		  - {name: sec, secret: {secretName: sec}}
		  containers:
	EOT
	ctr_head c
	cat <<-'EOT'
		    command: [sh, -c, 'echo ok > /empty/f; echo "empty=$(cat /empty/f) host=$(cat /host/probe) cm=$(cat /cm/greeting) secret=$(cat /sec/password)"; echo written-in-pod > /host/out']
		    volumeMounts:
		    - {name: empty, mountPath: /empty}
		    - {name: host, mountPath: /host}
		    - {name: cm, mountPath: /cm}
		    - {name: sec, mountPath: /sec}
	EOT
}

# grace: writes to a hostPath file when SIGTERM arrives, then exits (a
# grace period of 120 s: the delete ends long before it only if it did).
pod_grace() {
	pod_head "$1" grace Always 120
	cat <<-EOT
		  volumes: [{name: host, hostPath: {path: $K8S_HOSTPATH/$1, type: Directory}}]
		  containers:
	EOT
	ctr_head c
	cat <<-'EOT'
		    command: [sh, -c, 'trap "echo got-term > /host/grace; exit 0" TERM; echo started > /host/grace; while :; do sleep 1; done']
		    volumeMounts: [{name: host, mountPath: /host}]
	EOT
}

# plain NAME...: pods that only sleep (deletion and the create/delete loop).
pod_plain() {
	local ns=$1 name
	shift
	for name in "$@"; do
		pod_head "$ns" "$name" Always
		echo "  containers:"
		ctr_head c
		echo "    command: [sleep, '100000']"
	done
}

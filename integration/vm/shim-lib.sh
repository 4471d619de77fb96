# Helpers for the containerd shim tests and the shim benchmark (INSIDE the
# test VM, as root; sourced, with $repo set): containerd 1.6 with runtime
# handlers for skiff and runc, a busybox image and a "pause" image built
# locally with buildah (no registry), and a small test runner.
# shellcheck shell=bash

# IT_SHIM: another build of the shim to test (e.g. a baseline to compare).
SHIM=${IT_SHIM:-$repo/target/release/containerd-shim-skiff-v2}
IT_TMP=${IT_TMP:-/var/tmp/skiff-shim-it}
IMG=docker.io/library/skiff-busybox:latest
PAUSE=docker.io/library/skiff-pause:latest
# IT_CRI_TEST: another build of the CRI client (the arm64 stage's).
CRI_TEST=${IT_CRI_TEST:-$repo/integration/cri/target/release/skiff-cri-test}
NS=skiff-it
C=(timeout --foreground 60 ctr -n "$NS")
RT=(--runtime io.containerd.skiff.v2)

# log and wait_for.
# shellcheck source=common.sh
source "$repo/integration/vm/common.sh"

# expect WHAT GOT WANT
expect() {
	[[ $2 == "$3" ]] && return 0
	log "$1: got '$2', want '$3'"
	return 1
}

# pid_reaped PID: no such process, not even a zombie.
pid_reaped() { ! kill -0 "$1" 2>/dev/null; }

task_status() { "${C[@]}" task ls 2>/dev/null | awk -v id="$1" '$1==id{print $3}'; }

# wait_status ID STATUS [SECS]
wait_status() {
	local i secs=${3:-20}
	for ((i = 0; i < secs * 5; i++)); do
		[[ $(task_status "$1") == "$2" ]] && return 0
		sleep 0.2
	done
	log "$1: status '$(task_status "$1")', want $2"
	return 1
}

gone_or_stopped() {
	local st
	st=$(task_status "$1")
	[[ -z $st || $st == STOPPED ]]
}

# kill_and_rm ID: stop the task, delete it and the container.
kill_and_rm() {
	"${C[@]}" task kill -s KILL "$1" >/dev/null 2>&1
	wait_status "$1" STOPPED >/dev/null 2>&1
	"${C[@]}" task rm "$1" >/dev/null 2>&1
	"${C[@]}" container rm "$1" >/dev/null 2>&1
	[[ -z $("${C[@]}" container ls -q | grep -x "$1") ]]
}

cleanup_all() {
	local id
	for id in $("${C[@]}" task ls -q 2>/dev/null); do
		"${C[@]}" task kill -a -s KILL "$id" >/dev/null 2>&1
		"${C[@]}" task rm -f "$id" >/dev/null 2>&1
	done
	for id in $("${C[@]}" container ls -q 2>/dev/null); do
		"${C[@]}" container rm "$id" >/dev/null 2>&1
	done
}

# A busybox image from busybox-static, built with buildah and imported.
build_image() {
	local c mnt tar=$IT_TMP/busybox.tar a
	c=$(buildah from scratch) || { echo "build_image: buildah from scratch failed" >&2; return 1; }
	mnt=$(buildah mount "$c") || { echo "build_image: buildah mount failed" >&2; return 1; }
	mkdir -p "$mnt/bin" "$mnt/tmp" "$mnt/etc"
	cp /bin/busybox "$mnt/bin/busybox"
	for a in $("$mnt/bin/busybox" --list); do
		[[ -e $mnt/bin/$a ]] || ln -s busybox "$mnt/bin/$a"
	done
	echo 'root:x:0:0:root:/:/bin/sh' >"$mnt/etc/passwd"
	echo 'root:x:0:' >"$mnt/etc/group"
	buildah umount "$c" >/dev/null
	buildah config --cmd '["/bin/sh"]' --env PATH=/bin "$c" >/dev/null
	buildah commit -q "$c" skiff-busybox >/dev/null || { echo "build_image: buildah commit skiff-busybox failed" >&2; return 1; }
	# The CRI sandbox ("pause") image: the same, sleeping forever.
	buildah config --cmd '["/bin/sleep","2147483647"]' "$c" >/dev/null
	buildah commit -q "$c" skiff-pause >/dev/null || { echo "build_image: buildah commit skiff-pause failed" >&2; return 1; }
	buildah rm "$c" >/dev/null
	local ns
	for ns in "$NS" k8s.io; do
		rm -f "$tar"
		buildah push -q skiff-busybox "oci-archive:$tar:$IMG" >/dev/null || { echo "build_image: buildah push $IMG failed" >&2; return 1; }
		ctr -n "$ns" image import "$tar" >/dev/null || { echo "build_image: ctr -n $ns image import $IMG failed" >&2; return 1; }
		rm -f "$tar"
		buildah push -q skiff-pause "oci-archive:$tar:$PAUSE" >/dev/null || { echo "build_image: buildah push $PAUSE failed" >&2; return 1; }
		ctr -n "$ns" image import "$tar" >/dev/null || { echo "build_image: ctr -n $ns image import $PAUSE failed" >&2; return 1; }
	done
	local listed
	listed=$("${C[@]}" image ls -q 2>&1)
	grep -qx "$IMG" <<<"$listed" || {
		echo "build_image: $IMG not listed in namespace $NS after the import; ctr image ls -q: $(tr '\n' ' ' <<<"$listed")" >&2
		return 1
	}
}

# The `Root` the skiff-systemd handler's options file sets: a container's
# state directory there shows the file reached the shim.
SYSTEMD_HANDLER_ROOT=/run/containerd/skiff-systemd-root

# containerd's config: the CRI plugin with runtime handlers skiff (no
# options) and skiff-systemd (SystemdCgroup and Root through the CRI runtime
# options file, as docs/containerd.md describes).
write_config() {
	cat >/etc/containerd/skiff-systemd.toml <<-EOT
		SystemdCgroup = true
		Root = "$SYSTEMD_HANDLER_ROOT"
	EOT
	cat >/etc/containerd/config.toml <<-EOT
		version = 2
		[plugins."io.containerd.grpc.v1.cri"]
		  sandbox_image = "$PAUSE"
		[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
		  runtime_type = "io.containerd.runc.v2"
		[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.skiff]
		  runtime_type = "io.containerd.skiff.v2"
		[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.skiff-systemd]
		  runtime_type = "io.containerd.skiff.v2"
		[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.skiff-systemd.options]
		  ConfigPath = "/etc/containerd/skiff-systemd.toml"
	EOT
}

# shim_oom_test: a container ("${RT[@]}" picks the shim) over its 32 MiB
# limit is OOM-killed: exit 137, and containerd publishes /tasks/oom before
# its /tasks/exit.
shim_oom_test() {
	local ev=$IT_TMP/events.oom rc=0
	"${C[@]}" events >"$ev" 2>&1 &
	local evpid=$!
	sleep 1
	"${C[@]}" run --rm "${RT[@]}" --memory-limit 33554432 "$IMG" oom1 \
		sh -c 'echo 0 >/proc/self/oom_score_adj; x=$(head -c 200000000 /dev/zero | tr "\000" a); echo survived' \
		>/dev/null 2>&1 || rc=$?
	sleep 2
	kill "$evpid" 2>/dev/null
	wait "$evpid" 2>/dev/null
	expect "oom exit code" "$rc" 137 || return 1
	grep -q '/tasks/oom.*oom1' "$ev" || { log "events: $(cat "$ev")"; return 1; }
	# The OOM comes before the exit.
	local o e
	o=$(grep -n '/tasks/oom' "$ev" | head -1 | cut -d: -f1)
	e=$(grep -n '/tasks/exit.*oom1' "$ev" | head -1 | cut -d: -f1)
	[[ -n $o && -n $e && $o -lt $e ]] || { log "events: $(cat "$ev")"; return 1; }
}

# Install the shim on PATH, start containerd, import the image.
shim_setup() {
	if [[ ! -x $SHIM ]]; then
		echo "SKIP shim: $SHIM is not built"
		return 1
	fi
	if ! command -v ctr >/dev/null || ! command -v buildah >/dev/null; then
		echo "SKIP shim: ctr or buildah missing in the VM"
		return 1
	fi
	mkdir -p "$IT_TMP"
	install -m 755 "$SHIM" /usr/local/bin/containerd-shim-skiff-v2
	mkdir -p /etc/containerd
	write_config
	systemctl restart containerd
	wait_for 30 ctr version >/dev/null 2>&1 || {
		echo "FAIL shim: containerd does not answer"
		exit 1
	}
	# Once more after a failure (seen twice in many boots, cause not caught;
	# each step now names itself on failure), after a pause.
	build_image 2>"$IT_TMP/build-image.err" || { sleep 5; build_image 2>>"$IT_TMP/build-image.err"; } || {
		echo "FAIL shim: cannot build the busybox image: $(tail -n 3 "$IT_TMP/build-image.err" | tr '\n' ' ')"
		exit 1
	}
}

# shim_skip WHY: log why the running test skips (it then returns 77);
# shim_run_tests prints it on the test's SKIP line.
shim_skip() {
	log "SKIP: $*"
	printf '%s\n' "$*" >"$IT_TMP/skip-reason"
}

# shim_run_tests [NAME...]: run t_NAME (all, in the order of the suite
# script, $0, by default). A test returns 0 (pass), 77 (skip, after
# shim_skip) or anything else (fail). A test NAME_runc is the reference
# (runc's shim) for the test NAME before it: its failure where skiff
# passed is a SKIP (skiff_passed_what_runc_failed, common.sh), shown with
# its output and containerd's log. The reference runs only where its twin
# did not pass, unless IT_REFERENCE=all (common.sh, reference_not_needed).
shim_run_tests() {
	local names=("$@") t rc pass=0 failed=0 skipped=0 t0 passed_now=
	if ((${#names[@]} == 0)); then
		mapfile -t names < <(declare -F | awk '{print $3}' | grep '^t_' | sed 's/^t_//' |
			while read -r n; do echo "$(grep -n "^t_$n()" "$0" | cut -d: -f1) $n"; done |
			sort -n | cut -d' ' -f2)
	fi
	for t in "${names[@]}"; do
		t0=$SECONDS
		rc=0
		rm -f "$IT_TMP/skip-reason"
		if reference_not_needed "$t" "$passed_now"; then
			echo "SKIP shim/$t: the reference, runc's shim, runs only where skiff's shim/${t%_runc} did not pass (IT_REFERENCE=all runs it)"
			((skipped++))
			continue
		fi
		(set +e; "t_$t") || rc=$?
		case $rc in
		0) echo "PASS shim/$t ($((SECONDS - t0))s)"; ((pass++)); passed_now+="$t " ;;
		77) echo "SKIP shim/$t: $(cat "$IT_TMP/skip-reason" 2>/dev/null || echo "no reason given")"; ((skipped++)) ;;
		*)
			journalctl -u containerd --since "-$((SECONDS - t0 + 5))s" --no-pager 2>/dev/null |
				grep -iE 'skiff|shim|error' | tail -n 15 | sed 's/^/  | /' >&2
			cleanup_all
			if skiff_passed_what_runc_failed "$t" "$passed_now"; then
				echo "SKIP shim/$t: the reference, runc's shim, failed it (exit $rc, $((SECONDS - t0))s; its output above) where skiff passed shim/${t%_runc}"
				((skipped++))
			else
				echo "FAIL shim/$t ($((SECONDS - t0))s)"
				((failed++))
			fi
			;;
		esac
	done
	echo "shim: $pass passed, $failed failed, $skipped skipped"
	((failed == 0))
}


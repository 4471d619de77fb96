#!/bin/bash
# shellcheck disable=SC2016,SC2317 # container scripts are single-quoted on purpose; helpers are called indirectly
# Checkpoint and restore with CRIU (INSIDE the test VM, as root): each test
# runs with skiff and, as the reference, with runc (-runc). CRIU comes from
# Debian's packages staged on the host by integration/criu/stage.sh and
# installed here (the image stays as it is). A container counts in the
# memory of its shell and prints each number: after checkpoint and restore
# it must count on from where it stopped.
#
#   hack/vm/run integration/vm/suite-criu.sh [TEST...]
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TESTS=(counter counter-runc leave-running leave-running-runc pre-dump pre-dump-runc
	lazy-pages lazy-pages-runc mounts mounts-runc joined-netns joined-netns-runc host-file
	podman podman-runc errors)
NO_CRIU=$IT_WORK/criu-skip
COUNT='i=0; while :; do i=$((i+1)); echo $i; sleep 0.2; done'

# Install the staged CRIU; a reason to skip goes to $NO_CRIU.
suite_setup() {
	local why
	why=$("$IT_REPO/integration/criu/install.sh")
	echo "# criu: $(criu --version 2>/dev/null | head -n 1)${why:+; $why}"
	[[ -z $why ]] || echo "$why" >"$NO_CRIU"
	return 0
}

need_criu() {
	[[ ! -s $NO_CRIU ]] || skip "$(cat "$NO_CRIU")"
}

# with_runc: the rest of the test drives runc (the reference).
with_runc() {
	RUNTIME=$(command -v runc) || skip "runc is not installed"
}

# cr_do ID ARGS...: run the runtime with ARGS (run -d or restore -d) with
# stdin, stdout and stderr on pipes, as containerd's shim gives them: CRIU
# replaces a dumped pipe with the restoring caller's, while a host file
# (even /dev/null) is outside the container's mounts and cannot be dumped.
# The container's output is appended to <bundle>/log, its errors (and the
# runtime's) to <bundle>/err.
cr_do() {
	local id=$1 b
	shift
	b=$(bundle_of "$id")
	rt "$@" < <(exec sleep 300) > >(exec cat >>"$b/log") 2> >(exec cat >>"$b/err") ||
		fail "$* failed: $(sleep 0.5; tr '\n' ' ' <"$b/err") $(criu_errors "$id")"
}

# criu_errors ID: the last errors in CRIU's logs (the tests give --work-path).
criu_errors() {
	grep -h Error "$(bundle_of "$1")"/work/*.log 2>/dev/null | tail -n 3 | tr '\n' ' '
}

lines() { wc -l <"$1"; }
more_than() { (($(lines "$1") > $2)); }
last() { tail -n 1 "$1"; }
# contiguous FILE: every line is its own line number (one count, never restarted).
contiguous() { awk 'NR != $1 {bad = 1} END {exit bad}' "$1"; }

# counted ID: start ID counting and wait for some numbers.
counted() {
	local id=$1 b
	b=$(bundle_of "$id")
	new_bundle "$id" sh -c "$COUNT"
	cr_do "$id" run -d --bundle "$b" "$id"
	wait_for 30 more_than "$b/log" 3 || fail "$id does not count: $(tr '\n' ' ' <"$b/log")"
}

# checkpointed ID [FLAGS...]: checkpoint into <bundle>/img; without
# --leave-running the container must be gone and its output stop.
checkpointed() {
	local id=$1 b n
	shift
	b=$(bundle_of "$id")
	rt checkpoint --image-path "$b/img" --work-path "$b/work" "$@" "$id" 2>"$b/err" ||
		fail "checkpoint failed: $(tr '\n' ' ' <"$b/err") $(criu_errors "$id")"
	[[ " $* " == *" --leave-running "* ]] && return 0
	if ctr_state "$id" >/dev/null; then fail "$id still exists after checkpoint"; fi
	n=$(lines "$b/log")
	sleep 1
	expect_eq "lines printed after the checkpoint" "$(($(lines "$b/log") - n))" 0
}

# restored ID [FLAG...]: restore from <bundle>/img, and wait for counting to
# go on.
restored() {
	local id=$1 b n mounts
	shift
	b=$(bundle_of "$id")
	n=$(lines "$b/log")
	mounts=$(wc -l </proc/self/mountinfo)
	cr_do "$id" restore -d "$@" --image-path "$b/img" --work-path "$b/work" --bundle "$b" "$id"
	expect_eq "$id status after restore" "$(ctr_status "$id")" running
	expect_eq "our mounts after restore" "$(wc -l </proc/self/mountinfo)" "$mounts"
	wait_for 30 more_than "$b/log" $((n + 3)) || fail "no counting after restore: $(tail -n 5 "$b/log" | tr '\n' ' ')"
}

# done_with ID: delete it; nothing of it may stay.
done_with() {
	local id=$1
	rm_ctr "$id"
	gone "$CG/$CG_TOP/$id" || fail "$id's cgroup is left after delete"
}

# A counting container is checkpointed (and ends), restored, and counts on
# from where it stopped: its output is 1, 2, 3, ... with no restart.
test_counter() {
	local id=it-cr-count b
	need_criu
	b=$(bundle_of $id)
	counted $id
	checkpointed $id
	restored $id
	contiguous "$b/log" || fail "the count restarted or skipped: $(tr '\n' ' ' <"$b/log")"
	log "counted $(last "$b/log") without a break"
	# The restored container is a container like any other.
	expect_eq "exec in the restored container" "$(rt exec $id cat /proc/1/comm)" sh
	done_with $id
}
test_counter-runc() { with_runc; test_counter; }

# --leave-running: the container keeps counting; a restore (after it is
# deleted) starts again from the checkpoint's count, not from 1.
test_leave-running() {
	local id=it-cr-leave b m first
	need_criu
	b=$(bundle_of $id)
	counted $id
	checkpointed $id --leave-running
	expect_eq "status after checkpoint --leave-running" "$(ctr_status $id)" running
	m=$(lines "$b/log")
	wait_for 10 more_than "$b/log" $((m + 2)) || fail "stopped counting after --leave-running"
	rm_ctr $id
	m=$(last "$b/log")
	restored $id
	first=$(sed -n "$((m + 1))p" "$b/log")
	((first > 1 && first <= m)) || fail "the restored count starts at $first (checkpointed between 4 and $m)"
	log "restored at $first (the original reached $m)"
	done_with $id
}
test_leave-running-runc() { with_runc; test_leave-running; }

# A pre-dump, then a dump on top of it (--parent-path), then a restore.
test_pre-dump() {
	local id=it-cr-pre b
	need_criu
	b=$(bundle_of $id)
	counted $id
	rt checkpoint --pre-dump --image-path "$b/pre" --work-path "$b/work" $id 2>"$b/err" ||
		fail "pre-dump failed: $(tr '\n' ' ' <"$b/err") $(criu_errors $id)"
	expect_eq "status after a pre-dump" "$(ctr_status $id)" running
	compgen -G "$b/pre/pages-*.img" >/dev/null || fail "the pre-dump wrote no pages: $(ls "$b/pre" | tr '\n' ' ')"
	checkpointed $id --parent-path ../pre
	[[ $(readlink "$b/img/parent") == ../pre ]] || fail "the dump does not refer to its parent: $(ls -l "$b/img" | tr '\n' ' ')"
	restored $id
	contiguous "$b/log" || fail "the count restarted or skipped: $(tr '\n' ' ' <"$b/log")"
	done_with $id
}
test_pre-dump-runc() { with_runc; test_pre-dump; }

# Lazy migration: checkpoint --lazy-pages serves the memory from a page
# server (--status-fd says when it is ready), `criu lazy-pages` on the
# restoring side fetches it, and the restore (--lazy-pages) runs before the
# pages are all there (userfaultfd); the count goes on unbroken, and the
# checkpoint returns (and the old container goes) once every page was
# fetched. As in runc's own test, the restored container has another id and
# cgroup: the checkpointed one still exists until then.
test_lazy-pages() {
	local id=it-cr-lazy to=it-cr-lazy2 b port=27277 cp lp n
	need_criu
	[[ $RUNTIME != *runc ]] || port=27278
	criu check --feature uffd-noncoop >/dev/null 2>&1 ||
		skip "no userfaultfd for CRIU here: $(criu check --feature uffd-noncoop 2>&1 | tail -n 1)"
	b=$(bundle_of $id)
	counted $id
	new_bundle $to sh -c "$COUNT"
	mkdir -p "$b/img" "$b/work"
	# Both helpers end by themselves should the test fail half-way.
	timeout 120 "$RUNTIME" --root "$IT_ROOT" checkpoint --lazy-pages --page-server "127.0.0.1:$port" \
		--status-fd 3 --image-path "$b/img" --work-path "$b/work" $id 3>"$b/status" 2>"$b/err" &
	cp=$!
	wait_for 60 test -s "$b/status" || fail "no status byte: $(tr '\n' ' ' <"$b/err") $(criu_errors $id)"
	timeout 120 criu lazy-pages --page-server --address 127.0.0.1 --port "$port" -D "$b/img" -W "$b/work" \
		-o lazy-pages.log >/dev/null 2>&1 &
	lp=$!
	# The restored output goes to a file of its own: with --lazy-pages CRIU
	# (3.17) gives the restored process the caller's stdout file at offset 0
	# and without O_APPEND (runc's alike).
	rt restore -d --lazy-pages --image-path "$b/img" --work-path "$b/work" --bundle "$(bundle_of $to)" $to \
		< <(exec sleep 300) >"$b/log2" 2>>"$b/err" ||
		fail "restore --lazy-pages failed: $(tr '\n' ' ' <"$b/err") $(criu_errors $id)"
	wait $cp || fail "checkpoint --lazy-pages failed: $(tr '\n' ' ' <"$b/err") $(criu_errors $id)"
	wait $lp || fail "criu lazy-pages failed: $(criu_errors $id)"
	if ctr_state $id >/dev/null; then fail "$id still exists after the lazy checkpoint"; fi
	wait_for 30 more_than "$b/log2" 3 || fail "no counting after restore: $(tail -n 3 "$b/log2" | tr '\n' ' ')"
	n=$(last "$b/log")
	expect_eq "first number after the restore" "$(head -n 1 "$b/log2")" $((n + 1))
	cat "$b/log2" >>"$b/log"
	contiguous "$b/log" || fail "the count restarted or skipped: $(tr '\n' ' ' <"$b/log")"
	log "lazy: counted $(last "$b/log") without a break"
	done_with $to
	if ! gone "$CG/$CG_TOP/$id"; then
		# runc 1.1.5 leaves it (empty): noted, not failed, for the reference.
		[[ $RUNTIME == *runc ]] || fail "$id's cgroup is left after the lazy checkpoint"
		log "runc left $id's cgroup after the lazy checkpoint"
		rmdir "$CG/$CG_TOP/$id"
	fi
}
test_lazy-pages-runc() { with_runc; test_lazy-pages; }

# A tmpfs (its contents are in the images) and a bind mount of a host
# directory (an external mount, bound again at restore) survive.
test_mounts() {
	local id=it-cr-mounts b
	need_criu
	b=$(bundle_of $id)
	new_bundle $id sh -c "echo kept >/scratch/f; $COUNT"
	mkdir -p "$b/shared"
	cfg $id '.mounts += [{"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=1m"]},
		{"destination": "/shared", "type": "bind", "source": $s, "options": ["rbind", "rw"]}]' --arg s "$b/shared"
	cr_do $id run -d --bundle "$b" $id
	wait_for 30 more_than "$b/log" 3 || fail "$id does not count: $(tr '\n' ' ' <"$b/err")"
	checkpointed $id
	restored $id
	contiguous "$b/log" || fail "the count restarted or skipped"
	expect_eq "tmpfs file after restore" "$(rt exec $id cat /scratch/f)" kept
	expect_eq "/scratch's type" "$(rt exec $id awk '$2 == "/scratch" {print $3}' /proc/mounts)" tmpfs
	echo from-host >"$b/shared/new"
	expect_eq "host file through the bind mount" "$(rt exec $id cat /shared/new)" from-host
	done_with $id
}
test_mounts-runc() { with_runc; test_mounts; }

# A network namespace joined by path (as a pod's containers join the
# sandbox's): CRIU takes it as external (runc's key extRootNetNS), and the
# restore puts the container in that same namespace again.
test_joined-netns() {
	local id=it-cr-netns b ns=it-cr-netns want
	need_criu
	b=$(bundle_of $id)
	ip netns del $ns 2>/dev/null || true
	ip netns add $ns || fail "ip netns add $ns failed"
	want=net:[$(stat -L -c %i /run/netns/$ns)]
	new_bundle $id sh -c "$COUNT"
	cfg $id '.linux.namespaces |= (map(select(.type != "network")) + [{type: "network", path: $p}])' \
		--arg p /run/netns/$ns
	cr_do $id run -d --bundle "$b" $id
	wait_for 30 more_than "$b/log" 3 || fail "$id does not count: $(tr '\n' ' ' <"$b/err")"
	expect_eq "network namespace before" "$(readlink /proc/"$(ctr_pid $id)"/ns/net)" "$want"
	checkpointed $id
	restored $id
	contiguous "$b/log" || fail "the count restarted or skipped: $(tr '\n' ' ' <"$b/log")"
	expect_eq "network namespace after restore" "$(readlink /proc/"$(ctr_pid $id)"/ns/net)" "$want"
	done_with $id
	ip netns del $ns
}
test_joined-netns-runc() { with_runc; test_joined-netns; }

# stdout and stderr on a host file (outside the container's mounts, as
# containerd's fifos are): CRIU dumps it as an external file, and restore
# puts the restoring caller's file in its place. runc cannot dump such a
# file ("Can't lookup mount"), so there is no -runc twin.
test_host-file() {
	local id=it-cr-file b n
	need_criu
	b=$(bundle_of $id)
	new_bundle $id sh -c "$COUNT"
	rt run -d --bundle "$b" $id < <(exec sleep 300) >>"$b/log" 2>>"$b/err" ||
		fail "run failed: $(tr '\n' ' ' <"$b/err")"
	wait_for 30 more_than "$b/log" 3 || fail "$id does not count: $(tr '\n' ' ' <"$b/err")"
	checkpointed $id
	n=$(lines "$b/log")
	rt restore -d --image-path "$b/img" --work-path "$b/work" --bundle "$b" $id < <(exec sleep 300) >>"$b/log" 2>>"$b/err" ||
		fail "restore failed: $(tr '\n' ' ' <"$b/err") $(criu_errors $id)"
	wait_for 30 more_than "$b/log" $((n + 3)) || fail "no counting after restore: $(tail -n 5 "$b/log" | tr '\n' ' ')"
	contiguous "$b/log" || fail "the count restarted or skipped: $(tr '\n' ' ' <"$b/log")"
	done_with $id
}

# podman's container checkpoint/restore with skiff as its OCI runtime.
test_podman() {
	local name=it-cr-podman out first m
	need_criu
	podman_image
	podman rm -f $name >/dev/null 2>&1
	out=$(podman --runtime "$RUNTIME" --cgroup-manager cgroupfs run -d --name $name --network none \
		localhost/skiff-it-bb sh -c "$COUNT" 2>&1) || fail "podman run: $out"
	wait_for 30 bash -c "(( \$(podman logs $name 2>/dev/null | wc -l) > 3 ))" || fail "no counting: $(podman logs $name 2>&1 | tail -n 3)"
	out=$(podman --runtime "$RUNTIME" --cgroup-manager cgroupfs container checkpoint $name 2>&1) ||
		fail "podman container checkpoint: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
	m=$(podman logs $name 2>/dev/null | tail -n 1)
	out=$(podman --runtime "$RUNTIME" --cgroup-manager cgroupfs container restore $name 2>&1) ||
		fail "podman container restore: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
	wait_for 30 bash -c "(( \$(podman logs $name 2>/dev/null | tail -n 1) > $m + 3 ))" || fail "no counting after restore"
	first=$(podman logs $name 2>/dev/null | awk -v m="$m" 'NR == m + 1')
	expect_eq "first number after restore" "$first" $((m + 1))
	podman rm -f $name >/dev/null 2>&1 || fail "podman rm failed"
}
test_podman-runc() { with_runc; test_podman; }

# Bad input: one clear line, a non-zero exit, nothing left behind.
test_errors() {
	local id=it-cr-err b out
	need_criu
	b=$(bundle_of $id)
	new_bundle $id sh -c "$COUNT"
	if out=$(rt checkpoint --image-path "$b/img" it-cr-none 2>&1); then fail "checkpoint of a missing container passed"; fi
	[[ $out == *"it-cr-none does not exist"* ]] || fail "unclear error: $out"
	if out=$(rt restore -d --image-path "$b/no-such-img" --bundle "$b" $id 2>&1); then fail "restore from a missing image passed"; fi
	[[ $out == *"--image-path"* ]] || fail "error does not name --image-path: $out"
	if ctr_state $id >/dev/null; then fail "a failed restore left state behind"; fi
	gone "$CG/$CG_TOP/$id" || fail "a failed restore left its cgroup"
	mkdir -p "$b/empty"
	echo '["pipe:[1]", "pipe:[2]", "pipe:[3]"]' >"$b/empty/descriptors.json"
	if out=$(rt restore -d --image-path "$b/empty" --bundle "$b" $id 2>&1 </dev/null); then fail "restore from an empty image passed"; fi
	[[ $(wc -l <<<"$out") == 1 && $out == *"criu restore"*"restore.log"* ]] || fail "unclear error: $out"
	if ctr_state $id >/dev/null; then fail "a failed restore left state behind"; fi
	gone "$CG/$CG_TOP/$id" || fail "a failed restore left its cgroup"
	if out=$(rt --criu /no/such/criu restore -d --image-path "$b/empty" --bundle "$b" $id 2>&1); then fail "a missing criu passed"; fi
	[[ $out == *"/no/such/criu not found"* ]] || fail "unclear error for a missing criu: $out"
	log "errors: ok"
}

# shellcheck source-path=SCRIPTDIR source=runner.sh
. "$(dirname "${BASH_SOURCE[0]}")/runner.sh"

main "$@"

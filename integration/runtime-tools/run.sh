#!/bin/bash
# shellcheck disable=SC2317 # functions are called indirectly
# The OCI runtime-tools validation suite against skiff and, as reference,
# Debian's runc (and crun if asked): one TAP log per test file and runtime, a
# table "file | runc | skiff", a TSV of the results, and a verdict per file.
# Run as root:
#
#   integration/runtime-tools/run.sh                 # host part (all but cgroup tests)
#   integration/runtime-tools/run.sh create hooks    # some files only
#   RT_RUNTIMES="runc crun skiff" integration/runtime-tools/run.sh
#   integration/runtime-tools/run.sh --stage-vm      # build + copy the suite into the checkout for the VM
#   RT_ENV=vm integration/runtime-tools/run.sh       # cgroup part, INSIDE the test VM (integration/vm/suite-runtime-tools.sh)
#
# See README.md beside this file for the whole story; in short:
# - The suite is built by hack/thirdparty/runtime-tools (Go module cache ->
#   /var/cache/skiff-thirdparty, never into this repo), patched at build time
#   by patches.sh beside this file (the suite's own bugs, each documented there).
# - Goal: skiff passes every file that runc passes. A file runc passes and
#   skiff does not is a FAIL unless it is listed in known-failures (XFAIL);
#   a listed file that passes is printed as XPASS (remove it from the list).
# - Exit status: 0 no FAIL, 1 some FAIL, 2 set-up failed. If no Go >= 1.21 can
#   be found to build the suite, prints `SKIP runtime-tools: ...` and exits 0.
#
# Safety (skiff is under test, bugs included):
# - The whole harness re-execs itself in a private mount (and UTS)
#   namespace, and every test file runs in a further private mount namespace
#   of its own (unshare --mount --propagation private), so a runtime that
#   pivot_roots or remounts the caller's mount namespace (configs without a
#   mount namespace: linux_ns_itype) damages only that throwaway namespace.
# - Each runtime gets its own --root (a wrapper script is the suite's
#   $RUNTIME); after each file every container left in it is force-deleted,
#   and the processes left in the file's session are SIGKILLed by pid.
# - Every file runs under `timeout` (RT_TIMEOUT seconds).
# - On the host (cgroup v1 controllers) the cgroup tests are not run (they
#   run in the VM), and the wrapper turns an absolute linux.cgroupsPath into a
#   relative one before `create`, so no container leaves the caller's memory
#   cgroup. No cgroup filesystem is ever mounted or unmounted here.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
self=$here/$(basename "${BASH_SOURCE[0]}")

RT_ENV=${RT_ENV:-host}                    # host | vm
RT_RUNTIMES=${RT_RUNTIMES:-runc skiff}    # names (runc, crun, skiff) or paths
RT_TIMEOUT=${RT_TIMEOUT:-90}              # seconds per test file and runtime
RT_WORK=${RT_WORK:-/var/tmp/skiff-rt-$RT_ENV}
RT_LOG_DIR=${RT_LOG_DIR:-$here/.logs/$RT_ENV}
RT_SUITE_DIR=${RT_SUITE_DIR:-}            # prebuilt suite (bin/*.t, bin/runtimetest); built if empty
RT_KNOWN=${RT_KNOWN:-$here/known-failures}
STAGE_DIR=$here/.suite                    # where --stage-vm puts the suite for the VM (git-ignored)

die() {
	echo "runtime-tools: $*" >&2
	exit 2
}

[[ $EUID -eq 0 ]] || die "must run as root"

# ---- the suite: build (or reuse) it; --stage-vm copies it into the checkout
# build_suite: sets $suite_dir, or prints SKIP and exits 0 when no Go >= 1.21
build_suite() {
	local rc=0
	suite_dir=$("$repo/hack/thirdparty/runtime-tools" --patches "$here/patches.sh") || rc=$?
	if ((rc == 3)); then
		echo "SKIP runtime-tools: no Go >= 1.21 to build the validation suite"
		exit 0
	fi
	((rc == 0)) || die "hack/thirdparty/runtime-tools failed (exit $rc)"
}

if [[ ${1:-} == --stage-vm ]]; then
	build_suite
	src=$suite_dir
	if cmp -s "$src/VERSION" "$STAGE_DIR/VERSION" 2>/dev/null; then
		echo "runtime-tools: $STAGE_DIR is current ($(cat "$STAGE_DIR/VERSION"))"
		exit 0
	fi
	rm -rf "$STAGE_DIR"
	mkdir -p "$STAGE_DIR"
	cp -r "$src/bin" "$src/VERSION" "$STAGE_DIR/"
	echo "runtime-tools: staged $(cat "$STAGE_DIR/VERSION") in $STAGE_DIR"
	exit 0
fi

# ---- re-exec in a private mount + UTS namespace (see Safety above)
if [[ -z ${RT_UNSHARED:-} ]]; then
	export RT_UNSHARED=1
	exec unshare --mount --uts --propagation private "$self" "$@"
fi

# ---- tools
need_pkgs=()
command -v busybox >/dev/null && busybox --list >/dev/null 2>&1 || need_pkgs+=(busybox-static)
command -v jq >/dev/null || need_pkgs+=(jq)
for rt in $RT_RUNTIMES; do
	case $rt in runc | crun) command -v "$rt" >/dev/null || need_pkgs+=("$rt") ;; esac
done
if ((${#need_pkgs[@]})); then
	[[ $RT_ENV == host ]] || die "missing in the VM: ${need_pkgs[*]}"
	echo "runtime-tools: installing ${need_pkgs[*]}"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null ||
		die "apt-get install ${need_pkgs[*]} failed"
fi
busybox=$(command -v busybox)
[[ $(LC_ALL=C ldd "$busybox" 2>&1 || true) == *"not a dynamic"* ]] || die "$busybox is not static (apt-get install busybox-static)"

if [[ -z $RT_SUITE_DIR ]]; then
	if [[ $RT_ENV == vm ]]; then
		RT_SUITE_DIR=$STAGE_DIR
	else
		build_suite
		RT_SUITE_DIR=$suite_dir
	fi
fi
[[ -x $RT_SUITE_DIR/bin/runtimetest ]] || die "no suite in $RT_SUITE_DIR (on the host: $0 --stage-vm)"

# ---- which files run where
# The cgroup files set resource limits, which skiff applies on cgroup v2 only
# (this host has v1 controllers and an empty cgroup2 at
# /sys/fs/cgroup/unified), and most set an ABSOLUTE cgroupsPath
# (/cgrouptest), which on the host would move the container out of our
# memory cgroup: they run in the test VM only, as does delete_resources
# (absolute cgroupsPath and a pids limit). The suite reads cgroup v1 back
# only, so there every runtime fails them; see README.md.
is_vm_file() { [[ $1 == linux_cgroups_* || $1 == delete_resources ]]; }

# Files the harness does not run, with the reason (never counted as a pass):
# on the host, the VM files if asked for by name. Nothing else is skipped.
declare -A SKIP_WHY=()
skip_file() { SKIP_WHY[$1]=$2; }

all_files=()
for f in "$RT_SUITE_DIR"/bin/*.t; do all_files+=("$(basename "$f" .t)"); done
files=()
if (($#)); then
	for a in "$@"; do
		[[ -x $RT_SUITE_DIR/bin/$a.t ]] || die "no test file '$a' (see $RT_SUITE_DIR/bin)"
		files+=("$a")
	done
else
	for f in "${all_files[@]}"; do
		if [[ $RT_ENV == vm ]]; then is_vm_file "$f" && files+=("$f"); else is_vm_file "$f" || files+=("$f"); fi
	done
fi
if [[ $RT_ENV == host ]]; then
	for f in "${files[@]}"; do
		is_vm_file "$f" && skip_file "$f" "cgroup file: runs in the test VM only (limits, absolute cgroupsPath)"
	done
fi

# ---- runtimes: wrappers that add --root and record every call
runtimes=()
declare -A REAL=()
for rt in $RT_RUNTIMES; do
	name=$(basename "$rt")
	case $rt in
	skiff) real=$repo/target/release/skiff ;;
	*/*) real=$(realpath "$rt") ;;
	*) real=$(command -v "$rt" || true) ;;
	esac
	[[ -x $real ]] || die "runtime $rt not found ($real)"
	runtimes+=("$name")
	REAL[$name]=$real
done

# One run at a time per machine (and env): the suite uses fixed paths
# (/sys/fs/cgroup/pids/cgrouptest, /cgrouptest) and $RT_WORK is fixed too.
mkdir -p /run/lock
exec 8>"/run/lock/skiff-runtime-tools-$RT_ENV.lock"
flock -w 1800 8 || die "another run holds /run/lock/skiff-runtime-tools-$RT_ENV.lock"

# A run that was interrupted may have left containers: end them first.
for st in "$RT_WORK"/state/*/*/; do
	[[ -d $st ]] || continue
	rt=$(basename "$(dirname "$st")")
	[[ -n ${REAL[$rt]:-} ]] && timeout 30 "${REAL[$rt]}" --root "$(dirname "$st")" delete -f "$(basename "$st")" >/dev/null 2>&1 || true
done
rm -rf "$RT_WORK" "$RT_LOG_DIR"
mkdir -p "$RT_WORK"/{bin,cwd,tmp,state} "$RT_LOG_DIR"
for rt in "${runtimes[@]}"; do
	mkdir -p "$RT_WORK/state/$rt" "$RT_LOG_DIR/$rt"
	# The suite runs `$RUNTIME create|start|state|kill|delete ...` by path.
	cat >"$RT_WORK/bin/$rt" <<-EOF
		#!/bin/bash
		# \$RUNTIME for the runtime-tools suite: $rt with its own --root; every
		# call (and the stderr of a failed one) goes to $RT_LOG_DIR/$rt/calls.log.
		real=${REAL[$rt]} root=$RT_WORK/state/$rt log=$RT_LOG_DIR/$rt/calls.log rel=$([[ $RT_ENV == host ]] && echo 1 || echo 0)
		t0=\$(date +%s.%N)
		if [[ \$1 == create && \$rel == 1 ]]; then
			# Host only: an absolute cgroupsPath would leave our memory cgroup.
			b=.; a=("\$@"); for ((i = 1; i < \${#a[@]}; i++)); do
				case \${a[i]} in --bundle | -b) b=\${a[i + 1]} ;; --bundle=*) b=\${a[i]#--bundle=} ;; esac
			done
			if jq -e '(.linux.cgroupsPath // "") | startswith("/")' "\$b/config.json" >/dev/null 2>&1; then
				jq '.linux.cgroupsPath |= ltrimstr("/")' "\$b/config.json" >"\$b/config.json.rel" && mv "\$b/config.json.rel" "\$b/config.json"
				echo "[\${RT_FILE:-?}] NOTE: absolute cgroupsPath made relative" >>"\$log"
			fi
		fi
		if [[ \$1 == create ]]; then
			# create's stdio is the container's: leave it alone.
			rc=0; "\$real" --root "\$root" "\$@" || rc=\$?
			err=\$(readlink /proc/\$\$/fd/2 || true)
			[[ \$rc == 0 || ! -f \$err ]] || msg=\$(tail -c 2000 "\$err")
		else
			tmp=\$(mktemp); rc=0; "\$real" --root "\$root" "\$@" 2>"\$tmp" || rc=\$?
			msg=\$(cat "\$tmp"); rm -f "\$tmp"; [[ -z \$msg ]] || printf '%s\n' "\$msg" >&2
			[[ \$rc != 0 ]] || msg=
		fi
		printf '[%s] %s %s -> %s (%ss)\n' "\${RT_FILE:-?}" "$rt" "\$*" "\$rc" "\$(awk -v a="\$t0" -v b="\$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')" >>"\$log"
		[[ -z \${msg:-} ]] || printf '%s\n' "\$msg" | sed 's/^/    | /' >>"\$log"
		exit "\$rc"
	EOF
	chmod +x "$RT_WORK/bin/$rt"
done

# ---- cwd of the tests: runtimetest and rootfs-<GOARCH>.tar.gz (busybox-static)
case $(uname -m) in x86_64) goarch=amd64 ;; aarch64) goarch=arm64 ;; i?86) goarch=386 ;; *) goarch=$(uname -m) ;; esac
make_rootfs() {
	local r=$RT_WORK/rootfs
	rm -rf "$r"
	mkdir -p "$r"/{bin,sbin,etc,dev,proc,sys,tmp,root}
	cp "$busybox" "$r/bin/busybox"
	local app
	for app in $("$busybox" --list); do
		[[ -e $r/bin/$app ]] || ln -s busybox "$r/bin/$app"
	done
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'daemon:x:1:1:daemon:/:/bin/false' \
		'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$r/etc/passwd"
	printf '%s\n' 'root:x:0:' 'daemon:x:1:' 'tty:x:5:' 'wheel:x:10:' 'nogroup:x:65534:' >"$r/etc/group"
	tar -C "$r" --owner=0 --group=0 --numeric-owner -czf "$RT_WORK/cwd/rootfs-$goarch.tar.gz" .
	rm -rf "$r"
}
make_rootfs
cp "$RT_SUITE_DIR/bin/runtimetest" "$RT_WORK/cwd/runtimetest"

# ---- running one file with one runtime
# Result line (TSV): file runtime result failed points exit seconds detail
#   result: pass | fail | skip | timeout
TSV=$RT_LOG_DIR/results.tsv
# refused: "yes" if the suite reported that `create` or `start` of one of
# its containers failed (its util prints that on stderr), else "no".
printf 'env\tfile\truntime\tresult\tfailed\tpoints\texit\tseconds\trefused\tdetail\n' >"$TSV"

cleanup_runtime() { # rt: force-delete every container left in its --root
	local rt=$1 d id
	for d in "$RT_WORK/state/$rt"/*/; do
		[[ -d $d ]] || continue
		id=$(basename "$d")
		echo "[cleanup] $rt delete -f $id" >>"$RT_LOG_DIR/$rt/calls.log"
		timeout 30 "${REAL[$rt]}" --root "$RT_WORK/state/$rt" delete -f "$id" >/dev/null 2>&1 || true
		[[ ! -d $d ]] || { echo "[cleanup] $rt: $id still in --root after delete -f" >>"$RT_LOG_DIR/$rt/calls.log"; }
	done
}

# On any exit (an interrupt included): end what is left, remove the work dir.
on_exit() {
	local rt
	[[ -z ${cur_sid:-} ]] || kill_session "$cur_sid"
	for rt in "${runtimes[@]}"; do cleanup_runtime "$rt"; done
	# In the VM only: the cgroup files' cgroupsPaths (/cgrouptest,
	# testdir/cgrouptest/container under the runtime's cgroup or its
	# parent) leave empty parent cgroups behind; remove them (rmdir only
	# removes empty cgroups). Nothing is ever done to the host's cgroups.
	if [[ $RT_ENV == vm ]]; then
		find /sys/fs/cgroup -depth -type d \( -name cgrouptest -o -name testdir -o -path '*/testdir/*' \) \
			-exec rmdir {} \; 2>/dev/null || true
	fi
	rm -rf "$RT_WORK"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

kill_session() { # sid: SIGKILL the processes the file left in its session, by pid
	local sid=$1 pid s
	while read -r pid s; do
		[[ $s == "$sid" && $pid != "$$" ]] || continue
		kill -KILL "$pid" 2>/dev/null || true
	done < <(ps -e -o pid=,sid=)
}

# parse_tap FILE -> "points failed skipped todo plan" (plan -1: none; 1..0 -> 0)
parse_tap() {
	awk '
		/^(not )?ok( |$)/ {
			n++; d = tolower($0)
			if ($1 == "not") { if (d ~ /# *todo/) t++; else f++ }
			if (d ~ /# *skip/) s++
			next
		}
		/^1\.\.[0-9]+/ { split($1, a, "\\.\\."); plan = a[2] + 0; havep = 1 }
		END { printf "%d %d %d %d %d\n", n, f, s, t, havep ? plan : -1 }
	' "$1"
}

# worse_points FILE: the TAP points (by description, counted, in any order)
# that the reference passes more often than skiff does, as "N points:
# desc; desc; ..."; nothing if there are none or either file has no point.
# A `# TODO` or `# SKIP` point counts as passed.
worse_points() {
	local a=$RT_LOG_DIR/$ref/$1.tap b=$RT_LOG_DIR/skiff/$1.tap
	awk '
		function point(line, _d) { _d = line; sub(/^(not )?ok [0-9]*[ ]*-?[ ]*/, "", _d); sub(/ *#.*$/, "", _d); return _d }
		/^(not )?ok( |$)/ {
			ok = ($1 == "ok" || tolower($0) ~ /# *(todo|skip)/)
			if (FILENAME == A) { na++; if (ok) oka[point($0)]++ }
			else { nb++; if (ok) okb[point($0)]++ }
		}
		END {
			if (na == 0 || nb == 0) exit
			for (d in oka) if (okb[d] + 0 < oka[d]) { n += oka[d] - okb[d]; if (k++ < 3) out = out (out == "" ? "" : "; ") d }
			if (n) print n " point" (n > 1 ? "s" : "") ": " out (k > 3 ? "; ..." : "")
		}' A="$a" "$a" "$b"
}

run_one() { # file rt
	local f=$1 rt=$2 tap=$RT_LOG_DIR/$2/$1.tap err=$RT_LOG_DIR/$2/$1.stderr
	local rc=0 t0=$SECONDS result detail=
	if [[ -n ${SKIP_WHY[$f]:-} ]]; then
		: >"$tap"
		printf '%s\t%s\t%s\tskip\t0\t0\t0\t0\tno\t%s\n' "$RT_ENV" "$f" "$rt" "${SKIP_WHY[$f]}" >>"$TSV"
		return
	fi
	rm -rf "${RT_WORK:?}/tmp/"*
	echo "[$f] ---- start" >>"$RT_LOG_DIR/$rt/calls.log"
	# setsid: own session, so what the file leaves behind can be found by
	# sid; timeout: some files hang; unshare: private mount namespace.
	(
		cd "$RT_WORK/cwd"
		exec setsid --wait env RUNTIME="$RT_WORK/bin/$rt" RT_FILE="$f" TMPDIR="$RT_WORK/tmp" \
			timeout -k 5 "$RT_TIMEOUT" unshare --mount --propagation private "$RT_SUITE_DIR/bin/$f.t"
	) >"$tap" 2>"$err" </dev/null &
	local pid=$!
	cur_sid=$pid
	wait "$pid" || rc=$?
	kill_session "$pid"
	cur_sid=
	cleanup_runtime "$rt"
	local secs=$((SECONDS - t0)) points failed skipped todo plan
	read -r points failed skipped todo plan < <(parse_tap "$tap")
	if ((rc == 124 || rc == 137)); then
		result=timeout
		detail="no result after ${RT_TIMEOUT}s ($points points so far)"
	elif ((points == 0 && plan == 0 && rc == 0)); then
		result=skip
		detail=$(sed -n 's/^1\.\.0 *# *[Ss][Kk][Ii][Pp] *//p' "$tap" | head -n1)
		detail="suite: ${detail:-no test points (1..0)}"
	elif ((failed == 0 && rc == 0 && plan == points && points > skipped)); then
		result=pass
		((skipped == 0)) || detail="$skipped of $points points skipped by the suite"
		((todo == 0)) || detail="${detail:+$detail; }$todo TODO"
	elif ((failed == 0 && rc == 0 && plan == points)); then
		result=skip
		detail="suite: all $points points skipped"
	else
		result=fail
		detail=$(grep -m1 '^not ok' "$tap" | grep -iv '# *todo' || true)
		((rc == 0)) || detail="exit $rc${detail:+; $detail}"
		((plan == points)) || detail="plan $plan, ran $points${detail:+; $detail}"
		# the suite's util.Fatal / panics end up on stderr
		if [[ -s $err ]]; then detail="${detail:+$detail; }stderr: $(grep -v '^\s*$' "$err" | head -n 3 | tr '\n\t' '  ' | cut -c1-300)"; fi
	fi
	local refused=no
	! grep -q '^failed to \(create\|start\) the container' "$err" || refused=yes
	printf '%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n' "$RT_ENV" "$f" "$rt" "$result" "$failed" "$points" "$rc" "$secs" "$refused" "$detail" >>"$TSV"
}

# short form of a result for the table
cell() { # file rt
	awk -F'\t' -v f="$1" -v r="$2" '$2 == f && $3 == r {
		if ($4 == "fail") printf "fail %d of %d%s", $5, $6, ($7 != 0 ? " (exit " $7 ")" : "")
		else if ($4 == "skip") printf "skip"
		else printf "%s", $4
	}' "$TSV"
}
result_of() { awk -F'\t' -v f="$1" -v r="$2" '$2 == f && $3 == r { print $4 }' "$TSV"; }
refused() { awk -F'\t' -v f="$1" -v r="$2" '$2 == f && $3 == r { print $9 }' "$TSV"; }

# ---- known failures: "<file> <reason>" lines, # comments
declare -A KNOWN=()
if [[ -f $RT_KNOWN ]]; then
	while read -r kf kwhy; do
		[[ -z $kf || $kf == \#* ]] && continue
		KNOWN[$kf]=${kwhy:-?}
	done <"$RT_KNOWN"
fi

# ---- run
t_start=$SECONDS
suite_version=$(cat "$RT_SUITE_DIR/VERSION" 2>/dev/null || echo "?")
echo "# runtime-tools ($RT_ENV): ${#files[@]} files x ${#runtimes[@]} runtimes ($(for rt in "${runtimes[@]}"; do printf '%s ' "$rt=${REAL[$rt]}"; done)); suite $suite_version; logs in $RT_LOG_DIR"
for f in "${files[@]}"; do
	line="$f:"
	for rt in "${runtimes[@]}"; do
		run_one "$f" "$rt"
		line+=" $rt=$(cell "$f" "$rt")"
	done
	echo "#   $line"
done

# ---- verdicts and the table
ref=runc
[[ -n ${REAL[runc]:-} ]] || ref=${runtimes[0]}
have_skiff=0
[[ -n ${REAL[skiff]:-} ]] && have_skiff=1
declare -A VERDICT=()
n_ok=0 n_fail=0 n_xfail=0 n_xpass=0 n_na=0 n_skip=0
regressions=()
for f in "${files[@]}"; do
	v=
	if ((have_skiff)); then
		r=$(result_of "$f" "$ref") s=$(result_of "$f" skiff)
		if [[ $r == skip || $s == skip ]]; then
			v=skip n_skip=$((n_skip + 1))
		elif [[ $r != pass && $s != pass && $(refused "$f" "$ref") == no && $(refused "$f" skiff) == yes ]]; then
			# Both fail the file, but skiff refuses a container that the
			# reference creates and starts (the cgroup files in the VM: the
			# suite cannot read cgroup v2 back, so every runtime fails them).
			if [[ -n ${KNOWN[$f]:-} ]]; then
				v=XFAIL n_xfail=$((n_xfail + 1))
			else
				v="FAIL (create/start)" n_fail=$((n_fail + 1))
				regressions+=("$f")
			fi
		elif [[ $r != pass && $s != pass && -n $(worse_points "$f") ]]; then
			# Both fail the file, but skiff fails TAP points (by
			# description) that the reference passes.
			if [[ -n ${KNOWN[$f]:-} ]]; then
				v=XFAIL n_xfail=$((n_xfail + 1))
			else
				v="FAIL (points)" n_fail=$((n_fail + 1))
			fi
		elif [[ $r != pass ]]; then
			v="n/a ($ref fails)" n_na=$((n_na + 1))
			[[ -z ${KNOWN[$f]:-} ]] || v+=", listed in known-failures"
		elif [[ $s == pass ]]; then
			if [[ -n ${KNOWN[$f]:-} ]]; then
				v="XPASS (remove from known-failures)" n_xpass=$((n_xpass + 1))
			else
				v=ok n_ok=$((n_ok + 1))
			fi
		elif [[ -n ${KNOWN[$f]:-} ]]; then
			v=XFAIL n_xfail=$((n_xfail + 1))
		else
			v=FAIL n_fail=$((n_fail + 1))
			regressions+=("$f")
		fi
	fi
	VERDICT[$f]=$v
done

{
	header="file"
	for rt in "${runtimes[@]}"; do header+="|$rt"; done
	((have_skiff)) && header+="|verdict"
	echo "$header"
	for f in "${files[@]}"; do
		row=$f
		for rt in "${runtimes[@]}"; do row+="|$(cell "$f" "$rt")"; done
		((have_skiff)) && row+="|${VERDICT[$f]}"
		echo "$row"
	done
} >"$RT_LOG_DIR/table.txt"
echo
# aligned columns (awk: `column` is not in the VM's minimal Debian)
awk -F'|' '{ for (i = 1; i <= NF; i++) { c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } n[NR] = NF }
	END { for (r = 1; r <= NR; r++) { line = ""
		for (i = 1; i <= n[r]; i++) line = line (i > 1 ? " | " : "") sprintf(i < n[r] ? "%-" w[i] "s" : "%s", c[r, i])
		print line } }' "$RT_LOG_DIR/table.txt"
echo
for rt in "${runtimes[@]}"; do
	awk -F'\t' -v r="$rt" 'NR > 1 && $3 == r { c[$4]++ } END {
		printf "# %s: %d pass, %d fail, %d timeout, %d skip\n", r, c["pass"], c["fail"], c["timeout"], c["skip"] }' "$TSV"
done
# the reasons behind every skip and failure
awk -F'\t' 'NR > 1 && ($4 == "skip" || $4 == "fail" || $4 == "timeout") { printf "#   %s %s: %s: %s\n", $3, $2, $4, $10 }' "$TSV"
if ((have_skiff)); then
	# One line per file in the form hack/test-report counts: PASS = skiff
	# passes a file the reference passes; FAIL = it does not (and the file is
	# not a known failure); SKIP = not judged, with the reason (known failure,
	# reference fails too, not run here). A skip is never a pass.
	echo
	for f in "${files[@]}"; do
		sk=$(cell "$f" skiff) rr=$(cell "$f" "$ref")
		case ${VERDICT[$f]} in
		ok) echo "PASS runtime-tools/$f" ;;
		XPASS*) echo "PASS runtime-tools/$f (XPASS: listed in known-failures but passes now: remove it from there)" ;;
		XFAIL) echo "SKIP runtime-tools/$f: XFAIL, known failure (skiff: $sk): ${KNOWN[$f]}" ;;
		FAIL) echo "FAIL runtime-tools/$f: $ref passes, skiff: $sk; see $RT_LOG_DIR/skiff/$f.tap" ;;
		"FAIL (points)") echo "FAIL runtime-tools/$f: both fail it, but skiff fails $(worse_points "$f") that $ref passes ($ref: $rr; skiff: $sk); see $RT_LOG_DIR/skiff/$f.tap" ;;
		"FAIL (create/start)") echo "FAIL runtime-tools/$f: both fail it, but skiff refuses a container $ref runs ($ref: $rr; skiff: $sk); see $RT_LOG_DIR/skiff/$f.stderr" ;;
		skip) echo "SKIP runtime-tools/$f: $(awk -F'\t' -v f="$f" '$2 == f && $4 == "skip" { print $10; exit }' "$TSV")" ;;
		*) echo "SKIP runtime-tools/$f: $ref fails it too ($ref: $rr; skiff: $sk)" ;;
		esac
	done
	# verdicts as a TSV too, for a regression check
	{
		printf 'env\tfile\tverdict\n'
		for f in "${files[@]}"; do printf '%s\t%s\t%s\n' "$RT_ENV" "$f" "${VERDICT[$f]}"; done
	} >"$RT_LOG_DIR/verdicts.tsv"
	echo "# runtime-tools ($RT_ENV): $n_ok ok, $n_xfail xfail, $n_xpass xpass, $n_fail FAIL, $n_na n/a ($ref fails too), $n_skip skipped in $((SECONDS - t_start))s; results in $TSV"
fi
((n_fail == 0)) || exit 1
exit 0

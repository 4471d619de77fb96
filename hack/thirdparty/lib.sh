# shellcheck shell=bash
# Shared by the hack/thirdparty build scripts: find a Go toolchain, fetch a
# module from the Go module proxy, and keep one finished build per key in
# the cache ($SKIFF_THIRDPARTY_CACHE, default /var/cache/skiff-thirdparty).

CACHE=${SKIFF_THIRDPARTY_CACHE:-/var/cache/skiff-thirdparty}

# tp_find_go MINOR: print a Go toolchain of at least 1.MINOR ($GO, else
# /usr/local/go/bin/go, else `go` in PATH); fail if there is none.
tp_find_go() {
	local want=$1 g v
	for g in ${GO:-} /usr/local/go/bin/go "$(command -v go 2>/dev/null || true)"; do
		[[ -n $g && -x $g ]] || continue
		v=$("$g" env GOVERSION 2>/dev/null) || continue # go1.26.8
		v=${v#go}
		local major=${v%%.*} rest=${v#*.}
		local minor=${rest%%[!0-9]*}
		if ((major > 1 || (major == 1 && minor >= want))); then
			echo "$g"
			return 0
		fi
	done
	return 1
}

# tp_fetch GO MODULE VERSION: download the module, print its directory in
# the module cache (read-only).
tp_fetch() {
	local go=$1 module=$2 version=$3 modjson moddir
	modjson=$(cd / && "$go" mod download -json "$module@$version")
	moddir=$(sed -n 's/^\t"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$modjson")
	[[ -d $moddir ]] || {
		echo "go mod download gave no directory: $modjson" >&2
		return 1
	}
	echo "$moddir"
}

# tp_src GO MODULE VERSION: download the module and copy it into $TMP/src,
# writable and without vendor/ (a module zip's vendor/ holds only
# modules.txt: the build runs in module mode).
tp_src() {
	local moddir
	moddir=$(tp_fetch "$@")
	cp -r "$moddir" "$TMP/src"
	chmod -R u+w "$TMP/src"
	rm -rf "$TMP/src/vendor"
}

# tp_begin NAME VERSION KEYFILE...: set DIR to this build's cache directory,
# NAME-VERSION-<key> (<key> hashes the KEYFILEs, so changing the build script
# or its inputs rebuilds). A complete build there is printed and the script
# exits 0. Else the cache lock for NAME is taken (held until the script
# exits; a concurrent caller's finished build is reused too), and TMP is set
# to an empty work directory, removed on exit unless tp_publish moves it.
tp_begin() {
	local name=$1 version=$2
	shift 2
	KEY=$(cat "$@" | sha256sum | cut -c1-12)
	DIR=$CACHE/$name-$version-$KEY
	if [[ -e $DIR/.complete ]]; then
		echo "$DIR"
		exit 0
	fi
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.$name.lock"
	flock 9
	if [[ -e $DIR/.complete ]]; then
		echo "$DIR"
		exit 0
	fi
	TMP=$DIR.tmp.$$
	rm -rf "$TMP"
	mkdir -p "$TMP"
	trap 'rm -rf "$TMP"' EXIT
}

# tp_publish NAME: mark the build in TMP complete, move it to DIR, delete
# the other NAME-* builds in the cache, and print DIR.
tp_publish() {
	local name=$1 old
	touch "$TMP/.complete"
	rm -rf "$DIR"
	mv "$TMP" "$DIR"
	trap - EXIT
	for old in "$CACHE/$name"-*; do
		[[ $old == "$DIR" || ! -d $old ]] || rm -rf "$old"
	done
	echo "$DIR"
}

# tp_stage NAME BUILD DEST FILE...: run the build script BUILD and install
# the FILEs (paths in the directory it prints) into DEST; print
# `SKIP NAME: ...` and return 0 without staging when BUILD finds no Go
# (exit 3); fail when the build fails.
tp_stage() {
	local name=$1 build=$2 dest=$3 dir rc=0 f
	shift 3
	dir=$("$build") || rc=$?
	if ((rc == 3)); then
		echo "SKIP $name: no Go that can build it"
		return 0
	fi
	((rc == 0)) || { echo "$name: the build failed (exit $rc)" >&2; return 1; }
	mkdir -p "$dest"
	for f in "$@"; do
		install -m 755 "$dir/$f" "$dest/"
	done
}

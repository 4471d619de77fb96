# shellcheck shell=bash
# Shared helpers for hack/vm/build and hack/vm/run. Sourced, not executed.

SKIFF_VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
SKIFF_VM_CACHE=${SKIFF_VM_CACHE:-/var/cache/skiff-vm}
# The guest's Debian architecture (--arch of build and run): amd64 or arm64.
SKIFF_VM_ARCH=${SKIFF_VM_ARCH:-amd64}

vm_log() { printf '[skiff-vm] %s\n' "$*" >&2; }
vm_die() { printf '[skiff-vm] error: %s\n' "$1" >&2; exit "${2:-1}"; }

# The files that define the image. Any change to one of them changes the key,
# so the next build/run makes a fresh image. This file is deliberately not
# one of them (so that run-side helpers can change without a rebuild): keep
# everything that shapes the image in build or guest/.
vm_recipe_files() {
	printf '%s\n' "$SKIFF_VM_DIR/build"
	find "$SKIFF_VM_DIR/guest" -type f | LC_ALL=C sort
}

vm_key() {
	local f
	{
		printf 'arch=%s\n' "$SKIFF_VM_ARCH"
		while IFS= read -r f; do
			printf '%s\n' "${f#"$SKIFF_VM_DIR"/}"
			cat "$f"
		done < <(vm_recipe_files)
	} | sha256sum | cut -c1-16
}

# vm_check_arch: die unless SKIFF_VM_ARCH is one the VM knows.
vm_check_arch() {
	case $SKIFF_VM_ARCH in
	amd64 | arm64) ;;
	*) vm_die "the VM's arch (--arch, SKIFF_VM_ARCH) must be amd64 or arm64, not '$SKIFF_VM_ARCH'" 2 ;;
	esac
}

# vm_image_arch DIR: the arch an image was built for (manifest's arch=;
# images from before the arch line are amd64).
vm_image_arch() {
	local a
	a=$(sed -n 's/^arch=//p' "$1/manifest" 2>/dev/null)
	printf '%s\n' "${a:-amd64}"
}

vm_image_dir() { printf '%s/%s\n' "$SKIFF_VM_CACHE" "$(vm_key)"; }

vm_image_ready() {
	local d=$1
	[[ -f $d/ready && -f $d/kernel && -f $d/initrd.img && -f $d/rootfs.img ]]
}

# vm_need CMD:PACKAGE ... installs the packages whose command is missing.
vm_need() {
	local spec cmd pkg missing=()
	for spec in "$@"; do
		cmd=${spec%%:*} pkg=${spec#*:}
		if [[ $cmd == /* ]]; then
			[[ -e $cmd ]] || missing+=("$pkg")
		else
			command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
		fi
	done
	((${#missing[@]})) || return 0
	vm_log "installing host packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
		apt-get update -q >&2
		apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
	fi
}

# vm_ready_or_skip STAGE [BUILD-ARG...]: for the host side of a test stage:
# returns 0 when the image is built (or cached); else prints `SKIP STAGE:
# <why>` (not root, or hack/vm/build failed, with its last lines) and
# returns 1, and the stage exits 0 with its tests skipped.
vm_ready_or_skip() {
	local stage=$1 log
	shift
	if [[ $EUID -ne 0 ]]; then
		echo "SKIP $stage: must run as root (hack/vm needs root)"
		return 1
	fi
	log=$(mktemp "${TMPDIR:-/tmp}/skiff-vm-build.XXXXXX")
	if ! "$SKIFF_VM_DIR/build" "$@" >"$log" 2>&1; then
		echo "SKIP $stage: hack/vm/build failed: $(grep -v '^\s*$' "$log" | tail -n 3 | tr '\n' ' ')(full log: $log; build log: $SKIFF_VM_CACHE/last-build.log)"
		return 1
	fi
	rm -f "$log"
}

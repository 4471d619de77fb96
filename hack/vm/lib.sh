# shellcheck shell=bash
# Shared helpers for hack/vm/build and hack/vm/run. Sourced, not executed.

SKIFF_VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
SKIFF_VM_CACHE=${SKIFF_VM_CACHE:-/var/cache/skiff-vm}

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
	while IFS= read -r f; do
		printf '%s\n' "${f#"$SKIFF_VM_DIR"/}"
		cat "$f"
	done < <(vm_recipe_files) | sha256sum | cut -c1-16
}

vm_image_dir() { printf '%s/%s\n' "$SKIFF_VM_CACHE" "$(vm_key)"; }

vm_image_ready() {
	local d=$1
	[[ -f $d/ready && -f $d/vmlinux && -f $d/initrd.img && -f $d/rootfs.img ]]
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

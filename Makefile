# skiff: build, demo and tests. Both set-up targets install what they need
# on a fresh Debian 12 machine (run as root).

CARGO ?= cargo
SKIFF := target/release/skiff
DEMO_BUNDLE ?= /tmp/skiff-demo
# Link libseccomp statically too (libseccomp-dev ships the archive), so the
# static skiff binary needs no shared library at all.
export LIBSECCOMP_LINK_TYPE := static
export LIBSECCOMP_LIB_PATH := /usr/lib/$(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
APT_PACKAGES := build-essential pkg-config libseccomp-dev busybox-static jq procps \
	util-linux iproute2 runc crun uidmap curl ca-certificates git protobuf-compiler criu \
	musl-tools

.PHONY: all deps rust build demo test test-stages lint unit conformance stress fuzz vm-test vm-test-v1 vm-test-arm64 k8s-test runtime-tools bench bench-smoke build-arm64 clean

all: build

# Debian packages and a Rust toolchain (rustup, only if cargo is missing).
# A package installed for two architectures (libseccomp-dev, once
# build-arm64 added its arm64 copy) is found by its native name.
deps:
	@arch=$$(dpkg --print-architecture); \
	missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || dpkg -s $$p:$$arch >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@$(MAKE) --no-print-directory rust

rust:
	@command -v $(CARGO) >/dev/null 2>&1 || [ -x $$HOME/.cargo/bin/cargo ] || \
		(curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy -c rustfmt)
	@PATH=$$HOME/.cargo/bin:$$PATH; rustup target list --installed | grep -qx $(SKIFF_TRIPLE) || \
		rustup target add $(SKIFF_TRIPLE)

# The skiff binary is linked statically: it starts up to twice per
# container (see exeseal), and skipping ld.so and the shared libraries
# measured 0.5-1 ms per `skiff run` (hack/bench). Its C library is musl, not
# glibc: a static glibc program's start-up detects the CPU's caches with
# dozens of `cpuid` instructions, each a trap to the hypervisor on a virtual
# machine (0.6 ms per start on this host, measured with an empty C program;
# musl runs none). It is built for $(SKIFF_TRIPLE) and copied to $(SKIFF);
# rust-lld links it, as it links the glibc targets. Debian's libseccomp.a,
# built for glibc, links into it with one glibc function added
# (hack/musl/fortify.c), in a copy under $(SECCOMP_MUSL).
# It is not a PIE either (relocation-model=static): the static-pie startup
# relocated its pointer tables into ~300 KiB of private dirty pages on every
# start. lld lays its text out in the order of hack/order/skiff.order: the
# functions a container's life runs, made by hack/order/gen from a traced run
# of this build and named through the link map written beside the binary. A
# `skiff run` then faults in ~1 MiB of text instead of 2.5 (the kernel maps
# 64 KiB around each fault): peak RSS 2.2 MiB instead of 4.3.
SKIFF_TRIPLE := $(shell uname -m)-unknown-linux-musl
SECCOMP_MUSL := target/seccomp-musl
GCC_LD = $(shell PATH=$$HOME/.cargo/bin:$$PATH rustc --print sysroot)/lib/rustlib/$(shell PATH=$$HOME/.cargo/bin:$$PATH rustc -vV | sed -n 's/^host: //p')/bin/gcc-ld
SKIFF_LINK = -C target-feature=+crt-static -C relocation-model=static \
	-C link-arg=-B$(GCC_LD) -C link-arg=-fuse-ld=lld \
	-C link-arg=-Wl,--symbol-ordering-file=$(CURDIR)/hack/order/skiff.order \
	-C link-arg=-Wl,-T,$(CURDIR)/hack/order/skiff.rodata.ld \
	-C link-arg=-Wl,--no-warn-symbol-ordering -C link-arg=-Wl,-Map=$(CURDIR)/$(SKIFF).map
# The shim, one per pod, is linked the same way (hack/order/shim.order, a
# pod's life through containerd in the VM). Static, it maps no libc.so and
# ld.so (1.6 MiB of RSS in every shim); non-PIE, as Go links
# containerd-shim-runc-v2, it has no relocated tables (244 KiB of private
# dirty memory per shim). Its read-only data is laid out the same way: what
# the ordered functions read comes first (hack/order/shim.rodata.ld, made by
# hack/order/rodata.py with the order).
SHIM := containerd-shim-skiff-v2
SHIM_LINK := -C target-feature=+crt-static -C relocation-model=static \
	-C link-arg=-Wl,--symbol-ordering-file=$(CURDIR)/hack/order/shim.order \
	-C link-arg=-Wl,-T,$(CURDIR)/hack/order/shim.rodata.ld \
	-C link-arg=-Wl,--no-warn-symbol-ordering -C link-arg=-Wl,-Map=$(CURDIR)/target/release/$(SHIM).map
# The CRI test client is its own workspace (tonic/tokio only for the VM's
# CRI test; needs protoc).
CRI_MANIFEST := integration/cri/Cargo.toml

build: deps
	@$(MAKE) --no-print-directory $(SECCOMP_MUSL)/libseccomp.a
	PATH=$$HOME/.cargo/bin:$$PATH LIBSECCOMP_LIB_PATH=$(CURDIR)/$(SECCOMP_MUSL) \
		$(CARGO) rustc --release --target $(SKIFF_TRIPLE) -p skiff --bin skiff -- $(SKIFF_LINK)
	install -m 0755 target/$(SKIFF_TRIPLE)/release/skiff $(SKIFF)
	PATH=$$HOME/.cargo/bin:$$PATH $(CARGO) rustc --release -p $(SHIM) --bin $(SHIM) -- $(SHIM_LINK)
	@python3 hack/order/map.py matched hack/order/skiff.order $(SKIFF).map
	@python3 hack/order/rodata.py matched hack/order/skiff.rodata.ld $(SKIFF).map
	@python3 hack/order/map.py matched hack/order/shim.order target/release/$(SHIM).map
	@python3 hack/order/rodata.py matched hack/order/shim.rodata.ld target/release/$(SHIM).map
	PATH=$$HOME/.cargo/bin:$$PATH $(CARGO) build --release --manifest-path $(CRI_MANIFEST)

# Debian's libseccomp.a with __fprintf_chk, for the musl build of skiff.
$(SECCOMP_MUSL)/libseccomp.a: hack/musl/fortify.c
	mkdir -p $(SECCOMP_MUSL)
	musl-gcc -O2 -c hack/musl/fortify.c -o $(SECCOMP_MUSL)/fortify.o
	cp $(LIBSECCOMP_LIB_PATH)/libseccomp.a $@.tmp
	ar rs $@.tmp $(SECCOMP_MUSL)/fortify.o
	mv $@.tmp $@

# Run a real container: prints its hostname, uid and capabilities.
demo: build
	rm -rf $(DEMO_BUNDLE)
	hack/mkbundle $(DEMO_BUNDLE) sh -c 'echo "hostname: $$(hostname)"; echo "uid: $$(id -u)"; grep Cap /proc/self/status'
	cd $(DEMO_BUNDLE) && $(CURDIR)/$(SKIFF) run skiff-demo-$$$$

lint: deps
	PATH=$$HOME/.cargo/bin:$$PATH $(CARGO) fmt --all -- --check
	PATH=$$HOME/.cargo/bin:$$PATH $(CARGO) clippy --workspace --all-targets -- -D warnings
	PATH=$$HOME/.cargo/bin:$$PATH $(CARGO) fmt --manifest-path $(CRI_MANIFEST) -- --check
	PATH=$$HOME/.cargo/bin:$$PATH $(CARGO) clippy --release --manifest-path $(CRI_MANIFEST) -- -D warnings

# The test stages run under hack/test-report: a test that cannot run here
# records why (skip!/skip() in tests/src/skip.rs, SKIP lines in the VM
# suites); after the stage come the skipped tests with their reasons and
# the line `N passed, N failed, N skipped` (skipped tests are not passed).
# --no-fail-fast: every test binary runs, so that the counts and the skips
# are complete even when one fails (the stage still fails).
REPORT := hack/test-report

unit: build
	PATH=$$HOME/.cargo/bin:$$PATH $(REPORT) cargo unit $(CARGO) test --profile qa --no-fail-fast --workspace --lib --bins

# The conformance suite: real containers through the built binary, as root.
# The integration tests (only tests/tests has any) are picked from the whole
# workspace, as `unit` picks: with `-p skiff-conformance` cargo resolved
# the dependencies' features for that package alone and rebuilt a dozen
# crates (~15 s of make test). skiff-conformance's own unit tests run in
# `unit`.
conformance: build
	PATH=$$HOME/.cargo/bin:$$PATH SKIFF_BIN=$(CURDIR)/$(SKIFF) $(REPORT) cargo conformance $(CARGO) test --profile qa --no-fail-fast --workspace --test '*' -- --test-threads=2

# Heavy robustness runs (tests/tests/stress.rs, #[ignore]d in conformance):
# 1,000 create/start/kill/delete cycles without leaks, 100 in parallel.
stress: build
	PATH=$$HOME/.cargo/bin:$$PATH SKIFF_BIN=$(CURDIR)/$(SKIFF) $(REPORT) cargo stress $(CARGO) test --profile qa --workspace --test stress -- --ignored --test-threads=1

# Real fuzzing (nightly + cargo-fuzz, installed if missing): every target
# for FUZZ_SECONDS, new inputs land in fuzz/corpus/<target>. CI only
# replays the stored corpus (tests/tests/robust_fuzz_corpus.rs).
FUZZ_SECONDS ?= 120
fuzz: deps
	PATH=$$HOME/.cargo/bin:$$PATH; rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal; \
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked; \
	cd fuzz && for t in $$(cargo +nightly fuzz list); do \
		cargo +nightly fuzz run -O $$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1024 || exit 1; \
	done

# cgroup v2, systemd, podman and containerd (shim: ctr and CRI) tests inside the test VM (hack/vm): prints
# SKIP when the VM image cannot be built, fails when a test fails.
# The runtime-tools cgroup files, critest (containerd 2.x; 1.6's run,
# suite-critest.sh, is left out: VM_SUITES_OUT) and the shim tests under
# containerd 2.x run there too: their static binaries are staged into
# integration/runtime-tools/.suite, integration/critest/.bin and
# integration/containerd2/.bin first (the VM has no Go); so is Debian's
# CRIU for the checkpoint/restore suite (integration/criu/.debs).
# critest on containerd 1.6 took 390-516 s of the stage; Kubernetes runs
# on 2.x (critest2, the k8s stage) and the shim's tests still run on 1.6
# and 1.7. `make vm-test VM_SUITES_OUT=` runs every suite.
VM_SUITES_OUT ?= critest
vm-test: build
	integration/runtime-tools/run.sh --stage-vm
	integration/critest/stage.sh
	integration/containerd2/stage.sh
	integration/criu/stage.sh
	IT_VM_SUITES_OUT='$(VM_SUITES_OUT)' $(REPORT) lines vm integration/vm/stage.sh

# cgroup v1: the test VM booted with the legacy layout (conformance files,
# the shim with ctr, podman; runc as the reference) and with the hybrid one
# (the shim and podman), integration/vm/stage-v1.sh.
vm-test-v1: build
	$(REPORT) lines vm-v1 integration/vm/stage-v1.sh

# A single-node Kubernetes (etcd, kube-apiserver, kubelet from
# hack/thirdparty/kubernetes; containerd 2.x) in boots of the test VM of its
# own: pods with RuntimeClass skiff, and runc's as the reference (only when
# skiff failed a test, unless IT_K8S_REFERENCE=all), with the kubelet's
# cgroupfs and systemd drivers (integration/k8s). `make test` runs
# the systemd-driver boot with every test, and the pod loop with skiff
# only, two rounds of 10 pods instead of 3 (K8S_PARTS, K8S_LOOP_HANDLERS,
# K8S_LOOP_ROUNDS below: time).
K8S_PARTS ?= cgroupfs systemd
K8S_LOOP_HANDLERS ?= skiff runc
K8S_LOOP_ROUNDS ?= 3
k8s-test: build
	integration/containerd2/stage.sh
	integration/k8s/stage.sh
	IT_K8S_PARTS="$(K8S_PARTS)" IT_K8S_LOOP_HANDLERS="$(K8S_LOOP_HANDLERS)" IT_K8S_LOOP_ROUNDS=$(K8S_LOOP_ROUNDS) $(REPORT) lines k8s integration/k8s/run.sh

# Benchmarks against runc and crun (hack/bench): host and test VM; updates
# docs/benchmarks.md. Not part of `make test`, which only runs the smoke check.
bench: build
	hack/bench/run
	hack/bench/run --vm

# The OCI runtime-tools validation suite (integration/runtime-tools), built
# from the Go module cache, against skiff and Debian's runc: the host part
# (its cgroup files run in the test VM). Fails when skiff fails a file that
# runc passes and integration/runtime-tools/known-failures does not list.
runtime-tools: build
	$(REPORT) lines runtime-tools integration/runtime-tools/run.sh

# Static aarch64 skiff and shim (hack/build-arm64), checked with `file` and
# run under qemu-aarch64 for the commands that need no arm64 kernel.
build-arm64: deps
	$(REPORT) lines arm64 hack/build-arm64

# The arm64 test VM (hack/vm/build --arch arm64, qemu-system-aarch64 under
# TCG): cgroup tests with skiff and runc, conformance tests and shim tests
# with the aarch64 binaries (integration/vm/run-arm64.sh).
vm-test-arm64: build-arm64
	$(REPORT) lines vm-arm64 integration/vm/stage-arm64.sh

# Two rounds on the host, JSON validated: keeps hack/bench from rotting.
bench-smoke: build
	hack/bench/run --smoke
	hack/bench/phases 20

# Every stage in order, stopping at the first failure; then the counts of
# every stage that ran, all their skips with the reasons, and the totals
# (the last line: `N passed, N failed, N skipped`), with each stage's
# seconds and the whole run's. Exits non-zero when a stage failed.
test:
	@dir=$$(mktemp -d "$${TMPDIR:-/tmp}/skiff-test.XXXXXX") || exit 2; rc=0; \
	export SKIFF_TEST_START=$$(date +%s); echo "make test: started $$(date -u +%H:%M:%S) UTC"; \
	SKIFF_REPORT_DIR=$$dir $(MAKE) --no-print-directory test-stages || rc=$$?; \
	SKIFF_REPORT_DIR=$$dir $(REPORT) summary $$rc; rm -rf "$$dir"; exit $$rc

test-stages: lint unit conformance stress bench-smoke build-arm64 runtime-tools vm-test vm-test-v1 vm-test-arm64 k8s-test
test-stages: K8S_PARTS = systemd
test-stages: K8S_LOOP_HANDLERS = skiff
test-stages: K8S_LOOP_ROUNDS = 2
# Time limits of the VM boots in `make test`, in seconds, about twice what
# each stage took on a 2-core machine (vm ~1040, arm64 ~420, k8s ~365; v1
# ~145 per boot, whose limit leaves room for a conformance file's own 600 s
# limit and the list of processes it prints): a hung suite fails its own
# stage, and make test stops and prints its summary well inside CI's limit,
# instead of running on until CI stops it with no summary. Alone, the
# stages keep their longer defaults (the scripts' IT_*_TIMEOUT).
test-stages: export IT_VM_TIMEOUT ?= 2000
test-stages: export IT_V1_TIMEOUT ?= 900
test-stages: export IT_ARM64_TIMEOUT ?= 1000
test-stages: export IT_K8S_TIMEOUT ?= 900

clean:
	$(CARGO) clean

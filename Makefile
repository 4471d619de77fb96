# skiff: build, demo and tests. Both set-up targets install what they need
# on a fresh Debian 12 machine (run as root).

CARGO ?= cargo
SKIFF := target/release/skiff
DEMO_BUNDLE ?= /tmp/skiff-demo
APT_PACKAGES := build-essential pkg-config libseccomp-dev busybox-static jq procps \
	util-linux iproute2 runc crun uidmap curl ca-certificates git protobuf-compiler

.PHONY: all deps rust build demo test lint unit conformance vm-test clean

all: build

# Debian packages and a Rust toolchain (rustup, only if cargo is missing).
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@$(MAKE) --no-print-directory rust

rust:
	@command -v $(CARGO) >/dev/null 2>&1 || [ -x $$HOME/.cargo/bin/cargo ] || \
		(curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy -c rustfmt)

# The workspace (skiff, containerd-shim-skiff-v2), and the CRI test client
# (its own workspace: tonic/tokio only for the VM's CRI test; needs protoc).
CRI_MANIFEST := integration/cri/Cargo.toml

build: deps
	PATH=$$HOME/.cargo/bin:$$PATH $(CARGO) build --release --workspace
	PATH=$$HOME/.cargo/bin:$$PATH $(CARGO) build --release --manifest-path $(CRI_MANIFEST)

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

unit: build
	PATH=$$HOME/.cargo/bin:$$PATH $(CARGO) test --release --workspace --lib --bins

# The conformance suite: real containers through the built binary, as root.
conformance: build
	PATH=$$HOME/.cargo/bin:$$PATH SKIFF_BIN=$(CURDIR)/$(SKIFF) $(CARGO) test --release -p skiff-conformance --tests -- --test-threads=2

# cgroup v2, systemd, podman and containerd (shim: ctr and CRI) tests inside the test VM (hack/vm): prints
# SKIP when the VM image cannot be built, fails when a test fails.
vm-test: build
	integration/vm/stage.sh

test: lint unit conformance vm-test
	@echo "make test: all passed"

clean:
	$(CARGO) clean

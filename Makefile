# reseau: `make demo` (the tour), `make test` (the suite), `make bench`,
# `make stress` (the longer checks, not run by CI: docs/reliability.md).
SHELL := /bin/bash
CARGO ?= cargo
# clang: the C compiler openssl-sys's build script uses for the
# cross-target lints (make check-targets); microsocks: the SOCKS5 proxy
# the dial tests go through; golang-go: the Go crypto/tls peers of the
# interop tests (tests/interop.rs), and the goroutine contender of `make bench`;
# socat: a Unix-socket peer of the unix tests (crates/tcp/tests/unix.rs);
# wrk: the outside load generator of the bench's http rows (benches/src/http.rs).
SYSTEM_PACKAGES := libssl-dev pkg-config openssl curl python3 clang microsocks golang-go socat wrk
# What `make stress` needs on top: memcheck and testssl.sh.
STRESS_PACKAGES := valgrind testssl.sh

.PHONY: all deps test test-portable test-vendored test-async check-targets loom demo bench bench-full bench-vendored bench-deps doc fmt clippy package clean \
	stress stress-deps stress-fuzz stress-valgrind stress-interop stress-soak stress-idle stress-million stress-testssl

all: test

# Install the packages named in $(1) when missing: by apt-get as root,
# otherwise print the command and stop.
define install_packages
	@missing=""; \
	for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null || exit 1; \
	  else \
	    echo "missing system packages:$$missing"; \
	    echo "install them with: sudo apt-get install -y$$missing"; \
	    exit 1; \
	  fi; \
	fi
endef

# The system packages the build and the interop tests need.
deps:
	$(call install_packages,$(SYSTEM_PACKAGES))

fmt:
	$(CARGO) fmt --all --check

# The workspace build turns the tokio and futures-io features on (the
# umbrella crate's tests and examples use them); tcp and tls alone are
# linted again without them.
clippy: deps
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p reseau-tcp -p reseau-tls --all-targets -- -D warnings

# The whole suite: formatting, lints (for Linux, then macOS and FreeBSD),
# the docs (warnings are errors), then every test and doc test, then the
# iopoll and tcp tests again on the wait path macOS and the BSDs run. The
# bench has no tests; leaving it out spares compiling its peers (tokio, the
# openssl crate) for the suite (clippy still lints it).
test: deps fmt clippy check-targets doc
	$(CARGO) test --workspace --exclude reseau-bench
	$(CARGO) test -p reseau-tls --features fuzzing --lib
	$(MAKE) test-portable
	$(MAKE) loom
	$(MAKE) package

# tcp's and tls's own suites with the async I/O features alone. `make test`
# needs no separate run: the workspace's tests already build tcp and tls
# with them (the umbrella crate's tests and examples turn them on).
test-async:
	$(CARGO) test -p reseau-tcp -p reseau-tls --features tokio,futures-io

# The crates a user can take: each packages (path dependencies carry
# versions; its README and both license texts go in) and builds from its
# package alone, its reseau dependencies taken from the packages before
# it. Needs the crates.io index. The bench and testkit are not published.
# Cargo takes a registry package of a given version to be immutable: it
# never unpacks one again once unpacked (under $CARGO_HOME/registry/src/),
# nor rebuilds one it has built. So a second run would verify against the
# first run's sources: the unpacked copies of reseau's packages and their
# builds (in a target dir of the packaging's own) go first.
package:
	rm -rf "$${CARGO_HOME:-$$HOME/.cargo}"/registry/src/-*/reseau-*
	t="$${CARGO_TARGET_DIR:-target}/package-check"; \
	CARGO_TARGET_DIR="$$t" $(CARGO) clean -p reseau-iopoll -p reseau-tcp -p reseau-tls -p reseau-green -p reseau && \
	CARGO_TARGET_DIR="$$t" $(CARGO) package --workspace --exclude reseau-bench --exclude reseau-testkit --allow-dirty

# Model-check the lock-free protocols with loom (`--cfg loom` swaps the
# atomics for loom's; a target dir of its own keeps the normal build's).
loom:
	RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom $(CARGO) test --release -p reseau-iopoll -p reseau-tcp -p reseau-green --lib loom_

# iopoll's portable blocking wait (poll(2) on the socket and a per-thread
# pipe, no per-thread preemption count), which macOS and the BSDs run,
# exercised on Linux: the iopoll and tcp suites built with it.
test-portable:
	$(CARGO) test -p reseau-iopoll -p reseau-tcp --features reseau-iopoll/portable-wait

# The other systems reseau builds for: clippy (warnings are errors) on the
# whole workspace for each. openssl-sys's build script only needs headers,
# taken from the host's OpenSSL, and a C compiler that can target them.
CHECK_TARGETS := x86_64-apple-darwin aarch64-apple-darwin x86_64-unknown-freebsd
MULTIARCH := $(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)

check-targets: deps
	@command -v rustup >/dev/null || { echo "check-targets needs rustup (to add the targets)"; exit 1; }
	rustup target add $(CHECK_TARGETS)
	@set -e; for t in $(CHECK_TARGETS); do \
	  T=$$(echo $$t | tr a-z- A-Z_); l=$$(echo $$t | tr - _); \
	  echo "clippy --target $$t"; \
	  env $${T}_OPENSSL_DIR=/usr $${T}_OPENSSL_INCLUDE_DIR=/usr/include \
	    $${T}_OPENSSL_LIB_DIR=/usr/lib/$(MULTIARCH) \
	    CC_$$l=clang CFLAGS_$$l=-I/usr/include/$(MULTIARCH) \
	    $(CARGO) clippy --workspace --all-targets --target $$t -- -D warnings; \
	done

demo: deps
	$(CARGO) run --release -p reseau --example demo

bench: bench-deps
	$(CARGO) run --release -p reseau-bench -- --quick

# The TLS rows again on a current OpenSSL built from source (about 1.5
# minutes to build on 2 cores), beside the system's.
bench-vendored: bench-deps
	CARGO_TARGET_DIR=target/vendored $(CARGO) run --release -p reseau-bench --features vendored -- --quick --only tls

# The tls crate's tests on an OpenSSL built from source (`vendored`).
test-vendored: deps
	CARGO_TARGET_DIR=target/vendored $(CARGO) test -p reseau-tls --features vendored

bench-full: bench-deps
	$(CARGO) run --release -p reseau-bench -- --full

# `make bench` needs nothing beyond `make deps` (Go included).
bench-deps: deps

doc: deps
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --document-private-items

clean:
	$(CARGO) clean

# The longer checks of docs/reliability.md, in order: fuzzing (fuzz/run.sh,
# FUZZ_SECONDS per target, default 600), the tcp and tls test binaries under
# valgrind, the interop matrix against openssl, Python, curl and Go, and a
# soak of 1 000 connections (SOAK_SECONDS, default 600), and 100 000 idle green
# connections (IDLE_CONNS; skipped where the descriptor limit forbids), a
# million green threads parked at once (MILLION_N), and testssl.sh against a default reseau TLS server. Every step runs and
# reports PASS/FAIL/SKIPPED, then a summary; the exit status is non-zero if
# any step failed. Logs: target/stress/. One step alone: make stress-soak.
stress: stress-deps
	@CARGO="$(CARGO)" stress/run.sh fuzz valgrind interop soak idle million testssl

stress-fuzz: stress-deps
	@CARGO="$(CARGO)" stress/run.sh fuzz

stress-valgrind: stress-deps
	@CARGO="$(CARGO)" stress/run.sh valgrind

stress-interop: stress-deps
	@CARGO="$(CARGO)" stress/run.sh interop

stress-soak: stress-deps
	@CARGO="$(CARGO)" stress/run.sh soak

stress-idle: stress-deps
	@CARGO="$(CARGO)" stress/run.sh idle

stress-million: stress-deps
	@CARGO="$(CARGO)" stress/run.sh million

stress-testssl: stress-deps
	@CARGO="$(CARGO)" stress/run.sh testssl

# What the stress steps need besides what `make deps` installs, the same way.
stress-deps: deps
	$(call install_packages,$(STRESS_PACKAGES))

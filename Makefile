# reseau: `make demo` (the tour), `make test` (the suite), `make bench`,
# `make stress` (the longer checks, not run by CI: docs/reliability.md).
SHELL := /bin/bash
CARGO ?= cargo
SYSTEM_PACKAGES := libssl-dev pkg-config openssl curl python3 microsocks
# What `make bench` needs on top: Go, the goroutine contender of the green rows.
BENCH_PACKAGES := golang-go
# What `make stress` needs on top: memcheck, and Go for the interop peers.
STRESS_PACKAGES := valgrind golang-go testssl.sh

.PHONY: all deps test demo bench bench-full bench-deps doc fmt clippy clean \
	stress stress-deps stress-fuzz stress-valgrind stress-interop stress-soak stress-idle stress-testssl

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

clippy: deps
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The whole suite: formatting, lints, the docs (warnings are errors), then
# every test and doc test.
test: deps fmt clippy doc
	$(CARGO) test --workspace

demo: deps
	$(CARGO) run --release -p reseau --example demo

bench: bench-deps
	$(CARGO) run --release -p reseau-bench -- --quick

bench-full: bench-deps
	$(CARGO) run --release -p reseau-bench -- --full

bench-deps: deps
	$(call install_packages,$(BENCH_PACKAGES))

doc: deps
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --document-private-items

clean:
	$(CARGO) clean

# The longer checks of docs/reliability.md, in order: fuzzing (fuzz/run.sh,
# FUZZ_SECONDS per target, default 600), the tcp and tls test binaries under
# valgrind, the interop matrix against openssl, Python, curl and Go, and a
# soak of 1 000 connections (SOAK_SECONDS, default 600), and 100 000 idle green
# connections (IDLE_CONNS; skipped where the fd or mapping limits forbid), and
# testssl.sh against a default reseau TLS server. Every step runs and
# reports PASS/FAIL/SKIPPED, then a summary; the exit status is non-zero if
# any step failed. Logs: target/stress/. One step alone: make stress-soak.
stress: stress-deps
	@CARGO="$(CARGO)" stress/run.sh fuzz valgrind interop soak idle testssl

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

stress-testssl: stress-deps
	@CARGO="$(CARGO)" stress/run.sh testssl

# What the stress steps need besides what `make deps` installs, the same way.
stress-deps: deps
	$(call install_packages,$(STRESS_PACKAGES))

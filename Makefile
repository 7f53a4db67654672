# reseau: `make demo` (the tour), `make test` (the suite), `make bench`.
SHELL := /bin/bash
CARGO ?= cargo
SYSTEM_PACKAGES := libssl-dev pkg-config openssl curl python3

.PHONY: all deps test demo bench bench-full doc fmt clippy clean

all: test

# Install the system packages the build and the interop tests need, when
# missing: by apt-get as root, otherwise print the command and stop.
deps:
	@missing=""; \
	for p in $(SYSTEM_PACKAGES); do \
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

fmt:
	$(CARGO) fmt --all --check

clippy: deps
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The whole suite: formatting, lints, then every test and doc test.
test: deps fmt clippy
	$(CARGO) test --workspace

demo: deps
	$(CARGO) run --release -p reseau --example demo

bench: deps
	$(CARGO) run --release -p reseau-bench -- --quick

bench-full: deps
	$(CARGO) run --release -p reseau-bench -- --full

doc: deps
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

clean:
	$(CARGO) clean

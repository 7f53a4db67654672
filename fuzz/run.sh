#!/usr/bin/env bash
# Run the cargo-fuzz targets one after another, each for a while.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# SECONDS: how long each target runs (default 600). TARGETs: any of
# address, tls_server, tls_client (default: all three).
#
# Environment:
#   FUZZ_SANITIZER   address (default) or none (faster, catches less)
#   FUZZ_OPENSSL     instrumented (default): the TLS targets link an OpenSSL
#                    built from source with clang's coverage instrumentation
#                    (and ASan), so libFuzzer sees inside OpenSSL; system:
#                    link the system OpenSSL (no coverage inside it)
#   FUZZ_JOBS        parallel fuzzing processes per target (default 1)
#   FUZZ_ARGS        extra libFuzzer flags, e.g. "-seed=1 -max_len=8192"
#
# cargo-fuzz is installed from crates.io when missing, clang from Debian
# when the instrumented OpenSSL needs it. cargo-fuzz passes rustc flags
# that only nightly accepts; with the stable toolchain this script sets
# RUSTC_BOOTSTRAP=1 for the fuzz build only (the main workspace is
# untouched). Fuzz builds carry debug assertions. New corpus entries go to
# fuzz/work/<target> (git-ignored); the committed seeds in
# fuzz/corpus/<target> are only read. A crash is saved under
# fuzz/artifacts/<target>/ and makes the script exit 1 once every target
# has run.
set -uo pipefail

cd "$(dirname "$0")/.."
secs=${1:-600}
shift $(( $# > 0 ? 1 : 0 ))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(address tls_server tls_client)
sanitizer=${FUZZ_SANITIZER:-address}
openssl=${FUZZ_OPENSSL:-instrumented}
jobs=${FUZZ_JOBS:-1}
case "$secs" in ''|*[!0-9]*) echo "usage: fuzz/run.sh [SECONDS] [TARGET...]" >&2; exit 2 ;; esac
case "$sanitizer" in address|none) ;; *) echo "FUZZ_SANITIZER: address or none" >&2; exit 2 ;; esac
case "$openssl" in instrumented|system) ;; *) echo "FUZZ_OPENSSL: instrumented or system" >&2; exit 2 ;; esac

export RUSTC_BOOTSTRAP=1

as_root_install() { # PACKAGE: apt-get install it, if we may
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1") >/dev/null
  else
    return 1
  fi
}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked || exit 1
fi
# libFuzzer itself is C++, built by the libfuzzer-sys crate.
if ! command -v c++ >/dev/null 2>&1 && ! as_root_install g++; then
  echo "fuzz/run.sh needs a C++ compiler (apt-get install g++)" >&2
  exit 1
fi
if [ "$openssl" = instrumented ] && ! command -v clang >/dev/null 2>&1; then
  echo "== installing clang (for the instrumented OpenSSL)"
  if ! as_root_install clang; then
    echo "!! no clang: the TLS targets link the system OpenSSL (install clang for coverage inside OpenSSL)"
    openssl=system
  fi
fi

host=$(rustc -vV | sed -n 's/^host: //p')
cflags_var="CFLAGS_${host//-/_}"

# The cargo-fuzz build options for target $1, in the array `opts`, and the
# environment for building it, in `envs`.
options() {
  opts=(--sanitizer "$sanitizer" --debug-assertions)
  envs=()
  if [ "$openssl" = instrumented ] && [ "$1" != address ]; then
    local flags=-fsanitize=fuzzer-no-link
    [ "$sanitizer" = address ] && flags="$flags,address"
    # A target directory of its own: switching modes rebuilds nothing.
    opts+=(--features vendored-openssl --target-dir "fuzz/target/openssl-$sanitizer")
    envs=(CC=clang "$cflags_var=$flags")
  fi
}

echo "== building ${targets[*]} (sanitizer: $sanitizer, TLS targets on the $openssl OpenSSL)"
for t in "${targets[@]}"; do
  options "$t"
  env "${envs[@]}" cargo fuzz build "${opts[@]}" "$t" || exit 1
done

failed=()
for t in "${targets[@]}"; do
  options "$t"
  mkdir -p "fuzz/work/$t" "fuzz/artifacts/$t"
  echo "== fuzzing $t for ${secs}s"
  log="fuzz/work/$t.log"
  # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
  env "${envs[@]}" cargo fuzz run "${opts[@]}" --jobs "$jobs" "$t" "fuzz/work/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 ${FUZZ_ARGS:-} \
    2>&1 | tee "$log" \
    | grep -E --line-buffered '^(#[0-9]+[[:space:]]+(INITED|DONE|pulse)|==[0-9]+==|SUMMARY|INFO: Seed|stat::|Done [0-9])'
  rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    echo "!! $t failed (exit $rc); see $log and fuzz/artifacts/$t/"
    failed+=("$t")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "== crashes or failures in: ${failed[*]}"
  exit 1
fi
echo "== all targets ran ${secs}s without a crash"

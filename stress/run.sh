#!/usr/bin/env bash
# `make stress`: the longer checks of docs/reliability.md, not run by CI.
#
#   stress/run.sh [STEP...]      steps: fuzz valgrind interop soak idle million testssl (default: all, in that order)
#
# Each step runs even if an earlier one failed; each reports PASS, FAIL or
# SKIPPED, its log goes to target/stress/STEP.log, and a summary closes the
# run. Exits 1 if any step failed.
#
# Knobs (environment):
#   FUZZ_SECONDS   seconds per fuzz target (default 600), passed to fuzz/run.sh
#   SOAK_SECONDS   length of the soak (default 600); SOAK_CONNS (1000) and the
#                  other SOAK_* knobs are read by the soak itself (stress/src/bin/soak.rs)
#   VALGRIND_ONLY, VALGRIND_TIMEOUT, VALGRIND_ARGS   see stress/valgrind.sh
#   IDLE_CONNS     idle green connections held at once (default 100 000; stress/src/bin/idle.rs)
#   MILLION_N      green threads parked at once per phase (default 1 000 000; stress/src/bin/million.rs)
#   TESTSSL_CHECKS, TESTSSL_TIMEOUT   see stress/src/bin/testssl.rs
#
# The system packages (valgrind, golang-go, openssl, curl, python3) are
# installed by `make stress-deps`, which `make stress` runs first.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

CARGO=${CARGO:-cargo}
export CARGO
LOGS=target/stress
mkdir -p "$LOGS"
STRESS_CARGO=("$CARGO" run --release --manifest-path stress/Cargo.toml --target-dir target)

step_fuzz() {
  if [ ! -f fuzz/run.sh ]; then
    echo "fuzz/run.sh does not exist: nothing to fuzz"
    return 200
  fi
  bash fuzz/run.sh "${FUZZ_SECONDS:-600}"
}

step_valgrind() {
  bash stress/valgrind.sh
}

step_interop() {
  "${STRESS_CARGO[@]}" --bin interop
}

step_soak() {
  "${STRESS_CARGO[@]}" --bin soak -- --seconds "${SOAK_SECONDS:-600}"
}

step_idle() {
  "${STRESS_CARGO[@]}" --bin idle
}

step_million() {
  "${STRESS_CARGO[@]}" --bin million
}

step_testssl() {
  "${STRESS_CARGO[@]}" --bin testssl
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(fuzz valgrind interop soak idle million testssl)
for s in "${steps[@]}"; do
  case "$s" in
    fuzz | valgrind | interop | soak | idle | million | testssl) ;;
    *)
      echo "unknown step '$s' (steps: fuzz valgrind interop soak idle million testssl)"
      exit 2
      ;;
  esac
done

declare -a summary
failed=0
echo "make stress: ${steps[*]}; $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores; $(uname -sr)"
for s in "${steps[@]}"; do
  echo
  echo "=== stress step: $s (log: $LOGS/$s.log)"
  start=$(date +%s)
  "step_$s" 2>&1 | tee "$LOGS/$s.log"
  rc=${PIPESTATUS[0]}
  took=$(($(date +%s) - start))
  case "$rc" in
    0) verdict=PASS ;;
    200) verdict=SKIPPED ;;
    *)
      verdict="FAIL (exit $rc)"
      failed=$((failed + 1))
      ;;
  esac
  echo "=== stress step: $s: $verdict in ${took}s"
  summary+=("$(printf '%-9s %-16s %6ss' "$s" "$verdict" "$took")")
done

echo
echo "=== make stress summary"
for line in "${summary[@]}"; do echo "  $line"; done
if [ "$failed" -gt 0 ]; then
  echo "make stress: $failed step(s) failed"
  exit 1
fi
echo "make stress: all steps passed (or were skipped)"

#!/usr/bin/env bash
# The valgrind step of `make stress` (docs/reliability.md): every test binary
# of the tcp and tls crates (unit and integration tests) under memcheck,
#
#   valgrind --leak-check=full --errors-for-leak-kinds=definite
#            --error-exitcode=1 --suppressions=stress/valgrind.supp
#
# one binary at a time, one test at a time (--test-threads=1). A binary
# passes when all its tests pass and memcheck found no error: no invalid
# access, no use of uninitialised memory, no "definitely lost" block.
# Prints a table and exits 1 if any binary failed.
#
# What is left out or adjusted, and why:
#   - tcp/emfile is skipped: it lowers RLIMIT_NOFILE, which valgrind
#     refuses (setrlimit fails with EINVAL: it keeps descriptors of its own
#     above the client's limit). It holds no memory-safety interest beyond
#     what tcp/conn and tcp/faults cover.
#   - tcp/leaks and tls/leak_tls run with --freelist-vol=1000000: they
#     assert that resident memory grows by at most a few MiB over thousands
#     of cycles, and memcheck's default 20 MB queue of freed blocks (kept
#     for use-after-free detection) would count against them.
#
# Knobs: VALGRIND_ONLY="tls/hostile tcp/conn" runs only those binaries;
# VALGRIND_TIMEOUT (seconds per binary, default 1800); VALGRIND_ARGS adds
# arguments to every valgrind command. Logs: target/stress/valgrind/*.log.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

CARGO=${CARGO:-cargo}
LOGS=target/stress/valgrind
TIMEOUT=${VALGRIND_TIMEOUT:-1800}
mkdir -p "$LOGS"

declare -A SKIP_BINARY=(
  [tcp/emfile]="lowers RLIMIT_NOFILE, which valgrind refuses (EINVAL)"
)
# Test names passed to the harness as --skip, per binary (none today).
declare -A SKIP_TESTS=()
declare -A EXTRA_ARGS=(
  [tcp/leaks]="--freelist-vol=1000000"
  [tls/leak_tls]="--freelist-vol=1000000"
)

command -v valgrind >/dev/null || { echo "valgrind is not installed (make stress installs it)"; exit 1; }

echo "building the test binaries of reseau-tcp and reseau-tls"
# Lines "crate/name path" for every test executable.
if ! list=$("$CARGO" test -p reseau-tcp -p reseau-tls --no-run --message-format=json 2>"$LOGS/build.log" |
  python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        crate = m["manifest_path"].split("/")[-2]  # crates/tcp/Cargo.toml -> tcp
        print("%s/%s %s" % (crate, m["target"]["name"], m["executable"]))
' | sort); then
  cat "$LOGS/build.log"
  exit 1
fi
[ -n "$list" ] || { cat "$LOGS/build.log"; echo "no test binaries found"; exit 1; }

valgrind --version
printf '\n| binary | tests | definitely lost | memcheck errors | suppressed | time | result |\n'
printf '| --- | --- | --- | --- | --- | ---: | --- |\n'
failed=0
total_tests=0
while read -r name exe; do
  if [ -n "${VALGRIND_ONLY:-}" ] && ! [[ " $VALGRIND_ONLY " == *" $name "* ]]; then
    continue
  fi
  if [ -n "${SKIP_BINARY[$name]:-}" ]; then
    printf '| %s | – | – | – | – | – | skipped: %s |\n' "$name" "${SKIP_BINARY[$name]}"
    continue
  fi
  skips=()
  for t in ${SKIP_TESTS[$name]:-}; do skips+=(--skip "$t"); done
  log="$LOGS/${name//\//-}.log"
  start=$(date +%s)
  # shellcheck disable=SC2086 # EXTRA_ARGS and VALGRIND_ARGS are word lists
  timeout "$TIMEOUT" valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 \
    --suppressions=stress/valgrind.supp --num-callers=40 -s ${EXTRA_ARGS[$name]:-} ${VALGRIND_ARGS:-} \
    "$exe" --test-threads=1 "${skips[@]}" >"$log" 2>&1
  rc=$?
  took=$(($(date +%s) - start))
  result=$(grep -E '^test result:' "$log" | tail -1 |
    sed -E 's/^test result: [A-Za-z]+\. ([0-9]+) passed; ([0-9]+) failed; [0-9]+ ignored; [0-9]+ measured; ([0-9]+) filtered out.*/\1 passed, \2 failed, \3 skipped/; s/, 0 skipped$//')
  passed=$(grep -E '^test result:' "$log" | tail -1 | sed -E 's/^test result: [A-Za-z]+\. ([0-9]+) passed.*/\1/')
  total_tests=$((total_tests + ${passed:-0}))
  lost=$(grep -E '==[0-9]+== +definitely lost:' "$log" | tail -1 | sed -E 's/.*definitely lost: //')
  errors=$(grep -E '==[0-9]+== ERROR SUMMARY:' "$log" | tail -1 | sed -E 's/.*ERROR SUMMARY: ([0-9]+) errors.*/\1/')
  suppressed=$(grep -E '==[0-9]+== +suppressed:' "$log" | tail -1 | sed -E 's/.*suppressed: //')
  if [ "$rc" = 0 ]; then
    verdict=pass
  elif [ "$rc" = 124 ]; then
    verdict="FAIL (timed out after ${TIMEOUT}s)"
  elif [ "$rc" = 1 ]; then
    verdict="FAIL (memcheck errors)"
  else
    verdict="FAIL (exit $rc)"
  fi
  [ "$rc" = 0 ] || failed=$((failed + 1))
  printf '| %s | %s | %s | %s | %s | %ss | %s |\n' "$name" "${result:-?}" "${lost:-?}" "${errors:-?}" \
    "${suppressed:-0 bytes}" "$took" "$verdict"
done <<<"$list"

echo
echo "valgrind: $total_tests tests passed under memcheck; $failed binaries failed (logs in $LOGS/)"
[ "$failed" = 0 ]

#!/usr/bin/env bash
# Builds the libFuzzer targets (clang++-14, ASan+UBSan, in build-fuzz/) and
# runs each for SECONDS (default 20), after replaying its committed corpus:
# first each crash regression (corpus/<target>/crash-*) whole, then the
# seeds as the fuzzing run loads them. Fails on any crash, leak, timeout,
# OOM or sanitizer report, and prints executions per second per target.
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
# New inputs go to build-fuzz/fuzz-work/<target>/, crash reproducers to
# build-fuzz/fuzz-artifacts/ (keep one as tests/fuzz/corpus/<target>/crash-<what>).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SECS=${1:-20}
shift || true
BUILD=${RECGATE_FUZZ_BUILD:-$ROOT/build-fuzz}
ALL=(http_request mws_query ads_body xml_json config sigv2)
[ $# -gt 0 ] && TARGETS=("$@") || TARGETS=("${ALL[@]}")

start=$(date +%s)
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DRECGATE_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc 2>/dev/null || echo 2)" --target "${TARGETS[@]/#/fuzz_}"
echo "fuzz build: $(( $(date +%s) - start )) s"

export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions=$ROOT/tests/fuzz/ubsan.supp

failed=()
summary=()
for t in "${TARGETS[@]}"; do
  work=$BUILD/fuzz-work/$t
  artifacts=$BUILD/fuzz-artifacts
  log=$BUILD/fuzz-$t.log
  mkdir -p "$work" "$artifacts"
  # -timeout: one input taking 20 s is a hang; -rss_limit_mb: OOM above 2 GB.
  limits=(-timeout=20 -rss_limit_mb=2048)
  # The crash regressions, each run whole: libFuzzer truncates what it loads
  # from a corpus directory to -max_len, and a 1 MB nesting reproducer cut
  # to 16 KiB no longer reproduces anything. Given files (not a directory)
  # and no -max_len, it runs each file as it is.
  crashes=("$ROOT/tests/fuzz/corpus/$t"/crash-*)
  if [ -e "${crashes[0]}" ]; then
    echo "== fuzz_$t: replaying ${#crashes[@]} crash regression(s) whole"
    if ! "$BUILD/tests/fuzz/fuzz_$t" "${limits[@]}" "${crashes[@]}" >"$BUILD/fuzz-$t-replay.log" 2>&1; then
      failed+=("$t")
      summary+=("$(printf '%-14s %-7s (crash regression replay)' "$t" FAILED)")
      grep -E "Running:|ERROR|SUMMARY|property violated|runtime error" "$BUILD/fuzz-$t-replay.log" | head -20 || true
      echo "   full log: $BUILD/fuzz-$t-replay.log"
      continue
    fi
  fi
  echo "== fuzz_$t for ${SECS} s"
  if "$BUILD/tests/fuzz/fuzz_$t" -max_total_time="$SECS" "${limits[@]}" -max_len=16384 \
      -dict="$ROOT/tests/fuzz/$t.dict" -artifact_prefix="$artifacts/$t-" -print_final_stats=1 \
      "$work" "$ROOT/tests/fuzz/corpus/$t" >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed+=("$t")
    grep -E "ERROR|SUMMARY|property violated|runtime error|Test unit written" "$log" | head -20 || true
    echo "   full log: $log"
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  summary+=("$(printf '%-14s %-7s runs %-9s exec/s %-7s cov %s' "$t" "$status" "${runs:-?}" "${eps:-?}" "${cov:-?}")")
done

echo "== fuzz summary (${SECS} s per target, total $(( $(date +%s) - start )) s)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz targets failed: ${failed[*]} (reproducers in $BUILD/fuzz-artifacts/)"
  exit 1
fi

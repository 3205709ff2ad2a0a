#!/usr/bin/env bash
# Runs every recgate benchmark in turn and prints their figures.
#   bash tests/bench/run_all.sh            full (about 12 minutes on 2 cores)
#   QUICK=1 bash tests/bench/run_all.sh    quick (shorter runs; throttle 30 s)
# Builds the Release binaries once (BUILD_DIR, default build-bench), then runs
# the scripts with NO_BUILD=1. A script that fails is reported and the others
# still run. Output is also saved to $OUT (default /tmp/recgate-bench-<time>.txt).
set -uo pipefail
DIR=$(cd "$(dirname "$0")" && pwd)
source "$DIR/lib.sh"
OUT=${OUT:-/tmp/recgate-bench-$(date +%Y%m%d-%H%M%S).txt}

need_tools nginx
build_release
export NO_BUILD=1

{
  echo "recgate benchmarks $(date -u +%Y-%m-%dT%H:%M:%SZ)  QUICK=${QUICK:-0}  commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"
  echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(free -m | awk '/^Mem:/ {print $2 " MiB RAM"}'), load avg $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT"
failed=()
for s in cache_hit_vs_nginx gzip_vs_nginx hit_latency_entries startup_time rss_100k throttle_sustained ads_adaptive; do
  echo | tee -a "$OUT"
  echo "######## $s" | tee -a "$OUT"
  # wrk's raw output and progress go to stderr (kept in $OUT.log); figures to stdout
  if ! bash "$DIR/$s.sh" 2>>"$OUT.log" | tee -a "$OUT"; then
    failed+=("$s")
    echo "($s failed; see $OUT.log)" | tee -a "$OUT"
  fi
done
echo | tee -a "$OUT"
echo "figures saved in $OUT (raw wrk output and progress in $OUT.log)${failed[*]:+; failed: ${failed[*]}}" | tee -a "$OUT"
[ ${#failed[@]} -eq 0 ]

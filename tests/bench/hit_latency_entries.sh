#!/usr/bin/env bash
# Hit latency with a small and a large number of stored entries (default 1k
# vs 1M), side by side: two recgate processes run at once, one per database,
# and wrk alternates between them. Prints p50/p99 per run, the large/small
# ratios (target <= 1.2), start-up time (spawn -> /healthz; the entries are
# loaded into memory after that, in the background), the time until the
# background fill has every entry in memory, and RSS.
#
# Each database gets N Selection entries with distinct filters
# BrandName=Brand000000..., all fresh (stored under the snapshot's timestamp,
# snapshot checked "now", check_interval_s one week), bodies of BODY_MIN..BODY_MAX
# bytes. Two kinds of run:
#   one-key: every request asks for BrandName=Brand000123 (in both sets)
#   random : every request picks a uniformly random key among the N stored
#            (wrk Lua script), so the large set exercises a 1M-entry hash table
#            and cold memory.
#   unloaded: random keys over one connection (UNLOADED_ARGS, "-t1 -c1"): the
#            latency of a hit with no queueing; the target (large/small <= 1.2)
#            applies to these. one-key and random run at saturation (16
#            connections) and show throughput; their latency is mostly the
#            time spent queued behind other connections' requests.
# The upstream endpoint points at a closed port: a miss would show as non-2xx.
#
# Latency, not throughput, is the figure here, and p99 at saturation on two
# shared cores is mostly scheduler noise: with PIN=1 (default, needs 2+ CPUs)
# each recgate runs one I/O thread pinned to CPU 1 and wrk one thread pinned
# to CPU 0, so client and server do not preempt each other. The ratios are
# the median of the per-round large/small ratios (rounds alternate small,
# large), with every round's ratio printed.
#
# Environment: SMALL (1000), LARGE (1000000), BODY_MIN/BODY_MAX (512/512),
#   ROUNDS (3), WRK_ARGS ("-t1 -c16 -d10s" pinned, "-t2 -c32 -d10s" not),
#   PIN (1), QUICK=1 (ROUNDS=1, -d5s), plus lib.sh's BUILD_DIR, NO_BUILD,
#   KEEP_TMP.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PIN=${PIN:-1}
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  export RG_CPUS=1 WRK_CPUS=0
  export RECGATE_THREADS=${RECGATE_THREADS:-1}
  WRK_DEFAULT="-t1 -c16"
else
  PIN=0
  WRK_DEFAULT="-t2 -c32"
fi
if [ "${QUICK:-0}" = 1 ]; then
  ROUNDS=${ROUNDS:-1}
  WRK_ARGS=${WRK_ARGS:-$WRK_DEFAULT -d5s}
fi
SMALL=${SMALL:-1000}
LARGE=${LARGE:-1000000}
BODY_MIN=${BODY_MIN:-512}
BODY_MAX=${BODY_MAX:-512}
ROUNDS=${ROUNDS:-3}
export WRK_ARGS=${WRK_ARGS:-$WRK_DEFAULT -d10s}
# One connection, so no request waits behind another: the latency of a hit
# itself, with random keys. The saturated runs above measure throughput, and
# their latency is mostly queueing (connections / throughput).
UNLOADED_ARGS=${UNLOADED_ARGS:--t1 -c1 -d$([ "${QUICK:-0}" = 1 ] && echo 3 || echo 5)s}

need_tools
build_release
bench_init

PREFIX="/v1/mws/main/recommendations?marketplace=$MP&category=Selection&filter=BrandName%3DBrand"
ONE_KEY="${PREFIX}000123"

declare -A PORT PID START FILL RSS POP
for set in small large; do
  n=$SMALL; [ $set = large ] && n=$LARGE
  log "populating $set database: $n entries"
  POP[$set]=$(populate "$BENCH_TMP/$set/recgate.db" "$n" --body-min "$BODY_MIN" --body-max "$BODY_MAX" | tail -1)
  log "  ${POP[$set]}"
done
for set in small large; do
  n=$SMALL; [ $set = large ] && n=$LARGE
  PORT[$set]=$(free_port)
  cfg=$(recgate_config "$set" "${PORT[$set]}" "$BENCH_TMP/$set/recgate.db" 1 \
        "\"cache\":{\"memory_entries\":$((n + n / 10 + 1000)),\"memory_bytes\":$(( (n + 1000) * (BODY_MAX + 1024) ))}")
  start_recgate "$set" "$cfg" "${PORT[$set]}"
  PID[$set]=$RG_PID
  START[$set]=$RG_START_S
  # The latency runs are about hits from memory: wait (up to ~10 min) for
  # the background fill to hold every entry.
  t0=$(date +%s.%N)
  entries=0
  for _ in $(seq 1 6000); do
    entries=$(metric "${PORT[$set]}" 'recgate_cache_entries\{api="mws"\}')
    [ "$entries" -ge "$n" ] && break
    sleep 0.1
  done
  FILL[$set]=$(python3 -c "print(f'{$(date +%s.%N)-$t0+${START[$set]}:.2f}')")
  RSS[$set]=$(rss_mib "$RG_PID")
  log "$set: recgate :${PORT[$set]} up in ${START[$set]}s, filled in ${FILL[$set]}s, RSS ${RSS[$set]} MiB, $entries entries in memory"
  [ "$entries" -ge "$n" ] || log "WARNING: only $entries of $n entries in memory"
  # sanity: a few keys are hits
  for k in 000000 000123 $(printf '%06d' $((n - 1))); do
    h=$(curl -fsS -D - -o /dev/null "http://127.0.0.1:${PORT[$set]}${PREFIX}$k" | tr -d '\r' | sed -n 's/^Cache-Status: //Ip')
    [ "$h" = "recgate; hit" ] || die "$set key Brand$k: Cache-Status '$h' (expected a hit)"
  done
done

echo "== hit_latency_entries: hit latency with $SMALL vs $LARGE stored entries =="
echo "machine: $(nproc) CPUs, load avg: $(cut -d' ' -f1-3 /proc/loadavg); recgate threads=${RECGATE_THREADS:-2}; wrk: $WRK_ARGS --latency; rounds: $ROUNDS"
if [ "$PIN" = 1 ]; then echo "pinned: recgate on CPU $RG_CPUS, wrk on CPU $WRK_CPUS"; else echo "not pinned"; fi
echo "bodies: $BODY_MIN..$BODY_MAX bytes (small: ${POP[small]}; large: ${POP[large]})"

# warm-up both
WRK_ARGS="$WRK_DEFAULT -d2s" run_wrk warm-small "http://127.0.0.1:${PORT[small]}$ONE_KEY" >/dev/null
WRK_ARGS="$WRK_DEFAULT -d2s" run_wrk warm-large "http://127.0.0.1:${PORT[large]}$ONE_KEY" >/dev/null

RESULTS=$BENCH_TMP/results.txt
: >"$RESULTS"
declare -A H0 M0
for set in small large; do
  H0[$set]=$(metric "${PORT[$set]}" 'recgate_cache_lookups_total\{.*result="hit"')
  M0[$set]=$(metric "${PORT[$set]}" 'recgate_cache_lookups_total\{.*result="(miss|stale)"')
done
for r in $(seq 1 "$ROUNDS"); do
  for set in small large; do
    run_wrk "one-key/$set#$r" "http://127.0.0.1:${PORT[$set]}$ONE_KEY" | tee -a "$RESULTS"
  done
  for set in small large; do
    n=$SMALL; [ $set = large ] && n=$LARGE
    BENCH_KEYS=$n BENCH_PATH_PREFIX="$PREFIX" BENCH_KEY_WIDTH=6 \
      run_wrk "random/$set#$r" "http://127.0.0.1:${PORT[$set]}/" | tee -a "$RESULTS"
  done
  for set in small large; do
    n=$SMALL; [ $set = large ] && n=$LARGE
    BENCH_KEYS=$n BENCH_PATH_PREFIX="$PREFIX" BENCH_KEY_WIDTH=6 WRK_ARGS="$UNLOADED_ARGS" \
      run_wrk "unloaded/$set#$r" "http://127.0.0.1:${PORT[$set]}/" | tee -a "$RESULTS"
  done
done

echo
for set in small large; do
  h1=$(metric "${PORT[$set]}" 'recgate_cache_lookups_total\{.*result="hit"')
  other=$(metric "${PORT[$set]}" 'recgate_cache_lookups_total\{.*result="(miss|stale)"')
  req=$(grep "/$set#" "$RESULTS" | sed -n 's/.*requests=\([0-9]*\).*/\1/p' | awk '{s+=$1} END {print s+0}')
  echo "checks ($set): hit lookups during the runs $((h1 - H0[$set])) for $req wrk requests; miss/stale lookups: $other"
  MISSES_BEFORE=${M0[$set]} require_hits "${PORT[$set]}" "${H0[$set]}" "$req" "$set"
done
echo
printf '%-8s %12s %14s %12s %12s %12s\n' set entries "start-up s" "filled s" "RSS MiB" "RSS now MiB"
for set in small large; do
  n=$SMALL; [ $set = large ] && n=$LARGE
  printf '%-8s %12s %14s %12s %12s %12s\n' $set "$n" "${START[$set]}" "${FILL[$set]}" "${RSS[$set]}" "$(rss_mib "${PID[$set]}")"
done
python3 - "$RESULTS" <<'PY'
import sys, statistics as st
rows = [dict(kv.split("=", 1) for kv in line.split()[1:]) for line in open(sys.argv[1])]
print()
print(f"{'run':<18}{'req/s':>10}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'non2xx':>8}")
for r in rows:
    print(f"{r['label']:<18}{float(r['rps']):>10.0f}{int(r['p50_us'])/1000:>10.3f}{int(r['p90_us'])/1000:>10.3f}"
          f"{int(r['p99_us'])/1000:>10.3f}{r['non2xx']:>8}")
print()
for kind in ("one-key", "random", "unloaded"):
    def runs(set_):
        return {r["label"].split("#")[1]: r for r in rows if r["label"].startswith(f"{kind}/{set_}#")}
    small, large = runs("small"), runs("large")
    rounds = sorted(set(small) & set(large), key=int)
    def m(d, k):
        return st.mean(float(r[k]) for r in d.values())
    print(f"{kind:<8} small: p50 {m(small, 'p50_us')/1000:.3f} ms p99 {m(small, 'p99_us')/1000:.3f} ms "
          f"{m(small, 'rps'):.0f} req/s | large: p50 {m(large, 'p50_us')/1000:.3f} ms "
          f"p99 {m(large, 'p99_us')/1000:.3f} ms {m(large, 'rps'):.0f} req/s")
    ratios = {k: [float(large[n][k]) / float(small[n][k]) for n in rounds] for k in ("p50_us", "p99_us", "rps")}
    print(f"  per round large/small: p50 {' '.join(f'{x:.2f}' for x in ratios['p50_us'])}"
          f" | p99 {' '.join(f'{x:.2f}' for x in ratios['p99_us'])}")
    print(f"RATIO {kind} large/small (median of rounds): p50 {st.median(ratios['p50_us']):.2f}  "
          f"p99 {st.median(ratios['p99_us']):.2f}  throughput {st.median(ratios['rps']):.2f}"
          + ("   (target latency <= 1.2)" if kind == "unloaded" else ""))
PY

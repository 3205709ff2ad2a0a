#!/usr/bin/env bash
# Cache hit of two recgate builds side by side: BEFORE and AFTER a change
# (issue 13: the services/router refactor must not slow the hit path).
#
#   bash tests/bench/before_after.sh BEFORE_RECGATE AFTER_RECGATE [SANDBOX]
#
# One recgate-sandbox (SANDBOX, default: the recgate-sandbox next to
# AFTER_RECGATE) is the upstream of both. Each recgate gets its own empty
# database and the same configuration (tests/support/recgate.template.json,
# whose keys older builds accept too), asks the sandbox once for the same
# answer and stores it; the bench checks both now answer it from the cache
# with the same body. Then wrk asks that URL in interleaved runs (before,
# after, after, before, ...) at each connection count, and the medians of
# req/s and p99 are compared: ratio after/before.
#
# Fails (exit 1) on any non-2xx answer or socket error, when a recgate's hit
# lookups grew by less than the requests wrk made against it, or on any
# miss/stale lookup during the runs. RATIO_MIN (default 0.97) is reported as
# the goal; the script does not fail on it (figures on a shared machine move
# by more than that between runs: look at the medians and the load).
#
# Environment: CONNS (default "32 64 256"), PAIRS (interleaved pairs per
#   point, default 5: 10 runs), DURATION (per run, default 4s), WARMUP (2s),
#   RECGATE_THREADS (2), WRK_THREADS (2), QUICK=1 (PAIRS=1, DURATION=3s,
#   CONNS=64), plus lib.sh's KEEP_TMP.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[ $# -ge 2 ] || die "usage: $0 BEFORE_RECGATE AFTER_RECGATE [SANDBOX]"
BEFORE_BIN=$(realpath "$1")
AFTER_BIN=$(realpath "$2")
SANDBOX=$(realpath "${3:-$(dirname "$AFTER_BIN")/recgate-sandbox}")
for b in "$BEFORE_BIN" "$AFTER_BIN" "$SANDBOX"; do [ -x "$b" ] || die "not an executable: $b"; done

if [ "${QUICK:-0}" = 1 ]; then PAIRS=${PAIRS:-1}; DURATION=${DURATION:-3s}; CONNS=${CONNS:-64}; fi
CONNS=${CONNS:-32 64 256}
PAIRS=${PAIRS:-5}
DURATION=${DURATION:-4s}
WARMUP=${WARMUP:-2s}
RATIO_MIN=${RATIO_MIN:-0.97}
WRK_THREADS=${WRK_THREADS:-2}
export RECGATE_THREADS=${RECGATE_THREADS:-2}

need_tools
bench_init
start_sandbox
PATH_Q=$FILLED_PATH

declare -A PORT PID HITS0 MISSES0
for who in before after; do
  bin=${who^^}_BIN
  start_filled "$who" "${!bin}"
  PORT[$who]=$RG_PORT
  PID[$who]=$RG_PID
done
same_answer "$BENCH_TMP/before.body" "$BENCH_TMP/after.body" || die "before and after cached different answers"

hdr_bytes() { tr -d '\r' <"$1" | wc -c; }
echo "== before_after: recgate cache hit, two builds side by side =="
echo "before: $BEFORE_BIN"
echo "after:  $AFTER_BIN"
echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), load avg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "recgate threads=$RECGATE_THREADS; wrk -t$WRK_THREADS; runs $DURATION; pairs per point $PAIRS"
echo "GET $PATH_Q: body $(stat -c %s "$BENCH_TMP/after.body") B; header block before $(hdr_bytes "$BENCH_TMP/before.h") B, after $(hdr_bytes "$BENCH_TMP/after.h") B"

for who in before after; do  # warm-up: sockets, allocator arenas
  wrk_run "warmup-$who" 64 "$WARMUP" "http://127.0.0.1:${PORT[$who]}$PATH_Q" >/dev/null
  HITS0[$who]=$(metric "${PORT[$who]}" 'recgate_cache_lookups_total\{.*result="hit"')
  MISSES0[$who]=$(metric "${PORT[$who]}" 'recgate_cache_lookups_total\{.*result="(miss|stale)"')
done
RESULTS=$BENCH_TMP/results.txt
: >"$RESULTS"
for c in $CONNS; do
  wrk_pairs "$PAIRS" "$c" "$DURATION" "conns=$c" \
    before "http://127.0.0.1:${PORT[before]}$PATH_Q" "${PID[before]}" \
    after "http://127.0.0.1:${PORT[after]}$PATH_Q" "${PID[after]}" >>"$RESULTS"
done
echo "load avg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
for who in before after; do
  MISSES_BEFORE=${MISSES0[$who]} require_hits "${PORT[$who]}" "${HITS0[$who]}" \
    "$(wrk_requests "$RESULTS" "label=$who#")" "$who"
  echo "checks $who: every run 2xx without socket errors; hit lookups grew by $(( $(metric "${PORT[$who]}" 'recgate_cache_lookups_total\{.*result="hit"') - HITS0[$who] )) for $(wrk_requests "$RESULTS" "label=$who#") requests, no miss or stale; RSS $(rss_mib "${PID[$who]}") MiB"
done
python3 - "$RESULTS" "$RATIO_MIN" <<'PY'
import sys, statistics as st
rows = [dict(kv.split("=", 1) for kv in line.split()[1:]) for line in open(sys.argv[1])]
goal = float(sys.argv[2])
print("\nmedians per side; cpu = recgate's CPU time per request (user + system, all threads)")
print(f"{'conns':>5}{'before req/s':>14}{'after req/s':>13}{'ratio':>7}{'before p99':>12}{'after p99':>11}"
      f"{'p99 ratio':>11}{'before cpu':>12}{'after cpu':>11}{'cpu ratio':>11}  runs/side")
worst = None
for c in sorted({int(r["conns"]) for r in rows}):
    pr = [r for r in rows if int(r["conns"]) == c]
    side = lambda who: [r for r in pr if r["label"].startswith(who + "#")]
    med = lambda who, f: st.median(f(r) for r in side(who))
    rps = lambda r: float(r["rps"])
    p99 = lambda r: float(r["p99_us"]) / 1000
    cpu = lambda r: float(r["cpu_ms"]) * 1000 / int(r["requests"])
    b, a = med("before", rps), med("after", rps)
    b99, a99 = med("before", p99), med("after", p99)
    bc, ac = med("before", cpu), med("after", cpu)
    worst = a / b if worst is None else min(worst, a / b)
    print(f"{c:>5}{b:>14.0f}{a:>13.0f}{a / b:>7.3f}{b99:>10.2f}ms{a99:>9.2f}ms{a99 / b99:>11.2f}"
          f"{bc:>10.1f}us{ac:>9.1f}us{ac / bc:>11.3f}  {len(side('after'))}")
print(f"\nRATIO worst throughput after/before = {worst:.3f}   (goal >= {goal})")
PY

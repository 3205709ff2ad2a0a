#!/usr/bin/env bash
# Resident memory of recgate holding ENTRIES (default 100k) MWS cache entries
# in memory, bodies BODY_MIN..BODY_MAX bytes (default 1024..4096, uniform;
# typical merged recommendation lists). Compares with a recgate on an empty
# database (same config) to print what one entry costs:
#   resident/entry = (RSS(N) - RSS(empty)) / N
#   overhead/entry = (RSS(N) - RSS(empty) - sum of held body bytes) / N
# where a held body is the raw deflate stream recgate keeps when that is
# smaller than the body (computed here with the same zlib and parameters:
# default level, 32 KB window, memLevel 8, sync flush), else the body.
# Also prints the peak RSS during start-up (VmHWM: the load from SQLite) and
# RSS after a short burst of random hits over all entries.
#
# Environment: ENTRIES (100000), BODY_MIN (1024), BODY_MAX (4096), QUICK=1
#   (shorter hit burst), plus lib.sh's BUILD_DIR, NO_BUILD, KEEP_TMP.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ENTRIES=${ENTRIES:-100000}
BODY_MIN=${BODY_MIN:-1024}
BODY_MAX=${BODY_MAX:-4096}
HIT_S=5s
[ "${QUICK:-0}" = 1 ] && HIT_S=2s

need_tools
build_release
bench_init

log "populating: $ENTRIES entries of $BODY_MIN..$BODY_MAX bytes"
POP=$(populate "$BENCH_TMP/full/recgate.db" "$ENTRIES" --body-min "$BODY_MIN" --body-max "$BODY_MAX" | tail -1)
log "  $POP"
BODY_TOTAL=$(echo "$POP" | sed -n 's/.*body_bytes_total=\([0-9]*\).*/\1/p')
mkdir -p "$BENCH_TMP/empty"
migrate_db "$BENCH_TMP/empty/recgate.db"

CACHE="\"cache\":{\"memory_entries\":$((ENTRIES * 2)),\"memory_bytes\":$((ENTRIES * (BODY_MAX + 1024) * 2))}"
declare -A PORT PID START RSS HWM
for set in empty full; do
  PORT[$set]=$(free_port)
  cfg=$(recgate_config "$set" "${PORT[$set]}" "$BENCH_TMP/$set/recgate.db" 1 "$CACHE")
  start_recgate "$set" "$cfg" "${PORT[$set]}"
  PID[$set]=$RG_PID
  START[$set]=$RG_START_S
  # one request of each kind the bench makes, so both processes have touched the same code paths
  curl -fsS -o /dev/null "http://127.0.0.1:${PORT[$set]}/metrics"
  # The in-memory tier is filled in the background after /healthz answers:
  # measure once it holds every entry (bounded: 10 min).
  want=0; [ "$set" = full ] && want=$ENTRIES
  for _ in $(seq 1 3000); do
    [ "$(metric "${PORT[$set]}" 'recgate_cache_entries\{api="mws"\}')" -ge "$want" ] && break
    sleep 0.2
  done
  [ "$(metric "${PORT[$set]}" 'recgate_cache_entries\{api="mws"\}')" -ge "$want" ] || die "$set: the fill did not reach $want entries"
  sleep 2
  RSS[$set]=$(rss_mib "$RG_PID")
  HWM[$set]=$(hwm_mib "$RG_PID")
done
IN_MEM=$(metric "${PORT[full]}" 'recgate_cache_entries\{api="mws"\}')
HELD_TOTAL=$(python3 - "$BENCH_TMP/full/recgate.db" <<'PY'
import sqlite3, sys, zlib
held = 0
for (body,) in sqlite3.connect(sys.argv[1]).execute("SELECT body FROM mws_recommendations"):
    raw = body.encode()
    c = zlib.compressobj(-1, zlib.DEFLATED, -15, 8)
    packed = c.compress(raw) + c.flush(zlib.Z_SYNC_FLUSH)
    held += min(len(packed), len(raw))
print(held)
PY
)
IDX_BYTES=$(metric "${PORT[full]}" 'recgate_cache_memory_bytes\{api="mws"\}')

PREFIX="/v1/mws/main/recommendations?marketplace=$MP&category=Selection&filter=BrandName%3DBrand"
h=$(curl -fsS -D - -o /dev/null "http://127.0.0.1:${PORT[full]}${PREFIX}000042" | tr -d '\r' | sed -n 's/^Cache-Status: //Ip')
[ "$h" = "recgate; hit" ] || die "Cache-Status '$h' (expected a hit)"
HITS0=$(metric "${PORT[full]}" 'recgate_cache_lookups_total\{.*result="hit"')
MISSES0=$(metric "${PORT[full]}" 'recgate_cache_lookups_total\{.*result="(miss|stale)"')
BENCH_KEYS=$ENTRIES BENCH_PATH_PREFIX="$PREFIX" WRK_ARGS="-t2 -c16 -d$HIT_S" \
  run_wrk random-hits "http://127.0.0.1:${PORT[full]}/" >"$BENCH_TMP/hits.txt"
MISSES_BEFORE=$MISSES0 require_hits "${PORT[full]}" "$HITS0" "$(wrk_requests "$BENCH_TMP/hits.txt" '^WRK ')" random-hits
RSS_AFTER=$(rss_mib "${PID[full]}")

echo "== rss_100k: recgate RSS with $ENTRIES entries in memory =="
echo "bodies: $POP"
echo "entries in memory (recgate_cache_entries): $IN_MEM; index's own byte count (recgate_cache_memory_bytes): $(python3 -c "print(f'{$IDX_BYTES/1048576:.1f}')") MiB"
printf '%-7s %10s %10s %14s %12s\n' db "RSS MiB" "peak MiB" "start-up s" entries
printf '%-7s %10s %10s %14s %12s\n' empty "${RSS[empty]}" "${HWM[empty]}" "${START[empty]}" 0
printf '%-7s %10s %10s %14s %12s\n' full "${RSS[full]}" "${HWM[full]}" "${START[full]}" "$IN_MEM"
echo "after ${HIT_S} of random hits over all entries: RSS $RSS_AFTER MiB ($(sed -n 's/.*rps=\([0-9]*\).*non2xx=\([0-9]*\).*/\1 req\/s, non-2xx \2/p' "$BENCH_TMP/hits.txt"))"
python3 - "${RSS[empty]}" "${RSS[full]}" "$RSS_AFTER" "$BODY_TOTAL" "$ENTRIES" "$HELD_TOTAL" <<'PY'
import sys
empty, full, after = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
body, n, held = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
mib = 1048576
print(f"RSS with {n} entries: {full:.1f} MiB (empty: {empty:.1f} MiB; entries add {full-empty:.1f} MiB; "
      f"bodies {body/mib:.1f} MiB raw, held as {held/mib:.1f} MiB, {body/held:.2f}x smaller)")
print(f"per entry: {(full-empty)*mib/n:.0f} B resident; body mean {body/n:.0f} B raw, {held/n:.0f} B held; "
      f"overhead beyond the held body {((full-empty)*mib-held)/n:.0f} B/entry")
print(f"after random hits: {after:.1f} MiB; overhead beyond the held body {((after-empty)*mib-held)/n:.0f} B/entry "
      f"(includes each thread's set of recently inflated bodies, at most 4 MiB per thread)")
print(f"GOAL RSS <= 100 MiB with {n} entries: {'met' if full <= 100 else 'NOT met'} ({full:.1f} MiB)")
PY

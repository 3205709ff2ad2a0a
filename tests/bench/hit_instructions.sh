#!/usr/bin/env bash
# Instructions per cache hit of recgate builds, counted by valgrind's
# callgrind: a figure the machine's load does not move, next to
# before_after.sh's req/s (which a shared 2-core machine moves by ±20 %).
#
#   bash tests/bench/hit_instructions.sh RECGATE [RECGATE ...] [-- SANDBOX]
#
# Each recgate runs under callgrind in turn, on its own database, with one
# recgate-sandbox (default: next to the last RECGATE) as upstream; it stores
# lib.sh's FILLED_PATH answer, takes a warm-up, then its counters are zeroed,
# wrk asks the same hit for DURATION over 8 connections, and the counters are
# dumped. Prints user-space instructions (callgrind Ir: recgate, libc,
# libstdc++; not the kernel) per request wrk made. Every request must be a 2xx
# hit (as in before_after.sh). Kernel work per hit is the same one recvmsg and
# one sendmsg in every build measured so far: check with strace -c when the
# session code changes.
#
# Environment: DURATION (default 10s), plus lib.sh's KEEP_TMP.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

BINS=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do BINS+=("$(realpath "$1")"); shift; done
[ ${#BINS[@]} -ge 1 ] || die "usage: $0 RECGATE [RECGATE ...] [-- SANDBOX]"
if [ "${1:-}" = -- ]; then SANDBOX=$(realpath "${2:?SANDBOX after --}"); else SANDBOX=$(dirname "${BINS[-1]}")/recgate-sandbox; fi
DURATION=${DURATION:-10s}

need_tools valgrind
bench_init
start_sandbox
echo "== hit_instructions: user-space instructions per cache hit (callgrind), GET $FILLED_PATH =="
for i in "${!BINS[@]}"; do
  name=rg$i out=$BENCH_TMP/callgrind.rg$i
  # A wrapper, so that start_recgate's pid is valgrind's (callgrind_control needs it).
  printf '#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s %s "$@"\n' "$out" "${BINS[$i]}" \
    >"$BENCH_TMP/$name.sh"
  chmod +x "$BENCH_TMP/$name.sh"
  start_filled "$name" "$BENCH_TMP/$name.sh"
  url="http://127.0.0.1:$RG_PORT$FILLED_PATH"
  wrk_run "warmup-$name" 8 3s "$url" >/dev/null
  hits0=$(metric "$RG_PORT" 'recgate_cache_lookups_total\{.*result="hit"')
  callgrind_control -z "$RG_PID" >/dev/null
  line=$(WRK_THREADS=1 wrk_run "$name" 8 "$DURATION" "$url")
  callgrind_control -d "$RG_PID" >/dev/null
  requests=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$line")
  require_hits "$RG_PORT" "$hits0" "$requests" "$name"
  ir=$(callgrind_annotate "$out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
  [ -n "$ir" ] || die "$name: no callgrind dump in $out.1"
  printf '%-60s %8d instructions per hit (%d requests)\n' "${BINS[$i]}" $((ir / requests)) "$requests"
  stop_pid "$RG_PID"
done

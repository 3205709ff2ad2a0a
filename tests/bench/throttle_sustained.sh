#!/usr/bin/env bash
# Sustained demand above the MWS ListRecommendations quota (8 tokens, 1 per
# 2 s) for DURATION seconds: CLIENTS concurrent clients, each request a filter
# combination never asked before (category=Selection&filter=BrandName%3DB<n>),
# so each needs one upstream ListRecommendations call; `Prefer: wait=300` and
# throttle.max_wait_s 600 so requests queue rather than get 429. Prints the
# upstream call rate achieved against the 0.5/s allowed (overall, and in the
# steady state after the initial burst), and the sandbox's throttled count
# (GET /admin/stats). Prints figures; never passes or fails.
#
# Environment: DURATION (120 s; QUICK=1: 30 s), CLIENTS (16), plus lib.sh's
#   BUILD_DIR, NO_BUILD, KEEP_TMP.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-120}
[ "${QUICK:-0}" = 1 ] && DURATION=${QUICK_DURATION:-30}
CLIENTS=${CLIENTS:-16}

need_tools
build_release
bench_init

start_sandbox
curl -fsS -X POST "http://127.0.0.1:$SANDBOX_PORT/admin/reset" >/dev/null
RG_PORT=$(free_port)
CFG=$(recgate_config recgate "$RG_PORT" "$BENCH_TMP/recgate.db" "$SANDBOX_PORT" '"throttle":{"max_wait_s":600}')
start_recgate recgate "$CFG" "$RG_PORT"
log "sandbox :$SANDBOX_PORT, recgate :$RG_PORT (fresh database: full buckets); running $DURATION s with $CLIENTS clients"
python3 "$BENCH_DIR/throttle_client.py" --recgate-port "$RG_PORT" --sandbox-port "$SANDBOX_PORT" \
  --duration "$DURATION" --clients "$CLIENTS" --wait 300

#!/usr/bin/env bash
# Learnt vs fixed Ads limits, side by side (issue 15). The sandbox's Ads limit
# is set to BURST / RATE per s with Amazon's 429 form (no Retry-After,
# amazon-advertising-api-throttled: true); CLIENTS clients then ask without
# pause (Cache-Control: no-cache, so every request goes upstream) for DURATION
# seconds, once against recgate with throttle.adaptive (the default for Ads)
# and once with a fixed bucket (recgate's built-in guess: 10, 2 per s). Prints
# per mode: upstream 429s per minute, answers, and the share of the upstream's
# limit used (answers / (BURST + RATE x DURATION)). Prints figures; never passes
# or fails.
#
# Environment: DURATION (60 s; QUICK=1: 30 s), CLIENTS (4), BURST (5), RATE (1),
#   plus lib.sh's BUILD_DIR, NO_BUILD, KEEP_TMP.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-60}
[ "${QUICK:-0}" = 1 ] && DURATION=${QUICK_DURATION:-30}
CLIENTS=${CLIENTS:-4}
BURST=${BURST:-5}
RATE=${RATE:-1}

need_tools
build_release
bench_init
start_sandbox

run_mode() {
  local mode=$1 throttle=$2
  curl -fsS -X POST "http://127.0.0.1:$SANDBOX_PORT/admin/reset" >/dev/null
  curl -fsS -X PUT -H 'Content-Type: application/json' "http://127.0.0.1:$SANDBOX_PORT/admin/ads/limit" \
    -d "{\"burst\":$BURST,\"rate_per_s\":$RATE,\"retry_after_s\":0,\"amazon_throttled\":true}" >/dev/null
  local port cfg
  port=$(free_port)
  cfg=$(recgate_config "recgate-$mode" "$port" "$BENCH_TMP/$mode.db" "$SANDBOX_PORT" "$throttle")
  start_recgate "recgate-$mode" "$cfg" "$port"
  log "$mode: recgate :$port, $CLIENTS clients for $DURATION s against $BURST burst / $RATE per s"
  python3 - "$port" "$SANDBOX_PORT" "$DURATION" "$CLIENTS" "$BURST" "$RATE" "$mode" <<'PY'
import json, sys, threading, time, urllib.request, urllib.error
port, sb, duration, clients, burst, rate, mode = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), sys.argv[7]
ok = [0] * clients
end = time.monotonic() + duration
def client(i):
    body = json.dumps({"adAsins": ["B09LJWZT6G"], "count": i + 1}).encode()
    while time.monotonic() < end:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/ads/main/product-recommendations", data=body,
                                     headers={"Content-Type": "application/json", "Cache-Control": "no-cache",
                                              "Prefer": "wait=30"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                ok[i] += r.status == 200
        except urllib.error.HTTPError:
            pass
ts = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
for t in ts: t.start()
for t in ts: t.join()
stats = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sb}/admin/stats"))
throttled = stats["ads"]["rate_limited"]
allowed = burst + rate * duration
print(f"{mode:8s} upstream 429s/min {throttled * 60 / duration:6.1f}   answers {sum(ok):4d}   "
      f"share of the limit used {100 * sum(ok) / allowed:5.1f} %")
PY
  stop_pid "$RG_PID"
}

echo "Ads limit $BURST burst / $RATE per s (429 without Retry-After), $CLIENTS clients, $DURATION s"
run_mode learnt '"throttle":{}'
run_mode fixed '"throttle":{"adaptive":{"ads.ProductRecommendations":{"enabled":false},"lwa.Token":{"enabled":false}}}'

#!/usr/bin/env bash
# [refresh] The latency a client sees for CHANGED data, refresh ahead on vs
# off, and the upstream calls each costs. Per mode: a fresh sandbox and
# recgate (mws.check_interval_s = INTERVAL), one client asks for Inventory
# (hot); then ROUNDS times: the sandbox moves Inventory's timestamp
# (/admin/touch), the client comes back GAP seconds later (its think time,
# part of the workload, not a synchronisation) and its request is timed.
# Prints p50/p99 of those requests, their Cache-Status, the upstream MWS
# calls per round (sandbox /admin/stats) and the sandbox's throttled count.
# Prints figures; never passes or fails.
#
# Environment: ROUNDS (10), GAP (8 s), INTERVAL (2 s), plus lib.sh's
#   BUILD_DIR, NO_BUILD, KEEP_TMP.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-10}
GAP=${GAP:-8}
INTERVAL=${INTERVAL:-2}

need_tools
build_release
bench_init

run_mode() {
  local mode=$1 on=$2
  start_sandbox
  local port cfg
  port=$(free_port)
  cfg=$(recgate_config "recgate-$mode" "$port" "$BENCH_TMP/$mode.db" "$SANDBOX_PORT" \
        "\"cache\":{\"refresh_ahead\":$on,\"refresh_hot_s\":3600}")
  sed -i "s/\"check_interval_s\": 604800/\"check_interval_s\": $INTERVAL/" "$cfg"
  start_recgate "recgate-$mode" "$cfg" "$port"
  python3 - "$mode" "$port" "$SANDBOX_PORT" "$ROUNDS" "$GAP" <<'PY'
import json, sys, time, urllib.request
mode, port, sb, rounds, gap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
path = "/v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category=Inventory"
def get(p, url):
    with urllib.request.urlopen(f"http://127.0.0.1:{p}{url}", timeout=120) as r:
        return r.headers.get("Cache-Status", ""), r.read()
def stats():
    with urllib.request.urlopen(f"http://127.0.0.1:{sb}/admin/stats") as r:
        d = json.load(r)
    return sum(d["requests"]["by_action"].values()), d["throttled"]["total"]
get(port, path)
calls0, _ = stats()
lat, statuses = [], {}
for _ in range(rounds):
    urllib.request.urlopen(urllib.request.Request(
        f"http://127.0.0.1:{sb}/admin/touch?seller=A1XEXAMPLEDF&marketplace=ATVPDKIKX0DER&category=Inventory",
        method="POST")).read()
    time.sleep(gap)  # the client's think time after the change
    t0 = time.perf_counter()
    status, _ = get(port, path)
    lat.append((time.perf_counter() - t0) * 1000)
    statuses[status] = statuses.get(status, 0) + 1
calls, throttled = stats()
lat.sort()
pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print(f"{mode:4} p50 {pct(0.50):8.1f} ms  p99 {pct(0.99):8.1f} ms  upstream MWS calls/round "
      f"{(calls - calls0) / rounds:5.2f}  throttled {throttled}  Cache-Status {statuses}")
PY
  stop_pid "$RG_PID"
  stop_pid "$SANDBOX_PID"
}

log "ROUNDS=$ROUNDS GAP=${GAP}s INTERVAL=${INTERVAL}s ($RECGATE)"
run_mode on true
run_mode off false

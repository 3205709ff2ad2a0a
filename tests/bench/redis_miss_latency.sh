#!/usr/bin/env bash
# [scale] The latency a cache miss adds through Redis: the shared-cache
# lookups, the cross-replica lease (take and release), the shared-bucket
# reservation (EVALSHA) and the shared-cache write. Two recgates on one
# sandbox, one with redis.url set (Debian redis-server on a free loopback
# port); quotas raised on both sides (sandbox and recgate) so that no request
# waits for a token and only the miss path is timed. One client asks each
# side for lists it has never seen (a new BrandName filter per request, one
# connection, one request at a time), in interleaved rounds (plain, redis,
# redis, plain, ...). Prints each side's median per-round p50/p99 and the
# difference. Fails when an answer is not a 200 miss.
#
# Environment: ROUNDS (4), REQUESTS (200 per side and round), LATENCY_MS (0:
#   the sandbox's answer delay, set through POST /admin/faults), plus lib.sh's
#   BUILD_DIR, NO_BUILD, KEEP_TMP.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-4}
REQUESTS=${REQUESTS:-200}
LATENCY_MS=${LATENCY_MS:-0}

need_tools
build_release
bench_init

# The sandbox with Amazon's buckets opened up: this bench times the miss path,
# not the quota (tests/bench/throttle_sustained.sh measures that).
export SANDBOX_CONFIG=$BENCH_TMP/sandbox.json
python3 - "$ROOT/config/sandbox.json" "$SANDBOX_CONFIG" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
for op in c["throttle"]:
    c["throttle"][op] = {"capacity": 1000000, "restore_every_ms": 1}
json.dump(c, open(sys.argv[2], "w"))
PY
start_sandbox
start_redis
if [ "$LATENCY_MS" -gt 0 ]; then
  curl -fsS -X POST -H 'Content-Type: application/json' \
    -d "{\"latency_ms\":$LATENCY_MS,\"count\":100000000}" "http://127.0.0.1:$SANDBOX_PORT/admin/faults" >/dev/null ||
    die "cannot set the sandbox's latency"
fi

quota='"throttle":{"buckets":{"mws.ListRecommendations":{"capacity":100000,"restore_per_s":100000},"mws.GetLastUpdatedTimeForRecommendations":{"capacity":100000,"restore_per_s":100000}}}'
declare -A PORT
for side in plain redis; do
  PORT[$side]=$(free_port)
  extra=$quota
  [ "$side" = redis ] && extra="$quota,\"redis\":{\"url\":\"redis://127.0.0.1:$REDIS_PORT/0\",\"key_prefix\":\"bench:\",\"replicas\":1}"
  cfg=$(recgate_config "recgate-$side" "${PORT[$side]}" "$BENCH_TMP/$side.db" "$SANDBOX_PORT" "$extra")
  start_recgate "recgate-$side" "$cfg" "${PORT[$side]}"
done

log "ROUNDS=$ROUNDS REQUESTS=$REQUESTS LATENCY_MS=$LATENCY_MS ($RECGATE)"
python3 - "${PORT[plain]}" "${PORT[redis]}" "$ROUNDS" "$REQUESTS" "$SANDBOX_PORT" <<'PY'
import http.client, json, statistics, sys, time, urllib.request
ports = {"plain": int(sys.argv[1]), "redis": int(sys.argv[2])}
rounds, n, sandbox = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
conns = {side: http.client.HTTPConnection("127.0.0.1", p, timeout=60) for side, p in ports.items()}
base = "/v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category=Selection&filter=BrandName%3D"

def get(side, path):
    c = conns[side]
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    return r.status, r.getheader("Cache-Status", "")

for side in ports:  # the snapshot check and first connections, untimed
    s, _ = get(side, base + "warm")
    assert s == 200, f"{side}: warm-up answered {s}"

def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]

per_round = {"plain": [], "redis": []}
for r in range(rounds):
    order = ["plain", "redis"] if r % 2 == 0 else ["redis", "plain"]
    for side in order:
        lat = []
        for i in range(n):
            t0 = time.perf_counter()
            status, cs = get(side, f"{base}r{r}x{i}")
            lat.append((time.perf_counter() - t0) * 1000)
            if status != 200 or "fwd=miss" not in cs:
                sys.exit(f"{side}: request {i} of round {r} answered {status} ({cs!r}), not a 200 miss")
        per_round[side].append((pct(lat, 0.50), pct(lat, 0.99)))
        print(f"  round {r} {side:5}: p50 {pct(lat, .5):6.2f} ms  p99 {pct(lat, .99):6.2f} ms", file=sys.stderr)

with urllib.request.urlopen(f"http://127.0.0.1:{sandbox}/admin/stats") as resp:
    throttled = json.load(resp)["throttled"]["total"]
med = {side: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for side, v in per_round.items()}
print(f"{'side':6} {'misses':>6} {'p50 ms':>7} {'p99 ms':>7}   (median of {rounds} rounds of {n})")
for side in ("plain", "redis"):
    print(f"{side:6} {rounds * n:6d} {med[side][0]:7.2f} {med[side][1]:7.2f}")
print(f"added by Redis: p50 {med['redis'][0] - med['plain'][0]:+.2f} ms  p99 {med['redis'][1] - med['plain'][1]:+.2f} ms"
      f"  (sandbox throttled {throttled})")
PY

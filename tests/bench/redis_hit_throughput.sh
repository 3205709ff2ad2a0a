#!/usr/bin/env bash
# [scale] Cache-hit throughput of recgate with redis.url set vs without, side
# by side: two recgates on one sandbox, one of them sharing through a Debian
# redis-server on a free loopback port. Each answers one MWS list from memory
# (warmed by one miss); wrk then runs against them in interleaved rounds
# (plain, redis, redis, plain, ...). Prints each side's median req/s, p50 and
# p99 and their ratio, and how many commands Redis ran during the hit runs
# (the hit path must not touch Redis). Fails when a run was not all hits.
#
# Environment: ROUNDS (3; each round runs both sides), WRK_ARGS
#   (-t2 -c32 -d8s), plus lib.sh's BUILD_DIR, NO_BUILD, KEEP_TMP.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
export WRK_ARGS=${WRK_ARGS:--t2 -c32 -d8s}
PATH_Q="/v1/mws/main/recommendations?marketplace=$MP&category=Inventory"

need_tools
build_release
bench_init
start_sandbox
start_redis

declare -A PORT
for side in plain redis; do
  PORT[$side]=$(free_port)
  extra=""
  [ "$side" = redis ] && extra="\"redis\":{\"url\":\"redis://127.0.0.1:$REDIS_PORT/0\",\"key_prefix\":\"bench:\",\"replicas\":1}"
  cfg=$(recgate_config "recgate-$side" "${PORT[$side]}" "$BENCH_TMP/$side.db" "$SANDBOX_PORT" "$extra")
  start_recgate "recgate-$side" "$cfg" "${PORT[$side]}"
  url="http://127.0.0.1:${PORT[$side]}$PATH_Q"
  curl -fsS -o /dev/null "$url" || die "$side: the warming miss failed"
  status=$(curl -fsS -D - -o /dev/null "$url" | tr -d '\r' | sed -n 's/^[Cc]ache-[Ss]tatus: //p')
  [ "$status" = "recgate; hit" ] || die "$side: second request was not a hit (Cache-Status: $status)"
done
mode=$(curl -fsS "http://127.0.0.1:${PORT[redis]}/v1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["quotaMode"])')
[ "$mode" = shared ] || die "the redis side is in quotaMode $mode, not shared"

results=$BENCH_TMP/results.txt
: >"$results"
cmds0=$(redis_commands)
hit_requests=0
log "ROUNDS=$ROUNDS WRK_ARGS=$WRK_ARGS ($RECGATE)"
for r in $(seq 1 "$ROUNDS"); do
  order="plain redis"
  [ $((r % 2)) = 0 ] && order="redis plain"
  for side in $order; do
    port=${PORT[$side]}
    before=$(metric "$port" 'recgate_cache_lookups_total\{.*result="hit"')
    run_wrk "$side" "http://127.0.0.1:$port$PATH_Q" | tee -a "$results" >/dev/null
    n=$(grep "label=$side " "$results" | tail -1 | sed -n 's/.*requests=\([0-9]*\).*/\1/p')
    require_hits "$port" "$before" "$n" "$side round $r"
    [ "$side" = redis ] && hit_requests=$((hit_requests + n))
  done
done
cmds=$(( $(redis_commands) - cmds0 ))

python3 - "$results" "$hit_requests" "$cmds" <<'PY'
import re, statistics, sys
path, hits, cmds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
runs = {}
for line in open(path):
    m = dict(re.findall(r"(\w+)=(\S+)", line))
    runs.setdefault(m["label"], []).append(m)
med = {side: {k: statistics.median(float(x[k]) for x in rs) for k in ("rps", "p50_us", "p99_us")}
       for side, rs in runs.items()}
print(f"{'side':6} {'runs':>4} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7}")
for side in ("plain", "redis"):
    m = med[side]
    print(f"{side:6} {len(runs[side]):4d} {m['rps']:9.0f} {m['p50_us']/1000:7.2f} {m['p99_us']/1000:7.2f}")
p, r = med["plain"], med["redis"]
print(f"ratio redis/plain: req/s {r['rps']/p['rps']:.2f}  p50 {r['p50_us']/p['p50_us']:.2f}  p99 {r['p99_us']/p['p99_us']:.2f}")
print(f"Redis commands during {hits} hits on the redis side: {cmds}")
PY

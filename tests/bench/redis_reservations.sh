#!/usr/bin/env bash
# [scale] How many quota reservations per second one Redis sustains, i.e. how
# many replicas one Redis can serve: redis-benchmark runs the shared bucket's
# own Lua script (server/core/throttle/shared_bucket.cpp, loaded with SCRIPT
# LOAD) as EVALSHA "reserve" on 1,000 random (account) buckets, from 50
# connections, against a Debian redis-server on a free loopback port without
# persistence. No recgate build needed.
#   tests/bench/redis_reservations.sh [REQUESTS]   (default 200000)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
N=${1:-200000}
bench_init

script=$(sed -n '/R"LUA(/,/)LUA"/p' "$ROOT/server/core/throttle/shared_bucket.cpp" | sed '1d;$d')
[ -n "$script" ] || die "cannot find the Lua script in shared_bucket.cpp"
start_redis
port=$REDIS_PORT
sha=$(redis-cli -p "$port" SCRIPT LOAD "$script")
log "script $sha loaded; $N reservations from 50 connections"
# ARGV as the throttler sends them for mws.ListRecommendations (8, 0.5/s,
# margin 250 ms, no reserve) with a 30 s wait limit.
redis-benchmark -p "$port" -n "$N" -c 50 -r 1000 -q \
  EVALSHA "$sha" 2 'bench:bucket:{acct__rand_int__}:mws.ListRecommendations' 'bench:alive' \
  reserve 8 0.5 0.001 0.25 0 30 | tr '\r' '\n' | grep -E 'requests per second' | tail -1 |
  sed 's/^/reservations per second (one Redis): /'

#!/usr/bin/env bash
# recgate cache hit vs nginx proxy_cache hit, side by side on one machine.
#
# Starts recgate-sandbox + recgate (Release, "threads": 2), warms one cache
# entry (GET .../recommendations?marketplace=ATVPDKIKX0DER&category=Inventory),
# captures its exact body, and starts nginx (worker_processes 2, own prefix,
# daemon off, access_log off) with proxy_cache in front of a static origin
# (a second nginx server block) serving that same body. Then runs wrk with
# identical settings against recgate and nginx alternately and prints req/s,
# p50, p99 per run and the ratios. Fails (exit 1, with a message) when a run
# had a non-2xx answer or a socket error, when recgate's hit lookups did not
# grow by at least the requests wrk made (or any miss happened during the
# runs), or when nginx did not answer from its cache.
#
# Environment: ROUNDS (default 2: recgate, nginx, recgate, nginx),
#   WRK_ARGS (default "-t2 -c32 -d15s"), WARMUP (default 3s per server),
#   QUICK=1 (ROUNDS=1, -d5s), NGINX_WORKERS (default 2), RECGATE_THREADS (2),
#   plus lib.sh's BUILD_DIR, NO_BUILD, KEEP_TMP.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

if [ "${QUICK:-0}" = 1 ]; then
  ROUNDS=${ROUNDS:-1}
  WRK_ARGS=${WRK_ARGS:--t2 -c32 -d5s}
  WARMUP=${WARMUP:-1s}
fi
ROUNDS=${ROUNDS:-2}
export WRK_ARGS=${WRK_ARGS:--t2 -c32 -d15s}
WARMUP=${WARMUP:-3s}
NGINX_WORKERS=${NGINX_WORKERS:-2}

need_tools nginx
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
build_release
bench_init

PATH_Q="/v1/mws/main/recommendations?marketplace=$MP&category=Inventory"

# --- recgate + sandbox --------------------------------------------------------
start_sandbox
RG_PORT=$(free_port)
CFG=$(recgate_config recgate "$RG_PORT" "$BENCH_TMP/recgate.db" "$SANDBOX_PORT")
start_recgate recgate "$CFG" "$RG_PORT"
RG=$RG_PID
log "sandbox :$SANDBOX_PORT, recgate :$RG_PORT (pid $RG, up in ${RG_START_S}s)"

curl -fsS -D "$BENCH_TMP/warm.h" -o /dev/null "http://127.0.0.1:$RG_PORT$PATH_Q" || die "warm-up request failed"
curl -fsS -D "$BENCH_TMP/rg.h" -o "$BENCH_TMP/body.json" "http://127.0.0.1:$RG_PORT$PATH_Q"
grep -qi '^Cache-Status: recgate; hit' "$BENCH_TMP/rg.h" || { cat "$BENCH_TMP/rg.h" >&2; die "second request was not a hit"; }
BODY_BYTES=$(stat -c %s "$BENCH_TMP/body.json")

# --- nginx -------------------------------------------------------------------
NG_PORT=$(free_port)
ORIGIN_PORT=$(free_port)
NG=$BENCH_TMP/nginx
mkdir -p "$NG/origin" "$NG/cache" "$NG/tmp" "$NG/logs"
cp "$BENCH_TMP/body.json" "$NG/origin/body.json"
USER_LINE=""
[ "$(id -u)" -eq 0 ] && USER_LINE="user root;"
cat >"$NG/nginx.conf" <<EOF
$USER_LINE
worker_processes $NGINX_WORKERS;
daemon off;
pid $NG/nginx.pid;
error_log $NG/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 65;
  keepalive_requests 100000000;
  client_body_temp_path $NG/tmp/client;
  proxy_temp_path $NG/tmp/proxy;
  fastcgi_temp_path $NG/tmp/fastcgi;
  uwsgi_temp_path $NG/tmp/uwsgi;
  scgi_temp_path $NG/tmp/scgi;
  proxy_cache_path $NG/cache levels=1:2 keys_zone=bench:10m max_size=100m inactive=60m use_temp_path=off;

  server {   # the origin: the captured recgate body as a static file
    listen 127.0.0.1:$ORIGIN_PORT;
    location / {
      default_type application/json;
      root $NG/origin;
      try_files /body.json =404;
    }
  }
  server {   # the cache under test
    listen 127.0.0.1:$NG_PORT;
    location / {
      proxy_pass http://127.0.0.1:$ORIGIN_PORT;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache bench;
      proxy_cache_valid 200 10m;
      add_header X-Cache-Status \$upstream_cache_status always;
    }
  }
}
EOF
"$NGINX" -p "$NG" -c "$NG/nginx.conf" >"$NG/logs/stdout.log" 2>&1 &
NG_PID=$!
BENCH_PIDS+=("$NG_PID")
wait_http "http://127.0.0.1:$NG_PORT$PATH_Q" || { cat "$NG/logs/error.log" >&2; die "nginx did not come up"; }
curl -fsS -D "$BENCH_TMP/ng.h" -o "$BENCH_TMP/ng_body.json" "http://127.0.0.1:$NG_PORT$PATH_Q"
grep -qi '^X-Cache-Status: HIT' "$BENCH_TMP/ng.h" || { cat "$BENCH_TMP/ng.h" >&2; die "nginx did not answer from its cache"; }
cmp -s "$BENCH_TMP/body.json" "$BENCH_TMP/ng_body.json" || die "nginx body differs from recgate's"
log "nginx :$NG_PORT (master pid $NG_PID, $NGINX_WORKERS workers), origin :$ORIGIN_PORT"

hdr_bytes() { tr -d '\r' <"$1" | wc -c; }
echo "== cache_hit_vs_nginx: recgate hit vs nginx proxy_cache HIT, same body =="
echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), load avg: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "body: $BODY_BYTES bytes (identical on both); response header block: recgate $(hdr_bytes "$BENCH_TMP/rg.h") B, nginx $(hdr_bytes "$BENCH_TMP/ng.h") B"
echo "recgate: threads=${RECGATE_THREADS:-2}; nginx: worker_processes=$NGINX_WORKERS; wrk: $WRK_ARGS --latency; rounds: $ROUNDS; target: $PATH_Q"
echo "recgate headers:"; tr -d '\r' <"$BENCH_TMP/rg.h" | sed 's/^/    /'
echo "nginx headers:"; tr -d '\r' <"$BENCH_TMP/ng.h" | sed 's/^/    /'

# warm-up both (JIT-free, but warms sockets, allocator arenas, page cache)
WRK_ARGS="-t2 -c32 -d$WARMUP" run_wrk warmup-recgate "http://127.0.0.1:$RG_PORT$PATH_Q" >/dev/null
WRK_ARGS="-t2 -c32 -d$WARMUP" run_wrk warmup-nginx "http://127.0.0.1:$NG_PORT$PATH_Q" >/dev/null

HITS0=$(metric "$RG_PORT" 'recgate_cache_lookups_total\{.*result="hit"')
MISSES0=$(metric "$RG_PORT" 'recgate_cache_lookups_total\{.*result="(miss|stale)"')
RESULTS=$BENCH_TMP/results.txt
: >"$RESULTS"
for r in $(seq 1 "$ROUNDS"); do
  run_wrk "recgate#$r" "http://127.0.0.1:$RG_PORT$PATH_Q" | tee -a "$RESULTS"
  run_wrk "nginx#$r" "http://127.0.0.1:$NG_PORT$PATH_Q" | tee -a "$RESULTS"
done
HITS1=$(metric "$RG_PORT" 'recgate_cache_lookups_total\{.*result="hit"')
MISSES=$(metric "$RG_PORT" 'recgate_cache_lookups_total\{.*result="(miss|stale)"')
curl -fsS -D "$BENCH_TMP/ng2.h" -o /dev/null "http://127.0.0.1:$NG_PORT$PATH_Q"
NG_STATUS=$(tr -d '\r' <"$BENCH_TMP/ng2.h" | sed -n 's/^X-Cache-Status: //Ip')
MISSES_BEFORE=$MISSES0 require_hits "$RG_PORT" "$HITS0" "$(wrk_requests "$RESULTS" '^WRK label=recgate#')" recgate
[ "$NG_STATUS" = HIT ] || die "nginx X-Cache-Status after the runs: '$NG_STATUS' (expected HIT)"

echo
echo "checks: recgate hit lookups during the runs: $((HITS1 - HITS0)) (non-hit lookups ever: $MISSES; the first request was the miss); nginx X-Cache-Status after the runs: $NG_STATUS"
echo "recgate RSS: $(rss_mib "$RG") MiB"
python3 - "$RESULTS" <<'PY'
import re, sys, statistics as st
rows = []
for line in open(sys.argv[1]):
    d = dict(kv.split("=", 1) for kv in line.split()[1:])
    rows.append(d)
def agg(prefix):
    rs = [r for r in rows if r["label"].startswith(prefix)]
    return {k: st.mean(float(r[k]) for r in rs) for k in ("rps", "p50_us", "p99_us")}, rs
print()
print(f"{'run':<12}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'p99.9 ms':>10}{'non2xx':>8}{'sockerr':>8}")
for r in rows:
    print(f"{r['label']:<12}{float(r['rps']):>10.0f}{int(r['p50_us'])/1000:>10.3f}{int(r['p99_us'])/1000:>10.3f}"
          f"{int(r['p999_us'])/1000:>10.3f}{r['non2xx']:>8}{r['sockerr']:>8}")
g, _ = agg("recgate")
n, _ = agg("nginx")
print(f"{'recgate avg':<12}{g['rps']:>10.0f}{g['p50_us']/1000:>10.3f}{g['p99_us']/1000:>10.3f}")
print(f"{'nginx avg':<12}{n['rps']:>10.0f}{n['p50_us']/1000:>10.3f}{n['p99_us']/1000:>10.3f}")
print()
print(f"RATIO throughput recgate/nginx = {g['rps']/n['rps']:.2f}   (target >= 1.0)")
print(f"RATIO p50 recgate/nginx        = {g['p50_us']/n['p50_us']:.2f}")
print(f"RATIO p99 recgate/nginx        = {g['p99_us']/n['p99_us']:.2f}   (target <= 1.0)")
PY

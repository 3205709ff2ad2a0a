#!/usr/bin/env bash
# recgate cache hit vs nginx proxy_cache hit at nginx's best, on one machine.
#
# recgate (Release, "threads": RECGATE_THREADS) serves three stored entries
# whose bodies are about 1 KB, 8 KB and 64 KB (populate_db.py; no upstream is
# asked). nginx serves the same bodies, byte for byte, as proxy_cache HITs in
# front of a static origin, in several configurations at once (one instance
# per variant, each with as many workers as recgate has threads,
# keepalive_requests 1000000, access_log off):
#   nopush    sendfile on, tcp_nopush on (the old anchor)
#   plain     sendfile off
#   ofc       sendfile off, open_file_cache
#   ofc_rp    sendfile off, open_file_cache, listen reuseport
#   shm       sendfile off, open_file_cache, reuseport, cache on tmpfs (/dev/shm)
#   shm_sf    sendfile on (no nopush), open_file_cache, reuseport, cache on tmpfs
# For each point of the grid (connections x body size) a short screening run
# per variant picks the fastest nginx; then recgate and that nginx run in
# interleaved rounds (nginx, recgate, recgate, nginx, ...) and the medians are
# compared: req/s ratio recgate/nginx, p99 on both sides, and the CPU time
# each server spent per request (nginx: its workers; less disturbed by the
# load on a shared machine than req/s).
#
# Fails (exit 1) on any non-2xx answer or socket error in any run, when
# recgate's hit lookups grew by less than the requests wrk made against it, or
# on any miss/stale lookup during the runs, or when an nginx variant did not
# answer from its cache.
#
# Environment: CONNS (default "32 64 256"), SIZES (default "1k 8k 64k"),
#   PAIRS (interleaved pairs per point, default 2: 4 runs), DURATION (per run,
#   default 6s), SCREEN (per screening run, default 2s), WARMUP (default 2s),
#   VARIANTS (default: all six), RECGATE_THREADS (2), WRK_THREADS (2),
#   QUICK=1 (PAIRS=1, DURATION=3s, SCREEN=1s, CONNS="64", SIZES="8k"),
#   plus lib.sh's BUILD_DIR, NO_BUILD, KEEP_TMP.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

if [ "${QUICK:-0}" = 1 ]; then
  PAIRS=${PAIRS:-1}; DURATION=${DURATION:-3s}; SCREEN=${SCREEN:-1s}; CONNS=${CONNS:-64}; SIZES=${SIZES:-8k}
fi
CONNS=${CONNS:-32 64 256}
SIZES=${SIZES:-1k 8k 64k}
PAIRS=${PAIRS:-2}
DURATION=${DURATION:-6s}
SCREEN=${SCREEN:-2s}
WARMUP=${WARMUP:-2s}
WRK_THREADS=${WRK_THREADS:-2}
export RECGATE_THREADS=${RECGATE_THREADS:-2}
VARIANTS=${VARIANTS:-nopush plain ofc ofc_rp shm shm_sf}

need_tools nginx
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
build_release
bench_init

key_path() { echo "/v1/mws/main/recommendations?marketplace=$MP&category=Selection&filter=BrandName%3DS$1"; }
filter_of() { echo "BrandName%3DS$1"; }  # the raw $arg_filter nginx's origin maps to a file

# --- recgate: one database with the three entries, no upstream --------------
# shellcheck disable=SC2086
start_sized_recgate S $SIZES

# --- nginx: one instance per variant, same origin files ----------------------
NG=$BENCH_TMP/nginx
SHM=""
mkdir -p "$NG/origin" "$NG/tmp" "$NG/logs"
for s in $SIZES; do
  p=$(key_path "$s"); s0="${s}0"
  get_hit "http://127.0.0.1:$RG_PORT${p}0" "$BENCH_TMP/rg_$s.h" "$BENCH_TMP/body_$s"
  cp "$BENCH_TMP/body_$s" "$NG/origin/$(filter_of "$s0").json"
done
# nginx_conf VARIANT PORT ORIGIN_PORT CACHE_DIR
nginx_conf() {
  local v=$1 port=$2 origin=$3 cache=$4
  nginx_head "$v" "$NG"
  cat <<EOF
  proxy_cache_path $cache levels=1:2 keys_zone=bench_$v:10m max_size=200m inactive=60m use_temp_path=off;
  server {   # the origin: recgate's bodies as static files, chosen by the filter argument
    listen 127.0.0.1:$origin;
    location / {
      default_type application/json;
      root $NG/origin;
      try_files /\$arg_filter.json =404;
    }
  }
  server {   # the cache under test
    listen 127.0.0.1:$port$NGX_RP;
    location / {
      proxy_pass http://127.0.0.1:$origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache bench_$v;
      proxy_cache_valid 200 10m;
      add_header X-Cache-Status \$upstream_cache_status always;
    }
  }
}
EOF
}

declare -A NG_PORT NG_PID
for v in $VARIANTS; do
  port=$(free_port); origin=$(free_port)
  cache=$NG/cache_$v
  case $v in shm*) [ -d /dev/shm ] && [ -w /dev/shm ] || die "no writable /dev/shm for variant $v"
                   SHM=${SHM:-$(mktemp -d /dev/shm/recgate-bench.XXXXXX)}; cache=$SHM/cache_$v ;; esac
  nginx_conf "$v" "$port" "$origin" "$cache" >"$NG/$v.conf"
  "$NGINX" -p "$NG" -c "$NG/$v.conf" >"$NG/logs/$v.stdout.log" 2>&1 &
  BENCH_PIDS+=("$!")
  NG_PID[$v]=$!
  NG_PORT[$v]=$port
done
trap '[ -n "$SHM" ] && rm -rf "$SHM"; bench_cleanup' EXIT
for v in $VARIANTS; do
  for s in $SIZES; do
    url="http://127.0.0.1:${NG_PORT[$v]}$(key_path "$s")0"
    wait_http "$url" || { cat "$NG/logs/$v.error.log" >&2; die "nginx $v did not come up"; }
    curl -fsS -D "$BENCH_TMP/ng_${v}_$s.h" -o "$BENCH_TMP/ng_body" "$url"
    grep -qi '^X-Cache-Status: HIT' "$BENCH_TMP/ng_${v}_$s.h" || die "nginx $v did not answer $s from its cache"
    cmp -s "$BENCH_TMP/body_$s" "$BENCH_TMP/ng_body" || die "nginx $v body for $s differs from recgate's"
  done
done
log "nginx variants up: $(for v in $VARIANTS; do printf '%s:%s ' "$v" "${NG_PORT[$v]}"; done)"

hdr_bytes() { tr -d '\r' <"$1" | wc -c; }
echo "== cache_hit_vs_nginx: recgate hit vs the fastest nginx proxy_cache HIT, same bodies =="
echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), load avg: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "recgate threads=$RECGATE_THREADS; nginx worker_processes=$RECGATE_THREADS; wrk -t$WRK_THREADS; runs: $DURATION, screening $SCREEN, pairs per point: $PAIRS"
for s in $SIZES; do
  echo "body $s: $(stat -c %s "$BENCH_TMP/body_$s") B; header block recgate $(hdr_bytes "$BENCH_TMP/rg_$s.h") B, nginx $(hdr_bytes "$BENCH_TMP/ng_$(set -- $VARIANTS; echo "$1")_$s.h") B"
done

for s in $SIZES; do  # warm-up: sockets, allocator arenas, page cache
  wrk_run "warmup-recgate-$s" 64 "$WARMUP" "http://127.0.0.1:$RG_PORT$(key_path "$s")0" >/dev/null
done
HITS0=$(metric "$RG_PORT" 'recgate_cache_lookups_total\{.*result="hit"')
MISSES0=$(metric "$RG_PORT" 'recgate_cache_lookups_total\{.*result="(miss|stale)"')
RESULTS=$BENCH_TMP/results.txt
SCREENS=$BENCH_TMP/screens.txt
: >"$RESULTS"; : >"$SCREENS"
for s in $SIZES; do
  path="$(key_path "$s")0"
  for c in $CONNS; do
    fastest_variant "$s-c$c" "$c" "$path"
    wrk_pairs "$PAIRS" "$c" "$DURATION" "size=$s conns=$c variant=$BEST" \
      nginx "http://127.0.0.1:${NG_PORT[$BEST]}$path" "${NG_PID[$BEST]}" recgate "http://127.0.0.1:$RG_PORT$path" "$RG_PID" >>"$RESULTS"
  done
done
MISSES_BEFORE=$MISSES0 require_hits "$RG_PORT" "$HITS0" \
  "$(($(wrk_requests "$RESULTS" 'label=recgate#')))" recgate
for v in $VARIANTS; do
  for s in $SIZES; do
    curl -fsS -D "$BENCH_TMP/after.h" -o /dev/null "http://127.0.0.1:${NG_PORT[$v]}$(key_path "$s")0"
    grep -qi '^X-Cache-Status: HIT' "$BENCH_TMP/after.h" || die "nginx $v: $s not a HIT after the runs"
  done
done
echo "checks: every run 2xx without socket errors; recgate hit lookups grew by $(( $(metric "$RG_PORT" 'recgate_cache_lookups_total\{.*result="hit"') - HITS0 )) for $(wrk_requests "$RESULTS" 'label=recgate#') recgate requests, no miss or stale; every nginx variant still HIT"
echo "recgate RSS: $(rss_mib "$RG_PID") MiB"
python3 - "$RESULTS" "$SCREENS" "$VARIANTS" <<'PY'
import sys, statistics as st
def rows(path):
    out = []
    for line in open(path):
        out.append(dict(kv.split("=", 1) for kv in line.split()[1:]))
    return out
res, scr, variants = rows(sys.argv[1]), rows(sys.argv[2]), sys.argv[3].split()
print("\nscreening (req/s per nginx variant):")
print(f"{'point':<12}" + "".join(f"{v:>9}" for v in variants))
points = []
for r in res:
    p = (r["size"], int(r["conns"]))
    if p not in points: points.append(p)
for size, c in points:
    got = {r["label"].split("-")[1]: int(r["rps"]) for r in scr if r["label"].endswith(f"-{size}-c{c}")}
    print(f"{size + ' c' + str(c):<12}" + "".join(f"{got.get(v, 0):>9}" for v in variants))
print("\ngrid (medians of interleaved runs):")
print(f"{'body':<6}{'conns':>6}{'nginx variant':>15}{'nginx req/s':>13}{'recgate req/s':>15}{'ratio':>7}"
      f"{'nginx p99':>11}{'recgate p99':>13}{'p99 ok':>8}{'CPU us/req nginx':>18}{'recgate':>9}")
worst = None
for size, c in points:
    pr = [r for r in res if r["size"] == size and int(r["conns"]) == c]
    med = lambda who, k: st.median(float(r[k]) for r in pr if r["label"].startswith(who))
    n_rps, g_rps = med("nginx", "rps"), med("recgate", "rps")
    n99, g99 = med("nginx", "p99_us") / 1000, med("recgate", "p99_us") / 1000
    cpu = lambda who: st.median(1000 * float(r["cpu_ms"]) / int(r["requests"]) for r in pr if r["label"].startswith(who))
    ratio = g_rps / n_rps
    worst = ratio if worst is None else min(worst, ratio)
    print(f"{size:<6}{c:>6}{pr[0]['variant']:>15}{n_rps:>13.0f}{g_rps:>15.0f}{ratio:>7.2f}"
          f"{n99:>9.2f}ms{g99:>11.2f}ms{'yes' if g99 <= n99 else 'no':>8}{cpu('nginx'):>18.1f}{cpu('recgate'):>9.1f}")
print(f"\nRATIO worst throughput recgate/nginx = {worst:.2f}   (goal >= 1.0 at every point)")
PY

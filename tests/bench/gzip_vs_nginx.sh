#!/usr/bin/env bash
# recgate gzip and identity cache hits vs nginx gzip_static serving the same
# precompressed file, on one machine.
#
# recgate (Release, "threads": RECGATE_THREADS) serves stored entries of about
# 1 KB, 8 KB and 64 KB (populate_db.py; no upstream is asked). Its identity
# answer and its gzip answer are written to disk as X.json and X.json.gz;
# nginx serves them as static files with gzip_static on and gzip_vary on (a
# client sending Accept-Encoding: gzip gets X.json.gz, the others X.json), so
# both servers send the same bytes. nginx runs in several configurations at
# once (one instance per variant, as many workers as recgate has threads,
# keepalive_requests 1000000, access_log off):
#   plain     sendfile off
#   sf        sendfile on
#   ofc       sendfile off, open_file_cache
#   ofc_rp    sendfile off, open_file_cache, listen reuseport
#   ofc_rp_sf sendfile on, open_file_cache, listen reuseport
# For each point (body size x representation) a short screening run per
# variant picks the fastest nginx; then recgate and that nginx run in
# interleaved rounds (nginx, recgate, recgate, nginx, ...) and the medians are
# compared: req/s ratio recgate/nginx and p99 on both sides.
#
# Fails (exit 1) on any non-2xx answer or socket error, when recgate's gzip
# answer does not gunzip to its identity answer, when nginx does not send the
# .gz file to a gzip client, or when recgate's hit lookups grew by less than
# the requests wrk made against it (every request a hit, no miss or stale).
#
# Environment: CONNS (default 64), SIZES (default "1k 8k 64k"), PAIRS
#   (interleaved pairs per point, default 2), DURATION (default 6s), SCREEN
#   (default 2s), WARMUP (default 2s), VARIANTS (default: all five),
#   RECGATE_THREADS (2), WRK_THREADS (2), QUICK=1 (PAIRS=1, DURATION=3s,
#   SCREEN=1s, SIZES="8k"), plus lib.sh's BUILD_DIR, NO_BUILD, KEEP_TMP.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

if [ "${QUICK:-0}" = 1 ]; then
  PAIRS=${PAIRS:-1}; DURATION=${DURATION:-3s}; SCREEN=${SCREEN:-1s}; SIZES=${SIZES:-8k}
fi
CONNS=${CONNS:-64}
SIZES=${SIZES:-1k 8k 64k}
PAIRS=${PAIRS:-2}
DURATION=${DURATION:-6s}
SCREEN=${SCREEN:-2s}
WARMUP=${WARMUP:-2s}
WRK_THREADS=${WRK_THREADS:-2}
export RECGATE_THREADS=${RECGATE_THREADS:-2}
VARIANTS=${VARIANTS:-plain sf ofc ofc_rp ofc_rp_sf}

need_tools nginx
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
build_release
bench_init

key_path() { echo "/v1/mws/main/recommendations?marketplace=$MP&category=Selection&filter=BrandName%3DG$1"; }
filter_of() { echo "BrandName%3DG$1"; }  # the raw $arg_filter nginx maps to a file

# --- recgate: one database with one entry per size, no upstream --------------
# shellcheck disable=SC2086
start_sized_recgate G $SIZES

# --- the files nginx serves: recgate's own identity and gzip answers ---------
NG=$BENCH_TMP/nginx
mkdir -p "$NG/www" "$NG/tmp" "$NG/logs"
for s in $SIZES; do
  url="http://127.0.0.1:$RG_PORT$(key_path "$s")0"
  f="$NG/www/$(filter_of "${s}0").json"
  curl -fsS -D "$BENCH_TMP/rg_id_$s.h" -o "$f" "$url"
  curl -fsS -H 'Accept-Encoding: gzip' -D "$BENCH_TMP/rg_gz_$s.h" -o "$f.gz" "$url"
  grep -qi '^Cache-Status: recgate; hit' "$BENCH_TMP/rg_gz_$s.h" || die "$s: not a hit"
  grep -qi '^Content-Encoding: gzip' "$BENCH_TMP/rg_gz_$s.h" || die "$s: recgate sent no gzip to a gzip client"
  python3 -c 'import gzip, sys; sys.exit(gzip.decompress(open(sys.argv[2], "rb").read()) != open(sys.argv[1], "rb").read())' \
    "$f" "$f.gz" || die "$s: recgate's gzip answer does not gunzip to its identity answer"
done
# nginx_conf VARIANT PORT
nginx_conf() {
  local v=$1 port=$2
  nginx_head "$v" "$NG"
  cat <<EOF
  gzip_static on;
  gzip_vary on;
  server {
    listen 127.0.0.1:$port$NGX_RP;
    location / {
      default_type application/json;
      root $NG/www;
      try_files /\$arg_filter.json =404;
    }
  }
}
EOF
}

declare -A NG_PORT NG_PID
for v in $VARIANTS; do
  port=$(free_port)
  nginx_conf "$v" "$port" >"$NG/$v.conf"
  "$NGINX" -p "$NG" -c "$NG/$v.conf" >"$NG/logs/$v.stdout.log" 2>&1 &
  BENCH_PIDS+=("$!")
  NG_PID[$v]=$!
  NG_PORT[$v]=$port
done
for v in $VARIANTS; do
  for s in $SIZES; do
    url="http://127.0.0.1:${NG_PORT[$v]}$(key_path "$s")0"
    wait_http "$url" || { cat "$NG/logs/$v.error.log" >&2; die "nginx $v did not come up"; }
    f="$NG/www/$(filter_of "${s}0").json"
    curl -fsS -H 'Accept-Encoding: gzip' -D "$BENCH_TMP/ng_$v.h" -o "$BENCH_TMP/ng_body" "$url"
    grep -qi '^Content-Encoding: gzip' "$BENCH_TMP/ng_$v.h" || die "nginx $v did not send the .gz file"
    cmp -s "$f.gz" "$BENCH_TMP/ng_body" || die "nginx $v gzip body for $s differs from recgate's"
    curl -fsS -o "$BENCH_TMP/ng_body" "$url"
    cmp -s "$f" "$BENCH_TMP/ng_body" || die "nginx $v identity body for $s differs from recgate's"
  done
done
log "nginx variants up: $(for v in $VARIANTS; do printf '%s:%s ' "$v" "${NG_PORT[$v]}"; done)"

echo "== gzip_vs_nginx: recgate gzip and identity hits vs the fastest nginx gzip_static, same bytes =="
echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), load avg: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "recgate threads=$RECGATE_THREADS; nginx worker_processes=$RECGATE_THREADS; wrk -t$WRK_THREADS -c$CONNS; runs: $DURATION, screening $SCREEN, pairs per point: $PAIRS"
for s in $SIZES; do
  f="$NG/www/$(filter_of "${s}0").json"
  echo "body $s: identity $(stat -c %s "$f") B, gzip $(stat -c %s "$f.gz") B"
done

# enc_args MODE: sets ENC to wrk's arguments for MODE. wrk needs "Name: value"
# (with the space); "Accept-Encoding:gzip" is sent as no such header at all.
enc_args() { ENC=(); [ "$1" = gzip ] && ENC=(-H "Accept-Encoding: gzip") || true; }

for s in $SIZES; do
  for m in gzip identity; do
    enc_args "$m"
    wrk_run "warmup-$s-$m" "$CONNS" "$WARMUP" "http://127.0.0.1:$RG_PORT$(key_path "$s")0" "${ENC[@]}" >/dev/null
  done
done
HITS0=$(metric "$RG_PORT" 'recgate_cache_lookups_total\{.*result="hit"')
MISSES0=$(metric "$RG_PORT" 'recgate_cache_lookups_total\{.*result="(miss|stale)"')
RESULTS=$BENCH_TMP/results.txt
SCREENS=$BENCH_TMP/screens.txt
: >"$RESULTS"; : >"$SCREENS"
for s in $SIZES; do
  path="$(key_path "$s")0"
  for m in gzip identity; do
    enc_args "$m"
    fastest_variant "$s-$m" "$CONNS" "$path" "${ENC[@]}"
    identity_bytes=$(stat -c %s "$NG/www/$(filter_of "${s}0").json")
    wrk_pairs "$PAIRS" "$CONNS" "$DURATION" "size=$s mode=$m variant=$BEST identity_bytes=$identity_bytes" \
      nginx "http://127.0.0.1:${NG_PORT[$BEST]}$path" "${NG_PID[$BEST]}" \
      recgate "http://127.0.0.1:$RG_PORT$path" "$RG_PID" "${ENC[@]}" >>"$RESULTS"
  done
done
MISSES_BEFORE=$MISSES0 require_hits "$RG_PORT" "$HITS0" "$(wrk_requests "$RESULTS" 'label=recgate#')" recgate
echo "checks: every run 2xx without socket errors; recgate hit lookups grew by $(( $(metric "$RG_PORT" 'recgate_cache_lookups_total\{.*result="hit"') - HITS0 )) for $(wrk_requests "$RESULTS" 'label=recgate#') recgate requests, no miss or stale; both servers sent the same bytes"
echo "recgate RSS: $(rss_mib "$RG_PID") MiB"
python3 - "$RESULTS" "$SCREENS" "$VARIANTS" <<'PY'
import sys, statistics as st
def rows(path):
    return [dict(kv.split("=", 1) for kv in line.split()[1:]) for line in open(path)]
res, scr, variants = rows(sys.argv[1]), rows(sys.argv[2]), sys.argv[3].split()
# Each run got the representation it asked for: a gzip answer (header block
# included) is smaller than the identity body, an identity answer larger.
for r in res:
    per = int(r["bytes"]) / int(r["requests"])
    if (r["mode"] == "gzip") != (per < int(r["identity_bytes"])):
        sys.exit(f"{r['label']} {r['size']} {r['mode']}: {per:.0f} B per answer against an identity body of "
                 f"{r['identity_bytes']} B: not the {r['mode']} representation")
points = []
for r in res:
    p = (r["size"], r["mode"])
    if p not in points: points.append(p)
print("\nscreening (req/s per nginx variant):")
print(f"{'point':<14}" + "".join(f"{v:>11}" for v in variants))
for size, m in points:
    got = {r["label"].split("-")[1]: int(r["rps"]) for r in scr if r["label"].endswith(f"-{size}-{m}")}
    print(f"{size + ' ' + m:<14}" + "".join(f"{got.get(v, 0):>11}" for v in variants))
print("\ngrid (medians of interleaved runs):")
print(f"{'body':<6}{'mode':>9}{'nginx variant':>15}{'nginx req/s':>13}{'recgate req/s':>15}{'ratio':>7}"
      f"{'nginx p99':>11}{'recgate p99':>13}{'CPU us/req nginx':>18}{'recgate':>9}")
ratios = {}
for size, m in points:
    pr = [r for r in res if r["size"] == size and r["mode"] == m]
    med = lambda who, k: st.median(float(r[k]) for r in pr if r["label"].startswith(who))
    n_rps, g_rps = med("nginx", "rps"), med("recgate", "rps")
    cpu = lambda who: st.median(1000 * float(r["cpu_ms"]) / int(r["requests"]) for r in pr if r["label"].startswith(who))
    ratios[(size, m)] = g_rps / n_rps
    print(f"{size:<6}{m:>9}{pr[0]['variant']:>15}{n_rps:>13.0f}{g_rps:>15.0f}{g_rps / n_rps:>7.2f}"
          f"{med('nginx', 'p99_us') / 1000:>9.2f}ms{med('recgate', 'p99_us') / 1000:>11.2f}ms"
          f"{cpu('nginx'):>18.1f}{cpu('recgate'):>9.1f}")
for m in ("gzip", "identity"):
    rs = [v for (s, mm), v in ratios.items() if mm == m]
    if rs: print(f"RATIO {m}: worst recgate/nginx = {min(rs):.2f}")
PY

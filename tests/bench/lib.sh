# Shared helpers for the recgate benchmark scripts (sourced, not run).
# Everything listens on 127.0.0.1; every process started here is recorded and
# killed by bench_cleanup (installed as an EXIT/INT/TERM trap by bench_init).
#
# Environment:
#   BUILD_DIR   build directory (default: <repo>/build-bench, Release)
#   NO_BUILD=1  do not (re)build; use the binaries already in BUILD_DIR
#   KEEP_TMP=1  keep the temporary directory (configs, logs, databases)

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
RECGATE=$BUILD_DIR/recgate
SANDBOX=$BUILD_DIR/recgate-sandbox
MP=ATVPDKIKX0DER

BENCH_PIDS=()
BENCH_TMP=""

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

bench_cleanup() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${BENCH_PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  BENCH_PIDS=()
  if [ -n "$BENCH_TMP" ] && [ -d "$BENCH_TMP" ]; then
    if [ "${KEEP_TMP:-0}" = 1 ]; then log "kept $BENCH_TMP"; else rm -rf "$BENCH_TMP"; fi
  fi
}

bench_init() {
  BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/recgate-bench.XXXXXX")
  chmod 755 "$BENCH_TMP"
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# Stops one process started by us (SIGTERM, then SIGKILL after 5 s).
stop_pid() {
  local pid=$1
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local keep=() p
  for p in "${BENCH_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  BENCH_PIDS=("${keep[@]}")
}

need_tools() {
  local missing=()
  command -v wrk >/dev/null || missing+=(wrk)
  if [ "${1:-}" = nginx ]; then command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light); fi
  if [ "${1:-}" = valgrind ]; then command -v callgrind_control >/dev/null || missing+=(valgrind); fi
  command -v curl >/dev/null || missing+=(curl)
  command -v python3 >/dev/null || missing+=(python3)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Release build of the two executables into BUILD_DIR; retries while other
# engineers' files in the tree do not compile.
build_release() {
  if [ "${NO_BUILD:-0}" = 1 ]; then
    [ -x "$RECGATE" ] && [ -x "$SANDBOX" ] || die "NO_BUILD=1 but $RECGATE / $SANDBOX missing"
    return
  fi
  local attempt blog="$BUILD_DIR/bench-build.log"
  mkdir -p "$BUILD_DIR"
  for attempt in 1 2 3 4 5 6; do
    if cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >"$blog" 2>&1 &&
       cmake --build "$BUILD_DIR" -j2 --target recgate recgate-sandbox >>"$blog" 2>&1; then
      return
    fi
    log "build failed (attempt $attempt; see $blog); retrying in 30 s"
    sleep 30
  done
  die "build keeps failing; see $blog"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL [tries]: until URL answers 2xx (tries x 0.05 s).
wait_http() {
  local url=$1 tries=${2:-400}
  for _ in $(seq 1 "$tries"); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# start_sandbox: sets SANDBOX_PORT, SANDBOX_PID. Its log: $BENCH_TMP/sandbox.log
# SANDBOX_CONFIG: another sandbox config (default config/sandbox.json).
start_sandbox() {
  "$SANDBOX" --config "${SANDBOX_CONFIG:-$ROOT/config/sandbox.json}" --listen 127.0.0.1:0 >"$BENCH_TMP/sandbox.log" 2>&1 &
  SANDBOX_PID=$!
  BENCH_PIDS+=("$SANDBOX_PID")
  SANDBOX_PORT=""
  for _ in $(seq 1 200); do
    SANDBOX_PORT=$(grep -m1 '"msg":"listening"' "$BENCH_TMP/sandbox.log" 2>/dev/null |
                   sed -n 's/.*"port":\([0-9]*\).*/\1/p' || true)
    [ -n "$SANDBOX_PORT" ] && break
    kill -0 "$SANDBOX_PID" 2>/dev/null || { cat "$BENCH_TMP/sandbox.log" >&2; die "sandbox exited"; }
    sleep 0.05
  done
  [ -n "$SANDBOX_PORT" ] || die "sandbox did not report its port"
  wait_http "http://127.0.0.1:$SANDBOX_PORT/healthz" || die "sandbox not healthy"
}

# [scale] start_redis: Debian's redis-server on a free loopback port, without
# persistence; sets REDIS_PORT and REDIS_PID (stopped by bench_cleanup).
start_redis() {
  command -v redis-server >/dev/null || die "redis-server is not installed (packages.txt lists it)"
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --loglevel warning \
    >"$BENCH_TMP/redis.log" 2>&1 &
  REDIS_PID=$!
  BENCH_PIDS+=("$REDIS_PID")
  for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" PING >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "redis-server did not start (see $BENCH_TMP/redis.log)"
}

# redis_commands: commands Redis has run so far, its own INFO calls left out.
redis_commands() {
  redis-cli -p "$REDIS_PORT" INFO commandstats |
    awk -F'[:=,]' '/^cmdstat_/ && $1 != "cmdstat_info" {s += $3} END {print s + 0}'
}

# recgate_config NAME PORT DB UPSTREAM_PORT EXTRA_JSON -> path of the config file.
# Fills tests/support/recgate.template.json, the template the integration
# harness uses too (so benchmarks and tests run the same configuration).
# EXTRA_JSON: additional top-level members, e.g. '"cache":{"memory_entries":2000000}'.
# mws.check_interval_s is one week so that hits never re-check upstream.
recgate_config() {
  local name=$1 port=$2 db=$3 up=$4 extra=${5:-}
  local f=$BENCH_TMP/$name.json
  python3 - "$ROOT/tests/support/recgate.template.json" "$f" "$port" "$db" "${RECGATE_THREADS:-2}" "$up" "$extra" \
    <<'PY' || die "cannot write $f"
import sys
tmpl, out, port, db, threads, up, extra = sys.argv[1:8]
values = {
    "LISTEN": "127.0.0.1:" + port,
    "DATABASE": db,
    "THREADS": threads,
    "EXTRA": '"log":{"level":"warn"},' + (extra + "," if extra else ""),
    "MWS_EXTRA": ',"check_interval_s":604800',
    "ADS_EXTRA": "",
    "UPSTREAM": "http://127.0.0.1:" + up,
}
text = open(tmpl).read()
for k, v in values.items():
    text = text.replace("@" + k + "@", v)
open(out, "w").write(text)
PY
  echo "$f"
}

# start_recgate NAME CONFIG PORT: sets RG_PID and RG_START_S (spawn -> /healthz answering).
start_recgate() {
  local name=$1 cfg=$2 port=$3
  local t0 t1
  t0=$(date +%s.%N)
  # RG_CPUS: pin recgate to these CPUs (taskset list, e.g. "1").
  if [ -n "${RG_CPUS:-}" ]; then
    taskset -c "$RG_CPUS" "$RECGATE" --config "$cfg" >"$BENCH_TMP/$name.log" 2>&1 &
  else
    "$RECGATE" --config "$cfg" >"$BENCH_TMP/$name.log" 2>&1 &
  fi
  RG_PID=$!
  BENCH_PIDS+=("$RG_PID")
  local ok=0
  for _ in $(seq 1 6000); do   # up to ~5 min (loading 1M entries)
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; then ok=1; break; fi
    kill -0 "$RG_PID" 2>/dev/null || { cat "$BENCH_TMP/$name.log" >&2; die "recgate ($name) exited"; }
    sleep 0.05
  done
  [ $ok = 1 ] || die "recgate ($name) did not come up"
  t1=$(date +%s.%N)
  RG_START_S=$(python3 -c "print(f'{$t1-$t0:.2f}')")
}

rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
hwm_mib() { awk '/^VmHWM:/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

# metric PORT NAME_AND_LABELS_REGEX: sums the matching series of recgate's /metrics.
metric() {
  curl -fsS "http://127.0.0.1:$1/metrics" | python3 -c '
import re, sys
pat = re.compile(sys.argv[1])
tot = 0.0
for line in sys.stdin:
    if line.startswith("#"): continue
    name, _, val = line.rstrip().rpartition(" ")
    if pat.search(name): tot += float(val)
print(int(tot) if tot == int(tot) else tot)' "$2"
}

# run_wrk LABEL URL [extra wrk args...]: runs wrk with WRK_ARGS and the report
# script; prints wrk's own output to stderr and one line
#   WRK label=... rps=... p50_us=... p99_us=... ...
# on stdout. BENCH_KEYS / BENCH_PATH_PREFIX in the environment switch the Lua
# script to random keys. A run with any non-2xx answer or socket error (connect,
# read, write, timeout), or with no request at all, fails the bench: figures
# from a run that was partly errors would flatter it.
run_wrk() {
  local label=$1 url=$2
  shift 2
  local out
  # shellcheck disable=SC2086
  # WRK_CPUS: pin wrk to these CPUs.
  local pin=()
  [ -n "${WRK_CPUS:-}" ] && pin=(taskset -c "$WRK_CPUS")
  out=$("${pin[@]}" wrk ${WRK_ARGS:--t2 -c32 -d15s} --latency -s "$BENCH_DIR/wrk_report.lua" "$@" "$url" 2>&1)
  echo "$out" | sed "s|^|    [$label] |" >&2
  local j
  j=$(echo "$out" | sed -n 's/^WRKJSON //p')
  [ -n "$j" ] || die "wrk gave no report for $label"
  python3 - "$label" "$j" <<'PY' || die "wrk run $label had errors (see above)"
import json, sys
label, j = sys.argv[1], json.loads(sys.argv[2])
rps = j["requests"] / (j["duration_us"] / 1e6)
errs = j["errors_connect"] + j["errors_read"] + j["errors_write"] + j["errors_timeout"]
print(f"WRK label={label} rps={rps:.0f} p50_us={j['p50_us']} p90_us={j['p90_us']} p99_us={j['p99_us']} "
      f"p999_us={j['p999_us']} max_us={j['max_us']} mean_us={j['mean_us']:.0f} requests={j['requests']} "
      f"non2xx={j['errors_status']} sockerr={errs} bytes={j['bytes']}")
if j["requests"] == 0 or j["errors_status"] or errs:
    print(f"wrk {label}: {j['requests']} requests, {j['errors_status']} non-2xx, socket errors: "
          f"connect {j['errors_connect']} read {j['errors_read']} write {j['errors_write']} "
          f"timeout {j['errors_timeout']}", file=sys.stderr)
    sys.exit(1)
PY
}

# require_hits PORT HITS_BEFORE REQUESTS LABEL: recgate's hit lookups grew by at
# least REQUESTS (every answered wrk request was a hit; requests in flight when
# wrk stopped may add a few more) and no miss or stale lookup happened since
# MISSES_BEFORE (env, default: not checked).
require_hits() {
  local port=$1 before=$2 requests=$3 label=$4 after misses
  after=$(metric "$port" 'recgate_cache_lookups_total\{.*result="hit"')
  [ "$requests" -gt 0 ] || die "$label: no wrk requests counted"
  [ $((after - before)) -ge "$requests" ] ||
    die "$label: hit lookups grew by $((after - before)), fewer than the $requests requests wrk made: not all were hits"
  if [ -n "${MISSES_BEFORE:-}" ]; then
    misses=$(metric "$port" 'recgate_cache_lookups_total\{.*result="(miss|stale)"')
    [ "$misses" -eq "$MISSES_BEFORE" ] || die "$label: $((misses - MISSES_BEFORE)) miss/stale lookups during the runs"
  fi
}

# wrk_requests RESULTS PATTERN: the summed requests= of the WRK lines matching PATTERN.
wrk_requests() {
  grep -E "$2" "$1" | sed -n 's/.*requests=\([0-9]*\).*/\1/p' | awk '{s+=$1} END {print s+0}'
}

# migrate_db DB: lets recgate create its schema in DB (start once, stop).
migrate_db() {
  local db=$1 port cfg
  port=$(free_port)
  cfg=$(recgate_config migrate "$port" "$db" 1)
  start_recgate migrate "$cfg" "$port"
  stop_pid "$RG_PID"
}

# populate DB N [populate_db.py args...]: schema + N fresh Selection entries.
populate() {
  local db=$1 n=$2
  shift 2
  mkdir -p "$(dirname "$db")"
  migrate_db "$db"
  python3 "$BENCH_DIR/populate_db.py" --db "$db" --entries "$n" "$@"
}

# wrk_run LABEL CONNS DURATION URL [wrk args...]: one run_wrk with WRK_THREADS (default 2)
# threads; wrk's own output goes to $BENCH_TMP/wrk.log. Prints the WRK line;
# ends the bench (with wrk's last lines) when the run had any error.
wrk_run() {
  local label=$1 conns=$2 dur=$3 url=$4
  shift 4
  WRK_ARGS="-t${WRK_THREADS:-2} -c$conns -d$dur" run_wrk "$label" "$url" "$@" 2>>"$BENCH_TMP/wrk.log" ||
    { tail -25 "$BENCH_TMP/wrk.log" >&2; die "wrk run $label failed"; }
}
rps_of() { sed -n 's/.* rps=\([0-9]*\).*/\1/p' <<<"$1"; }

# get_hit URL HEADERS BODY: fetches URL into the two files; ends the bench
# unless recgate answered from its cache (Cache-Status: recgate; hit).
get_hit() {
  curl -fsS -D "$2" -o "$3" "$1" || die "GET $1 failed"
  grep -qi '^Cache-Status: recgate; hit' "$2" || { cat "$2" >&2; die "not a cache hit: $1"; }
}

# cpu_ticks PID: user + system CPU time of a process (all its threads) and of
# its running children (nginx's workers) so far, in clock ticks (getconf
# CLK_TCK, 100 per second on Linux).
cpu_ticks() {
  local p t=0
  for p in "$1" $(pgrep -P "$1" || true); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}

# wrk_pairs PAIRS CONNS DURATION TAGS NAME_A URL_A PID_A NAME_B URL_B PID_B [wrk args...]:
# interleaved runs A, B, B, A, A, B, ... (PAIRS pairs), so neither side always
# runs first or always runs on a machine that just got busier. Prints each
# WRK line with label NAME#pair and TAGS appended, on stdout (and stderr, for
# progress). With a PID (not "-"), the line also says cpu_ms=: the CPU time
# that process spent during the run, which a busy machine disturbs far less
# than req/s.
wrk_pairs() {
  local pairs=$1 conns=$2 dur=$3 tags=$4 p who order line t0
  local -A url=([$5]=$6 [$8]=$9) pid=([$5]=$7 [$8]=${10})
  local extra=("${@:11}")  # e.g. -H Accept-Encoding:gzip
  for p in $(seq 1 "$pairs"); do
    order="$5 $8"
    [ $((p % 2)) = 1 ] || order="$8 $5"
    for who in $order; do
      [ "${pid[$who]}" = - ] || t0=$(cpu_ticks "${pid[$who]}")
      line="$(wrk_run "$who#$p" "$conns" "$dur" "${url[$who]}" "${extra[@]}") $tags" || exit 1
      [ "${pid[$who]}" = - ] ||
        line+=" cpu_ms=$(( ($(cpu_ticks "${pid[$who]}") - t0) * 1000 / $(getconf CLK_TCK) ))"
      echo "$line" >&2
      echo "$line"
    done
  done
}

# fastest_variant LABEL CONNS PATH [wrk args...]: a SCREEN-long run on PATH
# per nginx variant in VARIANTS (ports in the caller's NG_PORT), each WRK line
# (label screen-VARIANT-LABEL) appended to $SCREENS; sets BEST to the fastest.
fastest_variant() {
  local label=$1 conns=$2 path=$3 v line r best_rps=0
  shift 3
  BEST=""
  for v in $VARIANTS; do
    line=$(wrk_run "screen-$v-$label" "$conns" "$SCREEN" "http://127.0.0.1:${NG_PORT[$v]}$path" "$@")
    echo "$line" >>"$SCREENS"
    r=$(rps_of "$line")
    [ "$r" -gt "$best_rps" ] && { BEST=$v; best_rps=$r; }
  done
  log "$label: fastest nginx variant $BEST ($best_rps req/s in screening)"
}

# The answer start_filled stores: one MWS category, filled from the sandbox.
FILLED_PATH="/v1/mws/main/recommendations?marketplace=$MP&category=Selection"

# start_filled NAME BINARY: a recgate (BINARY, which may be an older build) on
# its own empty database, with the sandbox (start_sandbox first) as upstream;
# asks FILLED_PATH once (a miss, fetched and stored) and checks that the next
# ask is a hit. Sets RG_PORT, RG_PID; the hit's headers and body are in
# $BENCH_TMP/NAME.h and NAME.body.
start_filled() {
  local name=$1 bin=$2 cfg url
  RG_PORT=$(free_port)
  cfg=$(recgate_config "$name" "$RG_PORT" "$BENCH_TMP/$name.db" "$SANDBOX_PORT")
  "$bin" --config "$cfg" --check-config >/dev/null 2>&1 || die "$name: $bin does not accept $cfg"
  RECGATE=$bin start_recgate "$name" "$cfg" "$RG_PORT"
  url="http://127.0.0.1:$RG_PORT$FILLED_PATH"
  curl -fsS -o /dev/null "$url" || die "$name: the first ask (a miss, filled from the sandbox) failed"
  get_hit "$url" "$BENCH_TMP/$name.h" "$BENCH_TMP/$name.body"
}

# same_answer BODY_A BODY_B: the same answer, byte for byte but for the time
# each recgate fetched it.
same_answer() { cmp -s <(sed 's/"fetchedAt":"[^"]*"//g' "$1") <(sed 's/"fetchedAt":"[^"]*"//g' "$2"); }

# start_sized_recgate PREFIX SIZES...: a database with one stored Selection
# answer per size (1k, 8k, 64k: bodies of that many bytes, filter
# BrandName=<PREFIX><size>0) and a recgate on it with no upstream. Sets
# RG_PORT, RG_PID. BYTES maps the size names to byte counts.
declare -A BYTES=([1k]=1024 [8k]=8192 [64k]=65536)
start_sized_recgate() {
  local prefix=$1 s db=$BENCH_TMP/recgate.db cfg
  shift
  migrate_db "$db"
  for s in "$@"; do
    [ -n "${BYTES[$s]:-}" ] || die "unknown size '$s' (allowed: 1k 8k 64k)"
    python3 "$BENCH_DIR/populate_db.py" --db "$db" --entries 1 --prefix "$prefix$s" --width 1 \
      --body-min "${BYTES[$s]}" --body-max "${BYTES[$s]}" >/dev/null
  done
  RG_PORT=$(free_port)
  cfg=$(recgate_config recgate "$RG_PORT" "$db" 1)
  start_recgate recgate "$cfg" "$RG_PORT"
  log "recgate :$RG_PORT (pid $RG_PID, up in ${RG_START_S}s)"
}

# nginx_variant V: how nginx variant V is tuned, as NGX_SENDFILE, NGX_NOPUSH,
# NGX_OFC (open_file_cache directives) and NGX_RP (" reuseport" on listen).
#   plain sendfile off; sf sendfile on; nopush sendfile and tcp_nopush on;
#   ofc + open_file_cache; ofc_rp, shm + reuseport; ofc_rp_sf, shm_sf + sendfile.
nginx_variant() {
  local ofc="open_file_cache max=1000 inactive=60s; open_file_cache_valid 60s;"
  NGX_SENDFILE=off NGX_NOPUSH=off NGX_OFC="" NGX_RP=""
  case $1 in
    plain) ;;
    sf) NGX_SENDFILE=on ;;
    nopush) NGX_SENDFILE=on NGX_NOPUSH=on ;;
    ofc) NGX_OFC=$ofc ;;
    ofc_rp|shm) NGX_OFC=$ofc NGX_RP=" reuseport" ;;
    ofc_rp_sf|shm_sf) NGX_SENDFILE=on NGX_OFC=$ofc NGX_RP=" reuseport" ;;
    *) die "unknown nginx variant $1" ;;
  esac
}

# nginx_head V DIR: the start of variant V's nginx.conf (files under DIR):
# as many workers as recgate has threads, no access log, keep-alive without
# a request limit, V's tuning (nginx_variant, whose NGX_* it sets), and the
# temp paths. The caller adds its http directives and servers and closes http.
nginx_head() {
  local v=$1 ng=$2 user=""
  [ "$(id -u)" -eq 0 ] && user="user root;"
  nginx_variant "$v"
  cat <<EOF
$user
worker_processes ${RECGATE_THREADS:-2};
daemon off;
pid $ng/$v.pid;
error_log $ng/logs/$v.error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  sendfile $NGX_SENDFILE;
  tcp_nopush $NGX_NOPUSH;
  tcp_nodelay on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  $NGX_OFC
  client_body_temp_path $ng/tmp/$v.client;
  proxy_temp_path $ng/tmp/$v.proxy;
  fastcgi_temp_path $ng/tmp/$v.fastcgi;
  uwsgi_temp_path $ng/tmp/$v.uwsgi;
  scgi_temp_path $ng/tmp/$v.scgi;
EOF
}

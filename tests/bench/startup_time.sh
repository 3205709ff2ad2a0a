#!/usr/bin/env bash
# Start-up time with a small and a large database, side by side ([perf]
# item 4: ready in <= 0.3 s whatever the database holds). Rounds alternate
# small, large; each round spawns recgate on its database and polls it every
# millisecond over one raw socket (no curl process per poll), recording:
#   ready s : spawn -> first 200 from /healthz
#   answer s: spawn -> first hit on a stored answer (the newest row, which the
#             background fill loads first; the oldest comes from SQLite)
#   RSS MiB : resident memory right after that answer
# then stops it (SIGTERM). Prints every round and the medians.
#
# Environment: SMALL (1000), LARGE (1000000), BODY (512 bytes per body),
#   ROUNDS (5), QUICK=1 (LARGE=100000, ROUNDS=3), plus lib.sh's BUILD_DIR,
#   NO_BUILD, KEEP_TMP.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

if [ "${QUICK:-0}" = 1 ]; then
  LARGE=${LARGE:-100000}
  ROUNDS=${ROUNDS:-3}
fi
SMALL=${SMALL:-1000}
LARGE=${LARGE:-1000000}
BODY=${BODY:-512}
ROUNDS=${ROUNDS:-5}

need_tools
build_release
bench_init

PREFIX="/v1/mws/main/recommendations?marketplace=$MP&category=Selection&filter=BrandName%3DBrand"
declare -A N POP
N[small]=$SMALL
N[large]=$LARGE
for set in small large; do
  log "populating $set database: ${N[$set]} entries of $BODY B"
  POP[$set]=$(populate "$BENCH_TMP/$set/recgate.db" "${N[$set]}" --body-min "$BODY" --body-max "$BODY" | tail -1)
  log "  ${POP[$set]} ($(du -m "$BENCH_TMP/$set/recgate.db" | cut -f1) MB on disk)"
done

# spawn_and_time NAME CONFIG PORT KEY_PATH: prints "ready_s answer_s rss_mib".
spawn_and_time() {
  local name=$1 cfg=$2 port=$3 path=$4
  python3 - "$RECGATE" "$cfg" "$port" "$path" "$BENCH_TMP/$name.log" <<'PY'
import os, signal, socket, subprocess, sys, time
binary, cfg, port, path, logf = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]

def get(p):
    """One GET on a fresh connection; (status, cache-status) or None when refused."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
    except OSError:
        return None
    try:
        s.sendall(f"GET {p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        status = int(head[0].split()[1]) if head and len(head[0].split()) > 1 else 0
        cs = next((h.split(":", 1)[1].strip() for h in head[1:] if h.lower().startswith("cache-status:")), "")
        return status, cs
    except OSError:
        return None
    finally:
        s.close()

def until(pred, t0, limit_s=300):
    while time.monotonic() - t0 < limit_s:
        r = pred()
        if r:
            return time.monotonic() - t0
        if proc.poll() is not None:
            sys.exit(f"recgate exited with {proc.returncode}; see {logf}")
        time.sleep(0.001)
    sys.exit(f"recgate not ready within {limit_s} s; see {logf}")

with open(logf, "w") as out:
    t0 = time.monotonic()
    proc = subprocess.Popen([binary, "--config", cfg], stdout=out, stderr=subprocess.STDOUT)
    try:
        ready = until(lambda: (get("/healthz") or (0,))[0] == 200, t0)
        answer = until(lambda: (get(path) or (0, ""))[1].startswith("recgate; hit"), t0)
        rss = next(int(l.split()[1]) for l in open(f"/proc/{proc.pid}/status") if l.startswith("VmRSS:")) / 1024
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
print(f"{ready:.3f} {answer:.3f} {rss:.1f}")
PY
}

RESULTS=$BENCH_TMP/results.txt
: >"$RESULTS"
for r in $(seq 1 "$ROUNDS"); do
  for set in small large; do
    n=${N[$set]}
    port=$(free_port)
    cfg=$(recgate_config "$set" "$port" "$BENCH_TMP/$set/recgate.db" 1 \
          "\"cache\":{\"memory_entries\":$((n + n / 10 + 1000)),\"memory_bytes\":$(( (n + 1000) * (BODY + 1024) ))}")
    key="${PREFIX}$(printf '%06d' $((n - 1)))"
    line=$(spawn_and_time "$set-$r" "$cfg" "$port" "$key")
    echo "$set $r $line" | tee -a "$RESULTS" >&2
  done
done

echo "== startup_time: spawn -> ready with $SMALL vs $LARGE stored answers of $BODY B =="
echo "machine: $(nproc) CPUs, load avg: $(cut -d' ' -f1-3 /proc/loadavg); rounds: $ROUNDS (alternating)"
echo "databases: small ${POP[small]}; large ${POP[large]}"
python3 - "$RESULTS" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
print(f"{'set':<8}{'round':>6}{'ready s':>10}{'answer s':>10}{'RSS MiB':>10}")
for s, r, ready, ans, rss in rows:
    print(f"{s:<8}{r:>6}{float(ready):>10.3f}{float(ans):>10.3f}{float(rss):>10.1f}")
for s in ("small", "large"):
    mine = [x for x in rows if x[0] == s]
    print(f"MEDIAN {s}: ready {st.median(float(x[2]) for x in mine):.3f} s, first stored answer "
          f"{st.median(float(x[3]) for x in mine):.3f} s, RSS {st.median(float(x[4]) for x in mine):.1f} MiB")
PY

#!/usr/bin/env python3
"""Sustained over-quota demand against recgate; prints the upstream call rate.

CLIENTS threads each loop: GET a recommendations URL whose filter has never
been asked before (BrandName=B<run>-<n>, n unique), with `Prefer: wait=W`, so
every request needs one ListRecommendations call upstream. Stops issuing at
DURATION seconds and takes the figures then (requests still queued are
abandoned; the caller kills the processes).

Upstream calls are observed on the sandbox side: GET /admin/stats is polled
every POLL seconds and its "recent" request list (the last N requests, with
time, action and status) is merged, so every call's arrival time at the
sandbox is known. recgate's /metrics upstream counters are read as a cross-check.
"""
import argparse
import http.client
import itertools
import json
import re
import statistics
import sys
import threading
import time
import urllib.request
from datetime import datetime


def get_json(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def metrics_sum(url, pattern):
    pat = re.compile(pattern)
    tot = 0.0
    with urllib.request.urlopen(url, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, val = line.rpartition(" ")
            if pat.search(name):
                tot += float(val)
    return tot


def parse_time(s):
    # ISO 8601 with Z, optional fraction
    s = s.replace("Z", "+00:00")
    return datetime.fromisoformat(s).timestamp()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--recgate-port", type=int, required=True)
    ap.add_argument("--sandbox-port", type=int, required=True)
    ap.add_argument("--duration", type=float, default=120)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--wait", type=int, default=300)
    ap.add_argument("--poll", type=float, default=5)
    ap.add_argument("--marketplace", default="ATVPDKIKX0DER")
    a = ap.parse_args()

    run_tag = f"{int(time.time()) % 100000}"
    counter = itertools.count()
    stop = threading.Event()
    lock = threading.Lock()
    done = []  # (t_send, t_done, status, cache_status)
    rg_metrics = f"http://127.0.0.1:{a.recgate_port}/metrics"
    sb_stats = f"http://127.0.0.1:{a.sandbox_port}/admin/stats"

    def client():
        conn = None
        while not stop.is_set():
            n = next(counter)
            path = (f"/v1/mws/main/recommendations?marketplace={a.marketplace}&category=Selection"
                    f"&filter=BrandName%3DB{run_tag}-{n}")
            t0 = time.time()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", a.recgate_port, timeout=a.wait + 60)
                conn.request("GET", path, headers={"Prefer": f"wait={a.wait}"})
                r = conn.getresponse()
                r.read()
                st, cs = r.status, r.getheader("Cache-Status", "")
            except Exception as e:  # noqa: BLE001 - a bench client: count and go on
                if stop.is_set():
                    return
                st, cs = -1, type(e).__name__
                conn = None
            with lock:
                done.append((t0, time.time(), st, cs))

    seen = {}

    def poll_sandbox():
        try:
            s = get_json(sb_stats)
        except Exception as e:  # noqa: BLE001
            print(f"  (sandbox stats poll failed: {e})", file=sys.stderr)
            return None
        for r in s.get("recent", []):
            key = (r.get("request_id"), r.get("time"), r.get("action"))
            seen[key] = r
        return s

    base_list = metrics_sum(rg_metrics, r'recgate_upstream_requests_total\{.*operation="ListRecommendations(ByNextToken)?"')
    s0 = poll_sandbox()
    start = time.time()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(a.clients)]
    for t in threads:
        t.start()
    next_poll = start + a.poll
    next_report = start + 30
    while True:
        now = time.time()
        if now >= start + a.duration:
            break
        if now >= next_poll:
            poll_sandbox()
            next_poll += a.poll
        if now >= next_report:
            with lock:
                ok = sum(1 for d in done if d[2] == 200)
            print(f"  t={now - start:5.0f}s  answered 200: {ok}", file=sys.stderr)
            next_report += 30
        time.sleep(min(0.2, max(0.0, start + a.duration - now)))
    end = time.time()
    stop.set()
    final = poll_sandbox() or {}
    rg_list = metrics_sum(rg_metrics, r'recgate_upstream_requests_total\{.*operation="ListRecommendations(ByNextToken)?"') - base_list
    rg_list_200 = metrics_sum(rg_metrics, r'recgate_upstream_requests_total\{.*operation="ListRecommendations(ByNextToken)?".*status="200"')
    by_action = final.get("requests", {}).get("by_action", {})
    sb_list_total = by_action.get("ListRecommendations", 0) + by_action.get("ListRecommendationsByNextToken", 0)
    throttled = final.get("throttled", {}).get("total", None)
    min_tokens = [b.get("min_tokens") for b in final.get("buckets", []) if b.get("operation") == "ListRecommendations"]
    with lock:
        answered = list(done)

    # Sandbox-side arrival times of accepted ListRecommendations* calls inside the window.
    calls = sorted(parse_time(r["time"]) for r in seen.values()
                   if r.get("action", "").startswith("ListRecommendations") and r.get("status") == 200)
    in_window = [t for t in calls if t <= end + 0.5]
    D = end - start
    n = len(in_window)
    print()
    print(f"== throttle_sustained: {a.clients} clients, each request a new filter (one ListRecommendations), "
          f"Prefer: wait={a.wait}, {D:.0f} s ==")
    st = {}
    for d in answered:
        st[d[2]] = st.get(d[2], 0) + 1
    print(f"client answers by status: {dict(sorted(st.items()))}  (requests still queued at the end are not counted)")
    lat = [d[1] - d[0] for d in answered if d[2] == 200]
    if lat:
        print(f"client wait per answered request: median {statistics.median(lat):.1f} s, max {max(lat):.1f} s")
    print(f"upstream ListRecommendations calls: sandbox saw {sb_list_total} (accepted in window, from its request log: {n}); "
          f"recgate /metrics counted {rg_list:.0f} ({rg_list_200:.0f} with status 200)")
    print(f"sandbox throttled responses (GET /admin/stats throttled.total): {throttled}   (target 0)")
    if min_tokens:
        print(f"sandbox ListRecommendations bucket: lowest level reached {min_tokens[0]} tokens of 8")
    # Enforced, not only printed: the bench fails when the sandbox throttled
    # anything, a client got anything but 200 (max_wait 600 lets every request
    # queue), or nothing reached upstream.
    problems = []
    if throttled != 0:
        problems.append(f"the sandbox throttled {throttled} requests (must be 0)")
    if any(code != 200 for code in st):
        problems.append(f"clients got non-200 answers: { {k: v for k, v in st.items() if k != 200} }")
    if n == 0:
        problems.append("no upstream calls observed")
    if not any(code == 200 for code in st):
        problems.append("no client request was answered")
    if n == 0:
        fail(problems)
    t0 = in_window[0]
    burst = [t for t in in_window if t - t0 <= 0.25]
    print("first calls, s after the first: " + " ".join(f"{t - t0:.2f}" for t in in_window[:12]))
    allowed_total = 8 + 0.5 * D
    print(f"overall: {n} calls in {D:.1f} s = {n / D:.3f}/s; Amazon would accept at most 8 + 0.5*{D:.0f} = "
          f"{allowed_total:.0f} in this window -> {n / allowed_total * 100:.1f} % of the accepted maximum; "
          f"vs the 0.5/s rate alone: {n / D / 0.5 * 100:.1f} %")
    print(f"initial burst: {len(burst)} calls within 0.25 s of the first "
          f"(recgate's level-based margin grants only while the level is >= 1.25 tokens)")
    skip = min(10.0, D / 3)
    post = [t for t in in_window if t - t0 >= skip]
    if len(post) >= 2:
        span = post[-1] - post[0]
        rate = (len(post) - 1) / span
        gaps = [b - a_ for a_, b in zip(post, post[1:])]
        print(f"steady state (calls from {skip:.0f} s after the first on): {len(post)} calls, {len(post) - 1} "
              f"intervals over {span:.1f} s = {rate:.4f}/s = {rate / 0.5 * 100:.1f} % of 0.5/s   (target >= 95 %)")
        print(f"  interval between calls: median {statistics.median(gaps):.3f} s, min {min(gaps):.3f} s, "
              f"max {max(gaps):.3f} s (ideal 2.000 s)")
        after_burst = in_window[len(burst):]
        print(f"  excluding only the {len(burst)}-call burst: {len(after_burst)} calls in "
              f"{end - in_window[len(burst) - 1]:.1f} s after it = "
              f"{len(after_burst) / (end - in_window[len(burst) - 1]):.4f}/s")
    try:
        s = get_json(f"http://127.0.0.1:{a.recgate_port}/v1/status")
        for b in s.get("buckets", []):
            if "ListRecommendations" in b.get("operation", ""):
                print(f"recgate bucket {b['operation']} at the end: tokens {b['tokens']:.3f}, waiters {b['waiters']}, "
                      f"next token in {b['nextTokenSeconds']:.2f} s")
    except Exception as e:  # noqa: BLE001
        print(f"(recgate /v1/status failed: {e})")
    fail(problems)


def fail(problems):
    """Exits 1 naming each problem; returns when there is none."""
    for p in problems:
        print(f"throttle_sustained: FAIL: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()

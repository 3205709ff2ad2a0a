#!/usr/bin/env python3
"""[proof] soak: recgate under a mixed load for DURATION seconds (default 300):
cache hits, misses across two accounts and two marketplaces (MWS) and new
Ads requests, requests with Prefer: wait=0 that may get the 429s they ask
for, purges (DELETE /v1/cache) and restarts of the sandbox. Every 10 s it
prints throughput, hit p50/p99, recgate's RSS and open fds; at the end the
sandbox's throttle count and the client-visible errors. Exits 1 when RSS or
fds grow in the last third beyond a tolerance, the sandbox throttled, or a
client saw an error other than a 429 it asked for. Writes a PNG plot when
python3-matplotlib is installed (skipped with a note otherwise)."""
import argparse
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proof_lib import KeepAliveClient, Proc, Procs, free_port, log, percentile, request, wait_for  # noqa: E402

ACCOUNTS = ("main", "second")
MARKETPLACES = ("ATVPDKIKX0DER", "A2EUQ1WTGCTBG2")
CATEGORIES = ("Inventory", "Pricing", "Fulfillment", "Advertising", "Selection")
SECOND = {"seller_id": "A2SECONDSELLER", "access_key_id": "AKIASANDBOXSECOND",
          "secret_key": "sandbox-second-secret-not-for-production", "auth_token": "amzn.mws.sandbox-second"}
ADS_PATH = "/v1/ads/main/product-recommendations"


def sandbox_config(path):
    """The repository's sandbox config with a second seller and quicker MWS buckets
    (10 per s), so that misses are not limited to Amazon's 0.5 per s."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "config", "sandbox.json")) as f:
        cfg = json.load(f)
    cfg["sellers"].append(SECOND)
    for op in ("ListRecommendations", "GetLastUpdatedTimeForRecommendations"):
        cfg["throttle"][op] = {"capacity": 20, "restore_every_ms": 100}
    with open(path, "w") as f:
        json.dump(cfg, f)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.hit_lat = []
        self.errors = []
        self.asked_429 = 0
        self.by_kind = {}

    def add(self, kind, status, ms=None, asked_429=False):
        with self.lock:
            self.requests += 1
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
            if ms is not None:
                self.hit_lat.append(ms)
            if status == 429 and asked_429:
                self.asked_429 += 1
            elif status not in (200, 204):
                self.errors.append("%s %s" % (kind, status))

    def take(self):
        with self.lock:
            r, lat = self.requests, self.hit_lat
            self.requests, self.hit_lat = 0, []
            return r, lat


class Soak:
    def __init__(self, procs, sandbox_port, duration):
        self.procs, self.sandbox_port, self.duration = procs, sandbox_port, duration
        self.stats = Stats()
        self.stop = threading.Event()
        self.upstream_ok = threading.Event()  # cleared while the sandbox restarts
        self.upstream_ok.set()
        self.inflight = 0  # requests that may go upstream, sent and not yet answered
        self.inflight_cv = threading.Condition()
        self.throttles = 0
        self.sandbox_restarts = 0
        self.purges = 0
        self.port = procs.recgate.port

    def upstream_request(self, *args, **kw):
        """A request that may reach the sandbox: not started while it restarts, and counted."""
        with self.inflight_cv:
            self.inflight_cv.wait_for(lambda: self.upstream_ok.is_set())
            self.inflight += 1
        try:
            return request(self.port, *args, **kw)
        finally:
            with self.inflight_cv:
                self.inflight -= 1
                self.inflight_cv.notify_all()

    def hit_urls(self):
        return ["/v1/mws/%s/recommendations?marketplace=%s&category=%s" % (a, m, c)
                for a in ACCOUNTS for m in MARKETPLACES for c in CATEGORIES[:4]]

    def hits(self, k):
        cl = KeepAliveClient(self.port)
        urls = self.hit_urls()
        i = k
        while not self.stop.is_set():
            t0 = time.perf_counter()
            status, h, _ = cl.get(urls[i % len(urls)])
            ms = (time.perf_counter() - t0) * 1000
            # Purges make some of these misses again; only hits count for latency.
            self.stats.add("hit", status, ms if "hit" in h.get("cache-status", "") else None)
            i += 1
        cl.close()

    def misses(self, k):
        n = 0
        while not self.stop.is_set():
            n += 1
            if n % 2:
                a, m = ACCOUNTS[n % 2], MARKETPLACES[(n // 2) % 2]
                status, _, _ = self.upstream_request("GET", "/v1/mws/%s/recommendations?marketplace=%s&category=Selection"
                                       "&filter=BrandName%%3DS%d-%d" % (a, m, k, n))
                self.stats.add("mws_miss", status)
            else:
                body = json.dumps({"adAsins": ["B%09d" % (k * 100000000 + n)], "count": 1 + n % 5})
                status, _, _ = self.upstream_request("POST", ADS_PATH, body, {"Content-Type": "application/json"})
                self.stats.add("ads_miss", status)

    def impatient(self):
        """New Ads requests with Prefer: wait=0, faster than the bucket restores: 429s asked for."""
        n = 0
        while not self.stop.wait(0.1):
            n += 1
            body = json.dumps({"adAsins": ["C%09d" % n], "count": 3})
            status, _, _ = self.upstream_request("POST", ADS_PATH, body,
                                   {"Content-Type": "application/json", "Prefer": "wait=0"})
            self.stats.add("ads_wait0", status, asked_429=True)

    def purges_loop(self):
        i = 0
        while not self.stop.wait(7):
            i += 1
            q = "?account=%s&marketplace=%s" % (ACCOUNTS[i % 2], MARKETPLACES[(i // 2) % 2])
            status, _, _ = request(self.port, "DELETE", "/v1/cache" + q)
            self.stats.add("purge", status)
            self.purges += 1

    def sandbox_stats(self):
        status, _, body = request(self.sandbox_port, "GET", "/admin/stats")
        if status != 200:
            return None
        d = json.loads(body)
        return d["throttled"]["total"] + d["ads"]["rate_limited"]

    def restarts_loop(self):
        while not self.stop.wait(45):
            with self.inflight_cv:
                self.upstream_ok.clear()
                # Requests already sent finish first (their answers count); bounded by their own timeout.
                self.inflight_cv.wait_for(lambda: self.inflight == 0, timeout=60)
            t = self.sandbox_stats()
            self.throttles += t or 0
            self.procs.sandbox.stop(signal.SIGTERM)
            self.procs.sandbox = Proc([self.procs.sandbox_bin, "--config", self.procs.sandbox_config, "--listen",
                                       "127.0.0.1:%d" % self.sandbox_port],
                                      os.path.join(self.procs.dir, "sandbox-%d.log" % self.sandbox_restarts))
            self.sandbox_restarts += 1
            with self.inflight_cv:
                self.upstream_ok.set()
                self.inflight_cv.notify_all()

    def run(self):
        rg = self.procs.recgate
        workers = [threading.Thread(target=self.hits, args=(k,)) for k in range(2)]
        workers += [threading.Thread(target=self.misses, args=(k,)) for k in range(2)]
        workers += [threading.Thread(target=f) for f in (self.impatient, self.purges_loop, self.restarts_loop)]
        for w in workers:
            w.start()
        samples = []
        t0 = time.time()
        last_cpu = rg.cpu_s()
        try:
            while time.time() - t0 < self.duration:
                time.sleep(min(10, max(0.1, self.duration - (time.time() - t0))))  # the sampling period
                n, lat = self.stats.take()
                cpu = rg.cpu_s()
                s = {"t": round(time.time() - t0), "rps": n / 10.0, "p50_ms": percentile(lat, 50),
                     "p99_ms": percentile(lat, 99), "rss_mib": rg.rss_kib() / 1024.0, "fds": rg.fds(),
                     "cpu_pct": (cpu - last_cpu) / 10 * 100}
                last_cpu = cpu
                samples.append(s)
                print("SOAK t=%(t)ds rps=%(rps).0f hit_p50_ms=%(p50_ms).2f hit_p99_ms=%(p99_ms).2f "
                      "rss_mib=%(rss_mib).1f fds=%(fds)d cpu_pct=%(cpu_pct).0f" % s, flush=True)
        finally:
            self.stop.set()
            with self.inflight_cv:
                self.upstream_ok.set()
                self.inflight_cv.notify_all()
            for w in workers:
                w.join()
        t = self.sandbox_stats()
        self.throttles += t or 0
        return samples


def flat(samples, key, rel, absolute):
    """The last third's maximum is within tolerance of the middle third's (after warm-up)."""
    n = len(samples)
    if n < 3:
        return True, "too few samples"
    mid = [s[key] for s in samples[n // 3: 2 * n // 3]]
    last = [s[key] for s in samples[2 * n // 3:]]
    ok = max(last) <= max(mid) * (1 + rel) + absolute
    return ok, "middle third max %.1f, last third max %.1f" % (max(mid), max(last))


PANELS = (("rps", "requests/s"), ("p99_ms", "hit p99 (ms)"), ("rss_mib", "RSS (MiB)"), ("fds", "open fds"))


def write_svg(samples, path):
    """The same four curves as a plain SVG (no plotting library needed)."""
    w, h, left, top = 480, 110, 70, 20
    t_max = max(s["t"] for s in samples) or 1
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
           'font-size="11">' % (w + left + 10, len(PANELS) * (h + top) + 30)]
    for i, (key, label) in enumerate(PANELS):
        y0 = i * (h + top) + top
        vals = [s[key] for s in samples]
        v_max = max(v for v in vals if v == v) or 1
        pts = " ".join("%.1f,%.1f" % (left + s["t"] / t_max * w, y0 + h - (v if v == v else 0) / v_max * h)
                       for s, v in zip(samples, vals))
        out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>' % (left, y0, w, h))
        out.append('<polyline points="%s" fill="none" stroke="#1f77b4" stroke-width="1.5"/>' % pts)
        out.append('<text x="4" y="%d">%s</text>' % (y0 + h // 2, label))
        out.append('<text x="%d" y="%d" text-anchor="end">%.4g</text>' % (left - 4, y0 + 10, v_max))
        out.append('<text x="%d" y="%d" text-anchor="end">0</text>' % (left - 4, y0 + h))
    out.append('<text x="%d" y="%d" text-anchor="middle">seconds (0-%d)</text>' %
               (left + w // 2, len(PANELS) * (h + top) + 15, t_max))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out))


def plot(samples, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        svg = os.path.splitext(path)[0] + ".svg"
        write_svg(samples, svg)
        print("SOAK PNG plot skipped: python3-matplotlib is not installed (Debian package python3-matplotlib); "
              "wrote %s instead" % svg)
        return
    t = [s["t"] for s in samples]
    fig, ax = plt.subplots(4, 1, figsize=(6, 7), sharex=True)
    for a, (key, label) in zip(ax, PANELS):
        a.plot(t, [s[key] for s in samples])
        a.set_ylabel(label)
        a.set_ylim(bottom=0)
    ax[-1].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    print("SOAK plot written to %s" % path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--recgate", required=True)
    ap.add_argument("--sandbox", required=True)
    ap.add_argument("--duration", type=int, default=int(os.environ.get("DURATION", "300")))
    ap.add_argument("--plot", default=os.environ.get("PLOT", ""))
    a = ap.parse_args()
    if not 10 <= a.duration <= 24 * 3600:
        print("DURATION must be 10..86400 seconds")
        return 2
    procs = Procs(a.recgate, a.sandbox)
    try:
        procs.sandbox_config = os.path.join(procs.dir, "sandbox.json")
        sandbox_config(procs.sandbox_config)
        sandbox_port = free_port()
        procs.sandbox = Proc([a.sandbox, "--config", procs.sandbox_config, "--listen", "127.0.0.1:%d" % sandbox_port],
                             os.path.join(procs.dir, "sandbox.log"))
        cfg = procs.recgate_config({"throttle": {"buckets": {
            "mws.ListRecommendations": {"capacity": 20, "restore_per_s": 10},
            "mws.GetLastUpdatedTimeForRecommendations": {"capacity": 20, "restore_per_s": 10},
            "ads.ProductRecommendations": {"capacity": 10, "restore_per_s": 2}}}},
            {"check_interval_s": 60})
        cfg["mws"]["accounts"]["second"] = SECOND
        rg = procs.start_recgate(cfg)
        soak = Soak(procs, sandbox_port, a.duration)
        for u in soak.hit_urls():  # the hit set, stored before the clock starts
            wait_for(lambda: request(rg.port, "GET", u)[0] == 200, 60)
        log("soak: %d s of mixed load against recgate pid %d" % (a.duration, rg.pid))
        samples = soak.run()
        alive = rg.alive()
    finally:
        procs.close()
    st = soak.stats
    lat_all = [s for s in samples]
    total = sum(s["rps"] * 10 for s in lat_all)
    print("SOAK summary duration_s=%d requests=%d by_kind=%s purges=%d sandbox_restarts=%d asked_429=%d "
          "sandbox_throttles=%d client_errors=%d" % (a.duration, total, json.dumps(st.by_kind, sort_keys=True),
                                                      soak.purges, soak.sandbox_restarts, st.asked_429,
                                                      soak.throttles, len(st.errors)))
    failures = []
    rss_ok, rss_msg = flat(samples, "rss_mib", 0.10, 4)
    fds_ok, fds_msg = flat(samples, "fds", 0.0, 8)
    print("SOAK rss %s; fds %s" % (rss_msg, fds_msg))
    if not rss_ok:
        failures.append("RSS grew in the last third: " + rss_msg)
    if not fds_ok:
        failures.append("open fds grew in the last third: " + fds_msg)
    if soak.throttles != 0:
        failures.append("the sandbox throttled %d requests" % soak.throttles)
    if st.errors:
        failures.append("client-visible errors: %s" % ", ".join(sorted(set(st.errors))[:10]))
    if not alive:
        failures.append("recgate exited during the soak")
    if a.plot:
        plot(samples, a.plot)
    for f in failures:
        print("FAIL: " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

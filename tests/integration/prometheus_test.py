#!/usr/bin/python3
"""A real Prometheus (Debian's package) scraping a real recgate, with the rules loaded.

Usage: prometheus_test.py RECGATE_BIN SANDBOX_BIN SOURCE_DIR [PROMETHEUS_BIN]

Starts recgate-sandbox and recgate (port 0, temporary database) and Prometheus
(free loopback port, temporary storage) with docker/prometheus/alerts.yml,
makes traffic that touches every metric the dashboard shows (a miss, a hit,
an Ads answer with an LWA refresh, an upstream throttle, an upstream error
served stale, coalesced requests, a 429), then checks: the target is up, every rule evaluates
with health "ok", the throttle and stale alerts fire and the LWA one does
not, and every query of docker/grafana/recgate.json returns data.
Every process is stopped at the end. Exit 0 on success.
"""
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

DEADLINE_S = 60  # bound of every wait below


class Child:
    """A child process whose output lines are collected by a reader thread."""

    def __init__(self, argv, name):
        self.name = name
        self.lines = queue.Queue()
        self.log = []
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.log.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_for_port(self):
        end = time.monotonic() + DEADLINE_S
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            if '"msg":"listening"' in line:
                return json.loads(line)["port"]
        raise RuntimeError(f"{self.name} did not report its port:\n{''.join(self.log)}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def http(port, method, path, body=None, headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=body.encode() if body is not None else None, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def expect(port, method, path, status, body=None, headers=None):
    got, text = http(port, method, path, body, headers)
    if got != status:
        raise AssertionError(f"{method} {path}: expected {status}, got {got}: {text}")
    return text


def wait_until(what, pred):
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(0.2)  # polling Prometheus' API: it offers nothing to block on
    raise AssertionError(f"timed out waiting for {what}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recgate_config(tmp, sandbox_port):
    base = f"http://127.0.0.1:{sandbox_port}"
    return {
        "listen": "127.0.0.1:0", "database": os.path.join(tmp, "db", "recgate.db"), "threads": 2,
        "log": {"access": False},
        # Ads: 2 tokens and almost no restore, so the third distinct request gets a 429.
        "throttle": {"buckets": {"ads.ProductRecommendations": {"capacity": 2, "restore_per_s": 0.001}}},
        "mws": {"endpoint": base, "check_interval_s": 0, "accounts": {"main": {
            "seller_id": "A1XEXAMPLEDF", "access_key_id": "AKIASANDBOXEXAMPLE",
            "secret_key": "sandbox-secret-key-not-for-production", "auth_token": "amzn.mws.sandbox-token"}}},
        "ads": {"endpoint": base, "token_endpoint": base + "/auth/o2/token", "accounts": {"main": {
            "region": "NA", "client_id": "amzn1.application-oa2-client.sandbox",
            "client_secret": "sandbox-client-secret", "refresh_token": "Atzr|sandbox-refresh-token",
            "profile_id": "904444984714944"}}},
    }


def make_traffic(rg, sb):
    mws = "/v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category="
    ads = "/v1/ads/main/product-recommendations"
    js = {"Content-Type": "application/json"}
    expect(rg, "GET", mws + "Inventory", 200)                      # miss
    expect(rg, "GET", mws + "Inventory", 200)                      # hit
    expect(rg, "POST", ads, 200, '{"adAsins":["B09LJWZT6G"],"count":3}', js)  # LWA refresh + Ads call
    # Upstream throttles recgate once: counted, then retried within the wait limit.
    expect(sb, "POST", "/admin/faults", 200,
           '{"status":503,"code":"RequestThrottled","count":1,"action":"ListRecommendations"}', js)
    expect(rg, "GET", mws + "Selection", 200)
    # The snapshot check fails: the stored Inventory answer is served stale.
    expect(sb, "POST", "/admin/faults", 200,
           '{"status":500,"count":1,"action":"GetLastUpdatedTimeForRecommendations"}', js)
    if '"cache":"stale"' not in expect(rg, "GET", mws + "Inventory", 200):
        raise AssertionError("the Inventory answer was not served stale")
    # Identical requests while the first one's upstream call is slow: they join it (coalesced).
    expect(sb, "POST", "/admin/faults", 200, '{"latency_ms":800,"count":1,"action":"ListRecommendations"}', js)
    results = []
    threads = [threading.Thread(target=lambda: results.append(http(rg, "GET", mws + "Pricing")[0]))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=DEADLINE_S)
    if results != [200] * 4:
        raise AssertionError(f"concurrent Pricing requests answered {results}")
    # The Ads bucket is spent: a new request that may not wait gets 429.
    expect(rg, "POST", ads, 200, '{"adAsins":["B000000001"],"count":3}', js)
    expect(rg, "POST", ads, 429, '{"adAsins":["B000000002"],"count":3}', {**js, "Prefer": "wait=0"})


def prom_query(port, expr):
    status, text = http(port, "GET", "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    doc = json.loads(text)
    if status != 200 or doc.get("status") != "success":
        raise AssertionError(f"query failed: {expr}: {text}")
    return doc["data"]["result"]


def dashboard_queries(path):
    with open(path, encoding="utf-8") as f:
        dash = json.load(f)
    out = []
    for panel in dash["panels"]:
        for t in panel.get("targets", []):
            expr = t["expr"].replace("$__rate_interval", "1m").replace("$instance", ".+")
            if "$" in expr:
                raise AssertionError(f"panel {panel['title']!r}: unknown variable in {t['expr']}")
            out.append((panel["title"], expr))
    return out


def start_prometheus(binary, tmp, rules, rg_port):
    config = os.path.join(tmp, "prometheus.yml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {rules}
scrape_configs:
  - job_name: recgate
    static_configs:
      - targets: ['127.0.0.1:{rg_port}']
""")
    for _ in range(3):  # the free port can be taken between the probe and the bind: try another
        port = free_port()
        prom = Child([binary, f"--config.file={config}", f"--storage.tsdb.path={os.path.join(tmp, 'tsdb')}",
                      f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"], "prometheus")
        try:
            wait_until("Prometheus ready", lambda: prom.proc.poll() is not None or _ready(port))
        except AssertionError:
            prom.stop()
            raise
        if prom.proc.poll() is None:
            return prom, port
        prom.stop()
    raise RuntimeError("Prometheus did not start:\n" + "".join(prom.log))


def _ready(port):
    try:
        return http(port, "GET", "/-/ready")[0] == 200
    except OSError:
        return False


def main():
    recgate_bin, sandbox_bin, src = sys.argv[1:4]
    prometheus_bin = sys.argv[4] if len(sys.argv) > 4 else "/usr/bin/prometheus"
    rules = os.path.join(src, "docker", "prometheus", "alerts.yml")
    tmp = tempfile.mkdtemp(prefix="recgate-prom-")
    children = []
    try:
        sb = Child([sandbox_bin, "--config", os.path.join(src, "config", "sandbox.json"),
                    "--listen", "127.0.0.1:0"], "recgate-sandbox")
        children.append(sb)
        sb_port = sb.wait_for_port()
        cfg = os.path.join(tmp, "recgate.json")
        with open(cfg, "w", encoding="utf-8") as f:
            json.dump(recgate_config(tmp, sb_port), f)
        rg = Child([recgate_bin, "--config", cfg], "recgate")
        children.append(rg)
        rg_port = rg.wait_for_port()
        prom, prom_port = start_prometheus(prometheus_bin, tmp, rules, rg_port)
        children.append(prom)

        wait_until("target up", lambda: [r for r in prom_query(prom_port, 'up{job="recgate"} == 1')])
        make_traffic(rg_port, sb_port)
        # Two scrapes after the traffic, so rates have two samples of every new series.
        first = float(wait_until("a scrape with the throttle", lambda: prom_query(
            prom_port, "timestamp(recgate_upstream_throttles_total)"))[0]["value"][1])
        wait_until("two more scrapes", lambda: float(prom_query(
            prom_port, "timestamp(recgate_build_info)")[0]["value"][1]) >= first + 2)

        failures = []
        # Every rule evaluates without error (after an evaluation that saw the traffic).
        def rules_evaluated():
            groups = json.loads(http(prom_port, "GET", "/api/v1/rules")[1])["data"]["groups"]
            rs = [r for g in groups for r in g["rules"]]
            return rs if rs and all(r.get("health") == "ok" for r in rs) else None
        try:
            rs = wait_until("every rule healthy", rules_evaluated)
            print(f"{len(rs)} rules evaluated, all healthy")
        except AssertionError:
            groups = json.loads(http(prom_port, "GET", "/api/v1/rules")[1])["data"]["groups"]
            failures += [f"rule {r['name']}: health {r.get('health')} {r.get('lastError', '')}"
                         for g in groups for r in g["rules"] if r.get("health") != "ok"]
        # The alerts this traffic must raise fire; the LWA one stays silent.
        def firing():
            alerts = json.loads(http(prom_port, "GET", "/api/v1/alerts")[1])["data"]["alerts"]
            return {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}
        try:
            wait_until("throttle and stale alerts firing",
                       lambda: {"RecgateUpstreamThrottled", "RecgateServingStale"} <= firing())
        except AssertionError:
            failures.append(f"alerts firing: {sorted(firing())}; expected RecgateUpstreamThrottled and "
                            "RecgateServingStale")
        # RecgateRedisDown: this recgate has no redis.url, so it exports no
        # recgate_redis_up series and the rule (healthy above) never fires.
        for name in ("RecgateLwaRefreshFailing", "RecgateDown", "RecgateRedisDown"):
            if name in firing():
                failures.append(f"{name} fires, but recgate is up, its LWA refresh succeeded and it has no Redis")
        # Every dashboard query returns data.
        queries = dashboard_queries(os.path.join(src, "docker", "grafana", "recgate.json"))
        for title, expr in queries:
            result = prom_query(prom_port, expr)
            if not result:
                failures.append(f"dashboard panel {title!r}: no data for {expr}")
        print(f"{len(queries)} dashboard queries run")
        for f in failures:
            print("FAIL " + f, file=sys.stderr)
        if failures:
            print("recgate output:\n" + "".join(rg.log[-40:]), file=sys.stderr)
        return 1 if failures else 0
    finally:
        for c in reversed(children):
            c.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

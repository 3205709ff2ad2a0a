"""Shared helpers of the [proof] scripts (hostile_clients.py, soak.py): start the
real recgate and recgate-sandbox on free loopback ports with temporary files,
sample a process from /proc, send plain HTTP requests, compute percentiles.
Every process started here is killed by Procs.close() (also on exceptions)."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MP = "ATVPDKIKX0DER"
HIT = "/v1/mws/main/recommendations?marketplace=%s&category=Inventory" % MP
CLK_TCK = os.sysconf("SC_CLK_TCK")

MAIN_ACCOUNT = {"seller_id": "A1XEXAMPLEDF", "access_key_id": "AKIASANDBOXEXAMPLE",
                "secret_key": "sandbox-secret-key-not-for-production", "auth_token": "amzn.mws.sandbox-token"}
ADS_ACCOUNT = {"region": "NA", "client_id": "amzn1.application-oa2-client.sandbox",
               "client_secret": "sandbox-client-secret", "refresh_token": "Atzr|sandbox-refresh-token",
               "profile_id": "904444984714944"}


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


class Proc:
    """A child process whose output goes to a log file; its port is read from
    the {"msg":"listening",...,"port":N} line."""

    def __init__(self, argv, logpath):
        self.logpath = logpath
        self.logfile = open(logpath, "wb")
        self.p = subprocess.Popen(argv, stdout=self.logfile, stderr=subprocess.STDOUT)
        self.pid = self.p.pid
        self.port = self._wait_port()

    def _wait_port(self, timeout=60):
        deadline = time.time() + timeout
        pat = re.compile(rb'"msg":"listening".*?"port":(\d+)')
        while time.time() < deadline:
            with open(self.logpath, "rb") as f:
                m = pat.search(f.read())
            if m:
                return int(m.group(1))
            if self.p.poll() is not None:
                raise RuntimeError("%s exited: %s" % (self.logpath, open(self.logpath, "rb").read()[-2000:]))
            time.sleep(0.05)  # polling a log file, bounded by the deadline
        raise RuntimeError("%s did not report its port" % self.logpath)

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.logfile.close()
        return self.p.returncode

    # /proc figures
    def cpu_s(self):
        with open("/proc/%d/stat" % self.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))


class Procs:
    """The sandbox and recgate of one run, in a temporary directory."""

    def __init__(self, recgate_bin, sandbox_bin, sandbox_config=None, keep=False):
        self.recgate_bin, self.sandbox_bin = recgate_bin, sandbox_bin
        self.dir = tempfile.mkdtemp(prefix="recgate-proof.")
        self.keep = keep
        self.sandbox_config = sandbox_config or os.path.join(ROOT, "config", "sandbox.json")
        self.sandbox = None
        self.recgate = None
        self.restarts = 0

    def start_sandbox(self):
        self.sandbox = Proc([self.sandbox_bin, "--config", self.sandbox_config, "--listen", "127.0.0.1:0"],
                            os.path.join(self.dir, "sandbox-%d.log" % self.restarts))
        self.restarts += 1
        return self.sandbox

    def recgate_config(self, extra=None, mws_extra=None, sandbox_port=None):
        base = "http://127.0.0.1:%d" % (sandbox_port or self.sandbox.port)
        cfg = {"listen": "127.0.0.1:0", "database": os.path.join(self.dir, "db", "recgate.db"), "threads": 2,
               "log": {"access": False},
               "mws": {"endpoint": base, "accounts": {"main": MAIN_ACCOUNT}},
               "ads": {"endpoint": base, "token_endpoint": base + "/auth/o2/token", "accounts": {"main": ADS_ACCOUNT}}}
        cfg.update(extra or {})
        cfg["mws"].update(mws_extra or {})
        return cfg

    def start_recgate(self, cfg):
        path = os.path.join(self.dir, "recgate.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        self.recgate = Proc([self.recgate_bin, "--config", path], os.path.join(self.dir, "recgate.log"))
        return self.recgate

    def close(self):
        for p in (self.recgate, self.sandbox):
            if p is not None:
                p.stop(signal.SIGKILL)
        if not self.keep:
            subprocess.run(["rm", "-rf", self.dir], check=False)


def request(port, method, target, body=None, headers=None, timeout=30):
    """One request on a new connection: (status, headers dict lower-case, body bytes); status 0 on error."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request(method, target, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        h = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        return r.status, h, data
    except (OSError, http.client.HTTPException) as e:
        return 0, {}, str(e).encode()


class KeepAliveClient:
    """A sequential client on one persistent connection (reconnects if closed)."""

    def __init__(self, port, timeout=30):
        self.port, self.timeout, self.c = port, timeout, None

    def get(self, target, headers=None):
        for attempt in range(2):
            try:
                if self.c is None:
                    self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                self.c.request("GET", target, headers=headers or {})
                r = self.c.getresponse()
                data = r.read()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, data
            except (OSError, http.client.HTTPException) as e:
                if self.c is not None:
                    self.c.close()
                self.c = None
                if attempt == 1:
                    return 0, {}, str(e).encode()
        return 0, {}, b""

    def close(self):
        if self.c is not None:
            self.c.close()


def timed_hits(port, target, seconds, max_requests=10 ** 7):
    """Sequential cache hits for `seconds`: (latencies in ms, non-200 count)."""
    cl = KeepAliveClient(port)
    lat, bad = [], 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end and len(lat) < max_requests:
        t0 = time.perf_counter()
        status, _, _ = cl.get(target)
        lat.append((time.perf_counter() - t0) * 1000)
        bad += status != 200
    cl.close()
    return lat, bad


def wait_for(pred, timeout, step=0.1):
    """Polls pred until it holds or `timeout` seconds pass (a bounded wait on a condition)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port

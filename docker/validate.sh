#!/usr/bin/env bash
# Static checks of docker/ (no Docker engine here, so nothing is built or run):
#   1. Dockerfile structure: package lists, non-root user, health check, ...
#   2. Dockerfile lint: dockerfile-utils (pinned, from npm, cached outside the tree)
#   3. Compose file: Debian's docker-compose `config` (schema), then our rules
#      (loopback ports, secrets wired to *_FILE, health-gated start, ...)
#   4. Sandbox credentials in docker/secrets/*.example match config/sandbox.json
#   5. recgate --check-config on docker/recgate.compose.json with those secrets
#   5b. docker/haproxy/haproxy.cfg: haproxy -c where installed, else its structure
#   6. Profile "monitoring": pinned official images, provisioning files mounted
#      where Prometheus and Grafana look, promtool check config
# Called by `scripts/dev.sh test` after ctest. Exits non-zero on any problem.
# A tool that cannot be installed (offline) or a missing recgate binary skips
# its check with a warning, except under CI=true (.ci/run sets it) or
# RECGATE_VALIDATE_STRICT=1: there every check runs or the run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
D="$ROOT/docker"

DOCKERFILE_UTILS_VERSION=0.16.3
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/recgate"
STRICT=0
if [ "${CI:-}" = "true" ] || [ "${RECGATE_VALIDATE_STRICT:-0}" = "1" ]; then STRICT=1; fi

failures=0
fail() { echo "docker/validate: FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "docker/validate: ok: $*"; }
skipped=0
unavailable() {
  if [ "$STRICT" = 1 ]; then fail "$1 is not available (strict mode)"; else
    skipped=$((skipped + 1))
    echo "docker/validate: WARNING: $1 is not available; skipped" >&2; fi
}

for f in Dockerfile Dockerfile.dockerignore docker-compose.yml recgate.compose.json; do
  [ -s "$D/$f" ] || { fail "docker/$f is missing"; exit 1; }
done

# ---- 1. Dockerfile structure ---------------------------------------------------
DF="$D/Dockerfile"
need() {  # need REGEX WHAT
  if grep -Eq -- "$1" "$DF"; then ok "Dockerfile: $2"; else fail "Dockerfile: $2 (expected a line matching: $1)"; fi
}
need '^FROM debian:bookworm AS build$' 'build stage FROM debian:bookworm'
need '^FROM debian:bookworm-slim AS runtime$' 'runtime stage FROM debian:bookworm-slim'
need '^COPY packages\.txt ' 'copies packages.txt'
need "grep -v '\^#' /tmp/packages\.txt \| xargs apt-get install -y --no-install-recommends" \
  'installs exactly packages.txt'
need '^COPY packages-runtime\.txt ' 'copies packages-runtime.txt'
need "grep -v '\^#' /tmp/packages-runtime\.txt \| xargs apt-get install -y --no-install-recommends" \
  'installs exactly packages-runtime.txt'
need '^SHELL \["/bin/bash", "-o", "pipefail", "-c"\]' 'pipefail shell (a failed grep must fail the install)'
need '--target recgate recgate-sandbox' 'builds recgate and recgate-sandbox'
need '-DCMAKE_BUILD_TYPE=Release' 'Release build'
need '^VOLUME \["/data"\]' 'VOLUME /data'
need '^EXPOSE 8080$' 'EXPOSE 8080'
need 'CMD \["recgate", "--healthcheck", "http://127\.0\.0\.1:8080/readyz"\]' 'HEALTHCHECK with recgate --healthcheck /readyz'
need '^ENTRYPOINT \["recgate"\]$' 'ENTRYPOINT recgate'
need '^CMD \["--config", "/etc/recgate/recgate\.json"\]$' 'CMD --config /etc/recgate/recgate.json'
need '^COPY docker/recgate\.compose\.json /etc/recgate/recgate\.json$' 'bakes docker/recgate.compose.json'
need '^COPY config/sandbox\.json /etc/recgate/sandbox\.json$' 'bakes config/sandbox.json'
need 'useradd .*--uid 10001' 'creates user uid 10001'

last_user=$(grep -E '^USER ' "$DF" | tail -1 | awk '{print $2}')
case "${last_user%%:*}" in
  ""|root|0) fail "Dockerfile: the final USER must be non-root (got '${last_user:-none}')" ;;
  *) ok "Dockerfile: runs as USER $last_user" ;;
esac
runtime_part=$(sed -n '/^FROM debian:bookworm-slim/,$p' "$DF")
if grep -Eiq '(^|[^-])\b(curl|wget)\b' <<<"$(grep -Ev '^\s*#' <<<"$runtime_part")"; then
  fail "Dockerfile: the runtime stage must not use curl/wget (recgate --healthcheck does the health GET)"
else ok "Dockerfile: no curl/wget in the runtime stage"; fi
if grep -Eq '^[a-z]' "$ROOT/packages-runtime.txt" && ! grep -Eqx 'curl|wget' "$ROOT/packages-runtime.txt"; then
  ok "packages-runtime.txt: no curl/wget"
else fail "packages-runtime.txt: empty, or lists curl/wget"; fi
# Every COPY source from the build context must exist in the repository and be
# allowed by docker/Dockerfile.dockerignore (an allowlist: '*' then '!path').
while read -r src; do
  [ -e "$ROOT/$src" ] || fail "Dockerfile: COPY source '$src' does not exist in the repository"
  grep -Fxq "!${src%/}" "$D/Dockerfile.dockerignore" || grep -Fxq "!${src%/}/" "$D/Dockerfile.dockerignore" \
    || fail "Dockerfile: COPY source '$src' is not allowed by docker/Dockerfile.dockerignore"
done < <(grep -E '^COPY ' "$DF" | grep -v -- '--from=' | awk '{for (i = 2; i < NF; i++) print $i}')

# ---- 2. Dockerfile lint ------------------------------------------------------------
DFU="$CACHE/dockerfile-utils-$DOCKERFILE_UTILS_VERSION"
if [ ! -x "$DFU/node_modules/.bin/dockerfile-utils" ] && command -v npm >/dev/null 2>&1; then
  mkdir -p "$DFU"
  if ! npm install --prefix "$DFU" --no-audit --no-fund --no-save --loglevel=error \
    "dockerfile-utils@$DOCKERFILE_UTILS_VERSION" >"$DFU/install.log" 2>&1; then
    # Shown, not hidden: the check below then reports the tool unavailable (an error in strict mode).
    echo "docker/validate: npm install dockerfile-utils@$DOCKERFILE_UTILS_VERSION failed:" >&2
    tail -n 20 "$DFU/install.log" >&2
  fi
fi
if [ -x "$DFU/node_modules/.bin/dockerfile-utils" ] && command -v node >/dev/null 2>&1; then
  # Any diagnostic, warnings included, is a failure.
  if out=$("$DFU/node_modules/.bin/dockerfile-utils" lint "$DF" 2>&1) && [ -z "$out" ]; then
    ok "dockerfile-utils $DOCKERFILE_UTILS_VERSION lint: clean"
  else
    echo "$out" >&2
    fail "dockerfile-utils lint reported problems in docker/Dockerfile"
  fi
else
  unavailable "dockerfile-utils@$DOCKERFILE_UTILS_VERSION (npm install into $DFU)"
fi

# ---- 3. Compose file -----------------------------------------------------------------
if ! command -v docker-compose >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  # --no-install-recommends: docker-compose recommends docker.io, an engine we do not want.
  { DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends docker-compose \
      || { $sudo apt-get update && DEBIAN_FRONTEND=noninteractive \
           $sudo apt-get install -y --no-install-recommends docker-compose; }; } >/tmp/recgate-docker-compose-install.log 2>&1 \
    || true
fi
if command -v docker-compose >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1; then
  # Interpolation must use the defaults (the example secrets), whatever the caller's environment
  # or a local docker/.env says.
  errf=$(mktemp)
  noenv=$(mktemp)  # an empty env file: ignore a local docker/.env
  if normalized=$(env -u RECGATE_SECRET_CLIENT_KEY -u RECGATE_SECRET_MWS_ACCESS_KEY_ID -u RECGATE_SECRET_MWS_SECRET_KEY \
        -u RECGATE_SECRET_MWS_AUTH_TOKEN -u RECGATE_SECRET_ADS_CLIENT_SECRET -u RECGATE_SECRET_ADS_REFRESH_TOKEN \
        docker-compose --env-file "$noenv" --project-directory "$D" -f "$D/docker-compose.yml" config 2>"$errf"); then
    ok "docker-compose $(docker-compose version --short 2>/dev/null || echo '?') config: valid"
    tmp=$(mktemp)
    printf '%s\n' "$normalized" >"$tmp"
    if python3 - "$ROOT" "$tmp" <<'PY'
import json, os, re, sys
import yaml
root, path = sys.argv[1], sys.argv[2]
d = os.path.join(root, "docker")
c = yaml.safe_load(open(path))
bad = []
svcs = c.get("services", {})
for name in ("recgate", "sandbox", "redis", "lb"):
    if name not in svcs:
        bad.append(f"service {name} is missing")
for name, s in svcs.items():
    for p in s.get("ports", []):
        spec = p if isinstance(p, str) else f"{p.get('host_ip', '')}:{p.get('published', '')}:{p.get('target', '')}"
        if not spec.startswith("127.0.0.1:"):
            bad.append(f"{name}: port {spec} is not bound to 127.0.0.1")
    if "healthcheck" not in s or s["healthcheck"].get("disable"):
        bad.append(f"{name}: no healthcheck")
    if s.get("restart") != "unless-stopped":
        bad.append(f"{name}: restart is not unless-stopped")
    if name in ("recgate", "sandbox"):
        b = s.get("build", {})
        if os.path.realpath(b.get("context", "")) != os.path.realpath(root) or b.get("dockerfile") != "docker/Dockerfile":
            bad.append(f"{name}: build must be context .. (the repository root), dockerfile docker/Dockerfile")
        if s.get("profiles"):
            bad.append(f"{name}: must run without a profile")
# Hardening the README promises: recgate and the sandbox run read-only; every
# service drops all capabilities and may not gain privileges.
for name, s in svcs.items():
    if name in ("recgate", "sandbox") and s.get("read_only") is not True:
        bad.append(f"{name}: read_only must be true")
    if [str(x).upper() for x in s.get("cap_drop", [])] != ["ALL"]:
        bad.append(f"{name}: cap_drop must be [ALL] (got {s.get('cap_drop')!r})")
    if not any(re.fullmatch(r"no-new-privileges(:true)?", str(x)) for x in s.get("security_opt", [])):
        bad.append(f"{name}: security_opt must include no-new-privileges:true")
# stop_grace_period must outlast recgate's drain (drain_timeout_ms, default 10 s)
# by at least 2 s, or docker's SIGKILL cuts the drain short.
def seconds(d):
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?", str(d or ""))
    if not str(d or "") or not m:
        return None
    h, mi, s_, ms = m.groups()
    return int(h or 0) * 3600 + int(mi or 0) * 60 + float(s_ or 0) + int(ms or 0) / 1000
drain_s = json.load(open(os.path.join(d, "recgate.compose.json"))).get("drain_timeout_ms", 10000) / 1000
grace = seconds(svcs.get("recgate", {}).get("stop_grace_period"))
if grace is None or grace < drain_s + 2:
    bad.append(f"recgate: stop_grace_period must be at least drain_timeout_ms + 2 s = {drain_s + 2:g}s "
               f"(got {svcs.get('recgate', {}).get('stop_grace_period')!r})")
rg, sb = svcs.get("recgate", {}), svcs.get("sandbox", {})
dep = rg.get("depends_on", {})
if not isinstance(dep, dict) or dep.get("sandbox", {}).get("condition") != "service_healthy":
    bad.append("recgate: depends_on sandbox must have condition: service_healthy")
if "recgate-sandbox" not in (sb.get("entrypoint") or []):
    bad.append("sandbox: entrypoint must be recgate-sandbox")
hc = " ".join(sb.get("healthcheck", {}).get("test", []))
if "--healthcheck" not in hc or ":8081/" not in hc:
    bad.append("sandbox: healthcheck must be recgate --healthcheck on port 8081")
# [scale] recgate scales (--scale recgate=3): no fixed host port or container
# name, and /data an anonymous volume or tmpfs, one per replica (a named volume
# would be one SQLite file shared by every replica).
if rg.get("ports"):
    bad.append("recgate: must publish no port (the lb service does; a fixed host port cannot be scaled)")
if rg.get("container_name"):
    bad.append("recgate: must have no container_name (it cannot be scaled)")
def anon_data(v):
    if isinstance(v, dict):
        return v.get("target") == "/data" and (v.get("type") == "tmpfs" or (v.get("type") == "volume" and not v.get("source")))
    return str(v) == "/data"
if not (any(anon_data(v) for v in rg.get("volumes", [])) or any(str(t).split(":")[0] == "/data" for t in rg.get("tmpfs", []))):
    bad.append("recgate: /data must be an anonymous volume or tmpfs (one per replica)")
if any(str(v).split(":")[1:2] == ["/data"] for v in rg.get("volumes", []) if not str(v).startswith("/")):
    bad.append("recgate: /data must not be a named volume (scaled replicas would share one SQLite file)")
if not isinstance(dep, dict) or dep.get("redis", {}).get("condition") != "service_healthy":
    bad.append("recgate: depends_on redis must have condition: service_healthy")
rcfg = json.load(open(os.path.join(d, "recgate.compose.json")))
if not re.fullmatch(r"redis://(:[^@]*@)?redis:6379/\d+", rcfg.get("redis", {}).get("url", "")):
    bad.append("recgate.compose.json: redis.url must name the compose service redis (redis://redis:6379/0)")
if rcfg.get("redis", {}).get("replicas", 1) < 2:
    bad.append("recgate.compose.json: redis.replicas must be the replica count (README: --scale recgate=3)")
# redis: official image, pinned; health-checked; bounded memory with an LRU policy.
rd = svcs.get("redis", {})
if not re.fullmatch(r"redis:[0-9]+\.[0-9]+\.[0-9]+(-[a-z0-9.]+)?", rd.get("image", "")):
    bad.append(f"redis: image must be the official redis with a pinned version tag (got {rd.get('image')!r})")
rcmd = [str(x) for x in (rd.get("command") or [])]
def arg(flag):
    return rcmd[rcmd.index(flag) + 1] if flag in rcmd and rcmd.index(flag) + 1 < len(rcmd) else None
if not arg("--maxmemory") or arg("--maxmemory") == "0":
    bad.append("redis: command must set --maxmemory")
if arg("--maxmemory-policy") not in ("allkeys-lru", "volatile-lru"):
    bad.append("redis: command must set --maxmemory-policy allkeys-lru")
if "redis-cli" not in " ".join(str(x) for x in rd.get("healthcheck", {}).get("test", [])):
    bad.append("redis: healthcheck must run redis-cli ping")
if rd.get("ports"):
    bad.append("redis: must publish no port (only the replicas use it)")
# lb: official HAProxy image, pinned, published on 127.0.0.1:8080, its config mounted.
lb = svcs.get("lb", {})
if not re.fullmatch(r"haproxy:[0-9]+\.[0-9]+\.[0-9]+(-[a-z0-9.]+)?", lb.get("image", "")):
    bad.append(f"lb: image must be the official haproxy with a pinned version tag (got {lb.get('image')!r})")
lb_ports = [p if isinstance(p, str) else f"{p.get('host_ip', '')}:{p.get('published', '')}:{p.get('target', '')}"
            for p in lb.get("ports", [])]
if not any(p.split("/")[0] == "127.0.0.1:8080:8080" for p in lb_ports):
    bad.append(f"lb: must publish 127.0.0.1:8080:8080 (got {lb_ports})")
lbm = {str(v).split(":")[1]: str(v).split(":")[0] for v in lb.get("volumes", []) if ":" in str(v)}
if os.path.realpath(lbm.get("/usr/local/etc/haproxy/haproxy.cfg", "")) != os.path.realpath(os.path.join(d, "haproxy", "haproxy.cfg")):
    bad.append("lb: docker/haproxy/haproxy.cfg must be mounted at /usr/local/etc/haproxy/haproxy.cfg")
# Secrets: each file exists and is non-empty; each *_FILE points at a secret the service mounts;
# every ${NAME} in the baked config is provided as NAME or NAME_FILE.
for sname, sdef in c.get("secrets", {}).items():
    f = sdef.get("file", "")
    if not os.path.isfile(f) or os.path.getsize(f) == 0:
        bad.append(f"secret {sname}: file {f} is missing or empty")
mounted = {x["source"] if isinstance(x, dict) else x for x in rg.get("secrets", [])}
env = rg.get("environment", {})
if isinstance(env, list):
    env = dict(e.split("=", 1) for e in env)
for k, v in env.items():
    if k.endswith("_FILE"):
        m = re.fullmatch(r"/run/secrets/([A-Za-z0-9_.-]+)", str(v))
        if not m or m.group(1) not in mounted:
            bad.append(f"recgate: {k}={v} does not name a secret mounted in the service")
def strings(o):  # every string value, "_comment" keys left out as recgate does
    if isinstance(o, dict):
        for k, v in o.items():
            if not k.startswith("_"): yield from strings(v)
    elif isinstance(o, list):
        for v in o: yield from strings(v)
    elif isinstance(o, str):
        yield o
used = set()
for v in strings(json.load(open(os.path.join(d, "recgate.compose.json")))):
    used.update(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", v))
for var in sorted(used):
    if var not in env and var + "_FILE" not in env:
        bad.append(f"recgate.compose.json uses ${{{var}}} but the recgate service sets neither {var} nor {var}_FILE")
# Profile "monitoring": official images, pinned; every mounted file exists and
# lands where the other side looks for it.
def mounts(svc):
    out = {}
    for v in svc.get("volumes", []):
        parts = str(v).split(":")
        if parts[0].startswith("/"):
            out[parts[1]] = parts[0]
    return out
prom, graf = svcs.get("prometheus", {}), svcs.get("grafana", {})
for name, svc, repo in (("prometheus", prom, "prom/prometheus"), ("grafana", graf, "grafana/grafana")):
    if svc.get("profiles") != ["monitoring"]:
        bad.append(f"{name}: must be in profile monitoring only")
    image = svc.get("image", "")
    if not re.fullmatch(re.escape(repo) + r":v?[0-9]+\.[0-9]+\.[0-9]+", image):
        bad.append(f"{name}: image must be {repo} with a pinned version tag (got {image!r})")
    for target, source in mounts(svc).items():
        if not os.path.isfile(source):
            bad.append(f"{name}: mounts {source}, which does not exist")
pm, gm = mounts(prom), mounts(graf)
want = {"/etc/prometheus/prometheus.yml": "prometheus/prometheus.yml", "/etc/prometheus/alerts.yml": "prometheus/alerts.yml"}
for target, rel in want.items():
    if os.path.realpath(pm.get(target, "")) != os.path.realpath(os.path.join(d, rel)):
        bad.append(f"prometheus: docker/{rel} must be mounted at {target}")
pcfg = yaml.safe_load(open(os.path.join(d, "prometheus", "prometheus.yml")))
if pcfg.get("rule_files") != ["alerts.yml"]:
    bad.append("prometheus.yml: rule_files must be [alerts.yml] (beside it in the container)")
rg_port = json.load(open(os.path.join(d, "recgate.compose.json")))["listen"].rsplit(":", 1)[1]
# Every replica: DNS service discovery of the compose service name (one A record per replica).
sd = [s for sc in pcfg.get("scrape_configs", []) for s in sc.get("dns_sd_configs", [])]
if not any("recgate" in s.get("names", []) and s.get("type") == "A" and str(s.get("port")) == rg_port for s in sd):
    bad.append(f"prometheus.yml: must discover every replica with dns_sd_configs names [recgate], type A, port {rg_port}")
dash_dir = yaml.safe_load(open(os.path.join(d, "grafana", "provisioning", "dashboards.yml")))["providers"][0]["options"]["path"]
if os.path.realpath(gm.get(dash_dir + "/recgate.json", "")) != os.path.realpath(os.path.join(d, "grafana", "recgate.json")):
    bad.append(f"grafana: docker/grafana/recgate.json must be mounted in the provider path {dash_dir}")
for kind, f in (("datasources", "datasources.yml"), ("dashboards", "dashboards.yml")):
    if not any(t.startswith(f"/etc/grafana/provisioning/{kind}/") and os.path.realpath(src) ==
               os.path.realpath(os.path.join(d, "grafana", "provisioning", f)) for t, src in gm.items()):
        bad.append(f"grafana: docker/grafana/provisioning/{f} must be mounted under /etc/grafana/provisioning/{kind}/")
ds = yaml.safe_load(open(os.path.join(d, "grafana", "provisioning", "datasources.yml")))["datasources"]
if not any(x.get("type") == "prometheus" and x.get("url") == "http://prometheus:9090" for x in ds):
    bad.append("grafana datasources.yml: needs a prometheus data source at http://prometheus:9090")
dash = json.load(open(os.path.join(d, "grafana", "recgate.json")))
exprs = [t.get("expr", "") for p in dash.get("panels", []) for t in p.get("targets", [])]
if not exprs or any("recgate_" not in e and not e.startswith("up{") for e in exprs):
    bad.append("grafana/recgate.json: every panel query must name a recgate_* metric (or up)")
for b in bad:
    print("docker/validate: FAIL: docker-compose.yml: " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
    then ok "docker-compose.yml: loopback ports, health-gated start, read-only, cap_drop ALL, no-new-privileges, stop_grace_period > drain, secrets wired, recgate scalable (no fixed port, /data per replica), redis (pinned, health-checked, maxmemory LRU), lb on 127.0.0.1:8080, monitoring profile provisioned"
    else fail "docker-compose.yml rules (see above)"; fi
    rm -f "$tmp"
  else
    cat "$errf" >&2
    fail "docker-compose config rejected docker/docker-compose.yml"
  fi
  rm -f "$errf" "$noenv"
else
  unavailable "docker-compose (apt-get install docker-compose)"
fi

# ---- 4 + 5: credentials and the baked config -----------------------------------------
if ! python3 - "$ROOT" <<'PY'
import json, os, re, sys
root = sys.argv[1]
d = os.path.join(root, "docker")
bad = []
def secret(name):
    with open(os.path.join(d, "secrets", name + ".example")) as f:
        return f.read().rstrip("\r\n")
sb = json.load(open(os.path.join(root, "config", "sandbox.json")))
rg = json.load(open(os.path.join(d, "recgate.compose.json")))
seller = (sb.get("sellers") or [{}])[0]
want = {"access_key_id": "mws_access_key_id", "secret_key": "mws_secret_key", "auth_token": "mws_auth_token"}
for key, sec in want.items():
    if seller.get(key, "") != secret(sec):
        bad.append(f"docker/secrets/{sec}.example does not match config/sandbox.json sellers[0].{key}")
acc = rg["mws"]["accounts"]["main"]
if acc.get("seller_id") != seller.get("seller_id"):
    bad.append("recgate.compose.json mws.accounts.main.seller_id differs from config/sandbox.json sellers[0].seller_id")
# Ads/LWA credentials, wherever the sandbox's "ads" object keeps them (once it has them).
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if isinstance(v, str): yield k, v
            else: yield from walk(v)
    elif isinstance(o, list):
        for v in o: yield from walk(v)
ads = dict(walk(sb.get("ads", {})))
ads_acc = rg["ads"]["accounts"]["main"]
for key, expected in (("client_id", ads_acc["client_id"]), ("client_secret", secret("ads_client_secret")),
                      ("refresh_token", secret("ads_refresh_token"))):
    if key in ads and ads[key] != expected:
        bad.append(f"sandbox ads {key} differs from what docker/ uses for recgate")
for b in bad: print("docker/validate: FAIL: " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
then fail "credentials (see above)"; else ok "secrets/*.example match the sandbox's credentials"; fi

BIN="${RECGATE_BIN:-}"
if [ -z "$BIN" ]; then  # the most recently built of the two build trees
  for b in "$ROOT/build/recgate" "$ROOT/build-asan/recgate"; do
    if [ -x "$b" ] && { [ -z "$BIN" ] || [ "$b" -nt "$BIN" ]; }; then BIN="$b"; fi
  done
fi
if [ -n "$BIN" ]; then
  S="$D/secrets"
  if out=$(cd /tmp && env -i PATH="$PATH" ASAN_OPTIONS="${ASAN_OPTIONS:-}" \
        RECGATE_CLIENT_KEY_FILE="$S/recgate_client_key.example" \
        MWS_ACCESS_KEY_ID_FILE="$S/mws_access_key_id.example" MWS_SECRET_KEY_FILE="$S/mws_secret_key.example" \
        MWS_AUTH_TOKEN_FILE="$S/mws_auth_token.example" ADS_CLIENT_SECRET_FILE="$S/ads_client_secret.example" \
        ADS_REFRESH_TOKEN_FILE="$S/ads_refresh_token.example" \
        "$BIN" --check-config --config "$D/recgate.compose.json" 2>&1 >/dev/null); then
    if grep -q 'config warning' <<<"$out"; then echo "$out" >&2; fail "recgate.compose.json loads with warnings"
    else ok "recgate --check-config accepts docker/recgate.compose.json (no warnings)"; fi
  else
    echo "$out" >&2
    fail "recgate --check-config rejects docker/recgate.compose.json"
  fi
else
  unavailable "a recgate binary for --check-config (build/ or build-asan/, or RECGATE_BIN)"
fi

# ---- 5b. The load balancer's config (docker/haproxy/haproxy.cfg) ------------------
HA="$D/haproxy/haproxy.cfg"
if [ ! -s "$HA" ]; then fail "docker/haproxy/haproxy.cfg is missing"
elif command -v haproxy >/dev/null 2>&1; then
  # 127.0.0.11 exists only inside Docker: -c checks syntax, resolution is deferred (init-addr none).
  if out=$(haproxy -c -f "$HA" 2>&1); then ok "haproxy -c docker/haproxy/haproxy.cfg"
  else echo "$out" >&2; fail "haproxy -c rejects docker/haproxy/haproxy.cfg"; fi
else
  echo "docker/validate: haproxy is not installed: checking docker/haproxy/haproxy.cfg's structure only" >&2
fi
if [ -s "$HA" ] && ! python3 - "$HA" "$D" <<'PY'
import json, os, re, sys
cfg, d = sys.argv[1], sys.argv[2]
sections, cur = {}, None
keywords = ("global", "defaults", "frontend", "backend", "listen", "resolvers", "peers", "userlist", "program")
bad = []
for n, raw in enumerate(open(cfg), 1):
    line = raw.split("#", 1)[0].rstrip()
    if not line.strip():
        continue
    if not raw[0].isspace():
        words = line.split()
        if words[0] not in keywords:
            bad.append(f"line {n}: '{words[0]}' is not a section keyword ({', '.join(keywords)})")
            continue
        cur = " ".join(words[:2])
        if cur in sections:
            bad.append(f"line {n}: section '{cur}' defined twice")
        sections[cur] = []
    elif cur is None:
        bad.append(f"line {n}: directive outside any section")
    else:
        sections[cur].append(line.split())
def directives(name):
    return sections.get(name, [])
def has(name, *words):
    return any(d_[:len(words)] == list(words) for d_ in directives(name))
rc = json.load(open(os.path.join(d, "recgate.compose.json")))
port = rc["listen"].rsplit(":", 1)[1]
if not has("resolvers docker", "nameserver", "dns", "127.0.0.11:53"):
    bad.append("resolvers docker: must use Docker's DNS, nameserver dns 127.0.0.11:53")
backends = [k for k in sections if k.startswith("backend ")]
tmpl = [d_ for b in backends for d_ in directives(b) if d_[0] == "server-template"]
if not any(len(t) >= 4 and t[3] == f"recgate:{port}" and int(t[2]) >= 3 for t in tmpl):
    bad.append(f"backend: needs server-template NAME N>=3 recgate:{port} (the compose service and its listen port)")
ds = [d_ for b in backends for d_ in directives(b) if d_[0] == "default-server"] + \
     [t for t in tmpl]
if not any("resolvers" in x and x[x.index("resolvers") + 1] == "docker" for x in ds):
    bad.append("backend: servers must resolve through 'resolvers docker' (replicas come and go with --scale)")
if not any("init-addr" in x and x[x.index("init-addr") + 1] == "none" for x in ds):
    bad.append("backend: init-addr none (start before every replica resolves)")
if not any(has(b, "option", "httpchk", "GET", "/readyz") for b in backends):
    bad.append("backend: option httpchk GET /readyz (a draining replica answers 503 there)")
fronts = [k for k in sections if k.startswith("frontend ")]
if not any(has(f, "bind", ":8080") or has(f, "bind", "*:8080") for f in fronts):
    bad.append("frontend: must bind :8080 (published as 127.0.0.1:8080)")
def secs(v):
    m = re.fullmatch(r"(\d+)(ms|s|m)?", v)
    return None if not m else int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, None: 0.001}[m.group(2)]
srv = [secs(x[2]) for x in directives("defaults") if x[:2] == ["timeout", "server"]]
wait = rc.get("throttle", {}).get("max_wait_s", 30)
if not srv or srv[0] is None or srv[0] <= wait:
    bad.append(f"defaults: timeout server must exceed throttle.max_wait_s ({wait} s): a request may wait that long for quota")
for b in bad:
    print("docker/validate: FAIL: haproxy.cfg: " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
then fail "docker/haproxy/haproxy.cfg structure (see above)"
elif [ -s "$HA" ]; then ok "haproxy.cfg: Docker resolver, server-template recgate, /readyz checks, bind :8080, timeouts above max_wait_s"; fi

# ---- 6. Monitoring profile: the Prometheus config and its rules ---------------------
if command -v promtool >/dev/null 2>&1; then
  if out=$(promtool check config "$D/prometheus/prometheus.yml" 2>&1); then
    ok "promtool check config docker/prometheus/prometheus.yml (with alerts.yml)"
  else
    echo "$out" >&2
    fail "promtool check config rejects docker/prometheus/prometheus.yml"
  fi
else
  unavailable "promtool (Debian package prometheus)"
fi

if [ "$failures" -gt 0 ]; then
  echo "docker/validate: $failures problem(s)" >&2
  exit 1
fi
if [ "$skipped" -gt 0 ]; then
  echo "docker/validate: the checks that ran passed; $skipped skipped (CI=true makes a skipped check a failure)"
else
  echo "docker/validate: all checks passed"
fi

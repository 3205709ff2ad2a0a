#!/usr/bin/env bash
# recgate developer entry point; the README's two commands call it.
#   bash scripts/dev.sh run     install deps, build, start recgate-sandbox + recgate (dev config)
#   bash scripts/dev.sh test    install deps, build with ASan+UBSan (-Werror), run every test and the fuzzers (15 s each)
#   bash scripts/dev.sh deps    only install the Debian packages from packages.txt
#   bash scripts/dev.sh build   only build (release-ish) into build/
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

packages() { grep -v '^\s*#' "$ROOT/packages.txt" | grep -v '^\s*$'; }

deps() {
  local missing=()
  for p in $(packages); do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
  fi
  node_deps
}

# Node.js + npm for the OpenAPI lint (Redocly CLI, pinned in tests/openapi):
# Debian's nodejs and npm when no npm is on PATH. A NodeSource node bundles
# its own npm, which Debian's npm package would conflict with.
node_deps() {
  command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1 && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: nodejs npm"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends nodejs npm
}

jobs() { nproc 2>/dev/null || echo 2; }

build() {
  cmake -S "$ROOT" -B "$ROOT/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$ROOT/build" -j"$(jobs)" --target recgate recgate-sandbox
}

test_all() {
  cmake -S "$ROOT" -B "$ROOT/build-asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DRECGATE_SANITIZE=ON -DRECGATE_WERROR=ON >/dev/null
  cmake --build "$ROOT/build-asan" -j"$(jobs)"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  ctest --test-dir "$ROOT/build-asan" --output-on-failure -j"$(jobs)" --timeout 600
  bash "$ROOT/tests/openapi/lint.sh"
  # libFuzzer: replay the committed corpora, then 15 s of fuzzing per target.
  bash "$ROOT/tests/fuzz/run.sh" 15
  bash "$ROOT/docker/validate.sh"
}

run_dev() {
  build
  mkdir -p "$ROOT/data"
  local sb_log="$ROOT/data/sandbox.log"
  "$ROOT/build/recgate-sandbox" --config "$ROOT/config/sandbox.json" --listen 127.0.0.1:8081 >"$sb_log" 2>&1 &
  SB_PID=$!
  "$ROOT/build/recgate" --config "$ROOT/config/recgate.dev.json" &
  RG_PID=$!
  # Globals, not locals: the EXIT trap runs after run_dev has returned.
  trap 'kill $RG_PID $SB_PID 2>/dev/null; wait $RG_PID $SB_PID 2>/dev/null' EXIT INT TERM
  for _ in $(seq 1 100); do
    curl -fsS http://127.0.0.1:8080/readyz >/dev/null 2>&1 && curl -fsS http://127.0.0.1:8081/healthz >/dev/null 2>&1 && break
    kill -0 $RG_PID 2>/dev/null || { echo "recgate exited; see its output above"; exit 1; }
    sleep 0.1
  done
  cat <<MSG

recgate is ready on http://127.0.0.1:8080 (upstream: recgate-sandbox on :8081, log in data/sandbox.log).
Try:
  curl -s 'http://127.0.0.1:8080/v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category=Inventory'
  curl -s 'http://127.0.0.1:8080/v1/mws/main/last-updated?marketplace=ATVPDKIKX0DER'
  curl -s -X POST http://127.0.0.1:8080/v1/ads/main/product-recommendations -H 'Content-Type: application/json' -d '{"adAsins":["B09LJWZT6G"],"count":5}'
  curl -s http://127.0.0.1:8080/v1/status ; curl -s http://127.0.0.1:8080/metrics
Ctrl-C stops both.
MSG
  wait $RG_PID
}

case "${1:-}" in
  deps) deps ;;
  build) deps; build ;;
  run) deps; run_dev ;;
  test) deps; test_all ;;
  *) echo "usage: $0 {run|test|deps|build}"; exit 2 ;;
esac

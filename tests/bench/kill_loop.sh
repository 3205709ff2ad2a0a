#!/usr/bin/env bash
# [proof] the long kill -9 loop: runs the integration test "kill loop: ..."
# (tests/integration/kill_loop_test.cpp) with CYCLES cycles (default 100):
# SIGKILL under concurrent MWS and Ads load, then integrity_check, every
# "stored" answer served from the cache, no sandbox throttle. ctest runs the
# same test with 25 cycles.
#
# Usage: bash tests/bench/kill_loop.sh [CYCLES]
# Environment: BUILD_DIR (default <repo>/build-asan, the CI build; any build
# with the integration tests works), NO_BUILD=1 to use what is built.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CYCLES=${1:-100}
BUILD_DIR=${BUILD_DIR:-$ROOT/build-asan}
case $CYCLES in '' | *[!0-9]*) echo "CYCLES must be a number" >&2; exit 2 ;; esac
if [ "${NO_BUILD:-0}" != 1 ]; then
  if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DRECGATE_SANITIZE=ON -DRECGATE_WERROR=ON >/dev/null
  fi
  cmake --build "$BUILD_DIR" -j2 --target recgate_integration_tests >/dev/null
fi
start=$(date +%s)
RECGATE_KILL_CYCLES=$CYCLES "$BUILD_DIR/recgate_integration_tests" -tc="kill loop*" -s 2>&1 |
  grep -E 'MESSAGE|ERROR|FATAL|test cases|assertions|Status' | sed 's/^.*MESSAGE: //'
status=${PIPESTATUS[0]}
echo "kill loop: $CYCLES cycles in $(( $(date +%s) - start )) s, exit $status"
exit "$status"

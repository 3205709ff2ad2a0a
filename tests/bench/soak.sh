#!/usr/bin/env bash
# [proof] soak benchmark: recgate (Release) under mixed load for DURATION
# seconds (default 300): hits, misses across accounts and marketplaces, Ads,
# Prefer: wait=0 requests (429s asked for), purges, sandbox restarts. Prints
# throughput, hit p50/p99, RSS, open fds and CPU every 10 s, then the
# sandbox's throttle count and client errors; fails when RSS or fds grow in
# the last third, the sandbox throttled, or a client saw another error.
# See tests/bench/soak.py.
#
# Environment: DURATION (s), PLOT (PNG path; default $BUILD_DIR/soak.png,
# written when python3-matplotlib is installed), BUILD_DIR, NO_BUILD (lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
build_release
python3 "$BENCH_DIR/soak.py" --recgate "$RECGATE" --sandbox "$SANDBOX" \
  --duration "${DURATION:-300}" --plot "${PLOT:-$BUILD_DIR/soak.png}"

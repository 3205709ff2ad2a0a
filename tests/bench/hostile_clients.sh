#!/usr/bin/env bash
# [proof] hostile clients with real tools, the long version, against the
# Release build: slowhttptest -H / -B / -X with CONNECTIONS (default 1200)
# connections for 30 s each while a normal client measures cache-hit latency
# (p99 ratio to the unloaded figure printed), recgate's CPU, RSS and fds
# sampled from /proc; pipelined floods (32 x 1000), header blocks at
# max_header_bytes (1000 connections), 10,000 connections opened and closed
# (fds and RSS back to baseline). ctest runs the same checks shorter
# (hostile_clients.py --quick, ASan build). Needs slowhttptest (Debian).
#
# Environment: CONNECTIONS, BUILD_DIR, NO_BUILD (lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
command -v slowhttptest >/dev/null || die "slowhttptest is not installed (Debian package slowhttptest)"
build_release
python3 "$BENCH_DIR/hostile_clients.py" --recgate "$RECGATE" --sandbox "$SANDBOX" \
  --connections "${CONNECTIONS:-1200}"

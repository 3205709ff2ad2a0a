#!/usr/bin/env bash
# Static checks of docker/ (no Docker engine runs in CI): filled in by [ops].
set -euo pipefail
echo "docker validation: nothing to validate yet"

#!/usr/bin/env bash
# Lints docs/openapi.yaml with the Redocly CLI pinned in package-lock.json
# (installed here by `npm ci`, again only when the lock file changed). Any
# finding fails: redocly.yaml extends recommended-strict. Run by
# scripts/dev.sh test.
set -euo pipefail
cd "$(dirname "$0")"
stamp=node_modules/.recgate-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi
npx --no-install redocly lint --config redocly.yaml ../../docs/openapi.yaml

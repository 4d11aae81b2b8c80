#!/usr/bin/env bash
# The deal page's script (clients/ts/page), bundled for the relayer to serve at
# /deals/assets/deal.js (set PAGE_SCRIPT to the path this prints).
#   scripts/page.sh build      bundle clients/ts/page/main.ts into clients/ts/dist/deal.js; print its path
#   scripts/page.sh browser    install what the browser test needs (Debian's Chromium); print its path
set -euo pipefail
cd "$(dirname "$0")/../clients/ts"

case "${1:-}" in
  build)
    # Exactly the lockfile's packages, from the npm cache after the first run.
    npm ci --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null
    npx esbuild page/main.ts --bundle --format=esm --target=es2022 --minify \
      --legal-comments=none --log-level=warning --outfile=dist/deal.js
    echo "$PWD/dist/deal.js"
    ;;
  browser)
    if ! command -v chromium >/dev/null; then
      echo "installing Debian's chromium for the deal page's browser test" >&2
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
    command -v chromium
    ;;
  *) echo "usage: $0 build|browser" >&2; exit 2 ;;
esac

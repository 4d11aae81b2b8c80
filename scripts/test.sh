#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine, then runs every test.
# One-time installs and builds are cached outside the clone (see scripts/build-program.sh);
# set CARGO_TARGET_DIR to share host builds between clones (CI does).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib/services.sh
OPENCLAW_CACHE_DIR=${OPENCLAW_CACHE:-$HOME/.cache/openclaw-escrow}

echo "== Postgres (relayer tests create a database each, on TEST_DATABASE_URL)"
export TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
ensure_postgres "$TEST_DATABASE_URL"
# Each DROP DATABASE forces a checkpoint (seconds each): clear earlier runs' leftovers while we build.
drop_test_databases "$TEST_DATABASE_URL" &
cleanup_pid=$!

echo "== SoftHSM2 (the PKCS#11 signer test makes its own token)"
[ -f /usr/lib/softhsm/libsofthsm2.so ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 >/dev/null; }

echo "== openssl (the GCP signer tests make service-account keys with it)"
command -v openssl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null; }

echo "== OpenBao (the signer tests start their own dev servers with it)"
export BAO_BIN=${BAO_BIN:-$(scripts/openbao.sh install)}

echo "== ministack (a real AWS KMS wire server; the AWS signer tests start their own)"
export MINISTACK_BIN=${MINISTACK_BIN:-$(scripts/ministack.sh install)}

echo "== solana-test-validator (the localnet test starts its own; built once, ~40-60 min, then cached)"
export SOLANA_TEST_VALIDATOR=${SOLANA_TEST_VALIDATOR:-$(scripts/localnet.sh install)}

echo "== building the program (sBPF) and its IDL"
scripts/build-program.sh

echo "== supply chain: licenses, banned crates and sources (cargo deny; deny.toml)"
deny=$OPENCLAW_CACHE_DIR/cargo-deny/bin/cargo-deny
[ -x "$deny" ] || cargo install cargo-deny --version 0.20.2 --locked --quiet --root "$OPENCLAW_CACHE_DIR/cargo-deny" \
  --target-dir "$OPENCLAW_CACHE_DIR/cargo-deny-build"
"$deny" --log-level error check licenses bans sources

echo "== deployment and operations files (alerts, compose, Caddy, systemd, shellcheck, deploy, backup)"
scripts/ops-check.sh

echo "== the TypeScript client (generated from the IDL; type-checked with an example deposit)"
scripts/ts-client.sh check

echo "== the deal page: its script (clients/ts/page), and Debian's Chromium for its browser test"
export PAGE_SCRIPT=${PAGE_SCRIPT:-$(scripts/page.sh build)}
export CHROMIUM=${CHROMIUM:-$(scripts/page.sh browser)}

echo "== fuzzing, briefly: the webhook path and instruction decoding (scripts/fuzz.sh runs longer)"
scripts/fuzz.sh --smoke

echo "== running the tests"
cargo test --workspace --locked
wait "$cleanup_pid"

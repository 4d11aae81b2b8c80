#!/usr/bin/env bash
# The escrow story, end to end, in the terminal (demo/src/main.rs tells it):
#   a buyer funds an escrow from their own wallet through the relayer's Solana Action; a carrier's
#   signed "delivered" webhook makes the relayer approve the release with its OpenBao key; the
#   seller approves from their wallet; the dispute window counts down; the relayer releases.
# Sets up what it needs: the program build, a throwaway Postgres database, a dev OpenBao holding
# the relayer's key. The chain is the compiled program in-process; CLUSTER=localnet uses a running
# solana-test-validator instead (scripts/localnet.sh start). Cleans up what it started, also on
# Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib/services.sh
export OPENCLAW_CACHE=${OPENCLAW_CACHE:-$HOME/.cache/openclaw-escrow}
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

echo "== building the program and the demo (the first run installs toolchain pieces; later runs take seconds)"
SKIP_IDL=1 scripts/build-program.sh
cargo build --quiet --locked -p escrow-demo
# The deal page's script, which the relayer serves at /deals/<offer>.
PAGE_SCRIPT=$(scripts/page.sh build)
export PAGE_SCRIPT

work=$(mktemp -d)
admin=${DEMO_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
db=openclaw_demo_$$
export OPENBAO_PIDFILE=$work/openbao.pid
cleanup() {
  scripts/openbao.sh stop
  psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  psql "$admin" -qc "DROP ROLE IF EXISTS $db" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== a throwaway database and a dev OpenBao for this run"
ensure_postgres "$admin"
psql "$admin" -qc "CREATE DATABASE $db"
# The schema's owner migrates; the relayer connects as a role granted only what it needs.
app_password=$(openssl rand -hex 16)
psql "$admin" -qc "CREATE ROLE $db LOGIN PASSWORD '$app_password'"
server=${admin#*://}
server=${server#*@}
export DATABASE_OWNER_URL="${admin%/*}/$db"
export DATABASE_URL="postgres://$db:$app_password@${server%%/*}/$db"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Prints `export SIGNER_MODE=vault VAULT_URL=… VAULT_TOKEN=… VAULT_KEY_ID=relayer`.
eval "$(OPENBAO_ADDR=127.0.0.1:$(free_port) OPENBAO_DEV_TOKEN=$(openssl rand -hex 16) scripts/openbao.sh start)"
TRACKING_HMAC_SECRET=$(openssl rand -hex 32)
ACCESS_JWT_SECRET=$(openssl rand -hex 32)
export TRACKING_HMAC_SECRET ACCESS_JWT_SECRET
export BIND_ADDR=127.0.0.1:0 JOB_BACKOFF_BASE_MS=200

"$target/debug/escrow-demo"

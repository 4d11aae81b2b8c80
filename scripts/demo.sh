#!/usr/bin/env bash
# The escrow story, end to end on this machine:
#   1. on-chain: the real compiled program in an in-process SVM (LiteSVM) — a buyer funds a deal,
#      approvals reach the threshold, the timelock passes, the release pays the seller;
#   2. the relayer: that deal is registered, a carrier's signed "delivered" webhook arrives, and the
#      relayer durably queues and runs the approval job. Here it runs without a CLUSTER, so it only
#      records what it would do; with CLUSTER and a KMS signer it signs and lands the approval
#      (relayer/tests/localnet.rs runs that on solana-test-validator).
# Cleans up what it started (relayer, demo database), also on Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib/services.sh
export OPENCLAW_CACHE=${OPENCLAW_CACHE:-$HOME/.cache/openclaw-escrow}
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

echo "== building the program and the relayer (the first run installs toolchain pieces; later runs take seconds)"
SKIP_IDL=1 scripts/build-program.sh
cargo build --quiet --locked -p relayer -p escrow-tests --bin relayer --bin demo

work=$(mktemp -d)
admin=${DEMO_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
db=openclaw_demo_$$
relayer_pid=""
cleanup() {
  [ -n "$relayer_pid" ] && kill "$relayer_pid" 2>/dev/null && wait "$relayer_pid" 2>/dev/null || true
  psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo
echo "══ act 1: the escrow on-chain ══"
"$target/debug/demo" "$work/deal.json"

echo
echo "══ act 2: the relayer ══"
ensure_postgres "$admin"
psql "$admin" -qc "CREATE DATABASE $db"
export DATABASE_URL="${admin%/*}/$db"
export TRACKING_HMAC_SECRET=$(openssl rand -hex 32) ACCESS_JWT_SECRET=$(openssl rand -hex 32)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export BIND_ADDR=127.0.0.1:$port RUST_LOG=warn OPENCLAW_EXECUTE=false
relayer="$target/debug/relayer"
"$relayer" migrate
"$relayer" serve > "$work/relayer.log" 2>&1 &
relayer_pid=$!
until curl -sf "http://$BIND_ADDR/readyz" >/dev/null; do sleep 0.2; done
echo "▶ relayer listening on $BIND_ADDR (simulation mode: OPENCLAW_EXECUTE=false)"

token=$("$relayer" token --subject demo --ttl-secs 600)
offer_json=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d.update(tracking_number="1ZDEMO0001", carrier="ups"); print(json.dumps(d))' "$work/deal.json")
offer=$(curl -sf -H "Authorization: Bearer $token" -H 'content-type: application/json' -d "$offer_json" "http://$BIND_ADDR/v1/offers")
offer_id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$offer")
echo "▶ marketplace registers the escrow's shipment: offer $offer_id"

send() {
  local body=$1 sig
  sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$TRACKING_HMAC_SECRET" | sed 's/.*= //')
  curl -s -H "X-Tracking-Signature: $sig" -H 'content-type: application/json' -d "$body" "http://$BIND_ADDR/webhooks/tracking"
  echo
}
event() { printf '{"event_id":"%s","tracking_number":"1ZDEMO0001","carrier":"ups","status":"%s","occurred_at":"%s"}' "$1" "$2" "$3"; }

echo "▶ carrier: in transit (signed)";        send "$(event evt-1 in_transit 2026-11-26T08:00:00Z)"
echo "▶ a forged delivery (wrong signature)"
curl -s -H "X-Tracking-Signature: $(printf forged | sha256sum | cut -c1-64)" -d "$(event evt-2 delivered 2026-11-26T09:00:00Z)" "http://$BIND_ADDR/webhooks/tracking"; echo
echo "▶ carrier: delivered (signed)";         send "$(event evt-3 delivered 2026-11-26T10:00:00Z)"
echo "▶ the carrier retries the same event";   send "$(event evt-3 delivered 2026-11-26T10:00:00Z)"

offer_view() { curl -sf -H "Authorization: Bearer $token" "http://$BIND_ADDR/v1/offers/$offer_id"; }
for _ in $(seq 1 50); do
  state=$(offer_view | python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"]; print(j[0]["state"] if j else "none")')
  [ "$state" = succeeded ] && break
  sleep 0.2
done
python3 - "$(offer_view)" <<'PY'
import json, sys
v = json.loads(sys.argv[1])
offer = v["offer"]
print(f"▶ offer status: {offer['status']}; events stored: {len(v['events'])}")
for j in v["jobs"]:
    print(f"▶ job {j['id']} {j['action']}: {j['state']} after {j['attempts']} attempt(s): {j['result']}")
PY
echo "▶ metrics (http://$BIND_ADDR/metrics):"
curl -sf "http://$BIND_ADDR/metrics" | grep -E '^relayer_(webhooks_total|jobs\{state="succeeded"\}|offers\{status="delivered"\})' | sed 's/^/    /'
echo
echo "done. With CLUSTER and a KMS signer (README: The signer, The chain side) the relayer signs and lands"
echo "that approval on a real cluster; relayer/tests/localnet.rs shows it on solana-test-validator."

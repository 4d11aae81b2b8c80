#!/usr/bin/env bash
# Benchmarks, each beside its physical limit or peer on the same machine and Postgres, written as
# a markdown table to bench/RESULTS.md (the README shows the latest):
#   - webhook ingest: signed webhooks against `relayer serve` on loopback (bench ingest), and
#     pgbench inserting one row per transaction at the same concurrency: the limit for durable
#     single-row ingest here;
#   - the job queue: no-op jobs through the relayer's queue with 1, 2, 4 workers, and the same
#     workload on graphile-worker (npm);
#   - a soak: webhooks at half the best measured rate for SOAK_SECS (default 600), spread over
#     64 client connections, errors and the relayer's memory;
#   - the release pipeline on solana-test-validator: PIPELINE_OFFERS (default 100) signed
#     "delivered" webhooks to the relayer's KMS-signed approval confirmed, one at a time and in a
#     burst, beside the node's own send-to-confirmed time (bench pipeline), with WORKERS=2 (the
#     default) and 8.
# With BASELINE_REV=<git revision>, the ingest, queue and pipeline rows are measured for that
# revision too (its relayer and bench built from a worktree), in the same run, one after the other
# on the same Postgres and validator: before/after.
# BENCH_SECTIONS (default "ingest soak queue pipeline") picks what runs; each section writes
# bench/results/<section>.md with its machine and date (beside it, <section>.notes.md holds what
# the figures mean, written by hand), and bench/RESULTS.md is made of them all
# (with results/program.md, the program-size levers measured by build-program.sh and cu-report).
# Nothing here is a test: figures only. Takes ~25 minutes with the default soak.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib/services.sh
export OPENCLAW_CACHE=${OPENCLAW_CACHE:-$HOME/.cache/openclaw-escrow}
admin=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
events=${INGEST_EVENTS:-6000}
jobs=${QUEUE_JOBS:-5000}
soak_secs=${SOAK_SECS:-600}
pipeline_offers=${PIPELINE_OFFERS:-100}
sections=" ${BENCH_SECTIONS:-ingest soak queue pipeline} "
baseline_rev=${BASELINE_REV:-}
out=bench/RESULTS.md
mkdir -p bench/results
runs() { [[ $sections == *" $1 "* ]]; }

echo "== building (profile bench-build: release optimizations without fat LTO)"
cargo build --quiet --locked --profile bench-build -p escrow-bench -p relayer --bin bench --bin relayer
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bench=$target/bench-build/bench
relayer=$target/bench-build/relayer
echo "== the program, solana-test-validator and OpenBao (installed once, then cached)"
SKIP_IDL=1 scripts/build-program.sh
validator=$(scripts/localnet.sh install)
scripts/openbao.sh install >/dev/null
command -v pgbench >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-contrib >/dev/null; }
(cd bench/peers/graphile && npm ci --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null)
ensure_postgres "$admin"

# "label:relayer:bench" for each build measured; the baseline first.
builds=("this commit:$relayer:$bench")
work=$(mktemp -d)
dbs=()
relayer_pid=""
export LOCALNET_DIR=$work OPENBAO_PIDFILE=$work/openbao.pid
cleanup() {
  if [ -n "$relayer_pid" ]; then kill "$relayer_pid" 2>/dev/null || true; wait "$relayer_pid" 2>/dev/null || true; fi
  SOLANA_TEST_VALIDATOR=$validator scripts/localnet.sh stop
  scripts/openbao.sh stop
  for db in "${dbs[@]}"; do psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
  [ -d "$work/baseline" ] && git worktree remove --force "$work/baseline" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ -n "$baseline_rev" ]; then
  rev=$(git rev-parse --short "$baseline_rev")
  echo "== building the baseline ($rev) in a worktree"
  git worktree add --detach -f "$work/baseline" "$baseline_rev" >/dev/null
  (cd "$work/baseline" && CARGO_TARGET_DIR=$OPENCLAW_CACHE/bench-baseline-target \
    cargo build --quiet --locked --profile bench-build -p escrow-bench -p relayer --bin bench --bin relayer)
  base=$OPENCLAW_CACHE/bench-baseline-target/bench-build
  builds=("before ($rev):$base/relayer:$base/bench" "${builds[@]}")
fi

fresh_db() { # name -> URL of a new database
  local name=bench_$1_$$
  psql "$admin" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name" >/dev/null
  dbs+=("$name")
  echo "${admin%/*}/$name"
}
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
fmt() { python3 -c 'import sys; print(f"{float(sys.argv[1]):,.{int(sys.argv[2])}f}")' "$1" "$2"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ratio() { python3 -c 'import sys; print(f"{float(sys.argv[1]) / float(sys.argv[2]):.2f}")' "$1" "$2"; }

# One client on loopback, in a throwaway database as its owner: no per-IP limit, no role split
# (an earlier BASELINE_REV ignores what it does not know).
bench_env=(env DATABASE_ALLOW_PRIVILEGED=true OPERATOR_RATE_LIMIT_PER_MINUTE=1000000000 ACTIONS_RATE_LIMIT_PER_MINUTE=1000000000)
machine="$(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(free -g | awk '/Mem:/ {print $2}') GiB, $(psql "$admin" -Atc 'SHOW server_version' | cut -d' ' -f1) Postgres (local, default settings), $(date -u +%Y-%m-%d)"

# Starts `relayer serve --role http` ($1) on a fresh, migrated database ($2); sets port and relayer_pid.
serve_http() {
  DATABASE_URL=$2 "$1" migrate
  port=$(free_port)
  DATABASE_URL=$2 TRACKING_HMAC_SECRET=$secret ACCESS_JWT_SECRET=$(openssl rand -hex 32) \
    BIND_ADDR=127.0.0.1:$port WEBHOOK_RATE_LIMIT_PER_MINUTE=1000000000 RUST_LOG=error \
    "${bench_env[@]}" "$1" serve --role http >>"$work/relayer.log" 2>&1 &
  relayer_pid=$!
  until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.2; done
}
secret=$(openssl rand -hex 32)
best=0

if runs ingest; then
echo "== webhook ingest vs pgbench"
# One relayer per build, each on its own database, all started first; rows alternate between them.
ports=() pids=() ingest_dbs=()
for i in "${!builds[@]}"; do
  rest=${builds[$i]#*:}
  ingest_dbs[i]=$(fresh_db "ingest$i")
  serve_http "${rest%%:*}" "${ingest_dbs[i]}"
  ports[i]=$port pids[i]=$relayer_pid
done
relayer_pid=""
pg_db=$(fresh_db pgbench)
psql "$pg_db" -qc "CREATE TABLE events (id bigserial PRIMARY KEY, event_id text NOT NULL UNIQUE,
                    payload jsonb NOT NULL, received_at timestamptz NOT NULL DEFAULT now())"
cat >"$work/insert.sql" <<'SQL'
INSERT INTO events (event_id, payload) VALUES (md5(random()::text || clock_timestamp()::text), '{"status":"in_transit"}');
SQL
ingest_rows=""
for c in 1 4 16 64; do
  tps=$(pgbench -n -c "$c" -j 2 -T 10 -f "$work/insert.sql" "$pg_db" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  for i in "${!builds[@]}"; do
    label=${builds[$i]%%:*}
    r=$("$bench" ingest --url "http://127.0.0.1:${ports[i]}" --secret "$secret" --database-url "${ingest_dbs[i]}" --concurrency "$c" --events "$events")
    echo "   concurrency $c, $label: relayer $(fmt "$(field "$r" per_second)" 0)/s, pgbench $(fmt "$tps" 0)/s"
    ingest_rows+="| $c | $label | $(fmt "$(field "$r" per_second)" 0) | $(fmt "$(field "$r" p50_ms)" 2) | $(fmt "$(field "$r" p99_ms)" 2) | $(fmt "$(field "$r" p999_ms)" 2) | $(field "$r" accepted) / $(field "$r" committed) | $(field "$r" errors) | $(fmt "$tps" 0) | $(ratio "$(field "$r" per_second)" "$tps") |"$'\n'
    [ "$label" = "this commit" ] && best=$(python3 -c 'import sys; print(max(float(sys.argv[1]), float(sys.argv[2])))' "$best" "$(field "$r" per_second)")
  done
done
for pid in "${pids[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
{
  echo "## Webhook ingest ($events signed events per row, distinct ids; each accepted event is an event row and an audit entry, committed before the answer; events arriving together share a transaction)"
  echo
  echo "$machine. Load generator, relayer and Postgres share the machine; at each concurrency pgbench runs first, then each build in turn."
  echo
  echo "| concurrency | relayer | events/s | p50 ms | p99 ms | p99.9 ms | accepted / committed | errors | pgbench single-row inserts/s | ratio |"
  echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s' "$ingest_rows"
} >bench/results/ingest.md
fi

if runs soak; then
rate=${SOAK_RATE:-$(python3 -c 'import sys; b = float(sys.argv[1]); print(int(b / 2) if b else 5000)' "$best")}
echo "== soak: ${soak_secs}s at $rate webhooks/s"
serve_http "$relayer" "$(fresh_db soak)"
soak=$("$bench" soak --url "http://127.0.0.1:$port" --secret "$secret" --pid "$relayer_pid" --rate "$rate" --seconds "$soak_secs")
kill "$relayer_pid"; wait "$relayer_pid" 2>/dev/null || true; relayer_pid=""
{
  echo "## Soak"
  echo
  echo "$machine."
  echo
  echo "$(field "$soak" sent) webhooks at $(field "$soak" rate)/s ($(fmt "$(field "$soak" achieved_per_second)" 0)/s achieved) from $(field "$soak" connections) connections over $(fmt "$(field "$soak" seconds)" 0) s: $(field "$soak" errors) errors; relayer RSS $(field "$soak" rss_start_kib) KiB at start, $(field "$soak" rss_end_kib) KiB at the end, $(field "$soak" rss_max_kib) KiB at most (first-tenth average $(field "$soak" rss_early_avg_kib), last-tenth $(field "$soak" rss_late_avg_kib))."
  echo
  echo "RSS every 10 s, MiB: $(python3 -c 'import json,sys; print(" ".join(map(str, json.loads(sys.argv[1])["rss_mib_every_10s"])))' "$soak")"
} >bench/results/soak.md
fi

if runs queue; then
echo "== queue vs graphile-worker"
queue_rows=""
for w in 1 2 4; do
  g=$(cd bench/peers/graphile && node queue.mjs "$(fresh_db "graphile$w")" "$w" "$jobs")
  for i in "${!builds[@]}"; do
    label=${builds[$i]%%:*} qbench=${builds[$i]##*:}
    r=$("$qbench" queue --database-url "$(fresh_db "queue${w}_$i")" --workers "$w" --jobs "$jobs")
    echo "   $w workers, $label: relayer $(fmt "$(field "$r" per_second)" 0)/s, graphile-worker $(fmt "$(field "$g" per_second)" 0)/s"
    queue_rows+="| $w | $label | $(fmt "$(field "$r" per_second)" 0) | $(fmt "$(field "$r" max_lag_s)" 1) | $(fmt "$(field "$g" per_second)" 0) | $(fmt "$(field "$g" max_lag_s)" 1) | $(ratio "$(field "$r" per_second)" "$(field "$g" per_second)") |"$'\n'
  done
done
{
  echo "## Job queue ($jobs no-op jobs)"
  echo
  echo "$machine. At each worker count graphile-worker runs first, then each build in turn, each on a fresh database."
  echo
  echo "| workers | relayer | jobs/s | max lag s | graphile-worker jobs/s | graphile-worker max lag s | ratio |"
  echo "|---:|---|---:|---:|---:|---:|---:|"
  printf '%s' "$queue_rows"
} >bench/results/queue.md
fi

if runs pipeline; then
echo "== release pipeline on solana-test-validator ($pipeline_offers offers one at a time, then $pipeline_offers at once)"
# Its own validator and dev OpenBao (in $work), a fresh database per run, `relayer serve` executing.
rpc=$(SOLANA_TEST_VALIDATOR=$validator LOCALNET_RPC_PORT=$(free_port) scripts/localnet.sh start)
eval "$(OPENBAO_ADDR=127.0.0.1:$(free_port) OPENBAO_DEV_TOKEN=$(openssl rand -hex 16) scripts/openbao.sh start)"
secret=$(openssl rand -hex 32)
jwt_secret=$(openssl rand -hex 32)
address=$("$relayer" signer check | sed -n 's/^address: //p')
pipeline_rows=""
floor_row=""
for i in "${!builds[@]}"; do
  label=${builds[$i]%%:*} rest=${builds[$i]#*:}
  bin=${rest%%:*} name=$i
  for workers in 2 8; do
    pipeline_db=$(fresh_db "pipeline_${name}_$workers")
    DATABASE_URL=$pipeline_db "$bin" migrate
    port=$(free_port)
    DATABASE_URL=$pipeline_db TRACKING_HMAC_SECRET=$secret ACCESS_JWT_SECRET=$jwt_secret \
      BIND_ADDR=127.0.0.1:$port WEBHOOK_RATE_LIMIT_PER_MINUTE=1000000000 RUST_LOG=warn \
      CLUSTER=$rpc OPENCLAW_EXECUTE=true RELAYER_ADDRESS=$address WORKERS=$workers \
      "${bench_env[@]}" "$bin" serve >"$work/relayer-pipeline-$name-$workers.log" 2>&1 &
    relayer_pid=$!
    until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.2; done
    p=$("$bench" pipeline --rpc-url "$rpc" --relayer-url "http://127.0.0.1:$port" --database-url "$pipeline_db" \
      --secret "$secret" --jwt-secret "$jwt_secret" --relayer "$address" --offers "$pipeline_offers")
    kill "$relayer_pid"; wait "$relayer_pid" 2>/dev/null || true; relayer_pid=""
    ms() { fmt "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]][sys.argv[3]])' "$p" "$1" "$2")" 0; }
    echo "   $label, WORKERS=$workers: one at a time p50 $(ms one_at_a_time p50_ms) ms; burst done $(fmt "$(field "$p" burst_after_last_webhook_ms)" 0) ms after the last webhook"
    pipeline_rows+="| $label | $workers | $(ms one_at_a_time p50_ms) | $(ms one_at_a_time p99_ms) | $(ms burst p50_ms) | $(ms burst p99_ms) | $(fmt "$(field "$p" burst_seconds)" 2) | $(fmt "$(field "$p" burst_after_last_webhook_ms)" 0) | $(field "$p" approvals_on_chain) / $(field "$p" escrows) |"$'\n'
    floor_row="the node alone (a transfer signed in-process, sent, polled every 10 ms until confirmed): p50 $(ms floor p50_ms) ms, p99 $(ms floor p99_ms) ms, max $(ms floor max_ms) ms."
  done
done
{
  echo "## Release pipeline (solana-test-validator, OpenBao Transit signer, CONFIRM_POLL_MS default; $pipeline_offers offers one at a time, then $pipeline_offers at once)"
  echo
  echo "$machine. One validator for every row, a fresh database per row."
  echo
  echo "From the relayer's answer to a signed \"delivered\" webhook until it has seen its approval confirmed. \"Done after the last\": from the last webhook's answer in the burst to the last approval confirmed."
  echo
  echo "| relayer | WORKERS | one at a time p50 ms | p99 ms | burst p50 ms | burst p99 ms | burst s | done after the last webhook, ms | relayer approvals on-chain |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s' "$pipeline_rows"
  echo
  echo "$floor_row"
} >bench/results/pipeline.md
fi

{
  echo "# Benchmarks"
  echo
  echo "Written by \`scripts/bench.sh\`; each section says the machine and day it was measured on."
  for section in ingest soak queue pipeline program; do
    [ -f "bench/results/$section.md" ] && { echo; cat "bench/results/$section.md"; }
    # What the figures mean, written by hand, kept across runs.
    [ -f "bench/results/$section.notes.md" ] && { echo; cat "bench/results/$section.notes.md"; }
  done
} >"$out"
echo
cat "$out"

#!/usr/bin/env bash
# Benchmarks, each beside its physical limit or peer on the same machine and Postgres, written as
# a markdown table to bench/RESULTS.md (the README shows the latest):
#   - webhook ingest: signed webhooks against `relayer serve` on loopback (bench ingest), and
#     pgbench inserting one row per transaction at the same concurrency: the limit for durable
#     single-row ingest here;
#   - the job queue: no-op jobs through the relayer's queue with 1, 2, 4 workers, and the same
#     workload on graphile-worker (npm);
#   - a soak: webhooks at half the best measured rate for SOAK_SECS (default 600), errors and the
#     relayer's memory.
# Nothing here is a test: figures only. Takes ~15 minutes with the default soak.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib/services.sh
export OPENCLAW_CACHE=${OPENCLAW_CACHE:-$HOME/.cache/openclaw-escrow}
admin=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
events=${INGEST_EVENTS:-6000}
jobs=${QUEUE_JOBS:-5000}
soak_secs=${SOAK_SECS:-600}
out=bench/RESULTS.md

echo "== building (profile bench-build: release optimizations without fat LTO)"
cargo build --quiet --locked --profile bench-build -p escrow-bench -p relayer --bin bench --bin relayer
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bench=$target/bench-build/bench
relayer=$target/bench-build/relayer
command -v pgbench >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-contrib >/dev/null; }
(cd bench/peers/graphile && npm ci --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null)
ensure_postgres "$admin"

work=$(mktemp -d)
dbs=()
relayer_pid=""
cleanup() {
  if [ -n "$relayer_pid" ]; then kill "$relayer_pid" 2>/dev/null || true; wait "$relayer_pid" 2>/dev/null || true; fi
  for db in "${dbs[@]}"; do psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fresh_db() { # name -> URL of a new database
  local name=bench_$1_$$
  psql "$admin" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name" >/dev/null
  dbs+=("$name")
  echo "${admin%/*}/$name"
}
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
fmt() { python3 -c 'import sys; print(f"{float(sys.argv[1]):,.{int(sys.argv[2])}f}")' "$1" "$2"; }
ratio() { python3 -c 'import sys; print(f"{float(sys.argv[1]) / float(sys.argv[2]):.2f}")' "$1" "$2"; }

echo "== webhook ingest vs pgbench"
ingest_db=$(fresh_db ingest)
secret=$(openssl rand -hex 32)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DATABASE_URL=$ingest_db "$relayer" migrate
DATABASE_URL=$ingest_db TRACKING_HMAC_SECRET=$secret ACCESS_JWT_SECRET=$(openssl rand -hex 32) \
  BIND_ADDR=127.0.0.1:$port WEBHOOK_RATE_LIMIT_PER_MINUTE=1000000000 RUST_LOG=error \
  "$relayer" serve --role http >"$work/relayer.log" 2>&1 &
relayer_pid=$!
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.2; done
pg_db=$(fresh_db pgbench)
psql "$pg_db" -qc "CREATE TABLE events (id bigserial PRIMARY KEY, event_id text NOT NULL UNIQUE,
                    payload jsonb NOT NULL, received_at timestamptz NOT NULL DEFAULT now())"
cat >"$work/insert.sql" <<'SQL'
INSERT INTO events (event_id, payload) VALUES (md5(random()::text || clock_timestamp()::text), '{"status":"in_transit"}');
SQL
ingest_rows=""
best=0
for c in 1 4 16 64; do
  r=$("$bench" ingest --url "http://127.0.0.1:$port" --secret "$secret" --database-url "$ingest_db" --concurrency "$c" --events "$events")
  tps=$(pgbench -n -c "$c" -j 2 -T 10 -f "$work/insert.sql" "$pg_db" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  echo "   concurrency $c: relayer $(fmt "$(field "$r" per_second)" 0)/s, pgbench $(fmt "$tps" 0)/s"
  ingest_rows+="| $c | $(fmt "$(field "$r" per_second)" 0) | $(fmt "$(field "$r" p50_ms)" 2) | $(fmt "$(field "$r" p99_ms)" 2) | $(fmt "$(field "$r" p999_ms)" 2) | $(field "$r" accepted) / $(field "$r" committed) | $(field "$r" errors) | $(fmt "$tps" 0) | $(ratio "$(field "$r" per_second)" "$tps") |"$'\n'
  best=$(python3 -c 'import sys; print(max(float(sys.argv[1]), float(sys.argv[2])))' "$best" "$(field "$r" per_second)")
done

echo "== soak: ${soak_secs}s at half the best rate"
rate=$(python3 -c 'import sys; print(max(1, int(float(sys.argv[1]) / 2)))' "$best")
soak=$("$bench" soak --url "http://127.0.0.1:$port" --secret "$secret" --pid "$relayer_pid" --rate "$rate" --seconds "$soak_secs")
kill "$relayer_pid"; wait "$relayer_pid" 2>/dev/null || true; relayer_pid=""

echo "== queue vs graphile-worker"
queue_rows=""
for w in 1 2 4; do
  r=$("$bench" queue --database-url "$(fresh_db "queue$w")" --workers "$w" --jobs "$jobs")
  g=$(cd bench/peers/graphile && node queue.mjs "$(fresh_db "graphile$w")" "$w" "$jobs")
  echo "   $w workers: relayer $(fmt "$(field "$r" per_second)" 0)/s, graphile-worker $(fmt "$(field "$g" per_second)" 0)/s"
  queue_rows+="| $w | $(fmt "$(field "$r" per_second)" 0) | $(fmt "$(field "$r" max_lag_s)" 1) | $(fmt "$(field "$g" per_second)" 0) | $(fmt "$(field "$g" max_lag_s)" 1) | $(ratio "$(field "$r" per_second)" "$(field "$g" per_second)") |"$'\n'
done

machine="$(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(free -g | awk '/Mem:/ {print $2}') GiB, $(psql "$admin" -Atc 'SHOW server_version' | cut -d' ' -f1) Postgres (local, default settings), $(date -u +%Y-%m-%d)"
{
  echo "# Benchmarks"
  echo
  echo "\`scripts/bench.sh\` on $machine. Load generator, relayer and Postgres share the machine."
  echo
  echo "## Webhook ingest ($events signed events per row, distinct ids; each accepted event is one transaction: event row + audit entry)"
  echo
  echo "| concurrency | relayer events/s | p50 ms | p99 ms | p99.9 ms | accepted / committed | errors | pgbench single-row inserts/s | ratio |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s' "$ingest_rows"
  echo
  echo "## Soak"
  echo
  echo "$(field "$soak" sent) webhooks at $(field "$soak" rate)/s over $(fmt "$(field "$soak" seconds)" 0) s: $(field "$soak" errors) errors; relayer RSS $(field "$soak" rss_start_kib) KiB at start, $(field "$soak" rss_end_kib) KiB at the end, $(field "$soak" rss_max_kib) KiB at most (first-tenth average $(field "$soak" rss_early_avg_kib), last-tenth $(field "$soak" rss_late_avg_kib))."
  echo
  echo "## Job queue ($jobs no-op jobs)"
  echo
  echo "| workers | relayer jobs/s | relayer max lag s | graphile-worker jobs/s | graphile-worker max lag s | ratio |"
  echo "|---:|---:|---:|---:|---:|---:|"
  printf '%s' "$queue_rows"
} >"$out"
echo
cat "$out"

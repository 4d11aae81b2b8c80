# Helpers the scripts share for the local services they need. Source, do not run.

# Waits for Postgres at $1 (a postgres:// URL); starts the machine's cluster if it is down.
ensure_postgres() {
  local url=$1
  command -v psql >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client >/dev/null; }
  if ! psql "$url" -Atqc 'SELECT 1' >/dev/null 2>&1; then
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
      echo "starting the local Postgres cluster"
      pg_ctlcluster --skip-systemctl-redirect "$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | head -n1)" main start || true
    fi
  fi
  for _ in $(seq 1 30); do
    psql "$url" -Atqc 'SELECT 1' >/dev/null 2>&1 && return 0
    sleep 1
  done
  echo "error: Postgres is not reachable at $url; start it or set TEST_DATABASE_URL" >&2
  return 1
}

# Drops databases left by earlier test runs (each relayer test creates relayer_test_<uuid>).
# Only those nobody is connected to, listed once at the start: databases of tests that start
# while this runs are never on the list.
drop_test_databases() {
  local url=$1 db
  for db in $(psql "$url" -Atqc "SELECT d.datname FROM pg_database d
     WHERE d.datname LIKE 'relayer_test_%'
       AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)"); do
    psql "$url" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
  done
}

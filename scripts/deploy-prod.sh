#!/usr/bin/env bash
# Installs or upgrades the relayer as a systemd service on the machine it runs on (a VPS), as root:
#   scripts/deploy-prod.sh path/to/relayer
# The binary: `cargo build --release --locked -p relayer --no-default-features`, built on (or for)
# the VPS. Steps: user `openclaw`; /usr/local/bin/relayer replaced atomically, the old one kept as
# relayer.previous; /etc/openclaw/relayer.env and migrate.env written from templates only if
# missing (secrets are never overwritten); the units from deploy/systemd (the relayer, and its
# migrations as the schema's owner); restart; wait for /readyz; on failure, print the journal and
# go back to relayer.previous.
#   DESTDIR=/some/root  install the files under that root instead of /
#   DRY_RUN=1           print the useradd/chgrp/systemctl/journalctl steps instead of running them
#                       (needs DESTDIR, so a dry run never touches the real system)
#   READY_TIMEOUT=60    seconds to wait for /readyz
# Rollback caveat: the previous binary runs `relayer migrate` too, and fails on migrations it does
# not know. Across a release that adds migrations, roll back by restoring the database backup
# (scripts/backup.sh) as well.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

service=openclaw-relayer
user=openclaw
destdir=${DESTDIR:-}
dry_run=${DRY_RUN:-0}
ready_timeout=${READY_TIMEOUT:-60}
bindir=$destdir/usr/local/bin
confdir=$destdir/etc/openclaw
envfile=$confdir/relayer.env
migrate_envfile=$confdir/migrate.env
unitdir=$destdir/etc/systemd/system
# The variables without which `relayer serve`, and its migrations, refuse to start.
required_vars=(DATABASE_URL TRACKING_HMAC_SECRET ACCESS_JWT_SECRET)
required_migrate_vars=(DATABASE_OWNER_URL)

die() { echo "deploy-prod: error: $*" >&2; exit 1; }
say() { echo "deploy-prod: $*"; }

# The steps that change the system outside DESTDIR go through here.
run() {
  if [ "$dry_run" = 1 ]; then
    echo "deploy-prod: [dry run] $*"
  else
    "$@"
  fi
}

[ $# -eq 1 ] || { echo "usage: $0 path/to/relayer" >&2; exit 2; }
new_bin=$1
if [ ! -f "$new_bin" ] || [ ! -x "$new_bin" ]; then
  die "$new_bin is not an executable file"
fi
if [ "$dry_run" = 1 ]; then
  [ -n "$destdir" ] || die "DRY_RUN=1 needs DESTDIR (a dry run only writes under DESTDIR)"
else
  [ "$(id -u)" -eq 0 ] || die "run as root (it installs a system service)"
  command -v systemctl >/dev/null || die "systemctl not found: this script is for a systemd host"
fi
command -v curl >/dev/null || die "curl not found (needed to wait for /readyz): apt-get install curl"
# A binary that cannot even print its version (wrong architecture, missing libraries) stops here,
# before anything is replaced.
version=$("$new_bin" --version) || die "$new_bin --version failed: not a working relayer binary"
say "deploying $version"

# --- the user ------------------------------------------------------------------------------
if getent passwd "$user" >/dev/null; then
  say "user $user exists"
else
  run useradd --system --user-group --home-dir /nonexistent --no-create-home \
    --shell /usr/sbin/nologin "$user"
fi

# --- the binary, atomically ----------------------------------------------------------------
# Copy to a temporary name in the same directory, then rename: a rename is atomic, so a crash
# never leaves a half-written binary, and the running process keeps its own (old) file.
install -d -m 0755 "$bindir"
replace_binary() { # source
  local tmp
  tmp=$(mktemp "$bindir/.relayer.XXXXXX")
  install -m 0755 "$1" "$tmp"
  mv -f "$tmp" "$bindir/relayer"
}
changed=0
if [ -e "$bindir/relayer" ] && cmp -s "$new_bin" "$bindir/relayer"; then
  # Keep relayer.previous pointing at the release before this one.
  say "$bindir/relayer is already this binary"
else
  changed=1
  if [ -e "$bindir/relayer" ]; then
    # A hard link: the old file itself, kept under the new name, no copy needed.
    ln -f "$bindir/relayer" "$bindir/relayer.previous"
    say "kept the current binary as $bindir/relayer.previous"
  fi
  replace_binary "$new_bin"
  say "installed $bindir/relayer"
fi

# --- the configuration, never overwritten --------------------------------------------------
install -d -m 0750 "$confdir"
run chgrp "$user" "$confdir" # lets the service read files it owns in there (vault-token)
fresh_env=0
if [ ! -e "$envfile" ]; then
  # umask 077: the file is never readable by anyone else, not even for an instant.
  (
    umask 077
    cat >"$envfile" <<'EOF'
# Configuration of the openclaw-relayer service; every variable is listed by `relayer --help`.
# Read by systemd as root: keep this file root-owned, mode 0600. Fill in the empty values.
# Required:
# The relayer's own role, e.g. postgres://relayer_app:PASSWORD@127.0.0.1:5432/relayer: not the
# schema's owner (that one is in migrate.env), which serve refuses. The migrations create it
# with this password when missing, and grant it only what serve needs.
DATABASE_URL=
TRACKING_HMAC_SECRET=
ACCESS_JWT_SECRET=

# false: simulate every transaction and record it; true: send them (needs CLUSTER and
# RELAYER_ADDRESS).
OPENCLAW_EXECUTE=false
# Loopback: Caddy (deploy/Caddyfile with RELAYER_UPSTREAM=127.0.0.1:8080) is the way in.
BIND_ADDR=127.0.0.1:8080
# Caddy on this host: X-Forwarded-For is believed from it only.
TRUSTED_PROXIES=127.0.0.1/32
# Prometheus scrapes this (no token); Caddy never forwards to it.
METRICS_BIND_ADDR=127.0.0.1:9100
# https://your.domain, for the links in Solana Actions.
PUBLIC_URL=

# Tracking providers posting straight to /webhooks/<provider> (relayer/README.md): set the
# ones the shop uses; an unset provider's endpoint answers 404.
#EASYPOST_WEBHOOK_SECRET=
#AFTERSHIP_WEBHOOK_SECRET=
#SHIPPO_WEBHOOK_SECRET=
#SEVENTEENTRACK_API_KEY=
#SHIPENGINE_JWKS_URL=https://api.shipengine.com/jwks

# The chain (mainnet-beta, devnet or an RPC URL); empty: record jobs only, act on nothing.
CLUSTER=
# The signing key in OpenBao/Vault Transit. The token file must be readable by the openclaw
# user only: chown openclaw /etc/openclaw/vault-token && chmod 0400 /etc/openclaw/vault-token
SIGNER_MODE=vault
VAULT_URL=
VAULT_KEY_ID=relayer
VAULT_TOKEN_FILE=/etc/openclaw/vault-token
# Or AWS KMS (SECURITY.md 3.1; region and credentials from the instance role or AWS_* variables):
#   SIGNER_MODE=kms KMS_PROVIDER=aws KMS_KEY_ID=alias/openclaw-relayer AWS_REGION=eu-west-1
# Or GCP Cloud KMS (SECURITY.md 3.2; the metadata server's service account):
#   SIGNER_MODE=kms KMS_PROVIDER=gcp KMS_KEY_ID=projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/1
# `relayer signer check` prints it; the relayer refuses to start with any other key.
RELAYER_ADDRESS=

RUST_LOG=info
EOF
  )
  fresh_env=1
  say "wrote $envfile (mode 0600) from the template"
else
  say "$envfile exists: left as it is"
fi
if [ ! -e "$migrate_envfile" ]; then
  (
    umask 077
    cat >"$migrate_envfile" <<'EOF'
# Read by openclaw-relayer-migrate.service only (root-owned, mode 0600): the schema owner's URL,
# e.g. postgres://relayer_owner:PASSWORD@127.0.0.1:5432/relayer. Migrations run as it, then it
# grants DATABASE_URL's role (relayer.env) what serve needs.
DATABASE_OWNER_URL=
EOF
  )
  fresh_env=1
  say "wrote $migrate_envfile (mode 0600) from the template"
fi
for file in "$envfile" "$migrate_envfile"; do
  mode=$(stat -c %a "$file")
  [ "$mode" = 600 ] || [ "$mode" = 400 ] ||
    say "warning: $file has mode $mode; it holds secrets: chmod 0600 $file"
done

# --- the units -----------------------------------------------------------------------------
install -d -m 0755 "$unitdir"
for unit in "$service.service" "$service-migrate.service"; do
  install -m 0644 "$root/deploy/systemd/$unit" "$unitdir/$unit"
  say "installed $unitdir/$unit"
done
run systemctl daemon-reload
run systemctl enable "$service"

# Values of an env file, as systemd reads them (last one wins; surrounding quotes dropped).
env_value() { # NAME [FILE]
  sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "${2:-$envfile}" | tail -n 1 |
    sed -e 's/[[:space:]]*$//' -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'$/\1/"
}
missing=()
for var in "${required_vars[@]}"; do
  [ -n "$(env_value "$var")" ] || missing+=("$var in $envfile")
done
for var in "${required_migrate_vars[@]}"; do
  [ -n "$(env_value "$var" "$migrate_envfile")" ] || missing+=("$var in $migrate_envfile")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$fresh_env" = 1 ]; then
    say "fill in: ${missing[*]} (and review the rest), then run this again"
    exit 0
  fi
  die "no value for: ${missing[*]}; the service was not restarted"
fi

# --- restart and wait for /readyz ----------------------------------------------------------
bind=$(env_value BIND_ADDR)
bind=${bind:-127.0.0.1:8080}
# Listening on every address: ask on loopback.
case $bind in
  0.0.0.0:*) bind=127.0.0.1:${bind#0.0.0.0:} ;;
  '[::]:'*) bind="[::1]:${bind#\[::\]:}" ;;
esac
ready_url=http://$bind/readyz

wait_ready() {
  local deadline=$((SECONDS + ready_timeout))
  while [ "$SECONDS" -lt "$deadline" ]; do
    curl -fsS --max-time 2 -o /dev/null "$ready_url" 2>/dev/null && return 0
    sleep 1
  done
  return 1
}

run systemctl restart "$service"
say "waiting up to ${ready_timeout}s for $ready_url"
if wait_ready; then
  say "ready: $version is serving"
  exit 0
fi

echo "deploy-prod: $service is not ready after ${ready_timeout}s; its last log lines:" >&2
run journalctl -u "$service-migrate" -u "$service" -n 50 --no-pager >&2 || true
# Only a binary this run replaced is rolled back: if it was already installed, the cause is
# elsewhere (configuration, database) and an older binary would not help.
if [ "$changed" = 0 ] || [ ! -e "$bindir/relayer.previous" ]; then
  die "nothing to roll back to; $service is left as it is"
fi
say "rolling back to $bindir/relayer.previous"
replace_binary "$bindir/relayer.previous"
run systemctl restart "$service"
if wait_ready; then
  die "rolled back: the previous binary is serving again; $version was not deployed"
fi
die "rolled back, but the previous binary is not ready either: see journalctl -u $service"

#!/usr/bin/env bash
# Encrypted Postgres backups of the relayer's database, with age (https://age-encryption.org).
#   scripts/backup.sh backup <database-url> <out-file>
#       pg_dump -Fc, encrypted on the fly to BACKUP_AGE_RECIPIENT (an age public key, age1...)
#       or to every key in BACKUP_AGE_RECIPIENTS_FILE; writes <out-file> and <out-file>.sha256.
#   scripts/backup.sh restore <in-file> <database-url>
#       checks <in-file>.sha256, decrypts with the identity file BACKUP_AGE_IDENTITY and
#       pg_restore --clean --if-exists --no-owner into the database, which must already exist.
# The plaintext dump only ever exists in a pipe, never on disk: the machine making backups holds
# public keys only, and the private key (identity) is needed only to restore, so keep it offline.
# Needs pg_dump/pg_restore/psql (postgresql-client, the server's major version or newer) and age.
set -euo pipefail

die() { echo "backup: error: $*" >&2; exit 1; }
usage() {
  echo "usage: $0 backup <database-url> <out-file>" >&2
  echo "       $0 restore <in-file> <database-url>" >&2
  exit 2
}
need() {
  local cmd
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null || die "$cmd not found (apt-get install postgresql-client age)"
  done
}

backup() {
  local url=$1 out=$2
  need pg_dump age sha256sum
  local recipients=()
  [ -n "${BACKUP_AGE_RECIPIENT:-}" ] && recipients+=(-r "$BACKUP_AGE_RECIPIENT")
  if [ -n "${BACKUP_AGE_RECIPIENTS_FILE:-}" ]; then
    [ -r "$BACKUP_AGE_RECIPIENTS_FILE" ] || die "cannot read BACKUP_AGE_RECIPIENTS_FILE=$BACKUP_AGE_RECIPIENTS_FILE"
    recipients+=(-R "$BACKUP_AGE_RECIPIENTS_FILE")
  fi
  [ ${#recipients[@]} -gt 0 ] ||
    die "set BACKUP_AGE_RECIPIENT (an age public key) or BACKUP_AGE_RECIPIENTS_FILE"
  # Never replace an existing backup: it may be the last good one.
  [ ! -e "$out" ] || die "$out exists; choose a new name"

  umask 077
  local dir base
  dir=$(dirname "$out")
  base=$(basename "$out")
  # Written under a temporary name in the same directory, renamed when complete: a failed or
  # interrupted dump never leaves a file that looks like a backup.
  # (A global, not a local: the EXIT trap runs after the function's locals are gone.)
  partial=$(mktemp "$dir/.$base.XXXXXX")
  trap 'rm -f "$partial"' EXIT
  # pipefail: a failing pg_dump fails the whole pipeline, even though age exits 0.
  pg_dump --format=custom --no-password "$url" | age --encrypt "${recipients[@]}" --output "$partial"
  mv -f "$partial" "$out"
  trap - EXIT
  # Relative name inside the .sha256, so `sha256sum -c` works wherever the pair is copied.
  (cd "$dir" && sha256sum "$base" >"$base.sha256")
  echo "backup: wrote $out ($(stat -c %s "$out") bytes, encrypted) and $out.sha256"
}

restore() {
  local in=$1 url=$2
  need pg_restore psql age sha256sum
  [ -f "$in" ] || die "$in not found"
  [ -f "$in.sha256" ] || die "$in.sha256 not found: refusing to restore an unverified backup"
  local identity=${BACKUP_AGE_IDENTITY:-}
  [ -n "$identity" ] || die "set BACKUP_AGE_IDENTITY to the age identity (private key) file"
  [ -r "$identity" ] || die "cannot read BACKUP_AGE_IDENTITY=$identity"

  (cd "$(dirname "$in")" && sha256sum --check --quiet "$(basename "$in").sha256") ||
    die "$in does not match $in.sha256: corrupted or not the file that was backed up"
  # The target must exist (created with the right owner by whoever runs the database): this
  # script replaces its contents, it never creates or drops databases.
  psql "$url" --no-password -Atqc 'SELECT 1' >/dev/null ||
    die "cannot connect to the target database (it must exist: createdb it first)"

  # --clean --if-exists: drop each object before recreating it, so restoring over an older copy
  # works. --no-owner/--no-privileges: roles differ between servers; everything ends up owned by
  # the restoring user. --single-transaction: all or nothing.
  age --decrypt --identity "$identity" "$in" |
    pg_restore --clean --if-exists --no-owner --no-privileges --single-transaction \
      --no-password --dbname "$url"
  echo "backup: restored $in"
}

case "${1:-}" in
  backup) [ $# -eq 3 ] || usage; backup "$2" "$3" ;;
  restore) [ $# -eq 3 ] || usage; restore "$2" "$3" ;;
  *) usage ;;
esac

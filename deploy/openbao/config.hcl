# OpenBao server for the relayer's signing key (Transit, ed25519, not exportable), used by
# deploy/compose.yaml. Unlike `scripts/openbao.sh start` (a dev server: in memory, unsealed,
# root token), this one keeps its data and starts SEALED after every restart.
#
# The key ceremony is done by hand, once, by the people who hold the unseal keys (see
# SECURITY.md): `bao operator init` (split the unseal keys between several people, never store
# them on this machine), `bao operator unseal` after each restart, enable transit, create the
# relayer's key (type=ed25519 exportable=false allow_plaintext_backup=false), and issue the
# relayer a token whose policy only allows transit/sign and transit/keys read for that key.
# Nothing here automates unsealing: a stolen disk holds nothing usable.

# File storage in the openbao-data volume: one node is enough for one relayer. Back the volume
# up like the database; it is encrypted with the barrier key, useless without the unseal keys.
storage "file" {
  path = "/openbao/file"
}

listener "tcp" {
  address = "0.0.0.0:8200"
  # Plain HTTP on purpose: the listener is reachable only on compose's internal `backend`
  # network (no published port, that network has no route out), where the only client is the
  # relayer. Traffic never leaves the host's bridge. If OpenBao moves to another host, or the
  # port is ever published, turn TLS on (tls_cert_file/tls_key_file) and use https in VAULT_URL.
  tls_disable = true
}

api_addr = "http://openbao:8200"

# No web UI: operators use the `bao` CLI through `docker compose exec openbao bao ...`.
ui = false

# compose gives the container IPC_LOCK, so memory holding keys is locked and never swapped out.
disable_mlock = false

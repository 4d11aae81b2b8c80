//! Every environment variable the relayer reads: its name, its default and its help line, in one
//! table. `relayer --help` prints it; `Env` refuses to read a name that is not here, so a new
//! variable cannot ship without its help line (the config tests read every one).

pub struct Var {
    pub name: &'static str,
    /// What an unset (or empty) variable means, written as a value would be; `None`: no default.
    pub default: Option<&'static str>,
    pub help: &'static str,
}

const fn var(name: &'static str, default: Option<&'static str>, help: &'static str) -> Var {
    Var {
        name,
        default,
        help,
    }
}

pub const VARS: &[Var] = &[
    var("DATABASE_URL", None, "Postgres URL, e.g. postgres://relayer_app@127.0.0.1:5432/relayer (required); serve refuses a superuser or the tables' owner"),
    var("DATABASE_OWNER_URL", None, "the schema owner's Postgres URL, for `relayer migrate` (unset: DATABASE_URL); migrate then grants DATABASE_URL's role what serve needs"),
    var("DATABASE_ALLOW_PRIVILEGED", Some("false"), "true lets serve run as a superuser or the tables' owner: development only"),
    var("TRACKING_HMAC_SECRET", None, "webhook HMAC secret(s), comma-separated during rotation; `whsec_<base64>` for Standard Webhooks secrets (required by serve unless in SECRETS_VAULT_KV; >= 16 bytes each)"),
    var("EASYPOST_WEBHOOK_SECRET", None, "EasyPost webhook secret(s), comma-separated while rotating: turns on POST /webhooks/easypost (or in SECRETS_VAULT_KV)"),
    var("AFTERSHIP_WEBHOOK_SECRET", None, "AfterShip webhook secret(s), comma-separated while rotating: turns on POST /webhooks/aftership (or in SECRETS_VAULT_KV)"),
    var("SHIPPO_WEBHOOK_SECRET", None, "Shippo HMAC webhook secret(s), comma-separated while rotating: turns on POST /webhooks/shippo (or in SECRETS_VAULT_KV)"),
    var("SEVENTEENTRACK_API_KEY", None, "17TRACK API security key(s), comma-separated while rotating (its webhooks are signed with it): turns on POST /webhooks/17track (or in SECRETS_VAULT_KV)"),
    var("SHIPENGINE_JWKS_URL", None, "ShipEngine's webhook key set, https://api.shipengine.com/jwks (https://api.eu.shipengine.com/jwks for EU accounts): turns on POST /webhooks/shipengine"),
    var("ACCESS_JWT_SECRET", None, "HS256 secret for operator API tokens (required by serve unless in SECRETS_VAULT_KV; >= 32 bytes)"),
    var("ACCESS_JWT_SECRET_PREVIOUS", None, "the previous JWT secret, still accepted during rotation"),
    var("ACCESS_JWT_ISSUER", Some("openclaw-relayer"), "operator tokens' required `iss`"),
    var("ACCESS_JWT_AUDIENCE", Some("openclaw-relayer-operator-api"), "operator tokens' required `aud`"),
    var("ACCESS_JWT_MAX_TTL_SECS", Some("604800"), "longest lifetime (`exp` - `iat`) of an operator token accepted or issued"),
    var("OPENCLAW_EXECUTE", Some("false"), "true to send transactions; false: simulate and record only"),
    var("BIND_ADDR", Some("127.0.0.1:8080"), "HTTP listen address"),
    var("TLS_CERT_FILE", None, "serve HTTPS with this PEM certificate chain (with TLS_KEY_FILE); unset: plain HTTP behind a proxy"),
    var("TLS_KEY_FILE", None, "the PEM private key of TLS_CERT_FILE"),
    var("TLS_CLIENT_CA_FILE", None, "with TLS: the operator API requires a client certificate issued by this PEM CA (mTLS)"),
    var("TRUSTED_PROXIES", None, "CIDRs of the proxies in front (e.g. 127.0.0.1/32,10.0.0.0/8): X-Forwarded-For is read only from them, and the client is the last address not among them; unset: no proxy, the peer is the client"),
    var("TRUST_FORWARDED_FOR", None, "replaced by TRUSTED_PROXIES: set is an error"),
    var("WEBHOOK_RATE_LIMIT_PER_MINUTE", Some("600"), "webhook requests per client IP per minute"),
    var("WEBHOOK_MAX_BODY_BYTES", Some("65536"), "largest webhook body accepted"),
    var("ACTIONS_RATE_LIMIT_PER_MINUTE", Some("120"), "Solana Actions requests (GET and POST) per client IP per minute"),
    var("OPERATOR_RATE_LIMIT_PER_MINUTE", Some("600"), "operator API requests per client IP, and per token, per minute"),
    var("AUTH_FAILURES_PER_MINUTE", Some("10"), "failed operator authentications per client IP per minute before its requests are refused (429) until the minute passes"),
    var("AUDIT_RATE_LIMIT_PER_MINUTE", Some("120"), "public audit log requests per client IP per minute"),
    var("HTTP_HEADER_TIMEOUT_SECS", Some("10"), "a request's headers must arrive within this; also how long a kept-alive connection may wait idle for its next request"),
    var("HTTP_BODY_TIMEOUT_SECS", Some("10"), "a request body that sends nothing for this long is cut off"),
    var("HTTP_REQUEST_TIMEOUT_SECS", Some("30"), "a whole request, body included, is answered 408 after this"),
    var("HTTP_MAX_CONNECTIONS", None, "open connections at most; at the limit a new client takes the place of the longest-idle connection (unset: the open-file limit less 256 for the pool, the KMS and the RPC node)"),
    var("METRICS_BIND_ADDR", None, "serve /metrics on this address of its own, without authentication (e.g. 127.0.0.1:9100 for Prometheus); unset: /metrics needs an operator token"),
    var("PUBLIC_URL", None, "the relayer's public base URL, e.g. https://escrow.example.com, for links in Solana Actions (unset: http://<the address it listens on>; never the Host header)"),
    var("PAGE_SCRIPT", None, "the deal page's script, built by scripts/page.sh (clients/ts/dist/deal.js): timeline, audit check and wallet button at /deals/{offer}; unset: the page shows the deal without them"),
    var("EXPLORER_TX_URL", None, "the deal page's link for a transaction, {signature} replaced, e.g. https://explorer.solana.com/tx/{signature}?cluster=custom&customUrl=… for a private cluster (unset: Solana Explorer for mainnet, devnet and testnet, told apart by their genesis hash; no link on other chains)"),
    var("WORKERS", Some("2"), "job workers in this process"),
    var("JOB_CLAIM_BATCH", Some("8"), "jobs a worker claims in one statement (1-64); it runs them one after another, renewing the waiting ones' leases"),
    var("JOB_MAX_ATTEMPTS", Some("8"), "attempts before a job is dead"),
    var("JOB_LEASE_SECS", Some("60"), "how long a claimed job stays locked without a heartbeat (at least 5)"),
    var("JOB_BACKOFF_BASE_MS", Some("1000"), "first retry delay; doubles per attempt, with jitter"),
    var("JOB_BACKOFF_MAX_SECS", Some("600"), "longest retry delay"),
    var("STUCK_AFTER_SECS", Some("86400"), "flag offers delivered/returned but unsettled after this long (relayer_offers_stuck{reason=\"settle_overdue\"})"),
    var("TRANSIT_SILENT_AFTER_SECS", Some("1209600"), "flag shipments in transit with no carrier event for this long (relayer_offers_stuck{reason=\"silent_in_transit\"})"),
    var("SIGNER_MODE", None, "vault (Vault/OpenBao Transit), kms (with KMS_PROVIDER), pkcs11 (HSM) or local (keypair file; tests only); needed with CLUSTER and by `signer check`"),
    var("PKCS11_MODULE", None, "with SIGNER_MODE=pkcs11: the HSM's PKCS#11 module (.so)"),
    var("PKCS11_TOKEN_LABEL", None, "with SIGNER_MODE=pkcs11: the token's label"),
    var("PKCS11_KEY_LABEL", None, "with SIGNER_MODE=pkcs11: the ed25519 key pair's label"),
    var("PKCS11_PIN", None, "with SIGNER_MODE=pkcs11: the user PIN (or PKCS11_PIN_FILE)"),
    var("PKCS11_PIN_FILE", None, "with SIGNER_MODE=pkcs11: a file holding the user PIN"),
    var("KMS_PROVIDER", None, "with SIGNER_MODE=kms: vault (Transit), aws (AWS KMS; region and credentials from the AWS SDK chain: AWS_REGION, AWS_PROFILE, web identity, IMDS; AWS_ENDPOINT_URL honoured) or gcp (Cloud KMS; Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS or the metadata server)"),
    var("KMS_KEY_ID", None, "with SIGNER_MODE=kms: vault: the transit key name; aws: key id, ARN or alias (resolved once and pinned to the key ARN; ECC_NIST_EDWARDS25519, SIGN_VERIFY); gcp: projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N (EC_SIGN_ED25519)"),
    var("KMS_TIMEOUT_SECS", Some("10"), "with KMS_PROVIDER=aws or gcp: how long one KMS request attempt may take (3 attempts for transient failures)"),
    var("GCP_KMS_ENDPOINT", Some("https://cloudkms.googleapis.com"), "with KMS_PROVIDER=gcp: Cloud KMS's REST endpoint (a regional or Private Service Connect one)"),
    var("VAULT_URL", None, "Vault/OpenBao address, e.g. https://vault.internal:8200"),
    var("VAULT_KEY_ID", None, "with SIGNER_MODE=vault: the transit key name (ed25519, not exportable)"),
    var("VAULT_KEY_VERSION", None, "pin this key version (unset: the latest at start-up)"),
    var("VAULT_TRANSIT_MOUNT", Some("transit"), "transit mount path"),
    var("VAULT_TOKEN", None, "Vault token (or VAULT_TOKEN_FILE)"),
    var("VAULT_TOKEN_FILE", None, "a file holding the Vault token (as Vault Agent writes it)"),
    var("VAULT_TIMEOUT_SECS", Some("10"), "how long one Vault request may take"),
    var("RELAYER_ADDRESS", None, "the address the signer must have; start-up fails on any other key (required with OPENCLAW_EXECUTE=true)"),
    var("SIGNER_KEYPAIR_FILE", None, "with SIGNER_MODE=local: a Solana keypair file (refused with OPENCLAW_EXECUTE=true)"),
    var("CLUSTER", None, "localnet, devnet, mainnet-beta or an RPC URL: workers act on-chain (simulating unless OPENCLAW_EXECUTE=true); unset: record only"),
    var("PRIORITY_FEE_MICRO_LAMPORTS", Some("0"), "priority fee per compute unit for the relayer's transactions"),
    var("CONFIRM_POLL_MS", Some("100"), "how often the statuses of every transaction in flight are asked of the node, in one call (10 to 10000)"),
    var("RECONCILE_INTERVAL_SECS", Some("30"), "how often the watchtower compares offers with the chain"),
    var("SECRETS_VAULT_KV", None, "read TRACKING_HMAC_SECRET, ACCESS_JWT_SECRET(_PREVIOUS) and the providers' webhook secrets from this Vault/OpenBao KV v2 secret, <mount>/<path> (e.g. secret/openclaw/relayer), with VAULT_URL and VAULT_TOKEN(_FILE); re-read for rotation"),
    var("SECRETS_REFRESH_SECS", Some("60"), "how often SECRETS_VAULT_KV is re-read"),
    var("AUDIT_CHECKPOINT_SECS", Some("300"), "how often the signer signs the audit log's head"),
    var("RUST_LOG", Some("info,hyper=error"), "log filter; logs are JSON lines"),
    var("RELAYER_FAILPOINT", None, "TESTS ONLY, never in production: abort the process (like kill -9) at the named step (after_event_commit, after_claim, after_sign, after_send, before_confirm); inert when unset"),
];

/// The table's entry for `name`. Reading a variable the table does not list is a bug.
pub fn entry(name: &str) -> &'static Var {
    VARS.iter().find(|v| v.name == name).unwrap_or_else(|| {
        panic!(
            "{name} is read but has no entry in config::vars::VARS: add its default and help line"
        )
    })
}

/// The `Environment:` section of `relayer --help`.
pub fn help() -> String {
    let mut s = String::from("Environment:\n");
    for v in VARS {
        match v.default {
            Some(default) => s += &format!("  {:<30} {} (default {default})\n", v.name, v.help),
            None => s += &format!("  {:<30} {}\n", v.name, v.help),
        }
    }
    s
}

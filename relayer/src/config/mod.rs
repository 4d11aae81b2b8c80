//! Configuration from the environment, with the deploy checklist's variable names.
//!
//! Every variable is listed in `ENV_HELP` (shown by `relayer --help`). A missing or malformed value
//! stops start-up with one line naming the variable and what it should look like.
use std::{fmt, net::SocketAddr, str::FromStr, time::Duration};

/// (name, meaning) of every variable the relayer reads; the `--help` text is made from this.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("DATABASE_URL", "Postgres URL, e.g. postgres://relayer@127.0.0.1:5432/relayer (required)"),
    ("TRACKING_HMAC_SECRET", "webhook HMAC secret(s), comma-separated during rotation; `whsec_<base64>` for Standard Webhooks secrets (required by serve; >= 16 bytes each)"),
    ("ACCESS_JWT_SECRET", "HS256 secret for operator API tokens (required by serve; >= 32 bytes)"),
    ("ACCESS_JWT_SECRET_PREVIOUS", "the previous JWT secret, still accepted during rotation (optional)"),
    ("OPENCLAW_EXECUTE", "true to send transactions; default false: simulate and record only"),
    ("BIND_ADDR", "HTTP listen address (default 127.0.0.1:8080)"),
    ("TLS_CERT_FILE", "serve HTTPS with this PEM certificate chain (with TLS_KEY_FILE); unset: plain HTTP behind a proxy"),
    ("TLS_KEY_FILE", "the PEM private key of TLS_CERT_FILE"),
    ("TLS_CLIENT_CA_FILE", "with TLS: the operator API requires a client certificate issued by this PEM CA (mTLS)"),
    ("TRUST_FORWARDED_FOR", "true when behind a proxy that sets X-Forwarded-For (default false)"),
    ("WEBHOOK_RATE_LIMIT_PER_MINUTE", "webhook requests per client IP per minute (default 600)"),
    ("WEBHOOK_MAX_BODY_BYTES", "largest webhook body accepted (default 65536)"),
    ("ACTIONS_RATE_LIMIT_PER_MINUTE", "Solana Actions requests per client IP per minute (default 120)"),
    ("PUBLIC_URL", "the relayer's public base URL, e.g. https://escrow.example.com, for links in Solana Actions (default: from the Host header)"),
    ("WORKERS", "job workers in this process (default 2)"),
    ("JOB_MAX_ATTEMPTS", "attempts before a job is dead (default 8)"),
    ("JOB_LEASE_SECS", "how long a claimed job stays locked without a heartbeat (default 60)"),
    ("JOB_BACKOFF_BASE_MS", "first retry delay; doubles per attempt, with jitter (default 1000)"),
    ("JOB_BACKOFF_MAX_SECS", "longest retry delay (default 600)"),
    ("STUCK_AFTER_SECS", "flag offers delivered/returned but unsettled after this long (default 86400)"),
    ("SIGNER_MODE", "vault (Vault/OpenBao Transit), kms (with KMS_PROVIDER), pkcs11 (HSM) or local (keypair file; tests only)"),
    ("PKCS11_MODULE", "with SIGNER_MODE=pkcs11: the HSM's PKCS#11 module (.so)"),
    ("PKCS11_TOKEN_LABEL", "with SIGNER_MODE=pkcs11: the token's label"),
    ("PKCS11_KEY_LABEL", "with SIGNER_MODE=pkcs11: the ed25519 key pair's label"),
    ("PKCS11_PIN", "with SIGNER_MODE=pkcs11: the user PIN (or PKCS11_PIN_FILE)"),
    ("KMS_PROVIDER", "with SIGNER_MODE=kms: vault (aws and gcp are refused as not supported yet)"),
    ("KMS_KEY_ID", "with SIGNER_MODE=kms: the transit key name"),
    ("VAULT_URL", "Vault/OpenBao address, e.g. https://vault.internal:8200"),
    ("VAULT_KEY_ID", "with SIGNER_MODE=vault: the transit key name (ed25519, not exportable)"),
    ("VAULT_KEY_VERSION", "pin this key version (default: the latest at start-up)"),
    ("VAULT_TRANSIT_MOUNT", "transit mount path (default transit)"),
    ("VAULT_TOKEN", "Vault token (or VAULT_TOKEN_FILE: a file holding it)"),
    ("VAULT_TIMEOUT_SECS", "how long one Vault request may take (default 10)"),
    ("RELAYER_ADDRESS", "the address the signer must have; start-up fails on any other key"),
    ("SIGNER_KEYPAIR_FILE", "with SIGNER_MODE=local: a Solana keypair file (refused with OPENCLAW_EXECUTE=true)"),
    ("CLUSTER", "localnet, devnet, mainnet-beta or an RPC URL: workers act on-chain (simulating unless OPENCLAW_EXECUTE=true); unset: record only"),
    ("PRIORITY_FEE_MICRO_LAMPORTS", "priority fee per compute unit for the relayer's transactions (default 0)"),
    ("CONFIRM_POLL_MS", "how often a sent transaction's status is asked of the node until it confirms (default 100; one RPC call each, so raise it on a rate-limited RPC)"),
    ("RECONCILE_INTERVAL_SECS", "how often the watchtower compares offers with the chain (default 30)"),
    ("SECRETS_VAULT_KV", "read TRACKING_HMAC_SECRET, ACCESS_JWT_SECRET(_PREVIOUS) from this Vault/OpenBao KV v2 secret, <mount>/<path> (e.g. secret/openclaw/relayer), with VAULT_URL and VAULT_TOKEN(_FILE); re-read for rotation"),
    ("SECRETS_REFRESH_SECS", "how often SECRETS_VAULT_KV is re-read (default 60)"),
    ("AUDIT_CHECKPOINT_SECS", "how often the signer signs the audit log's head (default 300)"),
    ("RUST_LOG", "log filter (default info); logs are JSON lines"),
    ("RELAYER_FAILPOINT", "TESTS ONLY, never in production: abort the process (like kill -9) at the named step (after_event_commit, after_claim, after_sign, after_send, before_confirm); inert when unset"),
];

pub fn env_help() -> String {
    let mut s = String::from("Environment:\n");
    for (name, meaning) in ENV_VARS {
        s += &format!("  {name:<30} {meaning}\n");
    }
    s
}

/// A configuration error: one line, naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {var} {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

/// A secret value: never printed, not even by `{:?}`.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The secrets requests are checked with; rotated without a restart when they come from Vault
/// KV (see `secrets`).
#[derive(Clone, Debug)]
pub struct Secrets {
    /// Every webhook secret accepted (several during a rotation).
    pub tracking: Vec<Secret>,
    pub jwt: Secret,
    pub jwt_previous: Option<Secret>,
}

impl PartialEq for Secrets {
    fn eq(&self, other: &Self) -> bool {
        let same = |a: &Secret, b: &Secret| a.expose() == b.expose();
        self.tracking.len() == other.tracking.len()
            && self
                .tracking
                .iter()
                .zip(&other.tracking)
                .all(|(a, b)| same(a, b))
            && same(&self.jwt, &other.jwt)
            && match (&self.jwt_previous, &other.jwt_previous) {
                (Some(a), Some(b)) => same(a, b),
                (None, None) => true,
                _ => false,
            }
    }
}

#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    pub url: String,
}

#[derive(Clone, Debug)]
pub struct HttpConfig {
    pub bind: SocketAddr,
    pub trust_forwarded_for: bool,
    pub webhook_rate_per_minute: u32,
    pub webhook_max_body: usize,
    pub actions_rate_per_minute: u32,
    /// Base URL for absolute links in Actions responses (icon); no trailing slash.
    pub public_url: Option<String>,
    /// Terminate TLS here (and optionally require client certificates on the operator API).
    pub tls: Option<crate::tls::TlsConfig>,
    pub tracking_secrets: Vec<Secret>,
    pub jwt_secret: Secret,
    pub jwt_previous: Option<Secret>,
}

#[derive(Clone, Debug)]
pub struct QueueConfig {
    pub workers: usize,
    pub max_attempts: i32,
    pub lease: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            max_attempts: 8,
            lease: Duration::from_secs(60),
            backoff_base: Duration::from_millis(1000),
            backoff_max: Duration::from_secs(600),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub database: DatabaseConfig,
    pub http: HttpConfig,
    pub queue: QueueConfig,
    pub execute: bool,
    /// An ended shipment whose escrow has not settled after this long is flagged as stuck.
    pub stuck_after: Duration,
}

/// Reads variables through `get`, so tests can configure without touching the process env.
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl Env<fn(&str) -> Option<String>> {
    pub fn process() -> Self {
        Env(|name| std::env::var(name).ok())
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn optional(&self, var: &'static str) -> Option<String> {
        (self.0)(var).filter(|v| !v.trim().is_empty())
    }

    pub fn required(&self, var: &'static str, example: &str) -> Result<String, ConfigError> {
        self.optional(var).ok_or_else(|| ConfigError {
            var,
            problem: format!("is not set (e.g. {example})"),
        })
    }

    pub fn parsed<T: FromStr>(
        &self,
        var: &'static str,
        default: T,
        expected: &str,
    ) -> Result<T, ConfigError> {
        match self.optional(var) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| ConfigError {
                var,
                problem: format!("is {v:?}, expected {expected}"),
            }),
        }
    }

    pub fn flag(&self, var: &'static str) -> Result<bool, ConfigError> {
        match self.optional(var).as_deref().map(str::trim) {
            None => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(other) => Err(ConfigError {
                var,
                problem: format!("is {other:?}, expected true or false"),
            }),
        }
    }

    pub fn database(&self) -> Result<DatabaseConfig, ConfigError> {
        let url = self.required("DATABASE_URL", "postgres://relayer@127.0.0.1:5432/relayer")?;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError {
                var: "DATABASE_URL",
                problem: "must start with postgres:// or postgresql://".into(),
            });
        }
        Ok(DatabaseConfig { url })
    }

    fn tls(&self) -> Result<Option<crate::tls::TlsConfig>, ConfigError> {
        let cert = self.optional("TLS_CERT_FILE");
        let key = self.optional("TLS_KEY_FILE");
        let client_ca = self.optional("TLS_CLIENT_CA_FILE");
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(Some(crate::tls::TlsConfig {
                cert_file: cert.into(),
                key_file: key.into(),
                client_ca_file: client_ca.map(Into::into),
            })),
            (None, None) if client_ca.is_none() => Ok(None),
            (None, None) => Err(ConfigError {
                var: "TLS_CLIENT_CA_FILE",
                problem: "needs TLS_CERT_FILE and TLS_KEY_FILE: client certificates need TLS"
                    .into(),
            }),
            (Some(_), None) => Err(ConfigError {
                var: "TLS_KEY_FILE",
                problem: "is not set, but TLS_CERT_FILE is".into(),
            }),
            (None, Some(_)) => Err(ConfigError {
                var: "TLS_CERT_FILE",
                problem: "is not set, but TLS_KEY_FILE is".into(),
            }),
        }
    }

    fn public_url(&self) -> Result<Option<String>, ConfigError> {
        let Some(url) = self.optional("PUBLIC_URL") else {
            return Ok(None);
        };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ConfigError {
                var: "PUBLIC_URL",
                problem: format!(
                    "must be an http(s) URL like https://escrow.example.com, got {url:?}"
                ),
            });
        }
        Ok(Some(url.trim_end_matches('/').to_owned()))
    }

    /// The webhook and operator-token secrets, checked (also when re-read from Vault KV).
    pub fn secrets(&self) -> Result<Secrets, ConfigError> {
        let tracking = self
            .required("TRACKING_HMAC_SECRET", "a random string of 32+ characters")?
            .split(',')
            .map(|s| parse_hmac_secret(s.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        let jwt = parse_jwt_secret(
            "ACCESS_JWT_SECRET",
            self.required("ACCESS_JWT_SECRET", "a random string of 32+ characters")?,
        )?;
        let jwt_previous = self
            .optional("ACCESS_JWT_SECRET_PREVIOUS")
            .map(|s| parse_jwt_secret("ACCESS_JWT_SECRET_PREVIOUS", s))
            .transpose()?;
        Ok(Secrets {
            tracking,
            jwt,
            jwt_previous,
        })
    }

    pub fn config(&self) -> Result<Config, ConfigError> {
        let database = self.database()?;
        let Secrets {
            tracking: tracking_secrets,
            jwt: jwt_secret,
            jwt_previous,
        } = self.secrets()?;
        let http = HttpConfig {
            bind: self.parsed(
                "BIND_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 8080)),
                "host:port",
            )?,
            trust_forwarded_for: self.flag("TRUST_FORWARDED_FOR")?,
            webhook_rate_per_minute: self.parsed(
                "WEBHOOK_RATE_LIMIT_PER_MINUTE",
                600,
                "a positive integer",
            )?,
            webhook_max_body: self.parsed(
                "WEBHOOK_MAX_BODY_BYTES",
                64 * 1024,
                "a number of bytes",
            )?,
            actions_rate_per_minute: self.parsed(
                "ACTIONS_RATE_LIMIT_PER_MINUTE",
                120,
                "a positive integer",
            )?,
            public_url: self.public_url()?,
            tls: self.tls()?,
            tracking_secrets,
            jwt_secret,
            jwt_previous,
        };
        for (var, rate) in [
            (
                "WEBHOOK_RATE_LIMIT_PER_MINUTE",
                http.webhook_rate_per_minute,
            ),
            (
                "ACTIONS_RATE_LIMIT_PER_MINUTE",
                http.actions_rate_per_minute,
            ),
        ] {
            if rate == 0 {
                return Err(ConfigError {
                    var,
                    problem: "must be at least 1".into(),
                });
            }
        }
        let d = QueueConfig::default();
        let queue = QueueConfig {
            workers: self.parsed("WORKERS", d.workers, "a number of workers")?,
            max_attempts: self.parsed("JOB_MAX_ATTEMPTS", d.max_attempts, "a positive integer")?,
            lease: Duration::from_secs(self.parsed(
                "JOB_LEASE_SECS",
                d.lease.as_secs(),
                "seconds",
            )?),
            backoff_base: Duration::from_millis(self.parsed(
                "JOB_BACKOFF_BASE_MS",
                1000,
                "milliseconds",
            )?),
            backoff_max: Duration::from_secs(self.parsed(
                "JOB_BACKOFF_MAX_SECS",
                d.backoff_max.as_secs(),
                "seconds",
            )?),
        };
        if queue.max_attempts < 1 {
            return Err(ConfigError {
                var: "JOB_MAX_ATTEMPTS",
                problem: "must be at least 1".into(),
            });
        }
        if queue.lease < Duration::from_secs(5) {
            return Err(ConfigError {
                var: "JOB_LEASE_SECS",
                problem: "must be at least 5".into(),
            });
        }
        Ok(Config {
            database,
            http,
            queue,
            execute: self.flag("OPENCLAW_EXECUTE")?,
            stuck_after: Duration::from_secs(self.parsed("STUCK_AFTER_SECS", 86_400, "seconds")?),
        })
    }
}

/// A plain secret is used as bytes; `whsec_<base64>` (Standard Webhooks) is decoded first.
fn parse_hmac_secret(value: &str) -> Result<Secret, ConfigError> {
    use base64::Engine;
    let var = "TRACKING_HMAC_SECRET";
    let bytes = match value.strip_prefix("whsec_") {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| ConfigError {
                var,
                problem: "has a whsec_ value that is not base64".into(),
            })?,
        None => value.as_bytes().to_vec(),
    };
    if bytes.len() < 16 {
        return Err(ConfigError {
            var,
            problem: "has a secret shorter than 16 bytes".into(),
        });
    }
    Ok(Secret::new(bytes))
}

fn parse_jwt_secret(var: &'static str, value: String) -> Result<Secret, ConfigError> {
    if value.len() < 32 {
        return Err(ConfigError {
            var,
            problem: "must be at least 32 characters".into(),
        });
    }
    Ok(Secret::new(value.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> Env<impl Fn(&str) -> Option<String> + 'a> {
        Env(move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    const BASE: [(&str, &str); 3] = [
        ("DATABASE_URL", "postgres://u@h/db"),
        ("TRACKING_HMAC_SECRET", "0123456789abcdef0123"),
        ("ACCESS_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(&str, &str)> = extra.iter().chain(BASE.iter()).copied().collect();
        let result = env(&vars).config();
        result
    }

    #[test]
    fn defaults_are_safe() {
        let c = with(&[]).unwrap();
        assert!(!c.execute, "OPENCLAW_EXECUTE defaults to simulation");
        assert_eq!(c.http.webhook_max_body, 65_536);
        assert!(!c.http.trust_forwarded_for);
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        for (var, value) in [
            ("OPENCLAW_EXECUTE", "maybe"),
            ("BIND_ADDR", "nowhere"),
            ("WORKERS", "-1"),
            ("JOB_MAX_ATTEMPTS", "0"),
            ("JOB_LEASE_SECS", "1"),
            ("WEBHOOK_RATE_LIMIT_PER_MINUTE", "0"),
            ("TRACKING_HMAC_SECRET", "short"),
            ("TRACKING_HMAC_SECRET", "whsec_***"),
            ("ACCESS_JWT_SECRET", "short"),
            ("ACCESS_JWT_SECRET_PREVIOUS", "short"),
            ("DATABASE_URL", "mysql://x"),
        ] {
            let e = with(&[(var, value)]).unwrap_err();
            assert_eq!(e.var, var, "{var}={value}: {e}");
            assert!(!e.to_string().contains('\n'), "one line");
        }
        let e = env(&[]).config().unwrap_err();
        assert_eq!(e.to_string(), "configuration: DATABASE_URL is not set (e.g. postgres://relayer@127.0.0.1:5432/relayer)");
    }

    #[test]
    fn chain_settings_have_defaults_and_name_bad_values() {
        let chain = |extra: &[(&'static str, &'static str)]| {
            let vars: Vec<(&str, &str)> = extra
                .iter()
                .copied()
                .chain([("CLUSTER", "localnet")])
                .collect();
            let result = env(&vars).chain();
            result
        };
        let c = chain(&[]).unwrap().expect("CLUSTER is set");
        assert_eq!(c.confirm_poll, Duration::from_millis(100));
        assert_eq!(c.reconcile_interval, Duration::from_secs(30));
        for (var, value) in [
            ("CONFIRM_POLL_MS", "5"),
            ("CONFIRM_POLL_MS", "soon"),
            ("RECONCILE_INTERVAL_SECS", "0"),
        ] {
            assert_eq!(
                chain(&[(var, value)]).unwrap_err().var,
                var,
                "{var}={value}"
            );
        }
        assert!(
            env(&[]).chain().unwrap().is_none(),
            "no CLUSTER: record only"
        );
    }

    #[test]
    fn several_tracking_secrets_and_standard_webhooks_secrets() {
        let c = with(&[(
            "TRACKING_HMAC_SECRET",
            "first-secret-0123456, whsec_MDEyMzQ1Njc4OWFiY2RlZg==",
        )])
        .unwrap();
        assert_eq!(c.http.tracking_secrets.len(), 2);
        assert_eq!(c.http.tracking_secrets[1].expose(), b"0123456789abcdef");
        assert_eq!(
            format!("{:?}", c.http.tracking_secrets[0]),
            "Secret(***)",
            "secrets never print"
        );
    }
}

/// The chain side of `relayer serve`, when `CLUSTER` is set.
#[derive(Clone, Debug)]
pub struct ChainSettings {
    pub cluster: String,
    pub priority_fee_micro_lamports: u64,
    pub reconcile_interval: Duration,
    pub confirm_poll: Duration,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn chain(&self) -> Result<Option<ChainSettings>, ConfigError> {
        let Some(cluster) = self.optional("CLUSTER") else {
            return Ok(None);
        };
        let reconcile_secs: u64 = self.parsed("RECONCILE_INTERVAL_SECS", 30, "seconds")?;
        if reconcile_secs == 0 {
            return Err(ConfigError {
                var: "RECONCILE_INTERVAL_SECS",
                problem: "must be at least 1".into(),
            });
        }
        let confirm_poll_ms: u64 = self.parsed("CONFIRM_POLL_MS", 100, "milliseconds")?;
        if !(10..=10_000).contains(&confirm_poll_ms) {
            return Err(ConfigError {
                var: "CONFIRM_POLL_MS",
                problem: "must be between 10 and 10000".into(),
            });
        }
        Ok(Some(ChainSettings {
            cluster,
            priority_fee_micro_lamports: self.parsed(
                "PRIORITY_FEE_MICRO_LAMPORTS",
                0,
                "micro-lamports per compute unit",
            )?,
            reconcile_interval: Duration::from_secs(reconcile_secs),
            confirm_poll: Duration::from_millis(confirm_poll_ms),
        }))
    }
}

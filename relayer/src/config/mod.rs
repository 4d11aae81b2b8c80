//! The relayer's configuration: one typed tree, built here from the environment (and, with
//! `SECRETS_VAULT_KV`, the secrets from Vault KV), with the deploy checklist's variable names.
//!
//! Every variable is read through `Env`, only here, and only if `vars::VARS` lists it with its
//! default and help line (`relayer --help` prints that table). A missing or malformed value stops
//! start-up with one line naming the variable and what it should look like.
mod database;
pub mod env;
mod secrets;
mod signer;
pub mod vars;

use std::{net::SocketAddr, time::Duration};

use anchor_lang::prelude::Pubkey;

pub use self::database::{AppRole, DatabaseConfig};
use self::env::at_least;
pub use self::env::Env;
pub use self::secrets::{Secret, Secrets, SECRET_NAMES};
use crate::signer::SignerConfig;

/// A configuration error: one line, naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {var} {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

#[derive(Clone, Debug)]
pub struct HttpConfig {
    pub bind: SocketAddr,
    /// The proxies whose `X-Forwarded-For` is believed; empty: the peer is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub webhook_rate_per_minute: u32,
    pub webhook_max_body: usize,
    pub actions_rate_per_minute: u32,
    pub operator_rate_per_minute: u32,
    pub auth_failures_per_minute: u32,
    pub audit_rate_per_minute: u32,
    pub limits: crate::server::Limits,
    /// A listener of its own for `/metrics`, without authentication.
    pub metrics_bind: Option<SocketAddr>,
    /// `SHIPENGINE_JWKS_URL`: where ShipEngine's webhook keys are; `None`: its endpoint is off.
    pub shipengine_jwks_url: Option<String>,
    /// Base URL for absolute links in Actions responses (icon); no trailing slash.
    pub public_url: Option<String>,
    /// Terminate TLS here (and optionally require client certificates on the operator API).
    pub tls: Option<crate::tls::TlsConfig>,
    /// `PAGE_SCRIPT`: the deal page's built script; `None`: the page is served without it.
    pub page_script: Option<std::path::PathBuf>,
    /// `EXPLORER_TX_URL`: the deal page's transaction links, `{signature}` replaced.
    pub explorer_tx_url: Option<String>,
}

/// What an operator token must be: HS256 with the secrets, this issuer and audience, a `jti`,
/// issued no later than now and valid for at most `max_ttl`.
#[derive(Clone, Debug)]
pub struct TokenConfig {
    pub issuer: String,
    pub audience: String,
    pub max_ttl: Duration,
}

/// When an offer needs a human (`relayer_offers_stuck`, and the watchtower's warnings).
#[derive(Clone, Copy, Debug)]
pub struct StuckConfig {
    /// A shipment ended this long ago and its deal has not settled.
    pub settle_after: Duration,
    /// A shipment in transit has had no carrier event for this long.
    pub silent_after: Duration,
}

#[derive(Clone, Debug)]
pub struct QueueConfig {
    pub workers: usize,
    /// Jobs a worker claims in one statement; it runs them one after another.
    pub claim_batch: usize,
    pub max_attempts: i32,
    pub lease: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for QueueConfig {
    /// The table's defaults.
    fn default() -> Self {
        Env(|_| None).queue().expect("the defaults are valid")
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

/// Where rotated secrets come from: a Vault/OpenBao KV v2 secret.
#[derive(Clone, Debug)]
pub struct KvConfig {
    pub url: String,
    pub token: Secret,
    pub mount: String,
    pub path: String,
    pub refresh: Duration,
    /// The secrets' values from the environment, for names the KV secret does not hold.
    pub fallback: Vec<(&'static str, String)>,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub database: DatabaseConfig,
    pub http: HttpConfig,
    pub secrets: Secrets,
    /// Set when the secrets come from Vault KV (and are re-read from there).
    pub secrets_kv: Option<KvConfig>,
    pub tokens: TokenConfig,
    pub queue: QueueConfig,
    pub execute: bool,
    /// An ended shipment whose escrow has not settled after this long is flagged as stuck.
    pub stuck: StuckConfig,
    /// Where workers act; `None`: jobs are only recorded.
    pub chain: Option<ChainSettings>,
    /// Required with `chain`.
    pub signer: Option<SignerConfig>,
    pub relayer_address: Option<Pubkey>,
    pub audit_checkpoint_every: Duration,
}

impl Config {
    /// Everything `relayer serve` needs, checked together. With `SECRETS_VAULT_KV` the secrets
    /// are read from Vault KV here, and must pass the same checks as their variables.
    pub async fn load<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> anyhow::Result<Self> {
        let secrets_kv = env.kv()?;
        let secrets = match &secrets_kv {
            None => env.secrets()?,
            Some(kv) => crate::secrets::read(kv).await?,
        };
        Ok(env.config(secrets, secrets_kv)?)
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn http(&self) -> Result<HttpConfig, ConfigError> {
        let rate = |var| -> Result<u32, ConfigError> {
            let rate: u32 = self.parsed(var, "a positive integer")?;
            at_least(var, u64::from(rate), 1)?;
            Ok(rate)
        };
        if self.optional("TRUST_FORWARDED_FOR").is_some() {
            return Err(ConfigError {
                var: "TRUST_FORWARDED_FOR",
                problem: "is replaced by TRUSTED_PROXIES: list your proxies' addresses (CIDRs), \
                          e.g. TRUSTED_PROXIES=127.0.0.1/32"
                    .into(),
            });
        }
        let max_connections: Option<usize> =
            self.parsed_opt("HTTP_MAX_CONNECTIONS", "a number of connections")?;
        let limits = crate::server::Limits {
            header_timeout: self.secs("HTTP_HEADER_TIMEOUT_SECS", 1)?,
            body_timeout: self.secs("HTTP_BODY_TIMEOUT_SECS", 1)?,
            request_timeout: self.secs("HTTP_REQUEST_TIMEOUT_SECS", 1)?,
            max_connections: match max_connections {
                Some(n) => {
                    at_least("HTTP_MAX_CONNECTIONS", n as u64, 1)?;
                    n
                }
                None => crate::server::max_connections_for_file_limit(256),
            },
        };
        Ok(HttpConfig {
            bind: self.parsed("BIND_ADDR", "host:port")?,
            trusted_proxies: self.trusted_proxies()?,
            webhook_rate_per_minute: rate("WEBHOOK_RATE_LIMIT_PER_MINUTE")?,
            webhook_max_body: self.parsed("WEBHOOK_MAX_BODY_BYTES", "a number of bytes")?,
            shipengine_jwks_url: self.optional("SHIPENGINE_JWKS_URL"),
            actions_rate_per_minute: rate("ACTIONS_RATE_LIMIT_PER_MINUTE")?,
            operator_rate_per_minute: rate("OPERATOR_RATE_LIMIT_PER_MINUTE")?,
            auth_failures_per_minute: rate("AUTH_FAILURES_PER_MINUTE")?,
            audit_rate_per_minute: rate("AUDIT_RATE_LIMIT_PER_MINUTE")?,
            limits,
            metrics_bind: self.parsed_opt("METRICS_BIND_ADDR", "host:port")?,
            public_url: self.public_url()?,
            tls: self.tls()?,
            page_script: self.optional("PAGE_SCRIPT").map(Into::into),
            explorer_tx_url: self.explorer_tx_url()?,
        })
    }

    fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        let Some(list) = self.optional("TRUSTED_PROXIES") else {
            return Ok(Vec::new());
        };
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| ConfigError {
                        var: "TRUSTED_PROXIES",
                        problem: format!("has {s:?}, which is not an address or a CIDR"),
                    })
            })
            .collect()
    }

    pub fn tokens(&self) -> Result<TokenConfig, ConfigError> {
        Ok(TokenConfig {
            issuer: self.required("ACCESS_JWT_ISSUER", "openclaw-relayer")?,
            audience: self.required("ACCESS_JWT_AUDIENCE", "openclaw-relayer-operator-api")?,
            max_ttl: self.secs("ACCESS_JWT_MAX_TTL_SECS", 60)?,
        })
    }

    pub fn queue(&self) -> Result<QueueConfig, ConfigError> {
        let max_attempts: i32 = self.parsed("JOB_MAX_ATTEMPTS", "a positive integer")?;
        at_least("JOB_MAX_ATTEMPTS", max_attempts.max(0) as u64, 1)?;
        let claim_batch: usize = self.parsed("JOB_CLAIM_BATCH", "a number of jobs, 1 to 64")?;
        if !(1..=64).contains(&claim_batch) {
            return Err(ConfigError {
                var: "JOB_CLAIM_BATCH",
                problem: "must be 1 to 64".into(),
            });
        }
        Ok(QueueConfig {
            workers: self.parsed("WORKERS", "a number of workers")?,
            claim_batch,
            max_attempts,
            lease: self.secs("JOB_LEASE_SECS", 5)?,
            backoff_base: Duration::from_millis(
                self.parsed("JOB_BACKOFF_BASE_MS", "milliseconds")?,
            ),
            backoff_max: self.secs("JOB_BACKOFF_MAX_SECS", 0)?,
        })
    }

    pub fn chain(&self) -> Result<Option<ChainSettings>, ConfigError> {
        let Some(cluster) = self.optional("CLUSTER") else {
            return Ok(None);
        };
        let confirm_poll_ms: u64 = self.parsed("CONFIRM_POLL_MS", "milliseconds")?;
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
                "micro-lamports per compute unit",
            )?,
            reconcile_interval: self.secs("RECONCILE_INTERVAL_SECS", 1)?,
            confirm_poll: Duration::from_millis(confirm_poll_ms),
        }))
    }

    /// `RELAYER_ADDRESS`: the address the signer must have, when set.
    pub fn relayer_address(&self) -> Result<Option<Pubkey>, ConfigError> {
        self.parsed_opt("RELAYER_ADDRESS", "a base58 address")
    }

    /// `RUST_LOG`.
    pub fn log_filter(&self) -> String {
        self.optional("RUST_LOG").unwrap_or_default()
    }

    /// `RELAYER_FAILPOINT`: the step the process aborts at (fault-injection tests only).
    pub fn failpoint(&self) -> Option<String> {
        self.optional("RELAYER_FAILPOINT")
    }

    /// `SECRETS_VAULT_KV`, when set: where the secrets are read from instead.
    pub fn kv(&self) -> Result<Option<KvConfig>, ConfigError> {
        let Some(location) = self.optional("SECRETS_VAULT_KV") else {
            return Ok(None);
        };
        let (mount, path) = location
            .trim_matches('/')
            .split_once('/')
            .filter(|(m, p)| !m.is_empty() && !p.is_empty())
            .ok_or_else(|| ConfigError {
                var: "SECRETS_VAULT_KV",
                problem: format!(
                    "is {location:?}, expected <mount>/<path>, e.g. secret/openclaw/relayer"
                ),
            })?;
        Ok(Some(KvConfig {
            url: self.required("VAULT_URL", "https://vault.internal:8200")?,
            token: self.vault_token()?,
            mount: mount.to_owned(),
            path: path.to_owned(),
            refresh: self.secs("SECRETS_REFRESH_SECS", 1)?,
            fallback: SECRET_NAMES
                .iter()
                .filter_map(|&name| Some((name, self.optional(name)?)))
                .collect(),
        }))
    }

    /// The whole tree, around secrets already read.
    pub fn config(
        &self,
        secrets: Secrets,
        secrets_kv: Option<KvConfig>,
    ) -> Result<Config, ConfigError> {
        let execute = self.flag("OPENCLAW_EXECUTE")?;
        let chain = self.chain()?;
        let relayer_address = self.relayer_address()?;
        if execute && chain.is_none() {
            return Err(ConfigError {
                var: "OPENCLAW_EXECUTE",
                problem: "is true, which needs CLUSTER (the chain to act on)".into(),
            });
        }
        if execute && relayer_address.is_none() {
            return Err(ConfigError {
                var: "RELAYER_ADDRESS",
                problem: "is required with OPENCLAW_EXECUTE=true (relayer signer check prints it)"
                    .into(),
            });
        }
        let signer = match chain {
            Some(_) => Some(self.signer(execute)?),
            None => None,
        };
        Ok(Config {
            database: self.database()?,
            http: self.http()?,
            secrets,
            secrets_kv,
            tokens: self.tokens()?,
            queue: self.queue()?,
            execute,
            stuck: StuckConfig {
                settle_after: self.secs("STUCK_AFTER_SECS", 1)?,
                silent_after: self.secs("TRANSIT_SILENT_AFTER_SECS", 1)?,
            },
            chain,
            signer,
            relayer_address,
            audit_checkpoint_every: self.secs("AUDIT_CHECKPOINT_SECS", 1)?,
        })
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

    fn explorer_tx_url(&self) -> Result<Option<String>, ConfigError> {
        let Some(url) = self.optional("EXPLORER_TX_URL") else {
            return Ok(None);
        };
        if !url.starts_with("https://") || !url.contains("{signature}") {
            return Err(ConfigError {
                var: "EXPLORER_TX_URL",
                problem: format!(
                    "must be an https URL with {{signature}} in it, like \
                     https://explorer.solana.com/tx/{{signature}}?cluster=devnet, got {url:?}"
                ),
            });
        }
        Ok(Some(url))
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
}

#[cfg(test)]
mod tests;

//! The relayer's configuration: one typed tree, built here from the environment (and, with
//! `SECRETS_VAULT_KV`, the secrets from Vault KV), with the deploy checklist's variable names.
//!
//! Every variable is read through `Env`, only here, and only if `vars::VARS` lists it with its
//! default and help line (`relayer --help` prints that table). A missing or malformed value stops
//! start-up with one line naming the variable and what it should look like.
pub mod env;
mod signer;
pub mod vars;

use std::{fmt, net::SocketAddr, time::Duration};

use anchor_lang::prelude::Pubkey;

use self::env::at_least;
pub use self::env::Env;
use crate::signer::SignerConfig;

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
/// KV (see `crate::secrets`).
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

/// The names of the secrets, as variables and as keys of the Vault KV secret.
pub const SECRET_NAMES: [&str; 3] = [
    "TRACKING_HMAC_SECRET",
    "ACCESS_JWT_SECRET",
    "ACCESS_JWT_SECRET_PREVIOUS",
];

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
    pub queue: QueueConfig,
    pub execute: bool,
    /// An ended shipment whose escrow has not settled after this long is flagged as stuck.
    pub stuck_after: Duration,
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

    /// The webhook and operator-token secrets, checked (also when re-read from Vault KV).
    pub fn secrets(&self) -> Result<Secrets, ConfigError> {
        let tracking = self
            .required("TRACKING_HMAC_SECRET", "a random string of 32+ characters")?
            .split(',')
            .map(|s| parse_hmac_secret(s.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        let jwt = self.jwt_secret("ACCESS_JWT_SECRET")?;
        let jwt_previous = match self.optional("ACCESS_JWT_SECRET_PREVIOUS") {
            None => None,
            Some(_) => Some(self.jwt_secret("ACCESS_JWT_SECRET_PREVIOUS")?),
        };
        Ok(Secrets {
            tracking,
            jwt,
            jwt_previous,
        })
    }

    /// An operator-token secret: at least 32 characters.
    pub fn jwt_secret(&self, var: &'static str) -> Result<Secret, ConfigError> {
        let value = self.required(var, "a random string of 32+ characters")?;
        if value.len() < 32 {
            return Err(ConfigError {
                var,
                problem: "must be at least 32 characters".into(),
            });
        }
        Ok(Secret::new(value.into_bytes()))
    }

    pub fn http(&self) -> Result<HttpConfig, ConfigError> {
        let rate = |var| -> Result<u32, ConfigError> {
            let rate: u32 = self.parsed(var, "a positive integer")?;
            at_least(var, u64::from(rate), 1)?;
            Ok(rate)
        };
        Ok(HttpConfig {
            bind: self.parsed("BIND_ADDR", "host:port")?,
            trust_forwarded_for: self.flag("TRUST_FORWARDED_FOR")?,
            webhook_rate_per_minute: rate("WEBHOOK_RATE_LIMIT_PER_MINUTE")?,
            webhook_max_body: self.parsed("WEBHOOK_MAX_BODY_BYTES", "a number of bytes")?,
            actions_rate_per_minute: rate("ACTIONS_RATE_LIMIT_PER_MINUTE")?,
            public_url: self.public_url()?,
            tls: self.tls()?,
        })
    }

    pub fn queue(&self) -> Result<QueueConfig, ConfigError> {
        let max_attempts: i32 = self.parsed("JOB_MAX_ATTEMPTS", "a positive integer")?;
        at_least("JOB_MAX_ATTEMPTS", max_attempts.max(0) as u64, 1)?;
        Ok(QueueConfig {
            workers: self.parsed("WORKERS", "a number of workers")?,
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
            queue: self.queue()?,
            execute,
            stuck_after: self.secs("STUCK_AFTER_SECS", 1)?,
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

#[cfg(test)]
mod tests;

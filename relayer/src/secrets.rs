//! Secrets from Vault/OpenBao KV instead of the environment: with `SECRETS_VAULT_KV` the
//! relayer reads `TRACKING_HMAC_SECRET`, `ACCESS_JWT_SECRET` and `ACCESS_JWT_SECRET_PREVIOUS`
//! from that KV v2 secret at start-up, then re-reads it every `SECRETS_REFRESH_SECS`: a rotation
//! written to Vault takes effect without a restart. A value that fails the same checks as its
//! environment variable is refused and the secrets in force stay.
use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use tokio_util::sync::CancellationToken;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};

use crate::config::{ConfigError, Env, Secrets};

/// The names read from the KV secret: the same as the environment variables they replace.
pub const KEYS: [&str; 3] = [
    "TRACKING_HMAC_SECRET",
    "ACCESS_JWT_SECRET",
    "ACCESS_JWT_SECRET_PREVIOUS",
];

pub struct KvSource {
    client: VaultClient,
    mount: String,
    path: String,
    pub refresh: Duration,
}

impl KvSource {
    /// `None` without `SECRETS_VAULT_KV`.
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<Option<Self>, ConfigError> {
        let Some(location) = env.optional("SECRETS_VAULT_KV") else {
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
        let url = env.required("VAULT_URL", "https://vault.internal:8200")?;
        let token =
            String::from_utf8(env.vault_token()?.expose().to_vec()).map_err(|_| ConfigError {
                var: "VAULT_TOKEN",
                problem: "is not UTF-8".into(),
            })?;
        let refresh: u64 = env.parsed("SECRETS_REFRESH_SECS", 60, "seconds")?;
        let settings = VaultClientSettingsBuilder::default()
            .address(&url)
            .token(token)
            .timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| ConfigError {
                var: "VAULT_URL",
                problem: format!("is not usable: {e}"),
            })?;
        let client = VaultClient::new(settings).map_err(|e| ConfigError {
            var: "VAULT_URL",
            problem: format!("is not usable: {e}"),
        })?;
        Ok(Some(Self {
            client,
            mount: mount.to_owned(),
            path: path.to_owned(),
            refresh: Duration::from_secs(refresh.max(1)),
        }))
    }

    /// The KV secret's fields that this module reads.
    pub async fn read(&self) -> anyhow::Result<HashMap<String, String>> {
        let mut data: HashMap<String, String> =
            vaultrs::kv2::read(&self.client, &self.mount, &self.path)
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "reading secrets from Vault KV {}/{}: {e} (check SECRETS_VAULT_KV and the token's policy: read on {}/data/{})",
                        self.mount, self.path, self.mount, self.path
                    )
                })?;
        data.retain(|k, _| KEYS.contains(&k.as_str()));
        Ok(data)
    }

    /// The secrets held in KV, checked like their environment variables; a name missing from
    /// KV falls back to the environment, as at start-up.
    pub async fn secrets(&self) -> anyhow::Result<Secrets> {
        let data = self.read().await?;
        Ok(
            Env(|name: &str| data.get(name).cloned().or_else(|| std::env::var(name).ok()))
                .secrets()?,
        )
    }
}

/// Refreshes by result (rotated, unchanged, failed), process-wide; the metrics registry exports it.
pub static REFRESHES: std::sync::LazyLock<prometheus::IntCounterVec> =
    std::sync::LazyLock::new(|| {
        prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "secrets_refreshes_total",
                "Re-reads of SECRETS_VAULT_KV by result",
            ),
            &["result"],
        )
        .expect("metric")
    });

/// Re-reads the KV secret every `source.refresh` and swaps `live` when it changed.
pub async fn run_refresh(
    source: KvSource,
    live: Arc<RwLock<Arc<Secrets>>>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(source.refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while tokio::select! { _ = tick.tick() => true, _ = shutdown.cancelled() => false } {
        let result = match source.secrets().await {
            Ok(fresh) => {
                let mut current = live.write().expect("secrets lock poisoned");
                if **current != fresh {
                    *current = Arc::new(fresh);
                    tracing::info!("secrets rotated from Vault KV");
                    "rotated"
                } else {
                    "unchanged"
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "secrets not refreshed; the ones in force stay");
                "failed"
            }
        };
        REFRESHES.with_label_values(&[result]).inc();
    }
}

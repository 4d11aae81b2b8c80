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

use crate::config::{ConfigError, Env, KvConfig, Secrets, SECRET_NAMES};

fn client(kv: &KvConfig) -> anyhow::Result<VaultClient> {
    let token = String::from_utf8(kv.token.expose().to_vec()).map_err(|_| ConfigError {
        var: "VAULT_TOKEN",
        problem: "is not UTF-8".into(),
    })?;
    let settings = VaultClientSettingsBuilder::default()
        .address(&kv.url)
        .token(token)
        .timeout(Some(Duration::from_secs(10)))
        .build()
        .map_err(|e| ConfigError {
            var: "VAULT_URL",
            problem: format!("is not usable: {e}"),
        })?;
    Ok(VaultClient::new(settings).map_err(|e| ConfigError {
        var: "VAULT_URL",
        problem: format!("is not usable: {e}"),
    })?)
}

/// The secrets held in KV, checked like their environment variables; a name missing from KV
/// falls back to its environment variable (read at start-up).
pub async fn read(kv: &KvConfig) -> anyhow::Result<Secrets> {
    let mut data: HashMap<String, String> = vaultrs::kv2::read(&client(kv)?, &kv.mount, &kv.path)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "reading secrets from Vault KV {}/{}: {e} (check SECRETS_VAULT_KV and the token's policy: read on {}/data/{})",
                kv.mount, kv.path, kv.mount, kv.path
            )
        })?;
    data.retain(|k, _| SECRET_NAMES.contains(&k.as_str()));
    let value = |name: &str| {
        data.get(name).cloned().or_else(|| {
            kv.fallback
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        })
    };
    Ok(Env(value).secrets()?)
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

/// Re-reads the KV secret every `kv.refresh` and swaps `live` when it changed.
pub async fn run_refresh(
    kv: KvConfig,
    live: Arc<RwLock<Arc<Secrets>>>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(kv.refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while tokio::select! { _ = tick.tick() => true, _ = shutdown.cancelled() => false } {
        let result = match read(&kv).await {
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

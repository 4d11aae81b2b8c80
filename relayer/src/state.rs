use std::{
    net::IpAddr,
    num::NonZeroU32,
    sync::{Arc, RwLock},
};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sqlx::PgPool;
use tokio::sync::OnceCell;

use crate::{
    chain::Chain,
    config::{Config, Secrets},
    ingest::Ingest,
    metrics::Metrics,
};

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub metrics: Metrics,
    pub webhook_limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    pub actions_limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// The chain Solana Actions build transactions for; `None` when the relayer only records.
    pub chain: Option<Arc<dyn Chain>>,
    /// `solana:<genesis hash prefix>` of `chain`, read once (the `X-Blockchain-Ids` header).
    pub blockchain_id: Arc<OnceCell<String>>,
    /// The webhook and operator-token secrets now in force (swapped on rotation).
    pub secrets: Arc<RwLock<Arc<Secrets>>>,
    /// Where verified tracking events are stored (group commit).
    pub ingest: Ingest,
}

impl AppState {
    /// The secrets in force: a rotation swaps in a new set, so a request shares this one
    /// instead of copying every secret.
    pub fn secrets(&self) -> Arc<Secrets> {
        self.secrets.read().expect("secrets lock poisoned").clone()
    }
}

fn limiter(per_minute: u32) -> Arc<DefaultKeyedRateLimiter<IpAddr>> {
    let per_minute = NonZeroU32::new(per_minute).expect("validated at start-up");
    Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute)))
}

impl AppState {
    pub fn new(pool: PgPool, config: Config, metrics: Metrics) -> Self {
        let secrets = config.secrets.clone();
        Self {
            ingest: Ingest::start(pool.clone(), config.queue.max_attempts),
            pool,
            secrets: Arc::new(RwLock::new(Arc::new(secrets))),
            webhook_limiter: limiter(config.http.webhook_rate_per_minute),
            actions_limiter: limiter(config.http.actions_rate_per_minute),
            config: Arc::new(config),
            metrics,
            chain: None,
            blockchain_id: Arc::default(),
        }
    }
}

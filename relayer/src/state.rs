use std::{net::IpAddr, sync::Arc};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sqlx::PgPool;

use crate::{config::Config, metrics::Metrics};

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub metrics: Metrics,
    pub webhook_limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl AppState {
    pub fn new(pool: PgPool, config: Config, metrics: Metrics) -> Self {
        let per_minute = std::num::NonZeroU32::new(config.http.webhook_rate_per_minute)
            .expect("validated at start-up");
        Self {
            pool,
            webhook_limiter: Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute))),
            config: Arc::new(config),
            metrics,
        }
    }
}

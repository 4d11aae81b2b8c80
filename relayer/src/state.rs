use std::sync::{Arc, RwLock};

use sqlx::PgPool;
use tokio::sync::OnceCell;

use crate::{
    chain::Chain,
    config::{Config, Secrets},
    ingest::Ingest,
    metrics::Metrics,
    routes::limits::Limiters,
};

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub metrics: Metrics,
    pub limits: Arc<Limiters>,
    /// The base of absolute links (the Actions icon): `PUBLIC_URL`, or the address the relayer
    /// listens on. Never taken from a request's `Host`, which the client writes.
    pub public_url: Arc<str>,
    /// The chain Solana Actions build transactions for; `None` when the relayer only records.
    pub chain: Option<Arc<dyn Chain>>,
    /// `solana:<genesis hash prefix>` of `chain`, read once (the `X-Blockchain-Ids` header).
    pub blockchain_id: Arc<OnceCell<String>>,
    /// The webhook and operator-token secrets now in force (swapped on rotation).
    pub secrets: Arc<RwLock<Arc<Secrets>>>,
    /// ShipEngine's webhook keys, with `SHIPENGINE_JWKS_URL`.
    pub shipengine: Option<Arc<crate::providers::shipengine::Jwks>>,
    /// Where verified tracking events are stored (group commit).
    pub ingest: Ingest,
    /// The deal page's script (`PAGE_SCRIPT`), read at start-up.
    pub page_script: Option<axum::body::Bytes>,
}

impl AppState {
    /// The secrets in force: a rotation swaps in a new set, so a request shares this one
    /// instead of copying every secret.
    pub fn secrets(&self) -> Arc<Secrets> {
        self.secrets.read().expect("secrets lock poisoned").clone()
    }

    /// The client's address for a request from `peer` (see `routes::limits::client_ip`).
    pub fn client_ip(
        &self,
        headers: &axum::http::HeaderMap,
        peer: std::net::SocketAddr,
    ) -> std::net::IpAddr {
        crate::routes::limits::client_ip(headers, peer, &self.config.http.trusted_proxies)
    }
}

impl AppState {
    pub fn new(
        pool: PgPool,
        config: Config,
        metrics: Metrics,
        public_url: String,
        page_script: Option<axum::body::Bytes>,
    ) -> Self {
        let secrets = config.secrets.clone();
        let shipengine = config
            .http
            .shipengine_jwks_url
            .clone()
            .map(|url| Arc::new(crate::providers::shipengine::Jwks::new(url)));
        Self {
            ingest: Ingest::start(pool.clone(), config.queue.max_attempts),
            pool,
            secrets: Arc::new(RwLock::new(Arc::new(secrets))),
            limits: Limiters::new(&config.http),
            public_url: public_url.into(),
            config: Arc::new(config),
            metrics,
            chain: None,
            blockchain_id: Arc::default(),
            shipengine,
            page_script,
        }
    }
}

//! Building and running the relayer: the HTTP server, the job workers, or both.
use std::{net::SocketAddr, sync::Arc};

use axum::{
    extract::DefaultBodyLimit,
    routing::{get, post},
    Router,
};
use tokio::{net::TcpListener, sync::Notify, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    config::Config,
    metrics::Metrics,
    routes,
    state::AppState,
    tls::{Peer, TlsListener},
    worker::{self, JobHandler, Worker},
};

/// What `relayer serve` runs in this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// HTTP server and workers.
    All,
    /// Only the HTTP server (webhooks, operator API, health, metrics).
    Http,
    /// Only job workers.
    Worker,
}

pub fn router(state: AppState) -> Router {
    let webhook_limit = state.config.http.webhook_max_body;
    Router::new()
        .route(
            "/webhooks/tracking",
            post(routes::webhooks::tracking).layer(DefaultBodyLimit::max(webhook_limit)),
        )
        .merge(routes::blinks::router(state.clone()))
        .route("/v1/offers", post(routes::offers::create))
        .route("/v1/offers/{id}", get(routes::offers::get))
        .route("/v1/jobs", get(routes::jobs::list))
        .route("/v1/audit/entries", get(routes::audit::entries))
        .route("/v1/audit/offers/{id}", get(routes::audit::of_offer))
        .route("/v1/audit/checkpoints", get(routes::audit::checkpoints))
        .route("/v1/jobs/{id}/retry", post(routes::jobs::retry))
        .route("/healthz", get(routes::health::live))
        .route("/readyz", get(routes::health::ready))
        .route("/metrics", get(routes::metrics::metrics))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Everything `relayer serve` runs, from its configuration: without `CLUSTER` the workers only
/// record jobs; with it they act on that chain (simulating unless `OPENCLAW_EXECUTE`), with the
/// watchtower and audit checkpoints signed by the relayer's key.
pub async fn serve(config: Config, role: Role) -> anyhow::Result<Application> {
    let kv = config.secrets_kv.clone();
    let (Some(settings), Some(signer_config)) = (config.chain.clone(), config.signer.clone())
    else {
        tracing::info!("no CLUSTER: jobs are recorded, nothing is simulated or sent");
        let app = Application::build(config, role, Arc::new(crate::worker::Simulate)).await?;
        return Ok(app.with_secret_refresh(kv));
    };
    let expected = config.relayer_address;
    let signer = crate::signer::connect(&signer_config, expected).await?;
    let pool = crate::db::pool(&config.database.url)?;
    crate::audit::append_now(
        &pool,
        "signer_check",
        None,
        serde_json::json!({ "address": signer.pubkey().to_string(),
                            "expected": expected.map(|e| e.to_string()),
                            "execute": config.execute }),
    )
    .await?;
    let chain: Arc<dyn crate::chain::Chain> =
        Arc::new(crate::chain::rpc::RpcChain::new(&settings.cluster));
    let pipeline = crate::pipeline::Pipeline::new(
        pool,
        chain.clone(),
        signer.clone(),
        crate::pipeline::PipelineConfig {
            execute: config.execute,
            confirm_poll: settings.confirm_poll,
            max_attempts: config.queue.max_attempts,
            priority_fee_micro_lamports: settings.priority_fee_micro_lamports,
        },
    );
    tracing::info!(cluster = %settings.cluster, execute = config.execute, "acting on-chain");
    let checkpoint_every = config.audit_checkpoint_every;
    let handler = Arc::new(crate::pipeline::Handler(pipeline));
    Ok(Application::build(config, role, handler)
        .await?
        .with_chain(chain.clone())
        .with_reconciler(chain, settings.reconcile_interval)
        .with_audit_checkpoints(signer, checkpoint_every)
        .with_secret_refresh(kv))
}

pub struct Application {
    state: AppState,
    listener: Option<TcpListener>,
    handler: Arc<dyn JobHandler>,
    role: Role,
    /// The watchtower, run next to the workers when the relayer acts on a chain.
    reconciler: Option<(Arc<dyn crate::chain::Chain>, std::time::Duration)>,
    /// Signs audit checkpoints next to the workers, when the relayer has a signer.
    checkpoints: Option<(Arc<dyn crate::signer::TxSigner>, std::time::Duration)>,
    /// Where rotated secrets come from, when not from the environment.
    secrets: Option<crate::config::KvConfig>,
}

impl Application {
    /// Binds the listener (when serving HTTP) so the port is known before `run`.
    pub async fn build(
        config: Config,
        role: Role,
        handler: Arc<dyn JobHandler>,
    ) -> anyhow::Result<Self> {
        let pool = crate::db::pool(&config.database.url)?;
        let listener = match role {
            Role::Worker => None,
            _ => Some(TcpListener::bind(config.http.bind).await.map_err(|e| {
                anyhow::anyhow!("cannot listen on BIND_ADDR {}: {e}", config.http.bind)
            })?),
        };
        Ok(Self {
            state: AppState::new(pool, config, Metrics::new()),
            listener,
            handler,
            role,
            reconciler: None,
            checkpoints: None,
            secrets: None,
        })
    }

    /// The chain that Solana Actions build and simulate transactions against.
    pub fn with_chain(mut self, chain: Arc<dyn crate::chain::Chain>) -> Self {
        self.state.chain = Some(chain);
        self
    }

    pub fn with_reconciler(
        mut self,
        chain: Arc<dyn crate::chain::Chain>,
        interval: std::time::Duration,
    ) -> Self {
        self.reconciler = Some((chain, interval));
        self
    }

    pub fn with_audit_checkpoints(
        mut self,
        signer: Arc<dyn crate::signer::TxSigner>,
        interval: std::time::Duration,
    ) -> Self {
        self.checkpoints = Some((signer, interval));
        self
    }

    /// Re-reads the secrets from Vault KV every `kv.refresh`, for rotation without restart.
    pub fn with_secret_refresh(mut self, kv: Option<crate::config::KvConfig>) -> Self {
        self.secrets = kv;
        self
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Runs until `shutdown` is cancelled: the server stops taking requests and finishes those
    /// in flight; workers stop claiming and hand back jobs they hold.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut tasks = JoinSet::new();
        if let (Some((chain, interval)), true) = (self.reconciler.clone(), self.role != Role::Http)
        {
            let config = &self.state.config;
            tasks.spawn(crate::reconcile::run(
                self.state.pool.clone(),
                chain,
                interval,
                config.queue.max_attempts,
                config.stuck_after,
                shutdown.clone(),
            ));
        }
        if let (Some((signer, interval)), true) =
            (self.checkpoints.clone(), self.role != Role::Http)
        {
            tasks.spawn(crate::audit::run_checkpoints(
                self.state.pool.clone(),
                signer,
                interval,
                shutdown.clone(),
            ));
        }
        if let Some(source) = self.secrets {
            tasks.spawn(crate::secrets::run_refresh(
                source,
                self.state.secrets.clone(),
                shutdown.clone(),
            ));
        }
        if self.role != Role::Http {
            let wake = Arc::new(Notify::new());
            // Unique per process even when replicas share a hostname and pid (containers).
            let instance = &uuid::Uuid::new_v4().simple().to_string()[..8];
            tasks.spawn(worker::listen(
                self.state.pool.clone(),
                wake.clone(),
                shutdown.clone(),
            ));
            if let Some(stage) = self
                .handler
                .confirm_stage(&self.state.config.queue, &self.state.metrics)
            {
                tasks.spawn(stage.run(shutdown.clone()));
            }
            let completions = crate::queue::completions(self.state.pool.clone());
            for i in 0..self.state.config.queue.workers {
                let worker = Worker {
                    completions: completions.clone(),
                    pool: self.state.pool.clone(),
                    handler: self.handler.clone(),
                    name: format!("{}-{}-{instance}-{i}", hostname(), std::process::id()),
                    config: self.state.config.queue.clone(),
                    metrics: self.state.metrics.clone(),
                    wake: wake.clone(),
                };
                tasks.spawn(worker.run(shutdown.clone()));
            }
        }
        if let Some(listener) = self.listener {
            // One rate-limit bucket per client IP: forget idle ones so memory stays bounded.
            let limiters = [
                self.state.webhook_limiter.clone(),
                self.state.actions_limiter.clone(),
            ];
            let stop = shutdown.clone();
            tasks.spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
                while tokio::select! { _ = tick.tick() => true, _ = stop.cancelled() => false } {
                    for limiter in &limiters {
                        limiter.retain_recent();
                        limiter.shrink_to_fit();
                    }
                }
            });
            let app = router(self.state.clone()).into_make_service_with_connect_info::<Peer>();
            let stop = shutdown.clone();
            match &self.state.config.http.tls {
                None => {
                    tracing::info!(addr = %listener.local_addr()?, "listening (HTTP)");
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async move { stop.cancelled().await })
                        .await?;
                }
                Some(tls) => {
                    let acceptor = crate::tls::acceptor(tls)?;
                    tracing::info!(addr = %listener.local_addr()?, client_certificates = tls.client_ca_file.is_some(), "listening (HTTPS)");
                    axum::serve(TlsListener::new(listener, acceptor)?, app)
                        .with_graceful_shutdown(async move { stop.cancelled().await })
                        .await?;
                }
            }
        }
        shutdown.cancelled().await;
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "relayer".into())
}

/// Cancels `token` on SIGINT or SIGTERM.
pub async fn shutdown_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: finishing requests in flight, handing back claimed jobs");
    token.cancel();
}

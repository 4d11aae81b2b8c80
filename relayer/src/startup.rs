//! Building and running the relayer: the HTTP server, the job workers, or both.
use std::{net::SocketAddr, sync::Arc};

use tokio::{net::TcpListener, sync::Notify, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    config::Config,
    metrics::Metrics,
    routes, server,
    state::AppState,
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

/// Everything `relayer serve` runs, from its configuration: without `CLUSTER` the workers only
/// record jobs; with it they act on that chain (simulating unless `OPENCLAW_EXECUTE`), with the
/// watchtower and audit checkpoints signed by the relayer's key.
pub async fn serve(config: Config, role: Role) -> anyhow::Result<Application> {
    if !config.database.allow_privileged {
        crate::db::check_unprivileged(&crate::db::pool(&config.database.url)?).await?;
    }
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
    crate::audit::announce_signer(&pool, &signer.pubkey()).await?;
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
    /// `METRICS_BIND_ADDR`'s listener.
    metrics_listener: Option<TcpListener>,
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
        let bind = |addr: SocketAddr, var: &'static str| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {var} {addr}: {e}"))
        };
        let (listener, metrics_listener) = match role {
            Role::Worker => (None, None),
            _ => (
                Some(bind(config.http.bind, "BIND_ADDR").await?),
                match config.http.metrics_bind {
                    Some(addr) => Some(bind(addr, "METRICS_BIND_ADDR").await?),
                    None => None,
                },
            ),
        };
        let public_url = public_url(&config, listener.as_ref());
        let page_script = page_script(&config)?;
        Ok(Self {
            state: AppState::new(pool, config, Metrics::new(), public_url, page_script),
            listener,
            metrics_listener,
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

    /// `METRICS_BIND_ADDR`'s listener, once bound.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
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
                config.stuck,
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
        if let Some(listener) = self.metrics_listener {
            tracing::info!(addr = %listener.local_addr()?, "metrics listening (HTTP, no authentication)");
            let limits = self.state.config.http.limits;
            tasks.spawn(server::serve(
                listener,
                None,
                routes::metrics_router(self.state.clone()),
                limits,
                shutdown.clone(),
            ));
        }
        if let Some(listener) = self.listener {
            // One rate-limit bucket per client: forget idle ones so memory stays bounded.
            let (limits, stop) = (self.state.limits.clone(), shutdown.clone());
            tasks.spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
                while tokio::select! { _ = tick.tick() => true, _ = stop.cancelled() => false } {
                    limits.forget_idle();
                }
            });
            let http = &self.state.config.http;
            let tls = http.tls.as_ref().map(crate::tls::acceptor).transpose()?;
            tracing::info!(
                addr = %listener.local_addr()?, https = tls.is_some(),
                client_certificates = http.tls.as_ref().is_some_and(|t| t.client_ca_file.is_some()),
                max_connections = http.limits.max_connections, "listening"
            );
            server::serve(
                listener,
                tls,
                routes::router(self.state.clone()),
                http.limits,
                shutdown.clone(),
            )
            .await;
        }
        shutdown.cancelled().await;
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}

/// `PUBLIC_URL`, or the address the relayer listens on (a warning when that is not loopback:
/// clients elsewhere cannot follow such links). Never a request's `Host`, which the client writes.
fn public_url(config: &Config, listener: Option<&TcpListener>) -> String {
    if let Some(url) = &config.http.public_url {
        return url.clone();
    }
    let addr = listener
        .and_then(|l| l.local_addr().ok())
        .unwrap_or(config.http.bind);
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "PUBLIC_URL is not set: links in Solana Actions point at the listen address; set PUBLIC_URL to the relayer's public https URL");
    }
    let scheme = if config.http.tls.is_some() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{addr}")
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

/// `PAGE_SCRIPT`, read once: a path that cannot be read stops start-up, naming the fix.
fn page_script(config: &Config) -> anyhow::Result<Option<axum::body::Bytes>> {
    let Some(path) = &config.http.page_script else {
        return Ok(None);
    };
    let bytes = std::fs::read(path).map_err(|e| {
        anyhow::anyhow!(
            "PAGE_SCRIPT={}: cannot read the deal page's script ({e}); build it with \
             scripts/page.sh, or unset PAGE_SCRIPT to serve the page without it",
            path.display()
        )
    })?;
    Ok(Some(bytes.into()))
}

//! Workers: claim a job, run its handler while heartbeating the lease, record the outcome.
//! Idle workers sleep until a NOTIFY on `jobs`, the next scheduled run, or a 5 s poll.
use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use sqlx::{postgres::PgListener, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    config::QueueConfig,
    metrics::Metrics,
    queue::{self, Failed, Job},
};

/// Longest an idle worker sleeps without a notification (covers a lost NOTIFY connection).
const POLL: Duration = Duration::from_secs(5);

pub type JobFuture<'a> = Pin<Box<dyn Future<Output = Result<String, JobError>> + Send + 'a>>;

/// Why a job attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt later (a node or KMS down, a transaction not landed yet).
    #[error("{0}")]
    Retry(String),
    /// Retrying cannot help (the escrow does not match the offer, the KMS refuses): the job is
    /// dead-lettered at once for an operator.
    #[error("{0}")]
    Permanent(String),
}

/// Runs one job. `Ok(result)` completes it with a note for the operator; `Err` counts a failed
/// attempt. Handlers must be idempotent: a job can run again after a crash.
pub trait JobHandler: Send + Sync + 'static {
    fn run<'a>(&'a self, job: &'a Job) -> JobFuture<'a>;
}

/// The handler while `OPENCLAW_EXECUTE` is false: records what the relayer would do on-chain
/// and sends nothing (the seed's simulation mode).
pub struct Simulate;

impl JobHandler for Simulate {
    fn run<'a>(&'a self, job: &'a Job) -> JobFuture<'a> {
        Box::pin(async move {
            Ok(format!(
                "simulated {} for offer {}; nothing sent",
                job.action, job.offer_id
            ))
        })
    }
}

pub struct Worker {
    pub pool: PgPool,
    pub handler: Arc<dyn JobHandler>,
    pub name: String,
    pub config: QueueConfig,
    pub metrics: Metrics,
    pub wake: Arc<Notify>,
}

impl Worker {
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(worker = %self.name, "worker started");
        while !shutdown.is_cancelled() {
            match queue::claim(&self.pool, &self.name, self.config.lease).await {
                Ok(Some(job)) => {
                    let span = tracing::info_span!("job", id = job.id, action = %job.action, attempt = job.attempts);
                    self.execute(job, &shutdown).instrument(span).await
                }
                Ok(None) => self.idle(&shutdown).await,
                Err(e) => {
                    tracing::warn!(worker = %self.name, error = %e, "claiming a job failed; is Postgres reachable?");
                    tokio::select! {
                        _ = tokio::time::sleep(POLL) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
        tracing::info!(worker = %self.name, "worker stopped");
    }

    async fn idle(&self, shutdown: &CancellationToken) {
        let until_next = match queue::next_run_at(&self.pool).await {
            Ok(Some(t)) => (t - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO),
            _ => POLL,
        };
        tokio::select! {
            _ = self.wake.notified() => {}
            _ = tokio::time::sleep(until_next.min(POLL)) => {}
            _ = shutdown.cancelled() => {}
        }
    }

    async fn execute(&self, job: Job, shutdown: &CancellationToken) {
        let heartbeat = self.config.lease / 3;
        let run = self.handler.run(&job);
        tokio::pin!(run);
        let outcome = loop {
            tokio::select! {
                outcome = &mut run => break Some(outcome),
                _ = tokio::time::sleep(heartbeat) => {
                    match queue::heartbeat(&self.pool, job.id, &self.name, self.config.lease).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!("lease lost while running; another worker may take the job");
                            break None;
                        }
                        Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
                    }
                }
                _ = shutdown.cancelled() => {
                    if let Err(e) = queue::release(&self.pool, &job, &self.name).await {
                        tracing::warn!(error = %e, "could not hand the job back; its lease will expire");
                    }
                    return;
                }
            }
        };
        let Some(outcome) = outcome else { return };
        let recorded = match outcome {
            Ok(result) => queue::complete(&self.pool, &job, &self.name, &result)
                .await
                .map(|held| {
                    self.metrics
                        .job_runs
                        .with_label_values(&["succeeded"])
                        .inc();
                    if !held {
                        tracing::warn!(
                            "finished after losing the lease; the new holder's outcome stands"
                        );
                    }
                }),
            Err(error) => {
                let permanent = matches!(error, JobError::Permanent(_));
                let error = error.to_string();
                queue::fail(&self.pool, &job, &self.name, &error, permanent, &self.config).await.map(|failed| {
                self.metrics.job_runs.with_label_values(&["failed"]).inc();
                match failed {
                    Failed::RetryAt(at) => {
                        self.metrics.job_retries.inc();
                        tracing::warn!(%error, retry_at = %at, "job failed; will retry");
                    }
                    Failed::Dead => {
                        self.metrics.jobs_dead.inc();
                        tracing::error!(%error, "job is dead after its last attempt; retry it with POST /v1/jobs/{{id}}/retry once the cause is fixed");
                    }
                    Failed::LeaseLost => tracing::warn!("failed after losing the lease"),
                }
            })
            }
        };
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "could not record the job's outcome; its lease will expire and it will run again");
        }
    }
}

/// Forwards NOTIFYs on `jobs` to idle workers; reconnects after errors.
pub async fn listen(pool: PgPool, wake: Arc<Notify>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let listener = async {
            let mut l = PgListener::connect_with(&pool).await?;
            l.listen(queue::CHANNEL).await?;
            loop {
                l.recv().await?;
                wake.notify_waiters();
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            r = listener => if let Err(e) = r {
                tracing::warn!(error = %e, "job notifications interrupted; workers poll until they resume");
                tokio::select! { _ = tokio::time::sleep(POLL) => {} _ = shutdown.cancelled() => {} }
            },
            _ = shutdown.cancelled() => {}
        }
    }
}

//! Workers: claim a batch of jobs, run each one's handler while heartbeating its lease, record
//! the outcomes.
//! Idle workers sleep until a NOTIFY on `jobs`, the next scheduled run, or a 5 s poll.
use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use sqlx::{postgres::PgListener, PgPool};
use tokio::{sync::Notify, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    batch::Batcher,
    config::QueueConfig,
    metrics::Metrics,
    queue::{self, Completion, Failed, Job},
};

/// Longest an idle worker sleeps without a notification (covers a lost NOTIFY connection).
const POLL: Duration = Duration::from_secs(5);

pub type JobFuture<'a> = Pin<Box<dyn Future<Output = Result<Ran, JobError>> + Send + 'a>>;

/// How an attempt that did not fail ended.
#[derive(Debug)]
pub enum Ran {
    /// The job is done; the note says what was done, for the operator.
    Done(String),
    /// Its transaction is sent and the job handed to the confirm stage, which ends the attempt
    /// (`queue::hand_to_confirm`): this worker is free.
    Handed,
}

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
    /// Too early, not wrong (a crank before its eta): run again at `run_at`; the attempt does
    /// not count.
    #[error("{reason}")]
    NotYet {
        run_at: chrono::DateTime<chrono::Utc>,
        reason: String,
    },
}

/// Runs one job. `Ok(Ran::Done(note))` completes it with a note for the operator; `Err` counts a
/// failed attempt. Handlers must be idempotent: a job can run again after a crash.
pub trait JobHandler: Send + Sync + 'static {
    fn run<'a>(&'a self, job: &'a Job) -> JobFuture<'a>;

    /// The stage that ends the attempts this handler hands over (`Ran::Handed`), run beside the
    /// workers; `None` for handlers that never hand over.
    fn confirm_stage(
        &self,
        _queue: &QueueConfig,
        _metrics: &Metrics,
    ) -> Option<crate::pipeline::confirm::Confirmer> {
        None
    }
}

/// The handler while `OPENCLAW_EXECUTE` is false: records what the relayer would do on-chain
/// and sends nothing (the seed's simulation mode).
pub struct Simulate;

impl JobHandler for Simulate {
    fn run<'a>(&'a self, job: &'a Job) -> JobFuture<'a> {
        Box::pin(async move {
            Ok(Ran::Done(format!(
                "simulated {} for offer {}; nothing sent",
                job.action, job.offer_id
            )))
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
    /// Succeeded attempts are recorded through this (group commit), shared by the workers.
    pub completions: Batcher<Completion, Result<bool, String>>,
}

impl Worker {
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(worker = %self.name, "worker started");
        let (lease, batch) = (self.config.lease, self.config.claim_batch);
        while !shutdown.is_cancelled() {
            match queue::claim_up_to(&self.pool, &self.name, lease, batch).await {
                Ok(jobs) if jobs.is_empty() => self.idle(&shutdown).await,
                Ok(jobs) => {
                    crate::failpoint::hit("after_claim");
                    self.run_batch(jobs, &shutdown).await
                }
                Err(e) => {
                    tracing::warn!(worker = %self.name, error = %e, "claiming jobs failed; is Postgres reachable?");
                    tokio::select! {
                        _ = tokio::time::sleep(POLL) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
        tracing::info!(worker = %self.name, "worker stopped");
    }

    /// Runs a claimed batch one job at a time, so `WORKERS` stays the number of jobs running at
    /// once. A succeeded attempt is recorded in the background (group commit) while the next
    /// job runs, and every one is recorded before the worker claims again. The jobs waiting
    /// their turn have no heartbeat of their own: their leases are renewed together when a
    /// third of the lease has gone, and one that lost its lease meanwhile is not run. On
    /// shutdown the jobs not started are given back.
    async fn run_batch(&self, jobs: Vec<Job>, shutdown: &CancellationToken) {
        let mut waiting: VecDeque<Job> = jobs.into();
        let mut renewed = Instant::now();
        let mut recording = JoinSet::new();
        while !shutdown.is_cancelled() {
            if renewed.elapsed() >= self.config.lease / 3 {
                let ids: Vec<i64> = waiting.iter().map(|j| j.id).collect();
                match queue::renew(&self.pool, &ids, &self.name, self.config.lease).await {
                    Ok(held) => {
                        waiting.retain(|j| {
                            let kept = held.contains(&j.id);
                            if !kept {
                                tracing::warn!(
                                    job = j.id,
                                    "lease lost while waiting in a batch; its new holder runs it"
                                );
                            }
                            kept
                        });
                        renewed = Instant::now();
                    }
                    // The fence before signing still checks the lease.
                    Err(e) => tracing::warn!(error = %e, "renewing the batch's leases failed"),
                }
            }
            let Some(job) = waiting.pop_front() else {
                break;
            };
            let span = tracing::info_span!("job", id = job.id, action = %job.action, attempt = job.attempts);
            if let Some(record) = self.execute(job, shutdown).instrument(span.clone()).await {
                recording.spawn(record.instrument(span));
            }
        }
        if !waiting.is_empty() {
            let ids: Vec<i64> = waiting.iter().map(|j| j.id).collect();
            if let Err(e) = queue::release(&self.pool, &ids, &self.name).await {
                tracing::warn!(error = %e, "could not hand the batch back; its leases will expire");
            }
        }
        while recording.join_next().await.is_some() {}
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

    /// Runs one attempt and records how it ended; a success is returned to be recorded by the
    /// caller (`run_batch`), together with the next ones.
    async fn execute(
        &self,
        job: Job,
        shutdown: &CancellationToken,
    ) -> Option<impl Future<Output = ()> + Send + 'static> {
        // The heartbeat runs as its own task: the handler may hold the job's row lock (while the
        // KMS signs), and a heartbeat awaited here would wait on that lock while the handler,
        // no longer polled, never releases it.
        let lost = CancellationToken::new();
        let stop_heartbeat = CancellationToken::new();
        tokio::spawn(heartbeat(
            self.pool.clone(),
            job.id,
            self.name.clone(),
            self.config.lease,
            lost.clone(),
            stop_heartbeat.clone(),
        ));
        let _stop_heartbeat = stop_heartbeat.drop_guard();
        // A panicking handler counts as a failed attempt instead of ending this worker.
        let mut run = Box::pin(futures_util::FutureExt::catch_unwind(
            std::panic::AssertUnwindSafe(self.handler.run(&job)),
        ));
        let outcome = tokio::select! {
            outcome = &mut run => Some(outcome.unwrap_or_else(|panic| {
                let what = panic.downcast_ref::<&str>().map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Err(JobError::Retry(format!("handler panicked: {what}")))
            })),
            _ = lost.cancelled() => {
                tracing::warn!("lease lost while running; abandoning the attempt");
                return None;
            }
            _ = shutdown.cancelled() => None,
        };
        let Some(outcome) = outcome else {
            // Shutting down: drop the attempt first (rolling back its transaction and locks),
            // then hand the job back.
            drop(run);
            if let Err(e) = queue::release(&self.pool, &[job.id], &self.name).await {
                tracing::warn!(error = %e, "could not hand the job back; its lease will expire");
            }
            return None;
        };
        drop(run);
        let recorded = match outcome {
            // The confirm stage records how the attempt ends.
            Ok(Ran::Handed) => Ok(()),
            Ok(Ran::Done(result)) => return Some(self.record_success(job, result)),
            Err(JobError::NotYet { run_at, reason }) => {
                queue::defer(&self.pool, &job, &self.name, run_at, &reason)
                    .await
                    .map_err(|e| e.to_string())
                    .map(|held| {
                        if held {
                            tracing::info!(%reason, %run_at, "job deferred");
                        }
                    })
            }
            Err(error) => {
                let permanent = matches!(error, JobError::Permanent(_));
                let error = error.to_string();
                queue::fail(&self.pool, &job, &self.name, &error, permanent, &self.config).await.map_err(|e| e.to_string()).map(|failed| {
                    self.metrics.job_runs.with_label_values(&["failed"]).inc();
                    match failed {
                        Failed::RetryAt(at) => {
                            self.metrics.job_retries.inc();
                            tracing::warn!(%error, retry_at = %at, "job failed; will retry");
                        }
                        Failed::Dead => {
                            self.metrics.jobs_dead.inc();
                            tracing::error!(%error, "job is dead; retry it with POST /v1/jobs/{{id}}/retry once the cause is fixed");
                        }
                        Failed::LeaseLost => tracing::warn!("failed after losing the lease"),
                    }
                })
            }
        };
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "could not record the job's outcome; its lease will expire and it will run again");
        }
        None
    }

    /// Records a succeeded attempt through the shared completion writer.
    fn record_success(
        &self,
        job: Job,
        result: String,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (completions, metrics, worker) = (
            self.completions.clone(),
            self.metrics.clone(),
            self.name.clone(),
        );
        async move {
            let held = completions
                .submit(Completion {
                    job,
                    worker,
                    result,
                })
                .await
                .unwrap_or_else(|| Err("the completion writer stopped".into()));
            match held {
                Ok(held) => {
                    metrics.job_runs.with_label_values(&["succeeded"]).inc();
                    if !held {
                        tracing::warn!(
                            "finished after losing the lease; the new holder's outcome stands"
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not record the job's outcome; its lease will expire and it will run again")
                }
            }
        }
    }
}

/// Renews a running job's lease every third of it; cancels `lost` when the lease is gone.
async fn heartbeat(
    pool: PgPool,
    job_id: i64,
    worker: String,
    lease: Duration,
    lost: CancellationToken,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(lease / 3) => {}
            _ = stop.cancelled() => return,
        }
        match queue::heartbeat(&pool, job_id, &worker, lease).await {
            Ok(true) => {}
            Ok(false) => {
                lost.cancel();
                return;
            }
            Err(e) => tracing::warn!(error = %e, "heartbeat failed; retrying"),
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

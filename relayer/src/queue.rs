//! A durable job queue in the relayer's own Postgres.
//!
//! Why not a crate: the job must be enqueued in the same transaction as the webhook event and
//! the offer's status change, on our sqlx connection; the maintained Postgres queues either
//! bring their own connection handling or lack leases with fencing. The whole queue is the SQL
//! below:
//! - `enqueue` inserts inside the caller's transaction (one job per offer and action) and
//!   NOTIFYs `jobs`, delivered when that transaction commits;
//! - `claim` takes the oldest runnable job with `FOR UPDATE SKIP LOCKED`, under a lease
//!   (`locked_until`); a job whose worker died becomes claimable when its lease runs out;
//! - `complete` / `fail` only act while the caller still holds the lease (`locked_by`), so a
//!   worker that lost its lease cannot overwrite the new holder's work;
//! - failures retry with exponential backoff and jitter until `max_attempts`, then the job is
//!   dead (visible in metrics and the operator API, and retryable by an operator).
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{batch::Batcher, config::QueueConfig, domain::offer::JobAction};

pub const CHANNEL: &str = "jobs";

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Job {
    pub id: i64,
    pub offer_id: Uuid,
    pub action: String,
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    pub locked_by: Option<String>,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub result: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Inserts the job in the caller's transaction unless the offer already has one for this
/// action. Returns whether a job was created.
pub async fn enqueue(
    conn: &mut PgConnection,
    offer_id: Uuid,
    action: JobAction,
    max_attempts: i32,
) -> sqlx::Result<bool> {
    // One round trip: the notification goes out with the job, only when there is one.
    let inserted: i64 = sqlx::query_scalar(
        "WITH job AS (INSERT INTO jobs (offer_id, action, max_attempts) VALUES ($1, $2, $3)
                      ON CONFLICT (offer_id, action) DO NOTHING RETURNING id)
         SELECT count(*) FROM (SELECT pg_notify($4, '') FROM job) notified",
    )
    .bind(offer_id)
    .bind(action.as_str())
    .bind(max_attempts)
    .bind(CHANNEL)
    .fetch_one(&mut *conn)
    .await?;
    Ok(inserted == 1)
}

/// Queues a crank for `run_at` (its eta). An existing crank for the offer that is not running
/// is re-armed when the eta changed: a crank that found nothing to do after a dispute must run
/// again when the outcome is scheduled anew. A pending crank is only moved later: one deferred
/// because the chain's clock lags the wall clock keeps its deferral instead of being re-armed
/// to an eta that has passed here but not there.
pub async fn enqueue_crank(
    conn: &mut PgConnection,
    offer_id: Uuid,
    action: JobAction,
    max_attempts: i32,
    run_at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let changed = sqlx::query(
        "INSERT INTO jobs (offer_id, action, max_attempts, run_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (offer_id, action) DO UPDATE
             SET state = 'pending', run_at = EXCLUDED.run_at, attempts = 0, updated_at = now()
             WHERE jobs.state <> 'running' AND jobs.run_at <> EXCLUDED.run_at
               AND (jobs.state <> 'pending' OR EXCLUDED.run_at > jobs.run_at)",
    )
    .bind(offer_id)
    .bind(action.as_str())
    .bind(max_attempts)
    .bind(run_at)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if changed {
        notify(conn).await?;
    }
    Ok(changed)
}

/// Wakes idle workers; delivered when the caller's transaction commits.
async fn notify(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(conn)
        .await?;
    Ok(())
}

/// Claims the oldest runnable job for `worker`: a pending job whose time has come, or a running
/// job whose lease has expired (its worker died). The attempt is counted here; a job whose
/// lease expired on its last attempt is dead-lettered instead of claimed, so a job that keeps
/// killing its workers stops.
///
/// One statement, one round trip: the dead-lettering runs as a data-modifying CTE, which
/// Postgres executes whether or not the claim reads it. The two touch disjoint rows (attempts
/// left or not), as one statement must. A job whose worker died goes first, then the oldest
/// pending one; each is one index lookup (`COALESCE` reads the second only without the first).
pub async fn claim(pool: &PgPool, worker: &str, lease: Duration) -> sqlx::Result<Option<Job>> {
    sqlx::query_as::<_, Job>(
        "WITH dead AS (
             UPDATE jobs SET state = 'dead', locked_by = NULL, locked_until = NULL, updated_at = now(),
                    last_error = 'its worker stopped during the last attempt (crash, kill or hang): '
                                 || COALESCE(last_error, 'no error recorded')
             WHERE state = 'running' AND locked_until < now() AND attempts >= max_attempts)
         UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = $1,
                locked_until = now() + make_interval(secs => $2), updated_at = now()
         WHERE id = COALESCE(
             (SELECT id FROM jobs
              WHERE state = 'running' AND locked_until < now() AND attempts < max_attempts
              ORDER BY locked_until LIMIT 1 FOR UPDATE SKIP LOCKED),
             (SELECT id FROM jobs
              WHERE state = 'pending' AND run_at <= now()
              ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED))
         RETURNING *",
    )
    .bind(worker)
    .bind(lease.as_secs_f64())
    .fetch_optional(pool)
    .await
}

/// Puts a job back until `run_at` without counting the attempt: it ran too early (a crank
/// before its eta), not wrongly. False when `worker` no longer held it.
pub async fn defer(
    pool: &PgPool,
    job: &Job,
    worker: &str,
    run_at: DateTime<Utc>,
    reason: &str,
) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "UPDATE jobs SET state = 'pending', attempts = attempts - 1, run_at = $3, last_error = $4,
                locked_by = NULL, locked_until = NULL, updated_at = now()
         WHERE id = $1 AND state = 'running' AND locked_by = $2",
    )
    .bind(job.id)
    .bind(worker)
    .bind(run_at)
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Extends the lease of a job `worker` still holds; false when the lease was lost.
pub async fn heartbeat(
    pool: &PgPool,
    job_id: i64,
    worker: &str,
    lease: Duration,
) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "UPDATE jobs SET locked_until = now() + make_interval(secs => $3)
         WHERE id = $1 AND state = 'running' AND locked_by = $2",
    )
    .bind(job_id)
    .bind(worker)
    .bind(lease.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Marks the job done; false when `worker` no longer held it (nothing changed).
pub async fn complete(pool: &PgPool, job: &Job, worker: &str, result: &str) -> sqlx::Result<bool> {
    Ok(!complete_batch(pool, &[(job, worker, result)])
        .await?
        .is_empty())
}

/// What `fail` did with the job.
#[derive(Debug, PartialEq, Eq)]
pub enum Failed {
    RetryAt(DateTime<Utc>),
    Dead,
    /// The worker had lost the lease; nothing changed.
    LeaseLost,
}

/// Records a failed attempt: retry later with backoff, or dead after `max_attempts` or when
/// the failure is `permanent` (retrying cannot help; an operator must look).
pub async fn fail(
    pool: &PgPool,
    job: &Job,
    worker: &str,
    error: &str,
    permanent: bool,
    cfg: &QueueConfig,
) -> sqlx::Result<Failed> {
    let dead = permanent || job.attempts >= job.max_attempts;
    let delay = backoff(job.attempts, cfg);
    let outcome = if dead { "dead" } else { "failed" };
    // One statement, so one round trip and one transaction: the change applies only while
    // `worker` holds the lease, and when it did, the attempt and its audit entry go with it.
    let ended: Option<DateTime<Utc>> = sqlx::query_scalar(
        "WITH ended AS (
             UPDATE jobs SET state = CASE WHEN $3 = 'dead' THEN 'dead' ELSE 'pending' END,
                    run_at = CASE WHEN $3 = 'dead' THEN run_at ELSE now() + make_interval(secs => $8) END,
                    last_error = $4, locked_by = NULL, locked_until = NULL, updated_at = now()
             WHERE id = $1 AND state = 'running' AND locked_by = $2
             RETURNING id, offer_id, run_at),
         attempt AS (
             INSERT INTO job_attempts (job_id, attempt, worker, started_at, outcome, detail)
             SELECT id, $5, $2, $6, $3, $4 FROM ended),
         entry AS (
             INSERT INTO audit_log (kind, offer_id, payload) SELECT 'job_attempt', offer_id, $7 FROM ended)
         SELECT run_at FROM ended",
    )
    .bind(job.id)
    .bind(worker)
    .bind(outcome)
    .bind(error)
    .bind(job.attempts)
    .bind(job.updated_at)
    .bind(attempt_entry(job, worker, outcome, error))
    .bind(delay.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    Ok(match ended {
        None => Failed::LeaseLost,
        Some(_) if dead => Failed::Dead,
        Some(run_at) => Failed::RetryAt(run_at),
    })
}

/// The audit entry of an attempt, as canonical JSON.
fn attempt_entry(job: &Job, worker: &str, outcome: &str, detail: &str) -> String {
    crate::audit::canonical_json(&serde_json::json!({
        "job_id": job.id, "action": job.action, "attempt": job.attempts,
        "outcome": outcome, "detail": detail, "worker": worker,
    }))
}

/// A succeeded attempt, for `completions`.
pub struct Completion {
    pub job: Job,
    pub worker: String,
    pub result: String,
}

/// Group commit for succeeded attempts (`crate::batch`): completions that arrive while a batch
/// commits go together in the next, one statement and one flush for all, each answered as
/// `complete` would (false: the lease was lost, nothing changed).
pub fn completions(pool: PgPool) -> Batcher<Completion, Result<bool, String>> {
    // One writer: a batch locks its jobs in no set order, so two batches at once could deadlock.
    Batcher::start(1, 64, move |done| complete_all(pool.clone(), done))
}

async fn complete_all(pool: PgPool, done: Vec<Completion>) -> Vec<Result<bool, String>> {
    let done: Vec<(&Job, &str, &str)> = done
        .iter()
        .map(|c| (&c.job, c.worker.as_str(), c.result.as_str()))
        .collect();
    if done.len() > 1 {
        match complete_batch(&pool, &done).await {
            Ok(held) => {
                return done
                    .iter()
                    .map(|(job, ..)| Ok(held.contains(&job.id)))
                    .collect()
            }
            Err(e) if crate::error::is_unavailable(&e) => {
                return done.iter().map(|_| Err(e.to_string())).collect()
            }
            Err(e) => {
                tracing::warn!(error = %e, jobs = done.len(), "completing a batch of jobs failed; completing them one by one")
            }
        }
    }
    let mut answers = Vec::with_capacity(done.len());
    for (job, worker, result) in done {
        answers.push(
            complete(&pool, job, worker, result)
                .await
                .map_err(|e| e.to_string()),
        );
    }
    answers
}

/// Marks (job, worker, result)s done in one statement, so one round trip and one transaction:
/// each only while its worker holds the lease, with its attempt and audit entry. The ids that
/// were still held.
async fn complete_batch(pool: &PgPool, done: &[(&Job, &str, &str)]) -> sqlx::Result<Vec<i64>> {
    let (mut ids, mut workers, mut results, mut attempts, mut started, mut entries) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for &(job, worker, result) in done {
        ids.push(job.id);
        workers.push(worker);
        results.push(result);
        attempts.push(job.attempts);
        started.push(job.updated_at);
        entries.push(attempt_entry(job, worker, "succeeded", result));
    }
    sqlx::query_scalar(
        "WITH input AS (
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::timestamptz[], $6::text[])
                 WITH ORDINALITY AS i (id, worker, result, attempt, started_at, entry, n)),
         ended AS (
             UPDATE jobs j SET state = 'succeeded', result = i.result, last_error = NULL,
                    locked_by = NULL, locked_until = NULL, updated_at = now()
             FROM input i WHERE j.id = i.id AND j.state = 'running' AND j.locked_by = i.worker
             RETURNING j.id, j.offer_id),
         attempt AS (
             INSERT INTO job_attempts (job_id, attempt, worker, started_at, outcome, detail)
             SELECT i.id, i.attempt, i.worker, i.started_at, 'succeeded', i.result
             FROM input i JOIN ended e ON e.id = i.id),
         entry AS (
             INSERT INTO audit_log (kind, offer_id, payload)
             SELECT 'job_attempt', e.offer_id, i.entry FROM input i JOIN ended e ON e.id = i.id
             ORDER BY i.n)
         SELECT id FROM ended",
    )
    .bind(&ids)
    .bind(&workers)
    .bind(&results)
    .bind(&attempts)
    .bind(&started)
    .bind(&entries)
    .fetch_all(pool)
    .await
}

/// Gives a claimed job back without counting the attempt (graceful shutdown).
pub async fn release(pool: &PgPool, job: &Job, worker: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE jobs SET state = 'pending', attempts = attempts - 1, locked_by = NULL,
                locked_until = NULL, updated_at = now()
         WHERE id = $1 AND state = 'running' AND locked_by = $2",
    )
    .bind(job.id)
    .bind(worker)
    .execute(pool)
    .await?;
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(pool)
        .await?;
    Ok(())
}

/// An operator's retry of a dead job: pending now, attempts reset. False if it was not dead.
pub async fn retry(pool: &PgPool, job_id: i64, operator: &str) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let retried: Option<(Uuid, String)> = sqlx::query_as(
        "UPDATE jobs SET state = 'pending', attempts = 0, run_at = now(), updated_at = now()
         WHERE id = $1 AND state = 'dead' RETURNING offer_id, action",
    )
    .bind(job_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((offer_id, action)) = retried else {
        return Ok(false);
    };
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(&mut *tx)
        .await?;
    crate::audit::append(
        &mut tx,
        "job_retried",
        Some(offer_id),
        serde_json::json!({ "job_id": job_id, "action": action, "operator": operator }),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Delay before attempt `attempts + 1`: base · 2^(attempts−1), capped, then "equal jitter"
/// (a random point in its upper half) so failed jobs do not retry in lockstep.
pub fn backoff(attempts: i32, cfg: &QueueConfig) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    let full = cfg
        .backoff_base
        .saturating_mul(1 << exp)
        .min(cfg.backoff_max);
    let half = full / 2;
    half + half.mul_f64(rand::rng().random::<f64>())
}

pub async fn get(pool: &PgPool, job_id: i64) -> sqlx::Result<Option<Job>> {
    sqlx::query_as::<_, Job>("SELECT * FROM jobs WHERE id = $1")
        .bind(job_id)
        .fetch_optional(pool)
        .await
}

pub async fn list_by_state(pool: &PgPool, state: &str, limit: i64) -> sqlx::Result<Vec<Job>> {
    sqlx::query_as::<_, Job>(
        "SELECT * FROM jobs WHERE state = $1 ORDER BY updated_at DESC LIMIT $2",
    )
    .bind(state)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// When the next pending job becomes runnable, if any: how long an idle worker may sleep.
pub async fn next_run_at(pool: &PgPool) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar(
        "SELECT min(t) FROM (
             SELECT min(run_at) AS t FROM jobs WHERE state = 'pending'
             UNION ALL SELECT min(locked_until) FROM jobs WHERE state = 'running') s",
    )
    .fetch_one(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let cfg = QueueConfig {
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(10),
            ..Default::default()
        };
        for attempts in 1..=6 {
            let full = Duration::from_secs(1 << (attempts - 1)).min(cfg.backoff_max);
            let d = backoff(attempts, &cfg);
            assert!(
                d >= full / 2 && d <= full,
                "attempt {attempts}: {d:?} not in [{:?}, {full:?}]",
                full / 2
            );
        }
        assert!(backoff(1000, &cfg) <= cfg.backoff_max);
    }
}

//! A durable job queue in the relayer's own Postgres.
//!
//! Why not a crate: the job must be enqueued in the same transaction as the webhook event and
//! the offer's status change, on our sqlx connection; the maintained Postgres queues either
//! bring their own connection handling or lack leases with fencing. The whole queue is the SQL
//! below:
//! - `enqueue` inserts inside the caller's transaction (one job per offer and action) and
//!   NOTIFYs `jobs`, delivered when that transaction commits;
//! - `claim_up_to` takes the oldest runnable jobs, a batch per statement, with `FOR UPDATE
//!   SKIP LOCKED`, under a lease (`locked_until`); a job whose worker died becomes claimable
//!   when its lease runs out;
//! - `complete` / `fail` only act while the caller still holds the lease (`locked_by`), so a
//!   worker that lost its lease cannot overwrite the new holder's work;
//! - failures retry with exponential backoff and jitter until `max_attempts`, then the job is
//!   dead (visible in metrics and the operator API, and retryable by an operator);
//! - a job whose transaction is sent waits `confirming`, unclaimable, until the confirm stage
//!   (`crate::pipeline::confirm`) ends its attempt with what became of the transaction.
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::offer::JobAction;

mod attempts;

pub use attempts::{
    backoff, complete, completions, confirmed, fail, unconfirmed, Completion, Failed,
};

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

/// Queues a crank for `run_at` (its eta). An existing crank for the offer that is neither running nor confirming
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
             WHERE jobs.state NOT IN ('running', 'confirming') AND jobs.run_at <> EXCLUDED.run_at
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

/// Claims the oldest runnable job for `worker` (`claim_up_to` with one).
pub async fn claim(pool: &PgPool, worker: &str, lease: Duration) -> sqlx::Result<Option<Job>> {
    Ok(claim_up_to(pool, worker, lease, 1).await?.pop())
}

/// Claims up to `limit` runnable jobs for `worker`, oldest first: jobs whose worker died (a
/// running job whose lease expired), then pending jobs whose time has come. Each attempt is
/// counted here; a job whose lease expired on its last attempt is dead-lettered instead of
/// claimed, so a job that keeps killing its workers stops.
///
/// One statement, one round trip and one commit for the whole batch: the dead-lettering runs as
/// a data-modifying CTE, which Postgres executes whether or not the claim reads it. The two
/// touch disjoint rows (attempts left or not), as one statement must. Each kind is one index
/// range scan, the second limited to the room the first leaves under `limit`.
pub async fn claim_up_to(
    pool: &PgPool,
    worker: &str,
    lease: Duration,
    limit: usize,
) -> sqlx::Result<Vec<Job>> {
    let mut jobs = sqlx::query_as::<_, Claimed>(
        "WITH dead AS (
             UPDATE jobs SET state = 'dead', locked_by = NULL, locked_until = NULL, updated_at = now(),
                    last_error = 'its worker stopped during the last attempt (crash, kill or hang): '
                                 || COALESCE(last_error, 'no error recorded')
             WHERE state = 'running' AND locked_until < now() AND attempts >= max_attempts),
         expired AS (
             SELECT id, 0 AS tier, locked_until AS since FROM jobs
             WHERE state = 'running' AND locked_until < now() AND attempts < max_attempts
             ORDER BY locked_until LIMIT $3 FOR UPDATE SKIP LOCKED),
         ready AS (
             SELECT id, 1 AS tier, run_at AS since FROM jobs
             WHERE state = 'pending' AND run_at <= now()
             ORDER BY run_at, id LIMIT (SELECT $3 - count(*) FROM expired) FOR UPDATE SKIP LOCKED),
         picked AS (SELECT * FROM expired UNION ALL SELECT * FROM ready)
         UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = $1,
                locked_until = now() + make_interval(secs => $2), updated_at = now()
         FROM picked WHERE jobs.id = picked.id
         RETURNING jobs.*, picked.tier, picked.since",
    )
    .bind(worker)
    .bind(lease.as_secs_f64())
    .bind(i64::try_from(limit.max(1)).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?;
    // RETURNING has no order: the order of the scans, which is the order they are to run in.
    jobs.sort_by_key(|c| (c.tier, c.since, c.job.id));
    Ok(jobs.into_iter().map(|c| c.job).collect())
}

/// A claimed job and where the claim found it, for ordering a batch.
#[derive(sqlx::FromRow)]
struct Claimed {
    #[sqlx(flatten)]
    job: Job,
    tier: i32,
    since: Option<DateTime<Utc>>,
}

/// Renews the leases of the jobs in `ids` that `worker` still holds, and returns those: a batch
/// waiting its turn in a worker keeps its claim, and a job that lost it is not run.
pub async fn renew(
    pool: &PgPool,
    ids: &[i64],
    worker: &str,
    lease: Duration,
) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar(
        "UPDATE jobs SET locked_until = now() + make_interval(secs => $3)
         WHERE id = ANY($1) AND state = 'running' AND locked_by = $2
         RETURNING id",
    )
    .bind(ids)
    .bind(worker)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
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

/// Gives claimed jobs back without counting the attempt (graceful shutdown, or a batch whose
/// turn did not come), in one statement that also wakes the other workers.
pub async fn release(pool: &PgPool, ids: &[i64], worker: &str) -> sqlx::Result<()> {
    sqlx::query(
        "WITH released AS (
             UPDATE jobs SET state = 'pending', attempts = attempts - 1, locked_by = NULL,
                    locked_until = NULL, updated_at = now()
             WHERE id = ANY($1) AND state = 'running' AND locked_by = $2 RETURNING id)
         SELECT pg_notify($3, '') FROM (SELECT 1 FROM released LIMIT 1) any_released",
    )
    .bind(ids)
    .bind(worker)
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
    let operator = crate::audit::operators::commit(&mut tx, operator).await?;
    crate::audit::append(
        &mut tx,
        "job_retried",
        Some(offer_id),
        serde_json::json!({ "job_id": job_id, "action": action, "operator_commitment": operator }),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn get(pool: &PgPool, job_id: i64) -> sqlx::Result<Option<Job>> {
    sqlx::query_as::<_, Job>("SELECT * FROM jobs WHERE id = $1")
        .bind(job_id)
        .fetch_optional(pool)
        .await
}

/// (state, jobs) for every state in use.
pub async fn count_by_state(pool: &PgPool) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as("SELECT state, count(*) FROM jobs GROUP BY state")
        .fetch_all(pool)
        .await
}

/// How long the oldest runnable job has waited, in seconds (0 when none waits).
pub async fn lag_seconds(pool: &PgPool) -> sqlx::Result<f64> {
    sqlx::query_scalar(
        "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(run_at))::float8, 0)
         FROM jobs WHERE state = 'pending' AND run_at <= now()",
    )
    .fetch_one(pool)
    .await
}

/// The offer's jobs, oldest first.
pub async fn of_offer(pool: &PgPool, offer: Uuid) -> sqlx::Result<Vec<Job>> {
    sqlx::query_as::<_, Job>("SELECT * FROM jobs WHERE offer_id = $1 ORDER BY id")
        .bind(offer)
        .fetch_all(pool)
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

/// The fence before signing, in the caller's transaction: true while `job.locked_by` still
/// holds the job, whose row then stays locked until that transaction ends.
pub async fn fence(conn: &mut PgConnection, job: &Job) -> sqlx::Result<bool> {
    let ours: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM jobs WHERE id = $1 AND state = 'running' AND locked_by = $2 FOR UPDATE",
    )
    .bind(job.id)
    .bind(job.locked_by.as_deref().unwrap_or_default())
    .fetch_optional(conn)
    .await?;
    Ok(ours.is_some())
}

/// Hands a fenced job whose transaction was just recorded to the confirm stage, in the same
/// transaction: no worker claims it while it is `confirming`, and its attempt ends when the
/// transaction lands, fails or expires (`confirmed` / `unconfirmed`).
pub async fn hand_to_confirm(conn: &mut PgConnection, job: &Job, result: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE jobs SET state = 'confirming', result = $2, locked_until = NULL
         WHERE id = $1 AND state = 'running'",
    )
    .bind(job.id)
    .bind(result)
    .execute(conn)
    .await?;
    Ok(())
}

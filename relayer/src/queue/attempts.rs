//! How an attempt ends: done, failed (retry with backoff, or dead), or, for a job in the confirm
//! stage, what became of its transaction. Each is one statement: the change applies only while
//! the attempt still holds the job, and its attempt row and audit entry go with it.
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use sqlx::{PgConnection, PgExecutor, PgPool};

use super::Job;
use crate::{batch::Batcher, config::QueueConfig};

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
    end_failed(pool, job, worker, "running", error, permanent, cfg).await
}

/// A job in the confirm stage whose transaction failed on-chain or expired: the attempt failed;
/// retry with backoff (signing anew), or dead after `max_attempts`.
pub async fn unconfirmed(
    conn: &mut PgConnection,
    job: &Job,
    error: &str,
    cfg: &QueueConfig,
) -> sqlx::Result<Failed> {
    let worker = job.locked_by.as_deref().unwrap_or_default();
    end_failed(conn, job, worker, "confirming", error, false, cfg).await
}

async fn end_failed(
    db: impl PgExecutor<'_>,
    job: &Job,
    worker: &str,
    from: &str,
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
             WHERE id = $1 AND state = $9 AND locked_by = $2
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
    .bind(from)
    .fetch_optional(db)
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

/// A job in the confirm stage whose transaction landed: succeeded, with its attempt and audit
/// entry, in `conn`'s transaction. False when it was not confirming (another process did it).
pub async fn confirmed(conn: &mut PgConnection, job: &Job, result: &str) -> sqlx::Result<bool> {
    let worker = job.locked_by.as_deref().unwrap_or_default();
    Ok(!end_succeeded(conn, &[(job, worker, result)], "confirming")
        .await?
        .is_empty())
}

async fn complete_batch(pool: &PgPool, done: &[(&Job, &str, &str)]) -> sqlx::Result<Vec<i64>> {
    end_succeeded(pool, done, "running").await
}

/// Marks (job, worker, result)s done in one statement, so one round trip and one transaction:
/// each only while it is in state `from` under that worker, with its attempt and audit entry.
/// The ids that were.
async fn end_succeeded(
    db: impl PgExecutor<'_>,
    done: &[(&Job, &str, &str)],
    from: &str,
) -> sqlx::Result<Vec<i64>> {
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
             FROM input i WHERE j.id = i.id AND j.state = $7 AND j.locked_by = i.worker
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
    .bind(from)
    .fetch_all(db)
    .await
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

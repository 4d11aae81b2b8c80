//! The job queue against the real Postgres: races, leases, backoff, dead jobs, shutdown.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use crate::support::*;
use relayer::{
    queue::{self, Job},
    startup::Role,
    worker::{JobError, JobFuture, JobHandler, Ran},
};
use serde_json::Value;
use tokio::sync::Notify;

/// Records every run; fails while `failing` is set; optionally blocks until released.
#[derive(Default)]
struct Recorder {
    runs: Mutex<Vec<i64>>,
    failing: AtomicBool,
    block: Option<Arc<Notify>>,
    started: Arc<Notify>,
}

impl JobHandler for Recorder {
    fn run<'a>(&'a self, job: &'a Job) -> JobFuture<'a> {
        Box::pin(async move {
            self.runs.lock().unwrap().push(job.id);
            self.started.notify_one();
            if let Some(block) = &self.block {
                block.notified().await;
            }
            tokio::task::yield_now().await;
            if self.failing.load(Ordering::SeqCst) {
                Err(JobError::Retry("chain unavailable (test)".into()))
            } else {
                Ok(Ran::Done(format!("ran {}", job.id)))
            }
        })
    }
}

async fn states(pool: &sqlx::PgPool) -> HashMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>("SELECT state, count(*) FROM jobs GROUP BY state")
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// One worker whose handler blocks on the returned `Notify` once it has started a job.
async fn blocked_worker(
    url: &str,
    edit: impl FnOnce(&mut relayer::config::Config),
) -> (TestApp, Arc<Recorder>, Arc<Notify>) {
    let block = Arc::new(Notify::new());
    let recorder = Arc::new(Recorder {
        block: Some(block.clone()),
        ..Default::default()
    });
    let mut cfg = config(url);
    cfg.queue.workers = 1;
    edit(&mut cfg);
    let app = spawn(cfg, Role::Worker, recorder.clone()).await;
    (app, recorder, block)
}

#[tokio::test]
async fn racing_workers_in_two_processes_never_run_a_job_twice() {
    let url = fresh_database().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..60 {
        ids.push(insert_job(&pool, 5).await);
    }
    let recorder = Arc::new(Recorder::default());
    let mut cfg = config(&url);
    cfg.queue.workers = 4;
    // Two "processes", each with four workers, on one database.
    let a = spawn(cfg.clone(), Role::Worker, recorder.clone()).await;
    let b = spawn(cfg, Role::Worker, recorder.clone()).await;
    eventually("all jobs succeeded", || async {
        states(&pool).await.get("succeeded") == Some(&60)
    })
    .await;
    a.stop().await;
    b.stop().await;
    let mut runs = recorder.runs.lock().unwrap().clone();
    runs.sort();
    assert_eq!(runs, ids, "every job ran exactly once");
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM job_attempts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(attempts, 60);
}

#[tokio::test]
async fn a_crashed_workers_job_runs_again_after_its_lease_and_its_late_result_is_refused() {
    let url = fresh_database().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let id = insert_job(&pool, 5).await;
    // A worker claims the job and dies without finishing.
    let crashed = queue::claim(&pool, "crashed-worker", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("claimed");
    assert_eq!(crashed.id, id);
    // While its lease holds, nobody else gets the job.
    assert!(queue::claim(&pool, "other", Duration::from_secs(60))
        .await
        .unwrap()
        .is_none());
    // Its lease runs out (moved into the past rather than waited for).
    sqlx::query("UPDATE jobs SET locked_until = now() - interval '1 second' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();

    let recorder = Arc::new(Recorder::default());
    let app = spawn(config(&url), Role::Worker, recorder.clone()).await;
    eventually("job succeeded", || async {
        states(&pool).await.get("succeeded") == Some(&1)
    })
    .await;
    app.stop().await;
    assert_eq!(recorder.runs.lock().unwrap().as_slice(), [id]);
    let job = queue::get(&pool, id).await.unwrap().unwrap();
    assert_eq!(job.attempts, 2, "the crashed attempt counts");
    // The crashed worker comes back and tries to record an outcome: refused, nothing changes.
    assert!(!queue::complete(&pool, &crashed, "crashed-worker", "late")
        .await
        .unwrap());
    let cfg = config(&url).queue;
    assert_eq!(
        queue::fail(&pool, &crashed, "crashed-worker", "late", false, &cfg)
            .await
            .unwrap(),
        queue::Failed::LeaseLost
    );
    let after = queue::get(&pool, id).await.unwrap().unwrap();
    assert_eq!(
        (after.state.as_str(), after.result.as_deref()),
        ("succeeded", job.result.as_deref())
    );
}

#[tokio::test]
async fn failing_jobs_back_off_then_die_and_an_operator_can_retry_them() {
    let url = fresh_database().await;
    let recorder = Arc::new(Recorder {
        failing: AtomicBool::new(true),
        ..Default::default()
    });
    let mut cfg = config(&url);
    cfg.queue.max_attempts = 3;
    let app = spawn(cfg, Role::All, recorder.clone()).await;
    let id = insert_job(&app.pool, 3).await;
    eventually("job dead", || async {
        states(&app.pool).await.get("dead") == Some(&1)
    })
    .await;

    let attempts: Vec<(i32, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT attempt, outcome, finished_at FROM job_attempts WHERE job_id = $1 ORDER BY attempt",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let outcomes: Vec<(i32, &str)> = attempts.iter().map(|(n, o, _)| (*n, o.as_str())).collect();
    assert_eq!(outcomes, [(1, "failed"), (2, "failed"), (3, "dead")]);
    let job = queue::get(&app.pool, id).await.unwrap().unwrap();
    assert_eq!(job.last_error.as_deref(), Some("chain unavailable (test)"));
    assert_eq!(app.metric("relayer_jobs_dead_total").await, 1.0);
    assert_eq!(app.metric("relayer_job_retries_total").await, 2.0);
    assert_eq!(app.metric("relayer_jobs{state=\"dead\"}").await, 1.0);

    // The operator sees it, fixes the cause, and retries.
    let dead: Value = app
        .get_as_operator("/v1/jobs?state=dead")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(dead[0]["id"], id);
    recorder.failing.store(false, Ordering::SeqCst);
    let resp = app.post_as_operator(&format!("/v1/jobs/{id}/retry")).await;
    assert_eq!(resp.status(), 200);
    eventually("retried job succeeded", || async {
        states(&app.pool).await.get("succeeded") == Some(&1)
    })
    .await;
    let again = app.post_as_operator(&format!("/v1/jobs/{id}/retry")).await;
    assert_eq!(again.status(), 409, "only dead jobs can be retried");
    let unknown = app.post_as_operator("/v1/jobs/999999/retry").await;
    assert_eq!(unknown.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn backoff_schedules_each_retry_later_than_the_last() {
    let url = fresh_database().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let id = insert_job(&pool, 5).await;
    let mut cfg = config(&url).queue;
    cfg.backoff_base = Duration::from_secs(10);
    cfg.backoff_max = Duration::from_secs(600);
    let mut delays = Vec::new();
    for _ in 0..3 {
        sqlx::query("UPDATE jobs SET run_at = now() WHERE id = $1")
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
        let job = queue::claim(&pool, "w", Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        let queue::Failed::RetryAt(at) = queue::fail(&pool, &job, "w", "boom", false, &cfg)
            .await
            .unwrap()
        else {
            panic!("expected a retry");
        };
        delays.push((at - chrono::Utc::now()).num_milliseconds());
        assert!(
            queue::claim(&pool, "w", Duration::from_secs(30))
                .await
                .unwrap()
                .is_none(),
            "not runnable before run_at"
        );
    }
    // Attempt n waits within [base·2^(n−1)/2, base·2^(n−1)].
    for (n, d) in delays.iter().enumerate() {
        let full = 10_000 * (1 << n);
        assert!(
            (full / 2 - 1_000..=full).contains(d),
            "retry {}: {d} ms",
            n + 1
        );
    }
}

#[tokio::test]
async fn a_job_that_keeps_killing_its_workers_is_dead_lettered() {
    let url = fresh_database().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let id = insert_job(&pool, 2).await;
    let expire = || {
        sqlx::query("UPDATE jobs SET locked_until = now() - interval '1 second' WHERE id = $1")
            .bind(id)
            .execute(&pool)
    };
    for attempt in 1..=2 {
        let job = queue::claim(&pool, "doomed", Duration::from_secs(60))
            .await
            .unwrap()
            .expect("claimed");
        assert_eq!(job.attempts, attempt);
        expire().await.unwrap(); // the worker died mid-job
    }
    assert!(queue::claim(&pool, "next", Duration::from_secs(60))
        .await
        .unwrap()
        .is_none());
    let job = queue::get(&pool, id).await.unwrap().unwrap();
    assert_eq!(job.state, "dead");
    assert!(job
        .last_error
        .unwrap()
        .contains("its worker stopped during the last attempt"));
}

#[tokio::test]
async fn a_crank_is_re_armed_when_its_eta_changes() {
    let url = fresh_database().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let offer: uuid::Uuid = {
        let id = insert_job(&pool, 5).await;
        sqlx::query_scalar("SELECT offer_id FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let mut conn = pool.acquire().await.unwrap();
    let eta = chrono::Utc::now() + chrono::Duration::hours(1);
    let crank = relayer::domain::offer::JobAction::CrankRelease;
    assert!(queue::enqueue_crank(&mut conn, offer, crank, 5, eta)
        .await
        .unwrap());
    assert!(
        !queue::enqueue_crank(&mut conn, offer, crank, 5, eta)
            .await
            .unwrap(),
        "same eta: nothing to do"
    );
    // It ran and found nothing to crank (say, after a dispute)...
    sqlx::query("UPDATE jobs SET state = 'succeeded', attempts = 3 WHERE action = 'crank_release'")
        .execute(&pool)
        .await
        .unwrap();
    // ...and the outcome is scheduled again with a new eta.
    let new_eta = eta + chrono::Duration::hours(2);
    assert!(queue::enqueue_crank(&mut conn, offer, crank, 5, new_eta)
        .await
        .unwrap());
    let (state, attempts, run_at): (String, i32, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("SELECT state, attempts, run_at FROM jobs WHERE action = 'crank_release'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), attempts), ("pending", 0));
    assert_eq!(run_at.timestamp(), new_eta.timestamp());
}

struct Panicky;

impl JobHandler for Panicky {
    fn run<'a>(&'a self, job: &'a Job) -> JobFuture<'a> {
        Box::pin(async move {
            if job.attempts == 1 {
                panic!("boom on the first attempt");
            }
            Ok(Ran::Done("fine the second time".into()))
        })
    }
}

#[tokio::test]
async fn a_panicking_handler_counts_as_a_failed_attempt_and_the_worker_goes_on() {
    let url = fresh_database().await;
    let mut cfg = config(&url);
    cfg.queue.workers = 1;
    let app = spawn(cfg, Role::Worker, Arc::new(Panicky)).await;
    let id = insert_job(&app.pool, 5).await;
    eventually("job succeeded on its second attempt", || async {
        queue::get(&app.pool, id)
            .await
            .unwrap()
            .is_some_and(|j| j.state == "succeeded")
    })
    .await;
    let failed: String =
        sqlx::query_scalar("SELECT detail FROM job_attempts WHERE job_id = $1 AND attempt = 1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(failed.contains("handler panicked: boom"), "{failed}");
    // The same single worker is still alive to run another job.
    let second = insert_job(&app.pool, 5).await;
    eventually("second job ran", || async {
        queue::get(&app.pool, second)
            .await
            .unwrap()
            .is_some_and(|j| j.state == "succeeded")
    })
    .await;
    app.stop().await;
}

/// Completions from many workers are committed together (group commit), each answered as if
/// alone: a worker that lost its lease is told so and changes nothing.
#[tokio::test]
async fn completions_committed_together_are_answered_one_by_one() {
    let url = fresh_database().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut claimed = Vec::new();
    for i in 0..20 {
        insert_job(&pool, 3).await;
        let worker = format!("w{i}");
        let job = queue::claim(&pool, &worker, Duration::from_secs(60))
            .await
            .unwrap()
            .expect("claimed");
        claimed.push((job, worker));
    }
    // The first job's lease passed to another worker meanwhile.
    sqlx::query("UPDATE jobs SET locked_by = 'new-holder' WHERE id = $1")
        .bind(claimed[0].0.id)
        .execute(&pool)
        .await
        .unwrap();
    let completions = queue::completions(pool.clone());
    let answers = futures_util::future::join_all(claimed.iter().map(|(job, worker)| {
        completions.submit(queue::Completion {
            job: job.clone(),
            worker: worker.clone(),
            result: format!("done by {worker}"),
        })
    }))
    .await;
    let held: Vec<bool> = answers.into_iter().map(|a| a.unwrap().unwrap()).collect();
    assert!(!held[0], "the lease was lost: nothing recorded");
    assert!(held[1..].iter().all(|h| *h), "{held:?}");
    assert_eq!(states(&pool).await.get("succeeded"), Some(&19));
    assert_eq!(states(&pool).await.get("running"), Some(&1));
    let attempts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM job_attempts WHERE outcome = 'succeeded' AND detail = 'done by ' || worker",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(attempts, 19);
    let entries: Vec<String> =
        sqlx::query_scalar("SELECT payload FROM audit_log WHERE kind = 'job_attempt' ORDER BY seq")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(entries.len(), 19);
    assert!(entries
        .iter()
        .all(|e| e.contains("\"outcome\":\"succeeded\"")));
}

/// A claim takes a batch in one statement: a job whose worker died first, then the oldest
/// pending ones, never a job another claimer holds, each attempt counted.
#[tokio::test]
async fn a_claim_takes_a_batch_oldest_first_and_never_a_held_job() {
    let url = fresh_database().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(insert_job(&pool, 5).await);
    }
    let lease = Duration::from_secs(60);
    let first = queue::claim_up_to(&pool, "a", lease, 2).await.unwrap();
    assert_eq!(first.iter().map(|j| j.id).collect::<Vec<_>>(), ids[..2]);
    // The first claimer dies holding ids[1]: its lease runs out (moved into the past).
    sqlx::query("UPDATE jobs SET locked_until = now() - interval '1 second' WHERE id = $1")
        .bind(ids[1])
        .execute(&pool)
        .await
        .unwrap();
    let second = queue::claim_up_to(&pool, "b", lease, 3).await.unwrap();
    assert_eq!(
        second.iter().map(|j| j.id).collect::<Vec<_>>(),
        [ids[1], ids[2], ids[3]],
        "the dead worker's job first, then the oldest pending"
    );
    assert_eq!(second[0].attempts, 2, "the lost attempt counts");
    assert!(second
        .iter()
        .all(|j| j.state == "running" && j.locked_by.as_deref() == Some("b")));
    let rest = queue::claim_up_to(&pool, "c", lease, 64).await.unwrap();
    assert_eq!(rest.iter().map(|j| j.id).collect::<Vec<_>>(), ids[4..]);
    assert!(queue::claim_up_to(&pool, "d", lease, 64)
        .await
        .unwrap()
        .is_empty());
    // Renewing keeps only what the renewer still holds: ids[1] is b's now.
    let held = queue::renew(&pool, &[ids[0], ids[1]], "a", lease)
        .await
        .unwrap();
    assert_eq!(held, [ids[0]]);
}

/// A worker runs its batch one job at a time; at shutdown the job running and the jobs it has
/// not started all go back to the queue with their attempt uncounted.
#[tokio::test]
async fn shutdown_hands_back_the_running_job_and_the_rest_of_its_batch() {
    let url = fresh_database().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(insert_job(&pool, 5).await);
    }
    let (app, recorder, _block) = blocked_worker(&url, |cfg| cfg.queue.claim_batch = 8).await;
    recorder.started.notified().await;
    assert_eq!(
        states(&pool).await.get("running"),
        Some(&5),
        "one statement claimed them all"
    );
    app.stop().await;
    assert_eq!(
        recorder.runs.lock().unwrap().as_slice(),
        [ids[0]],
        "one at a time"
    );
    for id in ids {
        let job = queue::get(&pool, id).await.unwrap().unwrap();
        assert_eq!(
            (job.state.as_str(), job.attempts, job.locked_by),
            ("pending", 0, None),
            "job {id} handed back, attempt not counted"
        );
    }
}

/// A job whose lease another worker took while it waited in a batch is left to that worker.
#[tokio::test]
async fn a_job_whose_lease_was_lost_while_waiting_in_a_batch_is_not_run() {
    let url = fresh_database().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let ids = [insert_job(&pool, 5).await, insert_job(&pool, 5).await];
    // Short enough that the wait for the first job makes the batch renew before the second.
    let (app, recorder, block) =
        blocked_worker(&url, |cfg| cfg.queue.lease = Duration::from_secs(3)).await;
    recorder.started.notified().await;
    // Another worker takes the second job over, as after a lease that ran out.
    sqlx::query("UPDATE jobs SET locked_by = 'other' WHERE id = $1")
        .bind(ids[1])
        .execute(&pool)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    block.notify_one();
    eventually("the first job succeeded", || async {
        queue::get(&pool, ids[0]).await.unwrap().unwrap().state == "succeeded"
    })
    .await;
    app.stop().await;
    assert_eq!(recorder.runs.lock().unwrap().as_slice(), [ids[0]]);
    let taken = queue::get(&pool, ids[1]).await.unwrap().unwrap();
    assert_eq!(
        (taken.state.as_str(), taken.locked_by.as_deref()),
        ("running", Some("other")),
        "left to the worker that holds it"
    );
}

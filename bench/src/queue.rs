//! The job queue: no-op jobs through the relayer's own queue and workers on the same Postgres.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use relayer::{
    config::Env,
    startup::{Application, Role},
    worker::Simulate,
};
use tokio_util::sync::CancellationToken;

pub async fn run(database_url: &str, workers: usize, jobs: usize) -> anyhow::Result<()> {
    let pool = sqlx::PgPool::connect(database_url).await?;
    relayer::db::MIGRATOR.run(&pool).await?;
    // One offer per job (a job is unique per offer and action), inserted in one statement.
    sqlx::query(
        "WITH o AS (
             INSERT INTO offers (id, escrow, tracking_number, carrier, buyer, seller, mint, amount)
             SELECT gen_random_uuid(), 'bench-escrow-' || g, 'bench-' || g, 'ups', 'b', 's', 'm', 1
             FROM generate_series(1, $1) g RETURNING id)
         INSERT INTO jobs (offer_id, action, max_attempts) SELECT id, 'approve_release', 3 FROM o",
    )
    .bind(jobs as i64)
    .execute(&pool)
    .await?;
    // The relayer's own configuration path, with the table's defaults for everything else.
    let workers = workers.to_string();
    let env = Env(|name: &str| match name {
        "DATABASE_URL" => Some(database_url.to_owned()),
        "TRACKING_HMAC_SECRET" | "ACCESS_JWT_SECRET" => {
            Some("bench-secret-0123456789abcdef0123".to_owned())
        }
        "BIND_ADDR" => Some("127.0.0.1:0".to_owned()),
        "WORKERS" => Some(workers.clone()),
        _ => None,
    });
    let config = env.config(env.secrets()?, None)?;
    let app = Application::build(config, Role::Worker, Arc::new(Simulate)).await?;
    let stop = CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(app.run(stop.clone()));
    let mut max_lag: f64 = 0.0;
    loop {
        let (pending, lag): (i64, f64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE state <> 'succeeded'),
                    COALESCE(EXTRACT(EPOCH FROM now() - min(run_at) FILTER (WHERE state = 'pending'))::float8, 0)
             FROM jobs",
        )
        .fetch_one(&pool)
        .await?;
        max_lag = max_lag.max(lag);
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.cancel();
    running.await??;
    println!(
        "{}",
        serde_json::json!({
            "workers": workers, "jobs": jobs, "seconds": elapsed,
            "per_second": jobs as f64 / elapsed, "max_lag_s": max_lag,
        })
    );
    Ok(())
}

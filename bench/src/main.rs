//! The measurements `scripts/bench.sh` runs and tabulates. Figures only: nothing here asserts
//! a speed.
//!
//! - `ingest`: signed webhooks against a running `relayer serve` on loopback, from `concurrency`
//!   connections, each event distinct; accepted events/s and latency percentiles, then a count of
//!   the rows that were committed.
//! - `queue`: no-op jobs through the relayer's own queue and workers on the same Postgres:
//!   jobs/s with 1, 2, 4 workers, and the queue lag seen while they run.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use clap::{Parser, Subcommand};
use relayer::{
    config::{Config, DatabaseConfig, HttpConfig, QueueConfig, Secret},
    domain::signature::tracking_signature,
    startup::{Application, Role},
    worker::Simulate,
};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Signed webhooks against a running relayer; prints one JSON line of results.
    Ingest {
        #[arg(long)]
        url: String,
        #[arg(long)]
        secret: String,
        /// The relayer's database, to count what was committed.
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        concurrency: usize,
        #[arg(long)]
        events: usize,
    },
    /// Webhooks at a fixed rate for a while, watching the relayer's memory; one JSON line.
    Soak {
        #[arg(long)]
        url: String,
        #[arg(long)]
        secret: String,
        /// The relayer's process id, for its resident memory (/proc/<pid>/status).
        #[arg(long)]
        pid: u32,
        /// Events per second.
        #[arg(long)]
        rate: u64,
        #[arg(long)]
        seconds: u64,
    },
    /// No-op jobs through the relayer's queue; prints one JSON line of results.
    Queue {
        /// An empty database (migrated here).
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        workers: usize,
        #[arg(long)]
        jobs: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ingest {
            url,
            secret,
            database_url,
            concurrency,
            events,
        } => ingest(&url, secret.as_bytes(), &database_url, concurrency, events).await,
        Command::Queue {
            database_url,
            workers,
            jobs,
        } => queue(&database_url, workers, jobs).await,
        Command::Soak {
            url,
            secret,
            pid,
            rate,
            seconds,
        } => soak(&url, secret.as_bytes(), pid, rate, seconds).await,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

async fn ingest(
    url: &str,
    secret: &[u8],
    database_url: &str,
    concurrency: usize,
    events: usize,
) -> anyhow::Result<()> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    // Signed before the clock starts: the load generator's own work is not measured.
    let bodies: Vec<(String, String)> = (0..events)
        .map(|i| {
            let body = serde_json::json!({
                "event_id": format!("bench-{run}-{i}"), "tracking_number": format!("1ZB{run}{}", i % 1000),
                "carrier": "ups", "status": "in_transit", "occurred_at": "2026-11-26T10:00:00Z",
            })
            .to_string();
            let sig = tracking_signature(secret, body.as_bytes());
            (body, sig)
        })
        .collect();
    let bodies = Arc::new(bodies);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let endpoint = format!("{url}/webhooks/tracking");
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (bodies, next, http, endpoint) =
            (bodies.clone(), next.clone(), http.clone(), endpoint.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((body, sig)) = bodies.get(i) else {
                    break;
                };
                let t = Instant::now();
                let ok = http
                    .post(&endpoint)
                    .header("X-Tracking-Signature", sig)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ok {
                    latencies.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        });
    }
    let (mut latencies, mut errors) = (Vec::new(), 0);
    while let Some(done) = tasks.join_next().await {
        let (l, e) = done?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pool = sqlx::PgPool::connect(database_url).await?;
    let committed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tracking_events WHERE event_id LIKE $1")
            .bind(format!("bench-{run}-%"))
            .fetch_one(&pool)
            .await?;
    println!(
        "{}",
        serde_json::json!({
            "concurrency": concurrency, "sent": events, "accepted": latencies.len(),
            "errors": errors, "committed": committed, "seconds": elapsed,
            "per_second": latencies.len() as f64 / elapsed,
            "p50_ms": percentile(&latencies, 0.50), "p99_ms": percentile(&latencies, 0.99),
            "p999_ms": percentile(&latencies, 0.999),
        })
    );
    Ok(())
}

/// Resident memory of `pid` in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for {pid}"))
}

async fn soak(url: &str, secret: &[u8], pid: u32, rate: u64, seconds: u64) -> anyhow::Result<()> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let http = reqwest::Client::new();
    let endpoint = format!("{url}/webhooks/tracking");
    let errors = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let total = rate * seconds;
    let mut samples = vec![rss_kib(pid)?];
    let started = Instant::now();
    let mut inflight = tokio::task::JoinSet::new();
    for i in 0..total {
        tick.tick().await;
        let body = serde_json::json!({
            "event_id": format!("soak-{run}-{i}"), "tracking_number": format!("1ZS{}", i % 1000),
            "carrier": "ups", "status": "in_transit", "occurred_at": "2026-11-26T10:00:00Z",
        })
        .to_string();
        let sig = tracking_signature(secret, body.as_bytes());
        let (http, endpoint, errors) = (http.clone(), endpoint.clone(), errors.clone());
        inflight.spawn(async move {
            let ok = http
                .post(&endpoint)
                .header("X-Tracking-Signature", sig)
                .body(body)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if !ok {
                errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
        while inflight.try_join_next().is_some() {}
        if i % (rate * 10).max(1) == 0 {
            samples.push(rss_kib(pid)?);
        }
    }
    while inflight.join_next().await.is_some() {}
    samples.push(rss_kib(pid)?);
    let tenth = (samples.len() / 10).max(1);
    let early = samples[..tenth].iter().sum::<u64>() / tenth as u64;
    let late = samples[samples.len() - tenth..].iter().sum::<u64>() / tenth as u64;
    println!(
        "{}",
        serde_json::json!({
            "rate": rate, "seconds": started.elapsed().as_secs_f64(), "sent": total,
            "errors": errors.load(std::sync::atomic::Ordering::Relaxed),
            "rss_start_kib": samples[0], "rss_end_kib": samples[samples.len() - 1],
            "rss_max_kib": samples.iter().max(), "rss_early_avg_kib": early, "rss_late_avg_kib": late,
        })
    );
    Ok(())
}

async fn queue(database_url: &str, workers: usize, jobs: usize) -> anyhow::Result<()> {
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
    let secret = Secret::new(b"bench-secret-0123456789abcdef0123".to_vec());
    let config = Config {
        database: DatabaseConfig {
            url: database_url.into(),
        },
        http: HttpConfig {
            bind: "127.0.0.1:0".parse()?,
            trust_forwarded_for: false,
            webhook_rate_per_minute: 1,
            webhook_max_body: 1024,
            actions_rate_per_minute: 1,
            public_url: None,
            tls: None,
            tracking_secrets: vec![secret.clone()],
            jwt_secret: secret,
            jwt_previous: None,
        },
        queue: QueueConfig {
            workers,
            ..QueueConfig::default()
        },
        execute: false,
        stuck_after: Duration::from_secs(86_400),
    };
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

//! Webhook ingest: signed webhooks against a running `relayer serve` on loopback, as fast as
//! `concurrency` connections go (`ingest`) or at a fixed rate for a long while (`soak`).
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use relayer::domain::signature::tracking_signature;

use crate::percentile;

pub async fn run(
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

pub async fn soak(
    url: &str,
    secret: &[u8],
    pid: u32,
    rate: u64,
    seconds: u64,
) -> anyhow::Result<()> {
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

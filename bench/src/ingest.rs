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

/// Open sockets of `pid`: each client connection holds buffers, so memory follows them.
fn sockets(pid: u32) -> anyhow::Result<usize> {
    let mut n = 0;
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        if std::fs::read_link(fd?.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
        {
            n += 1;
        }
    }
    Ok(n)
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

/// Like a provider with a pool of `connections`: each connection sends its share of `rate` on
/// its own schedule, so a slow answer delays that connection only and the relayer sees a fixed
/// number of clients (an unbounded client opens a connection per stall and the relayer's memory
/// then follows the connection count, not the work).
pub async fn soak(
    url: &str,
    secret: &[u8],
    pid: u32,
    rate: u64,
    seconds: u64,
    connections: u64,
) -> anyhow::Result<()> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let endpoint = format!("{url}/webhooks/tracking");
    let per_connection = (rate * seconds).div_ceil(connections);
    let period = Duration::from_secs_f64(connections as f64 / rate.max(1) as f64);
    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for c in 0..connections {
        let (endpoint, secret, run) = (endpoint.clone(), secret.to_vec(), run.clone());
        senders.spawn(async move {
            let http = reqwest::Client::builder().pool_max_idle_per_host(1).build()?;
            let start = tokio::time::Instant::now() + period.mul_f64(c as f64 / connections as f64);
            let mut tick = tokio::time::interval_at(start, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut errors = 0u64;
            for i in 0..per_connection {
                tick.tick().await;
                let body = serde_json::json!({
                    "event_id": format!("soak-{run}-{c}-{i}"), "tracking_number": format!("1ZS{}", i % 1000),
                    "carrier": "ups", "status": "in_transit", "occurred_at": "2026-11-26T10:00:00Z",
                })
                .to_string();
                let ok = http
                    .post(&endpoint)
                    .header("X-Tracking-Signature", tracking_signature(&secret, body.as_bytes()))
                    .body(body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                errors += u64::from(!ok);
            }
            anyhow::Ok(errors)
        });
    }
    let (mut rss, mut open) = (vec![rss_kib(pid)?], vec![sockets(pid)?]);
    let mut sample = tokio::time::interval(Duration::from_secs(10));
    sample.tick().await;
    let mut errors = 0;
    loop {
        tokio::select! {
            done = senders.join_next() => match done {
                Some(sent) => errors += sent??,
                None => break,
            },
            _ = sample.tick() => {
                rss.push(rss_kib(pid)?);
                open.push(sockets(pid)?);
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    rss.push(rss_kib(pid)?);
    let tenth = (rss.len() / 10).max(1);
    let early = rss[..tenth].iter().sum::<u64>() / tenth as u64;
    let late = rss[rss.len() - tenth..].iter().sum::<u64>() / tenth as u64;
    let sent = per_connection * connections;
    println!(
        "{}",
        serde_json::json!({
            "rate": rate, "seconds": elapsed, "sent": sent, "achieved_per_second": sent as f64 / elapsed,
            "connections": connections, "errors": errors,
            "rss_start_kib": rss[0], "rss_end_kib": rss[rss.len() - 1],
            "rss_max_kib": rss.iter().max(), "rss_early_avg_kib": early, "rss_late_avg_kib": late,
            "rss_mib_every_10s": rss.iter().map(|k| k / 1024).collect::<Vec<_>>(),
            "sockets_max": open.iter().max(),
        })
    );
    Ok(())
}

//! Prometheus metrics. Counters live in the process; the gauges that describe shared state
//! (offers by status, jobs by state, queue lag) are read from Postgres at scrape time, so every
//! replica reports the same truth.
use prometheus::{
    Encoder, Gauge, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use sqlx::PgPool;

use crate::{config::StuckConfig, domain::offer::OfferStatus, offers, queue};

pub const JOB_STATES: [&str; 5] = ["pending", "running", "confirming", "succeeded", "dead"];

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub webhooks: IntCounterVec,
    pub actions: IntCounterVec,
    pub job_runs: IntCounterVec,
    pub job_retries: IntCounter,
    pub jobs_dead: IntCounter,
    offers: IntGaugeVec,
    settled: IntGaugeVec,
    jobs: IntGaugeVec,
    queue_lag: Gauge,
    stuck: IntGaugeVec,
    database_up: IntGauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("relayer".into()), None).expect("registry");
        let webhooks = IntCounterVec::new(
            Opts::new(
                "webhooks_total",
                "Tracking webhooks by endpoint (tracking: the relayer's own format; or the provider) and result",
            ),
            &["provider", "result"],
        )
        .expect("metric");
        let actions = IntCounterVec::new(
            Opts::new(
                "actions_total",
                "Solana Actions requests by action and result",
            ),
            &["action", "result"],
        )
        .expect("metric");
        let job_runs = IntCounterVec::new(
            Opts::new("job_runs_total", "Job attempts by outcome"),
            &["outcome"],
        )
        .expect("metric");
        let job_retries = IntCounter::new(
            "job_retries_total",
            "Failed job attempts scheduled for retry",
        )
        .expect("metric");
        let jobs_dead = IntCounter::new(
            "jobs_dead_total",
            "Jobs that became dead after their last attempt",
        )
        .expect("metric");
        let offers =
            IntGaugeVec::new(Opts::new("offers", "Offers by status"), &["status"]).expect("metric");
        let settled = IntGaugeVec::new(
            Opts::new("offers_settled", "Offers by how their escrow settled"),
            &["settlement"],
        )
        .expect("metric");
        let jobs =
            IntGaugeVec::new(Opts::new("jobs", "Jobs by state"), &["state"]).expect("metric");
        let stuck = IntGaugeVec::new(
            Opts::new(
                "offers_stuck",
                "Unsettled offers that need a human, by reason: settle_overdue (ended longer \
                 than STUCK_AFTER_SECS ago), frozen_in_transit (status dated in the future), \
                 silent_in_transit (no carrier event for TRANSIT_SILENT_AFTER_SECS)",
            ),
            &["reason"],
        )
        .expect("metric");
        let queue_lag = Gauge::new(
            "queue_lag_seconds",
            "Age of the oldest runnable job (0 when none)",
        )
        .expect("metric");
        let database_up = IntGauge::new(
            "database_up",
            "1 when Postgres answered this scrape's queries, else 0 (the gauges above are stale)",
        )
        .expect("metric");
        // Every label value a counter can take, exported at 0 from the start: alerts built on
        // increase() or rate() then see the first event, not only the second.
        for result in [
            "accepted",
            "duplicate",
            "unknown_tracking",
            "rate_limited",
            "too_large",
            "malformed",
            "unsigned",
            "stale",
            "bad_signature",
            "unavailable",
        ] {
            // The relayer's own endpoint; a provider's series appear with its first webhook.
            webhooks.with_label_values(&["tracking", result]);
        }
        for outcome in ["succeeded", "failed"] {
            job_runs.with_label_values(&[outcome]);
        }
        for kind in ["unavailable", "refused", "bad_signature"] {
            crate::signer::SIGNER_ERRORS.with_label_values(&[kind]);
        }
        for m in [
            Box::new(webhooks.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(database_up.clone()),
            Box::new(crate::signer::SIGNER_ERRORS.clone()),
            Box::new(crate::secrets::REFRESHES.clone()),
            Box::new(actions.clone()),
            Box::new(job_runs.clone()),
            Box::new(job_retries.clone()),
            Box::new(jobs_dead.clone()),
            Box::new(offers.clone()),
            Box::new(settled.clone()),
            Box::new(jobs.clone()),
            Box::new(queue_lag.clone()),
            Box::new(stuck.clone()),
        ] {
            registry.register(m).expect("register metric");
        }
        Self {
            registry,
            webhooks,
            actions,
            job_runs,
            job_retries,
            jobs_dead,
            offers,
            settled,
            jobs,
            queue_lag,
            stuck,
            database_up,
        }
    }

    pub fn webhook(&self, provider: &str, result: &str) {
        self.webhooks.with_label_values(&[provider, result]).inc();
    }

    /// Refreshes the database gauges and renders everything in the text exposition format.
    /// When Postgres does not answer, the process's own counters are still served, with
    /// `relayer_database_up 0`, so alerts can tell "database down" from "relayer down".
    pub async fn render(&self, pool: &PgPool, stuck: StuckConfig) -> String {
        let up = self.refresh_database_gauges(pool, stuck).await;
        if let Err(e) = &up {
            tracing::warn!(error = %e, "metrics: database gauges not refreshed");
        }
        self.database_up.set(i64::from(up.is_ok()));
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }

    async fn refresh_database_gauges(&self, pool: &PgPool, stuck: StuckConfig) -> sqlx::Result<()> {
        let statuses: Vec<&str> = OfferStatus::ALL.iter().map(|s| s.as_str()).collect();
        set_all(
            &self.offers,
            &statuses,
            offers::count_by_status(pool).await?,
        );
        set_all(
            &self.settled,
            &["released", "refunded"],
            offers::count_by_settlement(pool).await?,
        );
        set_all(&self.jobs, &JOB_STATES, queue::count_by_state(pool).await?);
        self.queue_lag.set(queue::lag_seconds(pool).await?.max(0.0));
        let mut by_reason: Vec<(String, i64)> = Vec::new();
        for (_, reason) in offers::stuck(pool, stuck).await? {
            match by_reason.iter_mut().find(|(r, _)| *r == reason) {
                Some((_, n)) => *n += 1,
                None => by_reason.push((reason, 1)),
            }
        }
        set_all(&self.stuck, &offers::STUCK_REASONS, by_reason);
        Ok(())
    }
}

/// Sets a gauge per label from (label, count) rows; labels absent from them read 0 rather than
/// keeping a stale value.
fn set_all(gauge: &IntGaugeVec, labels: &[&str], counts: Vec<(String, i64)>) {
    for label in labels {
        gauge.with_label_values(&[*label]).set(0);
    }
    for (label, n) in counts {
        gauge.with_label_values(&[&label]).set(n);
    }
}

//! Stage 3: every transaction in flight, tracked together. Each tick asks the node for the
//! statuses of up to 256 signatures in one call; a transaction that landed completes its job
//! (with what follows from it: the crank an approval scheduled, the settlement a crank made), one
//! that failed or expired (its last valid block height passed) re-arms the job for another
//! attempt. Transactions this process sent are sent again every few seconds until they land or
//! expire, as nodes may drop them. In-flight transactions are read from `chain_txs`, so after a
//! restart, or for another process's, nothing is lost.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use solana_signature::Signature;
use solana_transaction::Transaction;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{txs, txs::InFlight, Pipeline};
use crate::{
    chain::{TxStatus, MAX_STATUSES},
    config::QueueConfig,
    domain::offer::{JobAction, Settlement},
    metrics::Metrics,
    offers,
    queue::{self, Failed},
};

/// How often a transaction this process sent is sent again while it has not landed.
const RESEND_EVERY: Duration = Duration::from_secs(2);
/// The block height only tells whether a transaction expired, a minute or more away.
const HEIGHT_EVERY: Duration = Duration::from_secs(1);
/// With nothing in flight, how often to look anyway (another process's transactions).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Transactions this process sent: what to send again, and a wake-up for the confirm stage.
#[derive(Default)]
pub struct Sent {
    txs: Mutex<HashMap<Signature, (Transaction, Instant)>>,
    wake: Notify,
}

impl Sent {
    pub(super) fn sent(&self, signature: Signature, tx: Transaction) {
        self.txs
            .lock()
            .expect("sent lock poisoned")
            .insert(signature, (tx, Instant::now()));
        self.wake.notify_one();
    }

    fn forget(&self, signature: &Signature) -> bool {
        self.txs
            .lock()
            .expect("sent lock poisoned")
            .remove(signature)
            .is_some()
    }

    /// Forgets what is no longer in flight (another process confirmed it, say); what was sent
    /// in the last seconds stays, as it may have been recorded after `in_flight` was read.
    fn retain(&self, in_flight: &[InFlight]) {
        let mut txs = self.txs.lock().expect("sent lock poisoned");
        txs.retain(|signature, (_, at)| {
            at.elapsed() < 5 * RESEND_EVERY || in_flight.iter().any(|t| t.signature == *signature)
        });
    }

    /// The transaction to send again now, if this process sent it and it is due.
    fn due(&self, signature: &Signature) -> Option<Transaction> {
        let mut txs = self.txs.lock().expect("sent lock poisoned");
        let (tx, at) = txs.get_mut(signature)?;
        (at.elapsed() >= RESEND_EVERY).then(|| {
            *at = Instant::now();
            tx.clone()
        })
    }
}

pub struct Confirmer {
    pipeline: Arc<Pipeline>,
    queue: QueueConfig,
    metrics: Metrics,
}

impl Pipeline {
    pub fn confirmer(self: &Arc<Self>, queue: &QueueConfig, metrics: &Metrics) -> Confirmer {
        Confirmer {
            pipeline: self.clone(),
            queue: queue.clone(),
            metrics: metrics.clone(),
        }
    }
}

/// The chain's block height, asked at most once per `HEIGHT_EVERY`.
struct Height {
    value: u64,
    at: Option<Instant>,
}

impl Confirmer {
    pub async fn run(self, shutdown: CancellationToken) {
        let poll = self.pipeline.config.confirm_poll;
        let mut height = Height { value: 0, at: None };
        while !shutdown.is_cancelled() {
            let pause = match self.tick(&mut height).await {
                Ok(0) => IDLE_POLL,
                Ok(_) => poll,
                Err(e) => {
                    tracing::warn!(error = %e, "confirm stage: could not check transactions in flight; trying again");
                    IDLE_POLL
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.pipeline.in_flight.wake.notified() => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }

    /// One look at every transaction in flight; returns how many there were.
    async fn tick(&self, height: &mut Height) -> anyhow::Result<usize> {
        let p = &self.pipeline;
        const LIMIT: usize = 4 * MAX_STATUSES;
        let in_flight = txs::in_flight(&p.pool, LIMIT as i64).await?;
        if in_flight.len() < LIMIT {
            p.in_flight.retain(&in_flight);
        }
        for chunk in in_flight.chunks(MAX_STATUSES) {
            let signatures: Vec<Signature> = chunk.iter().map(|t| t.signature).collect();
            let statuses = p.chain.statuses(&signatures).await?;
            for (tx, status) in chunk.iter().zip(statuses) {
                match status {
                    TxStatus::Landed { err: None } => self.landed(tx).await?,
                    TxStatus::Landed { err: Some(err) } => self.failed(tx, &err).await?,
                    TxStatus::Unknown => self.not_yet(tx, height).await?,
                }
            }
        }
        Ok(in_flight.len())
    }

    async fn not_yet(&self, tx: &InFlight, height: &mut Height) -> anyhow::Result<()> {
        let p = &self.pipeline;
        if height.at.is_none_or(|at| at.elapsed() >= HEIGHT_EVERY) {
            height.value = p.chain.block_height().await?;
            height.at = Some(Instant::now());
        }
        if height.value <= tx.last_valid_block_height {
            if let Some(again) = p.in_flight.due(&tx.signature) {
                if let Err(e) = p.chain.send(&again).await {
                    tracing::debug!(signature = %tx.signature, error = %e, "sending again failed");
                }
            }
            return Ok(());
        }
        // One last look through the node's whole history: it may have landed in the final
        // valid block, or before this process's restart.
        match p.chain.status(&tx.signature).await? {
            TxStatus::Landed { err: None } => self.landed(tx).await,
            TxStatus::Landed { err: Some(err) } => self.failed(tx, &err).await,
            TxStatus::Unknown => {
                let error = format!(
                    "{} expired without landing; the next attempt signs anew",
                    tx.signature
                );
                self.rearm(tx, "expired", None, &error).await
            }
        }
    }

    async fn failed(&self, tx: &InFlight, err: &str) -> anyhow::Result<()> {
        let error = format!("{} failed on-chain: {err}", tx.signature);
        self.rearm(tx, "failed", Some(err), &error).await
    }

    /// The transaction will never land: the attempt failed, and the job is retried with backoff
    /// (a new transaction, signed anew).
    async fn rearm(
        &self,
        tx: &InFlight,
        state: &str,
        err: Option<&str>,
        error: &str,
    ) -> anyhow::Result<()> {
        let p = &self.pipeline;
        p.in_flight.forget(&tx.signature);
        let mut db = p.pool.begin().await?;
        let Some(offer) = txs::settle(&mut db, &tx.signature, state, err).await? else {
            return Ok(());
        };
        let failed = queue::unconfirmed(&mut db, &tx.job, error, &self.queue).await?;
        txs::audit_settled(&mut db, offer, &tx.signature, state, err).await?;
        db.commit().await?;
        self.metrics.job_runs.with_label_values(&["failed"]).inc();
        match failed {
            Failed::RetryAt(at) => {
                self.metrics.job_retries.inc();
                tracing::warn!(signature = %tx.signature, %error, retry_at = %at, "job failed; will retry");
            }
            Failed::Dead => {
                self.metrics.jobs_dead.inc();
                tracing::error!(signature = %tx.signature, %error, "job is dead; retry it with POST /v1/jobs/{{id}}/retry once the cause is fixed");
            }
            Failed::LeaseLost => {}
        }
        Ok(())
    }

    /// The transaction landed: its job is done, with what follows from it, in one transaction.
    /// Row locks come before the first audit append (the audit log's order lock), as everywhere.
    async fn landed(&self, tx: &InFlight) -> anyhow::Result<()> {
        let p = &self.pipeline;
        crate::failpoint::hit("before_confirm");
        let ours = p.in_flight.forget(&tx.signature);
        let action: JobAction = tx.job.action.parse().map_err(anyhow::Error::msg)?;
        let offer = offers::get(&p.pool, tx.job.offer_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("job {}'s offer is gone", tx.job.id))?;
        // What an approval scheduled is read before the transaction: a chain call holds no lock.
        let scheduled = match action {
            JobAction::ApproveRelease | JobAction::ApproveRefund => p.bound_escrow(&offer).await?,
            _ => None,
        };
        let mut db = p.pool.begin().await?;
        let Some(offer_id) = txs::settle(&mut db, &tx.signature, "confirmed", None).await? else {
            return Ok(());
        };
        let note = match (action, scheduled) {
            (JobAction::CrankRelease | JobAction::CrankRefund, _) => {
                let settlement = if action == JobAction::CrankRelease {
                    Settlement::Released
                } else {
                    Settlement::Refunded
                };
                offers::record_settlement(&mut db, offer_id, settlement, "our crank").await?;
                format!("offer {}", settlement.as_str())
            }
            (_, Some(state)) => {
                super::queue_crank_in(&mut db, offer_id, &state, p.config.max_attempts).await?
            }
            (_, None) => "the escrow has closed since".into(),
        };
        let result = if ours {
            format!("{} landed in {}; {note}", tx.job.action, tx.signature)
        } else {
            format!(
                "{} (sent by an earlier attempt) landed; {note}",
                tx.signature
            )
        };
        queue::confirmed(&mut db, &tx.job, &result).await?;
        txs::audit_settled(&mut db, offer_id, &tx.signature, "confirmed", None).await?;
        db.commit().await?;
        self.metrics
            .job_runs
            .with_label_values(&["succeeded"])
            .inc();
        tracing::info!(signature = %tx.signature, action = %tx.job.action, %result, "transaction confirmed");
        Ok(())
    }
}

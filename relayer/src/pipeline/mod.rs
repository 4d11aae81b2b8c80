//! The chain side of a job, in three stages, as relayers that keep up with a node split it:
//!
//! 1. **plan** (`plan.rs`, pure): what the job should do, given its offer and the escrow as
//!    read, and whether to bind the offer to that deal first;
//! 2. **submit** (`submit.rs`): simulate, add the priority fee, sign with the KMS under the job's
//!    fence, record the signature and hand the job over (one database transaction), send. The
//!    worker is free again as soon as the transaction is sent;
//! 3. **confirm** (`confirm.rs`): one task tracks every transaction in flight together, in one
//!    `getSignatureStatuses` call per tick, and completes or re-arms their jobs.
//!
//! With `OPENCLAW_EXECUTE=false` a job stops after the simulation and records what it would have
//! sent. A signature is recorded (committed) before it leaves, and a job with a transaction in
//! flight is never signed for again: after a crash at any point the confirm stage finds the
//! transaction and waits for it to land or expire.
pub mod confirm;
pub mod plan;
mod submit;
pub mod txs;

use std::{str::FromStr, sync::Arc, time::Duration};

use chrono::{DateTime, TimeZone, Utc};
use escrow::{Escrow, Outcome};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use self::{
    confirm::Sent,
    plan::{FollowUp, Step},
};
use crate::{
    audit,
    chain::{Chain, ChainError},
    config::QueueConfig,
    deal::{self, EscrowAt},
    domain::offer::{JobAction, Offer},
    metrics::Metrics,
    offers,
    queue::{self, Job},
    signer::{SignerError, TxSigner},
    worker::{JobError, JobFuture, JobHandler, Ran},
};

pub struct PipelineConfig {
    /// `OPENCLAW_EXECUTE`: without it, simulate and record only.
    pub execute: bool,
    /// How often the confirm stage asks for the statuses of the transactions in flight.
    pub confirm_poll: Duration,
    /// Attempts for the crank jobs this pipeline queues.
    pub max_attempts: i32,
    /// Priority fee in micro-lamports per compute unit; 0 for none.
    pub priority_fee_micro_lamports: u64,
}

pub struct Pipeline {
    pub pool: PgPool,
    pub chain: Arc<dyn Chain>,
    pub signer: Arc<dyn TxSigner>,
    pub config: PipelineConfig,
    in_flight: Sent,
}

impl Pipeline {
    pub fn new(
        pool: PgPool,
        chain: Arc<dyn Chain>,
        signer: Arc<dyn TxSigner>,
        config: PipelineConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            pool,
            chain,
            signer,
            config,
            in_flight: Sent::default(),
        })
    }
}

impl From<ChainError> for JobError {
    fn from(e: ChainError) -> Self {
        JobError::Retry(e.to_string())
    }
}

impl From<SignerError> for JobError {
    fn from(e: SignerError) -> Self {
        match e {
            SignerError::Refused(_) => JobError::Permanent(e.to_string()),
            SignerError::Unavailable(_) | SignerError::BadSignature(_) => {
                JobError::Retry(e.to_string())
            }
        }
    }
}

fn db(e: sqlx::Error) -> JobError {
    JobError::Retry(format!("database: {e}"))
}

/// The handler the workers run; `Arc` so that the confirm stage shares its state.
pub struct Handler(pub Arc<Pipeline>);

impl JobHandler for Handler {
    fn run<'a>(&'a self, job: &'a Job) -> JobFuture<'a> {
        Box::pin(self.0.run_job(job))
    }

    fn confirm_stage(&self, queue: &QueueConfig, metrics: &Metrics) -> Option<confirm::Confirmer> {
        Some(self.0.confirmer(queue, metrics))
    }
}

impl Pipeline {
    async fn run_job(&self, job: &Job) -> Result<Ran, JobError> {
        let action = JobAction::from_str(&job.action).map_err(JobError::Permanent)?;
        let offer = offers::get(&self.pool, job.offer_id)
            .await
            .map_err(db)?
            .ok_or_else(|| JobError::Permanent(format!("offer {} does not exist", job.offer_id)))?;
        let escrow = deal::read(&*self.chain, &offer.escrow).await?;
        let now = match action {
            JobAction::CrankRelease | JobAction::CrankRefund => self.chain.unix_time().await?,
            // Approvals do not depend on the clock: one read fewer.
            JobAction::ApproveRelease | JobAction::ApproveRefund => 0,
        };
        let planned = plan::plan(action, &offer, &escrow, now, &self.signer.pubkey());
        if let Some(slot) = planned.bind {
            let mut conn = self.pool.acquire().await.map_err(db)?;
            offers::bind_deal(&mut conn, offer.id, slot)
                .await
                .map_err(db)?;
        }
        match planned.step {
            Step::Done { note, then: None } => Ok(Ran::Done(note)),
            Step::Done {
                note,
                then: Some(FollowUp::QueueCrank),
            } => {
                let queued = self.queue_crank_for(&offer, &escrow).await?;
                Ok(Ran::Done(format!("{note}; {queued}")))
            }
            Step::Later { secs, what } => Err(not_yet(secs, what)),
            Step::Retry(why) => Err(JobError::Retry(why)),
            Step::Refuse(why) => Err(JobError::Permanent(why)),
            Step::Send(intent) => {
                let EscrowAt::Open(state) = &escrow else {
                    unreachable!("plan sends only for an open escrow");
                };
                match self.submit(job, &offer, state, intent).await? {
                    submit::Submitted::AlreadyDone(done) => {
                        // Another attempt's approval landed: make sure its crank is queued.
                        let escrow = deal::read(&*self.chain, &offer.escrow).await?;
                        let queued = self.queue_crank_for(&offer, &escrow).await?;
                        Ok(Ran::Done(format!(
                            "already done on-chain (the program says {done}); {queued}"
                        )))
                    }
                    submitted => Ok(submitted.into()),
                }
            }
        }
    }

    /// The escrow at the offer's address, when it is the deal the offer is bound to.
    async fn bound_escrow(&self, offer: &Offer) -> Result<Option<Box<Escrow>>, ChainError> {
        Ok(match deal::read(&*self.chain, &offer.escrow).await? {
            EscrowAt::Open(state) if offer.deal_slot.is_none_or(|s| s == state.created_slot) => {
                Some(state)
            }
            _ => None,
        })
    }

    async fn queue_crank_for(&self, offer: &Offer, escrow: &EscrowAt) -> Result<String, JobError> {
        match escrow {
            EscrowAt::Open(state) => {
                queue_crank(&self.pool, offer.id, state, self.config.max_attempts)
                    .await
                    .map_err(db)
            }
            _ => Ok("the escrow has closed since".into()),
        }
    }
}

/// Queues the crank for the offer's deal's scheduled outcome at its eta (once per offer and
/// outcome). `state` must be the deal the offer is bound to.
pub async fn queue_crank(
    pool: &PgPool,
    offer: Uuid,
    state: &Escrow,
    max_attempts: i32,
) -> sqlx::Result<String> {
    let mut tx = pool.begin().await?;
    let note = queue_crank_in(&mut tx, offer, state, max_attempts).await?;
    tx.commit().await?;
    Ok(note)
}

/// `queue_crank` inside the caller's transaction (its audit entry appended last).
async fn queue_crank_in(
    conn: &mut PgConnection,
    offer: Uuid,
    state: &Escrow,
    max_attempts: i32,
) -> sqlx::Result<String> {
    let action = match state.scheduled() {
        Some(Outcome::Release) => JobAction::CrankRelease,
        Some(Outcome::Refund) => JobAction::CrankRefund,
        None => return Ok("nothing scheduled yet".into()),
    };
    let eta: DateTime<Utc> = Utc
        .timestamp_opt(state.eta, 0)
        .single()
        .unwrap_or_else(Utc::now);
    let queued = queue::enqueue_crank(&mut *conn, offer, action, max_attempts, eta).await?;
    if queued {
        audit::append(
            conn,
            "job_enqueued",
            Some(offer),
            json!({ "offer_id": offer, "action": action.as_str(), "run_at": eta }),
        )
        .await?;
        Ok(format!("{} queued for {eta}", action.as_str()))
    } else {
        Ok(format!("{} already queued", action.as_str()))
    }
}

/// Too early: run again once the chain's clock has moved `secs` on (at least a second later).
fn not_yet(secs: i64, what: &str) -> JobError {
    let run_at = Utc::now() + chrono::Duration::seconds(secs.max(1));
    JobError::NotYet {
        run_at,
        reason: format!("{what} is {secs} s away on the chain's clock"),
    }
}

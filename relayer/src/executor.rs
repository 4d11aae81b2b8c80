//! Turns jobs into on-chain transactions: approvals after a verified delivery or return, and
//! cranks once a scheduled outcome's timelock has passed.
//!
//! Per attempt:
//! 1. earlier transactions of this job are looked up first: one that landed completes the job,
//!    one that may still land is waited for, and only an expired one allows signing again;
//! 2. the escrow is read and checked against the offer (program, mint, amount, parties, this
//!    relayer among the approvers); a mismatch dead-letters the job with the reason;
//! 3. work already done on-chain (approved, scheduled, closed) completes the job;
//! 4. simulate → sign with the KMS → record signature and last valid block height (committed) →
//!    send → confirm. With `OPENCLAW_EXECUTE=false` it stops after the simulation and records
//!    what it would have sent.
use std::{str::FromStr, sync::Arc, time::Duration};

use anchor_lang::{prelude::Pubkey, solana_program::instruction::Instruction, AccountDeserialize};
use chrono::{DateTime, TimeZone, Utc};
use escrow::{client::Deal, Escrow, EscrowStatus, Outcome};
use solana_message::Message;
use solana_signature::Signature;
use solana_transaction::Transaction;
use sqlx::PgPool;
use uuid::Uuid;

use serde_json::json;

use crate::{
    audit,
    chain::{Chain, ChainError, TxStatus},
    deal::{self, OfferKeys, OnChainTerms},
    domain::offer::JobAction,
    queue::{self, Job},
    signer::{SignerError, TxSigner},
    worker::{JobError, JobFuture, JobHandler},
};

pub struct ExecutorConfig {
    /// `OPENCLAW_EXECUTE`: without it, simulate and record only.
    pub execute: bool,
    /// How long one attempt waits for its transaction to land before leaving it to the next.
    pub confirm_window: Duration,
    pub poll: Duration,
    /// Attempts for the crank jobs this executor queues.
    pub max_attempts: i32,
    /// Priority fee in micro-lamports per compute unit; 0 for none.
    pub priority_fee_micro_lamports: u64,
}

pub struct ChainExecutor {
    pub pool: PgPool,
    pub chain: Arc<dyn Chain>,
    pub signer: Arc<dyn TxSigner>,
    pub config: ExecutorConfig,
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

impl From<deal::LoadError> for JobError {
    fn from(e: deal::LoadError) -> Self {
        match e {
            deal::LoadError::Db(e) => db(e),
            deal::LoadError::Corrupt(..) => JobError::Permanent(e.to_string()),
        }
    }
}

impl JobHandler for ChainExecutor {
    fn run<'a>(&'a self, job: &'a Job) -> JobFuture<'a> {
        Box::pin(self.run_job(job))
    }
}

impl ChainExecutor {
    async fn run_job(&self, job: &Job) -> Result<String, JobError> {
        let action = JobAction::from_str(&job.action).map_err(JobError::Permanent)?;
        let mut offer = deal::load(&self.pool, job.offer_id).await?;
        if let Some(done) = self.earlier_transactions(job, &offer, action).await? {
            return Ok(done);
        }
        if let Some(settlement) = &offer.settlement {
            return Ok(format!(
                "the offer's deal has {settlement}: nothing left to do"
            ));
        }
        let Some(account) = self.chain.account(&offer.escrow).await? else {
            return self.closed(job, &offer, action).await;
        };
        if account.owner != escrow::ID {
            return Err(JobError::Permanent(format!(
                "{} is not owned by the escrow program",
                offer.escrow
            )));
        }
        let state = Escrow::try_deserialize(&mut account.data.as_slice()).map_err(|_| {
            JobError::Permanent(format!("{} is not an escrow account", offer.escrow))
        })?;
        self.bind(&mut offer, &state).await?;
        let deal = Deal::from_state(offer.escrow, &state);
        let now = self.chain.unix_time().await?;
        let ixs = match self.plan(&offer, action, &state, &deal, now).await? {
            Plan::Done(note) => return Ok(note),
            Plan::Send(ixs) => ixs,
        };
        self.submit(job, &offer, action, ixs).await
    }

    /// Step 2: the escrow must be the offer's deal. An unbound offer is bound to it here, before
    /// anything is signed for it; every instruction signed afterwards names its creation slot.
    async fn bind(&self, offer: &mut OfferKeys, state: &Escrow) -> Result<(), JobError> {
        if let Some(bound) = offer.created_slot.filter(|s| *s != state.created_slot) {
            return Err(JobError::Retry(format!(
                "escrow {} holds a later deal (created at slot {}) than the one this offer is \
                 bound to (slot {bound}), which has closed: nothing is signed for the later deal; \
                 the watchtower records how the bound one ended",
                offer.escrow, state.created_slot
            )));
        }
        deal::check_matches(&OnChainTerms::from(state), offer).map_err(JobError::Permanent)?;
        if offer.created_slot.is_none() {
            let mut conn = self.pool.acquire().await.map_err(db)?;
            deal::bind(&mut conn, offer.id, state.created_slot)
                .await
                .map_err(db)?;
            offer.created_slot = Some(state.created_slot);
        }
        Ok(())
    }

    /// Step 1: what happened to the transactions earlier attempts signed.
    async fn earlier_transactions(
        &self,
        job: &Job,
        offer: &OfferKeys,
        action: JobAction,
    ) -> Result<Option<String>, JobError> {
        let sent: Vec<(String, i64)> = sqlx::query_as(
            "SELECT signature, last_valid_block_height FROM chain_txs WHERE job_id = $1 AND state = 'sent' ORDER BY id",
        )
        .bind(job.id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        for (signature, last_valid) in sent {
            let sig = Signature::from_str(&signature)
                .map_err(|_| JobError::Permanent(format!("bad stored signature {signature}")))?;
            match self.wait_for(&sig, last_valid as u64).await? {
                Landed::Ok => {
                    self.mark(&signature, "confirmed", None).await?;
                    let note = self.after_landing(offer, action).await?;
                    return Ok(Some(format!(
                        "{signature} (sent by an earlier attempt) landed; {note}"
                    )));
                }
                Landed::Failed(err) => self.mark(&signature, "failed", Some(&err)).await?,
                Landed::Expired => self.mark(&signature, "expired", None).await?,
                Landed::NotYet => {
                    return Err(JobError::Retry(format!(
                        "{signature} may still land; not signing another before it expires"
                    )))
                }
            }
        }
        Ok(None)
    }

    /// Steps 2 and 3: what this action needs, given the escrow's state.
    async fn plan(
        &self,
        offer: &OfferKeys,
        action: JobAction,
        state: &Escrow,
        deal: &Deal,
        now: i64,
    ) -> Result<Plan, JobError> {
        let me = self.signer.pubkey();
        match action {
            JobAction::ApproveRelease | JobAction::ApproveRefund => {
                let outcome = if action == JobAction::ApproveRelease {
                    Outcome::Release
                } else {
                    Outcome::Refund
                };
                let Some(index) = state.approvers().iter().position(|a| *a == me) else {
                    return Err(JobError::Permanent(format!(
                        "this relayer ({me}) is not an approver of {}",
                        deal.escrow
                    )));
                };
                if state.status() != EscrowStatus::Funded {
                    return Err(JobError::Retry("the escrow is not funded yet".into()));
                }
                if state.scheduled() == Some(outcome)
                    || state.approvals(outcome) & (1 << index) != 0
                {
                    let note = self.queue_crank_if_scheduled(offer.id, state).await?;
                    return Ok(Plan::Done(format!("already approved on-chain; {note}")));
                }
                if state.scheduled().is_some() {
                    return Err(JobError::Permanent(format!(
                        "the other outcome is scheduled on {}; it must be disputed before this approval can count",
                        deal.escrow
                    )));
                }
                Ok(Plan::Send(vec![deal.approve(&me, outcome)]))
            }
            JobAction::CrankRelease => {
                if state.scheduled() != Some(Outcome::Release) {
                    return Ok(Plan::Done(
                        "no release is scheduled any more (disputed); nothing to crank".into(),
                    ));
                }
                if now < state.eta {
                    return Err(not_yet(state.eta - now, "the release's eta"));
                }
                let (ata, create) = self.token_account_for(&deal.seller, deal).await?;
                Ok(Plan::Send(
                    create.into_iter().chain([deal.release(&ata)]).collect(),
                ))
            }
            JobAction::CrankRefund => {
                match state.scheduled() {
                    Some(Outcome::Refund) if now < state.eta => {
                        return Err(not_yet(state.eta - now, "the refund's eta"))
                    }
                    Some(Outcome::Refund) => {}
                    Some(Outcome::Release) => {
                        return Ok(Plan::Done(
                            "a release is scheduled instead; nothing to refund".into(),
                        ))
                    }
                    None if now < state.refund_after => {
                        return Err(not_yet(state.refund_after - now, "the refund deadline"))
                    }
                    None => {}
                }
                let (ata, create) = self.token_account_for(&deal.buyer, deal).await?;
                Ok(Plan::Send(
                    create.into_iter().chain([deal.refund(&me, &ata)]).collect(),
                ))
            }
        }
    }

    /// The owner's associated token account, and the instruction creating it when missing
    /// (paid by the relayer: payouts must not fail because an account does not exist yet).
    async fn token_account_for(
        &self,
        owner: &Pubkey,
        deal: &Deal,
    ) -> Result<(Pubkey, Option<Instruction>), JobError> {
        use spl_associated_token_account_interface::{address, instruction};
        let ata = address::get_associated_token_address_with_program_id(
            owner,
            &deal.mint,
            &deal.token_program,
        );
        let create = match self.chain.account(&ata).await? {
            Some(_) => None,
            None => Some(instruction::create_associated_token_account_idempotent(
                &self.signer.pubkey(),
                owner,
                &deal.mint,
                &deal.token_program,
            )),
        };
        Ok((ata, create))
    }

    /// Step 4.
    async fn submit(
        &self,
        job: &Job,
        offer: &OfferKeys,
        action: JobAction,
        ixs: Vec<Instruction>,
    ) -> Result<String, JobError> {
        let payer = self.signer.pubkey();
        let blockhash = self.chain.latest_blockhash().await?;
        let message = Message::new_with_blockhash(&ixs, Some(&payer), &blockhash.hash);
        let mut tx = Transaction::new_unsigned(message);
        let simulation = self.chain.simulate(&tx).await?;
        if let Some(err) = &simulation.err {
            if let Some(done) = already_done(&simulation.logs) {
                // The approval landed another way: make sure its crank is queued.
                let note = self.after_landing(offer, action).await?;
                return Ok(format!(
                    "already done on-chain (the program says {done}); {note}"
                ));
            }
            let tail = simulation
                .logs
                .iter()
                .rev()
                .take(3)
                .rev()
                .cloned()
                .collect::<Vec<_>>()
                .join(" | ");
            return Err(JobError::Retry(format!("simulation failed: {err}: {tail}")));
        }
        if self.config.priority_fee_micro_lamports > 0 {
            // The fee is price × limit: limit to what the simulation used, with headroom for
            // the two compute-budget instructions and state drift.
            use solana_compute_budget_interface::ComputeBudgetInstruction;
            let limit = simulation
                .compute_units
                .saturating_add(simulation.compute_units / 5)
                .saturating_add(1_000);
            let mut budgeted = vec![
                ComputeBudgetInstruction::set_compute_unit_limit(
                    u32::try_from(limit).unwrap_or(u32::MAX),
                ),
                ComputeBudgetInstruction::set_compute_unit_price(
                    self.config.priority_fee_micro_lamports,
                ),
            ];
            budgeted.extend(ixs);
            tx = Transaction::new_unsigned(Message::new_with_blockhash(
                &budgeted,
                Some(&payer),
                &blockhash.hash,
            ));
        }
        if !self.config.execute {
            return Ok(format!(
                "simulated {} on {} ({} CU); nothing sent (OPENCLAW_EXECUTE=false)",
                action.as_str(),
                offer.escrow,
                simulation.compute_units
            ));
        }
        // Fenced: the job must still be ours and have no transaction in flight, checked under the
        // job's row lock, which is held while the KMS signs and until the signature is recorded.
        // A worker whose lease was taken over cannot produce a second transaction.
        let mut db_tx = self.pool.begin().await.map_err(db)?;
        let ours: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE id = $1 AND state = 'running' AND locked_by = $2 FOR UPDATE",
        )
        .bind(job.id)
        .bind(job.locked_by.as_deref().unwrap_or_default())
        .fetch_optional(&mut *db_tx)
        .await
        .map_err(db)?;
        if ours.is_none() {
            return Err(JobError::Retry(
                "lost the job's lease before signing; not signing".into(),
            ));
        }
        let in_flight: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM chain_txs WHERE job_id = $1 AND state = 'sent'",
        )
        .bind(job.id)
        .fetch_one(&mut *db_tx)
        .await
        .map_err(db)?;
        if in_flight > 0 {
            return Err(JobError::Retry(
                "another attempt has a transaction in flight; not signing".into(),
            ));
        }
        let signature = Signature::from(self.signer.sign(&tx.message_data()).await?);
        tx.signatures = vec![signature];
        // Durable before it leaves: after a crash the next attempt finds this signature.
        sqlx::query("INSERT INTO chain_txs (job_id, signature, last_valid_block_height) VALUES ($1, $2, $3)")
            .bind(job.id)
            .bind(signature.to_string())
            .bind(blockhash.last_valid_block_height as i64)
            .execute(&mut *db_tx)
            .await
            .map_err(db)?;
        sqlx::query("UPDATE jobs SET result = $2, updated_at = now() WHERE id = $1")
            .bind(job.id)
            .bind(format!("sent {signature}"))
            .execute(&mut *db_tx)
            .await
            .map_err(db)?;
        audit::append(
            &mut db_tx,
            "tx_signed",
            Some(offer.id),
            json!({ "job_id": job.id, "action": action.as_str(), "signature": signature.to_string(),
                    "signer": self.signer.pubkey().to_string(), "escrow": offer.escrow.to_string() }),
        )
        .await
        .map_err(db)?;
        db_tx.commit().await.map_err(db)?;
        tracing::info!(%signature, action = action.as_str(), escrow = %offer.escrow, "transaction signed and recorded; sending");
        crate::failpoint::hit("after_sign");

        if let Err(e) = self.chain.send(&tx).await {
            return Err(JobError::Retry(format!(
                "sending {signature} failed ({e}); the next attempt looks it up first"
            )));
        }
        crate::failpoint::hit("after_send");
        match self
            .wait_for(&signature, blockhash.last_valid_block_height)
            .await?
        {
            Landed::Ok => {
                crate::failpoint::hit("before_confirm");
                self.mark(&signature.to_string(), "confirmed", None).await?;
                let note = self.after_landing(offer, action).await?;
                Ok(format!("{} landed in {signature}; {note}", action.as_str()))
            }
            Landed::Failed(err) => {
                self.mark(&signature.to_string(), "failed", Some(&err))
                    .await?;
                Err(JobError::Retry(format!(
                    "{signature} failed on-chain: {err}"
                )))
            }
            Landed::Expired => {
                self.mark(&signature.to_string(), "expired", None).await?;
                Err(JobError::Retry(format!(
                    "{signature} expired without landing; the next attempt signs anew"
                )))
            }
            Landed::NotYet => Err(JobError::Retry(format!(
                "{signature} not landed yet; the next attempt checks it first"
            ))),
        }
    }

    /// Polls a signature within the confirm window. Its status is asked every `poll`; the block
    /// height, which only tells whether it expired (a minute or more away), at most once a
    /// second, so a short poll costs one RPC call per tick.
    async fn wait_for(&self, signature: &Signature, last_valid: u64) -> Result<Landed, JobError> {
        const HEIGHT_EVERY: Duration = Duration::from_secs(1);
        let deadline = tokio::time::Instant::now() + self.config.confirm_window;
        let mut height_due = tokio::time::Instant::now();
        loop {
            match self.chain.status(signature).await? {
                TxStatus::Landed { err: None } => return Ok(Landed::Ok),
                TxStatus::Landed { err: Some(e) } => return Ok(Landed::Failed(e)),
                TxStatus::Unknown => {}
            }
            let now = tokio::time::Instant::now();
            let check_height = now >= height_due || now >= deadline;
            if check_height {
                height_due = now + HEIGHT_EVERY;
            }
            if check_height && self.chain.block_height().await? > last_valid {
                // One last look: it may have landed in the final valid block.
                return Ok(match self.chain.status(signature).await? {
                    TxStatus::Landed { err: None } => Landed::Ok,
                    TxStatus::Landed { err: Some(e) } => Landed::Failed(e),
                    TxStatus::Unknown => Landed::Expired,
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Landed::NotYet);
            }
            tokio::time::sleep(self.config.poll).await;
        }
    }

    async fn mark(
        &self,
        signature: &str,
        state: &str,
        error: Option<&str>,
    ) -> Result<(), JobError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let offer: Option<Uuid> = sqlx::query_scalar(
            "UPDATE chain_txs c SET state = $2, error = $3, updated_at = now() FROM jobs j
             WHERE c.signature = $1 AND j.id = c.job_id AND c.state IS DISTINCT FROM $2
             RETURNING j.offer_id",
        )
        .bind(signature)
        .bind(state)
        .bind(error)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if let Some(offer) = offer {
            audit::append(
                &mut tx,
                &format!("tx_{state}"),
                Some(offer),
                json!({ "signature": signature, "error": error }),
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    /// After a transaction of ours landed: queue the crank an approval scheduled, or record how
    /// the escrow settled.
    async fn after_landing(
        &self,
        offer: &OfferKeys,
        action: JobAction,
    ) -> Result<String, JobError> {
        match action {
            JobAction::ApproveRelease | JobAction::ApproveRefund => {
                let Some(account) = self.chain.account(&offer.escrow).await? else {
                    return Ok("the escrow has closed since".into());
                };
                let state = Escrow::try_deserialize(&mut account.data.as_slice())
                    .map_err(|_| JobError::Permanent("not an escrow account".into()))?;
                if offer.created_slot != Some(state.created_slot) {
                    return Ok("the escrow holds another deal since".into());
                }
                self.queue_crank_if_scheduled(offer.id, &state).await
            }
            JobAction::CrankRelease => self.settle(offer.id, "released").await,
            JobAction::CrankRefund => self.settle(offer.id, "refunded").await,
        }
    }

    /// The escrow is gone: a crank's work is done (by us or anyone); an approval has nothing to
    /// do. When one of this job's own transactions landed (a crash came between landing and
    /// recording the settlement), the settlement is recorded now.
    async fn closed(
        &self,
        job: &Job,
        offer: &OfferKeys,
        action: JobAction,
    ) -> Result<String, JobError> {
        let settlement = match action {
            JobAction::CrankRelease => "released",
            JobAction::CrankRefund => "refunded",
            _ => {
                return Ok(format!(
                    "escrow {} is closed: nothing left to approve",
                    offer.escrow
                ))
            }
        };
        let ours: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM chain_txs WHERE job_id = $1 AND state IN ('sent', 'confirmed')",
        )
        .bind(job.id)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        if ours > 0 {
            return self.settle(offer.id, settlement).await;
        }
        Ok(format!(
            "escrow {} is closed: settled outside this relayer",
            offer.escrow
        ))
    }

    async fn settle(&self, offer: Uuid, settlement: &str) -> Result<String, JobError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        deal::record_settlement(&mut tx, offer, settlement, "our crank")
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(format!("offer {settlement}"))
    }

    pub async fn queue_crank_if_scheduled(
        &self,
        offer: Uuid,
        state: &Escrow,
    ) -> Result<String, JobError> {
        queue_crank(&self.pool, offer, state, self.config.max_attempts)
            .await
            .map_err(db)
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
    let action = match state.scheduled() {
        Some(Outcome::Release) => JobAction::CrankRelease,
        Some(Outcome::Refund) => JobAction::CrankRefund,
        None => return Ok("nothing scheduled yet".into()),
    };
    let eta: DateTime<Utc> = Utc
        .timestamp_opt(state.eta, 0)
        .single()
        .unwrap_or_else(Utc::now);
    let mut tx = pool.begin().await?;
    let queued = queue::enqueue_crank(&mut tx, offer, action, max_attempts, eta).await?;
    if queued {
        audit::append(
            &mut tx,
            "job_enqueued",
            Some(offer),
            json!({ "offer_id": offer, "action": action.as_str(), "run_at": eta }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(if queued {
        format!("{} queued for {eta}", action.as_str())
    } else {
        format!("{} already queued", action.as_str())
    })
}

/// Too early: run again once the chain's clock has moved `secs` on (at least a second later).
fn not_yet(secs: i64, what: &str) -> JobError {
    let run_at = Utc::now() + chrono::Duration::seconds(secs.max(1));
    JobError::NotYet {
        run_at,
        reason: format!("{what} is {secs} s away on the chain's clock"),
    }
}

enum Plan {
    Done(String),
    Send(Vec<Instruction>),
}

enum Landed {
    Ok,
    Failed(String),
    Expired,
    NotYet,
}

/// Program errors that mean the work is already done.
fn already_done(logs: &[String]) -> Option<&'static str> {
    ["AlreadyApproved", "OutcomeAlreadyScheduled"]
        .into_iter()
        .find(|code| {
            logs.iter()
                .any(|l| l.contains(&format!("Error Code: {code}.")))
        })
}

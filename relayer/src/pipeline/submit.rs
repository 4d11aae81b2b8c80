//! Stage 2: carry out a plan's `Send`: build the transaction, simulate it, add the priority fee,
//! sign it with the KMS under the job's fence, record it and hand the job to the confirm stage
//! (one database transaction), then send it. The worker is free as soon as it is sent.
use anchor_lang::{prelude::Pubkey, solana_program::instruction::Instruction};
use escrow::{client::Deal, Escrow};
use solana_compute_budget_interface::ComputeBudgetInstruction;
use solana_message::Message;
use solana_signature::Signature;
use solana_transaction::Transaction;

use super::{db, plan::Intent, Pipeline};
use crate::{
    domain::offer::Offer,
    queue::{self, Job},
    worker::{JobError, Ran},
};

/// What submitting came to, short of an error.
pub enum Submitted {
    /// Sent; the job is the confirm stage's now.
    Sent(Signature),
    /// The program says the work is done already (another attempt's transaction landed).
    AlreadyDone(&'static str),
    /// Simulated only (`OPENCLAW_EXECUTE=false`): the note says what would have been sent.
    Simulated(String),
}

impl Pipeline {
    pub(super) async fn submit(
        &self,
        job: &Job,
        offer: &Offer,
        state: &Escrow,
        intent: Intent,
    ) -> Result<Submitted, JobError> {
        let me = self.signer.pubkey();
        let deal = Deal::from_state(offer.escrow, state);
        let ixs = match intent {
            Intent::Approve(outcome) => vec![deal.approve(&me, outcome)],
            Intent::Release => {
                self.pay_to(&deal.seller, &deal, |ata| deal.release(ata))
                    .await?
            }
            Intent::Refund => {
                self.pay_to(&deal.buyer, &deal, |ata| deal.refund(&me, ata))
                    .await?
            }
        };
        let blockhash = self.chain.latest_blockhash().await?;
        let message = Message::new_with_blockhash(&ixs, Some(&me), &blockhash.hash);
        let simulation = self
            .chain
            .simulate(&Transaction::new_unsigned(message))
            .await?;
        if simulation.err.is_some() {
            if let Some(done) = already_done(&simulation.logs) {
                return Ok(Submitted::AlreadyDone(done));
            }
            let tail = simulation.logs.iter().rev().take(3).rev().cloned();
            return Err(JobError::Retry(format!(
                "simulation failed: {}: {}",
                simulation.err.unwrap_or_default(),
                tail.collect::<Vec<_>>().join(" | ")
            )));
        }
        let ixs = self.with_priority_fee(ixs, simulation.compute_units);
        let mut tx = Transaction::new_unsigned(Message::new_with_blockhash(
            &ixs,
            Some(&me),
            &blockhash.hash,
        ));
        if !self.config.execute {
            return Ok(Submitted::Simulated(format!(
                "simulated {} on {} ({} CU); nothing sent (OPENCLAW_EXECUTE=false)",
                job.action, offer.escrow, simulation.compute_units
            )));
        }
        // Fenced: the job must still be ours and have no transaction in flight, checked under the
        // job's row lock, which is held while the KMS signs and until the signature is recorded.
        // A worker whose lease was taken over cannot produce a second transaction.
        let mut db_tx = self.pool.begin().await.map_err(db)?;
        if !queue::fence(&mut db_tx, job).await.map_err(db)? {
            return Err(JobError::Retry(
                "lost the job's lease before signing; not signing".into(),
            ));
        }
        if super::txs::count_in_flight(&mut db_tx, job.id)
            .await
            .map_err(db)?
            > 0
        {
            return Err(JobError::Retry(
                "another attempt has a transaction in flight; not signing".into(),
            ));
        }
        let signature = Signature::from(self.signer.sign(&tx.message_data()).await?);
        tx.signatures = vec![signature];
        // Durable before it leaves: after a crash the confirm stage finds this signature.
        queue::hand_to_confirm(&mut db_tx, job, &format!("sent {signature}"))
            .await
            .map_err(db)?;
        let signer = me.to_string();
        let escrow = offer.escrow.to_string();
        super::txs::record(
            &mut db_tx,
            job,
            &signature,
            blockhash.last_valid_block_height,
            &signer,
            &escrow,
        )
        .await
        .map_err(db)?;
        db_tx.commit().await.map_err(db)?;
        tracing::info!(%signature, action = %job.action, escrow = %offer.escrow, "transaction signed and recorded; sending");
        crate::failpoint::hit("after_sign");
        self.in_flight.sent(signature, tx.clone());
        if let Err(e) = self.chain.send(&tx).await {
            tracing::warn!(%signature, error = %e, "sending failed; the confirm stage sends it again until it lands or expires");
        }
        crate::failpoint::hit("after_send");
        Ok(Submitted::Sent(signature))
    }

    /// `build` with the payee's associated token account, and the instruction creating it first
    /// when missing (paid by the relayer: a payout must not fail for want of an account).
    async fn pay_to(
        &self,
        owner: &Pubkey,
        deal: &Deal,
        build: impl FnOnce(&Pubkey) -> Instruction,
    ) -> Result<Vec<Instruction>, JobError> {
        use spl_associated_token_account_interface::{address, instruction};
        let ata = address::get_associated_token_address_with_program_id(
            owner,
            &deal.mint,
            &deal.token_program,
        );
        let mut ixs = Vec::with_capacity(2);
        if self.chain.account(&ata).await?.is_none() {
            ixs.push(instruction::create_associated_token_account_idempotent(
                &self.signer.pubkey(),
                owner,
                &deal.mint,
                &deal.token_program,
            ));
        }
        ixs.push(build(&ata));
        Ok(ixs)
    }

    /// With a priority fee, the fee is price × limit: the limit is what the simulation used, with
    /// headroom for the two compute-budget instructions and state drift.
    fn with_priority_fee(&self, ixs: Vec<Instruction>, simulated_units: u64) -> Vec<Instruction> {
        let price = self.config.priority_fee_micro_lamports;
        if price == 0 {
            return ixs;
        }
        let limit = simulated_units
            .saturating_add(simulated_units / 5)
            .saturating_add(1_000);
        [
            ComputeBudgetInstruction::set_compute_unit_limit(
                u32::try_from(limit).unwrap_or(u32::MAX),
            ),
            ComputeBudgetInstruction::set_compute_unit_price(price),
        ]
        .into_iter()
        .chain(ixs)
        .collect()
    }
}

impl From<Submitted> for Ran {
    fn from(s: Submitted) -> Self {
        match s {
            Submitted::Sent(_) => Ran::Handed,
            Submitted::AlreadyDone(done) => {
                Ran::Done(format!("already done on-chain (the program says {done})"))
            }
            Submitted::Simulated(note) => Ran::Done(note),
        }
    }
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

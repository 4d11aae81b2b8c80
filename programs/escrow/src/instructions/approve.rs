use anchor_lang::prelude::*;

use crate::{events, state::*};

#[derive(Accounts)]
pub struct Approve<'info> {
    pub approver: Signer<'info>,
    #[account(mut)]
    pub escrow: AccountLoader<'info, Escrow>,
}

impl Approve<'_> {
    /// Records the signer's vote for `outcome` on the deal created at `created_slot`; the vote
    /// that reaches the threshold schedules the outcome for now + timelock. All checks live in
    /// `Escrow`.
    pub fn approve(ctx: Context<Self>, outcome: Outcome, created_slot: u64) -> Result<()> {
        let accounts = ctx.accounts;
        let mut escrow = accounts.escrow.load_mut()?;
        escrow.require_deal(created_slot)?;
        let approver = accounts.approver.key();
        let (approvals, eta) = escrow.approve(&approver, outcome, Clock::get()?.unix_timestamp)?;

        let escrow_key = accounts.escrow.key();
        emit!(events::Approved {
            escrow: escrow_key,
            created_slot,
            approver,
            outcome,
            approvals,
            threshold: escrow.threshold,
        });
        if let Some(eta) = eta {
            emit!(events::Scheduled {
                escrow: escrow_key,
                created_slot,
                outcome,
                eta,
            });
        }
        Ok(())
    }
}

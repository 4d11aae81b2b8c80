use anchor_lang::prelude::*;

use crate::{events, state::*};

#[derive(Accounts)]
pub struct Revoke<'info> {
    pub approver: Signer<'info>,
    #[account(mut)]
    pub escrow: AccountLoader<'info, Escrow>,
}

impl Revoke<'_> {
    /// Withdraws the signer's vote for an outcome that is not scheduled yet, on the deal created
    /// at `created_slot`.
    pub fn revoke(ctx: Context<Self>, outcome: Outcome, created_slot: u64) -> Result<()> {
        let accounts = ctx.accounts;
        let mut escrow = accounts.escrow.load_mut()?;
        escrow.require_deal(created_slot)?;
        let approver = accounts.approver.key();
        let approvals = escrow.revoke(&approver, outcome)?;

        emit!(events::Revoked {
            escrow: accounts.escrow.key(),
            created_slot,
            approver,
            outcome,
            approvals,
        });
        Ok(())
    }
}

use anchor_lang::prelude::*;

use crate::{events, state::*};

#[derive(Accounts)]
pub struct Revoke<'info> {
    pub approver: Signer<'info>,
    #[account(mut)]
    pub escrow: AccountLoader<'info, Escrow>,
}

impl Revoke<'_> {
    /// Withdraws the signer's vote for an outcome that is not scheduled yet.
    pub fn revoke(ctx: Context<Self>, outcome: Outcome) -> Result<()> {
        let accounts = ctx.accounts;
        let mut escrow = accounts.escrow.load_mut()?;
        let approver = accounts.approver.key();
        let approvals = escrow.revoke(&approver, outcome)?;

        emit!(events::Revoked {
            escrow: accounts.escrow.key(),
            approver,
            outcome,
            approvals,
        });
        Ok(())
    }
}

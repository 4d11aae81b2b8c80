use anchor_lang::prelude::*;

use crate::{errors::EscrowError, events, state::*};

#[derive(Accounts)]
pub struct Dispute<'info> {
    /// The buyer (against a scheduled release) or the seller (against a scheduled refund).
    pub party: Signer<'info>,
    #[account(mut)]
    pub escrow: AccountLoader<'info, Escrow>,
}

impl Dispute<'_> {
    /// Cancels the outcome scheduled against the signer on the deal created at `created_slot`;
    /// a fresh threshold is then needed.
    pub fn dispute(ctx: Context<Self>, created_slot: u64) -> Result<()> {
        let accounts = ctx.accounts;
        let mut escrow = accounts.escrow.load_mut()?;
        escrow.require_deal(created_slot)?;
        let signer = accounts.party.key();
        let by = if signer == escrow.buyer {
            Party::Buyer
        } else if signer == escrow.seller {
            Party::Seller
        } else {
            return err!(EscrowError::NotAParty);
        };
        let cancelled = escrow.dispute(by, Clock::get()?.unix_timestamp)?;

        emit!(events::Disputed {
            escrow: accounts.escrow.key(),
            created_slot,
            by,
            cancelled,
            refund_after: escrow.refund_after,
        });
        Ok(())
    }
}

use anchor_lang::prelude::*;
use anchor_spl::token_interface::{TokenAccount, TokenInterface};

use super::payout::Payout;
use crate::{errors::EscrowError, events, state::*};

/// Returns the vault to the buyer when a refund is due: scheduled and past its eta, waived by
/// the seller (at once), or past `refund_after` with no release scheduled.
#[derive(Accounts)]
pub struct Refund<'info> {
    /// Anyone may crank a due refund; the seller's signature makes it due at once.
    pub caller: Signer<'info>,
    #[account(
        mut,
        close = buyer,
        has_one = buyer @ EscrowError::WrongBuyer,
        has_one = mint @ EscrowError::WrongMint,
        has_one = vault @ EscrowError::WrongVault,
        has_one = token_program @ EscrowError::WrongTokenProgram,
    )]
    pub escrow: AccountLoader<'info, Escrow>,
    /// CHECK: equal to the escrow's buyer (has_one); receives the rent.
    #[account(mut)]
    pub buyer: UncheckedAccount<'info>,
    /// CHECK: equal to the escrow's mint (has_one). Writable only when Token-2022 fees were
    /// withheld in the vault and must be harvested before it closes.
    pub mint: UncheckedAccount<'info>,
    #[account(
        mut,
        token::mint = mint,
        constraint = buyer_token.owner == buyer.key() @ EscrowError::WrongBuyerTokenAccount,
        token::token_program = token_program,
    )]
    pub buyer_token: InterfaceAccount<'info, TokenAccount>,
    /// CHECK: equal to the escrow's vault (has_one), which `create` made and only a payout closes.
    #[account(mut)]
    pub vault: UncheckedAccount<'info>,
    pub token_program: Interface<'info, TokenInterface>,
}

impl Refund<'_> {
    /// Pays the vault back to the buyer of the deal created at `created_slot`. The slot matters
    /// here as for approvals: the seller's signature alone makes a refund due.
    pub fn refund(ctx: Context<Self>, created_slot: u64) -> Result<()> {
        let accounts = ctx.accounts;
        let escrow = accounts.escrow.load()?;
        let clock = Clock::get()?;
        escrow.require_deal(created_slot)?;
        escrow.require_closable(clock.slot)?;
        let reason = escrow.refund_reason(&accounts.caller.key(), clock.unix_timestamp)?;
        let amount = Payout {
            escrow: accounts.escrow.to_account_info(),
            signer_seeds: &escrow.signer_seeds(),
            vault: accounts.vault.to_account_info(),
            mint: accounts.mint.to_account_info(),
            decimals: escrow.decimals,
            token_program: accounts.token_program.to_account_info(),
            destination: accounts.buyer_token.to_account_info(),
            rent_to: accounts.buyer.to_account_info(),
        }
        .execute()?;

        emit!(events::Refunded {
            escrow: accounts.escrow.key(),
            created_slot,
            buyer: escrow.buyer,
            buyer_token_account: accounts.buyer_token.key(),
            amount,
            reason,
        });
        Ok(())
    }
}

use anchor_lang::prelude::*;
use anchor_spl::token_interface::{TokenAccount, TokenInterface};

use super::payout::Payout;
use crate::{errors::EscrowError, events, state::*};

/// Permissionless crank: anyone (normally the relayer) pays the fee; the money can only go to
/// the seller and the rent only to the buyer.
#[derive(Accounts)]
pub struct Release<'info> {
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
        constraint = seller_token.owner == escrow.load()?.seller @ EscrowError::WrongSellerTokenAccount,
        token::token_program = token_program,
    )]
    pub seller_token: InterfaceAccount<'info, TokenAccount>,
    /// CHECK: equal to the escrow's vault (has_one), which `create` made and only a payout closes.
    #[account(mut)]
    pub vault: UncheckedAccount<'info>,
    pub token_program: Interface<'info, TokenInterface>,
}

impl Release<'_> {
    fn validate(&self, created_slot: u64) -> Result<()> {
        let escrow = self.escrow.load()?;
        let clock = Clock::get()?;
        escrow.require_deal(created_slot)?;
        escrow.require_closable(clock.slot)?;
        escrow.require_release_due(clock.unix_timestamp)
    }

    /// Pays the vault to the seller once a scheduled release's timelock has passed.
    #[access_control(ctx.accounts.validate(created_slot))]
    pub fn release(ctx: Context<Self>, created_slot: u64) -> Result<()> {
        let accounts = ctx.accounts;
        let escrow = accounts.escrow.load()?;
        let amount = Payout {
            escrow: accounts.escrow.to_account_info(),
            signer_seeds: &escrow.signer_seeds(),
            vault: accounts.vault.to_account_info(),
            mint: accounts.mint.to_account_info(),
            decimals: escrow.decimals,
            token_program: accounts.token_program.to_account_info(),
            destination: accounts.seller_token.to_account_info(),
            rent_to: accounts.buyer.to_account_info(),
        }
        .execute()?;

        emit!(events::Released {
            escrow: accounts.escrow.key(),
            created_slot,
            seller: escrow.seller,
            seller_token_account: accounts.seller_token.key(),
            amount,
        });
        Ok(())
    }
}

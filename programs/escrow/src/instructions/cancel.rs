use anchor_lang::prelude::*;
use anchor_spl::token_interface::{TokenAccount, TokenInterface};

use super::payout::Payout;
use crate::{errors::EscrowError, events, state::*};

#[derive(Accounts)]
pub struct Cancel<'info> {
    #[account(mut)]
    pub buyer: Signer<'info>,
    #[account(
        mut,
        close = buyer,
        has_one = buyer @ EscrowError::WrongBuyer,
        has_one = mint @ EscrowError::WrongMint,
        has_one = vault @ EscrowError::WrongVault,
        has_one = token_program @ EscrowError::WrongTokenProgram,
    )]
    pub escrow: AccountLoader<'info, Escrow>,
    /// CHECK: equal to the escrow's mint (has_one). Writable only when Token-2022 fees were
    /// withheld in the vault and must be harvested before it closes.
    pub mint: UncheckedAccount<'info>,
    /// Receives anything sent to the vault before the deposit, so the vault can close.
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

impl Cancel<'_> {
    fn validate(&self) -> Result<()> {
        let escrow = self.escrow.load()?;
        require!(
            escrow.status() == EscrowStatus::AwaitingDeposit,
            EscrowError::AlreadyFunded
        );
        escrow.require_closable(Clock::get()?.slot)
    }

    /// The buyer withdraws an unfunded deal: the vault and the escrow close, rent goes back.
    #[access_control(ctx.accounts.validate())]
    pub fn cancel(ctx: Context<Self>) -> Result<()> {
        let accounts = ctx.accounts;
        let escrow = accounts.escrow.load()?;
        Payout {
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

        emit!(events::Cancelled {
            escrow: accounts.escrow.key(),
            created_slot: escrow.created_slot,
            buyer: escrow.buyer,
        });
        Ok(())
    }
}

use anchor_lang::prelude::*;
use anchor_spl::token_interface::{
    transfer_checked, TokenAccount, TokenInterface, TransferChecked,
};

use super::payout::vault_balance;
use crate::{errors::EscrowError, events, mint_policy, state::*};

#[derive(Accounts)]
pub struct Deposit<'info> {
    pub buyer: Signer<'info>,
    #[account(
        mut,
        has_one = buyer @ EscrowError::WrongBuyer,
        has_one = mint @ EscrowError::WrongMint,
        has_one = vault @ EscrowError::WrongVault,
        has_one = token_program @ EscrowError::WrongTokenProgram,
    )]
    pub escrow: AccountLoader<'info, Escrow>,
    /// CHECK: equal to the escrow's mint (has_one); the token program checks the rest.
    pub mint: UncheckedAccount<'info>,
    #[account(
        mut,
        token::mint = mint,
        token::authority = buyer,
        token::token_program = token_program,
    )]
    pub buyer_token: InterfaceAccount<'info, TokenAccount>,
    /// CHECK: equal to the escrow's vault (has_one), which `create` made and only a payout closes.
    #[account(mut)]
    pub vault: UncheckedAccount<'info>,
    pub token_program: Interface<'info, TokenInterface>,
}

impl Deposit<'_> {
    fn validate(&self) -> Result<()> {
        let escrow = self.escrow.load()?;
        require!(
            escrow.status() == EscrowStatus::AwaitingDeposit,
            EscrowError::AlreadyFunded
        );
        // Checked again: a mint with no supply can be closed by its close authority and made
        // anew at the same address with other extensions (a permanent delegate) after `create`.
        // Once funded, the supply is not zero and the mint can no longer be closed.
        mint_policy::check_mint(&self.mint)
    }

    /// Moves exactly `amount` from the buyer into the vault and records what arrived.
    #[access_control(ctx.accounts.validate())]
    pub fn deposit(ctx: Context<Self>) -> Result<()> {
        let accounts = ctx.accounts;
        let mut escrow = accounts.escrow.load_mut()?;
        let before = vault_balance(&accounts.vault)?;
        let transfer = TransferChecked {
            from: accounts.buyer_token.to_account_info(),
            mint: accounts.mint.to_account_info(),
            to: accounts.vault.to_account_info(),
            authority: accounts.buyer.to_account_info(),
        };
        transfer_checked(
            CpiContext::new(accounts.token_program.key(), transfer),
            escrow.amount,
            escrow.decimals,
        )?;
        // A Token-2022 transfer fee is withheld in the vault: count only what is spendable.
        let received = vault_balance(&accounts.vault)?
            .checked_sub(before)
            .ok_or(EscrowError::ArithmeticOverflow)?;
        require!(received > 0, EscrowError::NothingReceived);
        escrow.received = received;
        escrow.status = EscrowStatus::Funded as u8;

        emit!(events::Deposited {
            escrow: accounts.escrow.key(),
            created_slot: escrow.created_slot,
            buyer: escrow.buyer,
            amount: escrow.amount,
            received,
        });
        Ok(())
    }
}

//! Emptying and closing the vault: shared by release, refund and cancel.
use anchor_lang::prelude::*;
use anchor_spl::{
    token_2022::spl_token_2022::{
        self,
        extension::{
            transfer_fee::TransferFeeAmount, BaseStateWithExtensions, StateWithExtensions,
        },
        state::Account as SplAccount,
    },
    token_interface::{
        close_account, harvest_withheld_tokens_to_mint, transfer_checked, CloseAccount,
        HarvestWithheldTokensToMint, TransferChecked,
    },
};

use crate::errors::EscrowError;

pub struct Payout<'a, 'info> {
    pub escrow: AccountInfo<'info>,
    pub signer_seeds: &'a [&'a [u8]],
    pub vault: AccountInfo<'info>,
    pub mint: AccountInfo<'info>,
    pub decimals: u8,
    pub token_program: AccountInfo<'info>,
    /// Receives every token in the vault, donations included, so the vault can close.
    pub destination: AccountInfo<'info>,
    /// Receives the vault's rent: always the buyer, who paid it.
    pub rent_to: AccountInfo<'info>,
}

impl Payout<'_, '_> {
    /// Moves the whole vault balance to `destination`, then closes the vault. Returns the amount
    /// that left the vault.
    pub fn execute(self) -> Result<u64> {
        let signer = &[self.signer_seeds];
        let amount = vault_balance(&self.vault)?;
        if amount > 0 {
            let accounts = TransferChecked {
                from: self.vault.clone(),
                mint: self.mint.clone(),
                to: self.destination,
                authority: self.escrow.clone(),
            };
            let ctx = CpiContext::new_with_signer(self.token_program.key(), accounts, signer);
            transfer_checked(ctx, amount, self.decimals)?;
        }
        if withheld_fees(&self.vault)? > 0 {
            // Token-2022 refuses to close an account holding withheld fees; harvesting sends them
            // to the mint (permissionless) and needs the mint writable.
            require!(self.mint.is_writable, EscrowError::MintNotWritable);
            let accounts = HarvestWithheldTokensToMint {
                token_program_id: self.token_program.clone(),
                mint: self.mint,
            };
            let ctx = CpiContext::new(self.token_program.key(), accounts);
            harvest_withheld_tokens_to_mint(ctx, vec![self.vault.clone()])?;
        }
        let accounts = CloseAccount {
            account: self.vault,
            destination: self.rent_to,
            authority: self.escrow,
        };
        close_account(CpiContext::new_with_signer(
            self.token_program.key(),
            accounts,
            signer,
        ))?;
        Ok(amount)
    }
}

/// The vault's token balance, read in place. Callers have matched the vault's address against the
/// escrow (`has_one = vault`): it is the token account `create` made, owned by the recorded token
/// program, and only a payout can close it; SPL Token and Token-2022 share the base layout, whose
/// `amount` is the u64 at bytes 64..72. Cheaper than unpacking the whole account.
pub fn vault_balance(vault: &AccountInfo) -> Result<u64> {
    let data = vault.try_borrow_data()?;
    let bytes = data.get(64..72).ok_or(ProgramError::InvalidAccountData)?;
    Ok(u64::from_le_bytes(
        bytes
            .try_into()
            .map_err(|_| ProgramError::InvalidAccountData)?,
    ))
}

fn withheld_fees(vault: &AccountInfo) -> Result<u64> {
    if *vault.owner != spl_token_2022::ID {
        return Ok(0);
    }
    let data = vault.try_borrow_data()?;
    let state = StateWithExtensions::<SplAccount>::unpack(&data)?;
    Ok(state
        .get_extension::<TransferFeeAmount>()
        .map(|fees| u64::from(fees.withheld_amount))
        .unwrap_or(0))
}

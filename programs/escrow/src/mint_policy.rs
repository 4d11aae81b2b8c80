//! Which mints an escrow accepts. SPL Token mints are all fine. Token-2022 mints are checked
//! against an allow-list of extensions, so an extension added to Token-2022 later is refused
//! until someone has thought about it.
use anchor_lang::prelude::*;
use anchor_spl::token_2022::spl_token_2022::{
    self,
    extension::{
        default_account_state::DefaultAccountState, BaseStateWithExtensions, ExtensionType,
        StateWithExtensions,
    },
    state::{AccountState, Mint},
};

use crate::errors::EscrowError;

pub fn check_mint(mint: &AccountInfo) -> Result<()> {
    if *mint.owner != spl_token_2022::ID {
        return Ok(());
    }
    let data = mint.try_borrow_data()?;
    let state = StateWithExtensions::<Mint>::unpack(&data)?;
    for extension in state.get_extension_types()? {
        match extension {
            // Fees are measured at deposit (the vault records what it received) and withheld
            // fees are harvested before the vault closes.
            ExtensionType::TransferFeeConfig
            // A mint with supply (ours, once funded) cannot be closed; `deposit` checks the mint
            // again in case it was closed and made anew while the escrow was empty.
            | ExtensionType::MintCloseAuthority
            // Display-only: the raw amounts the escrow moves are unaffected.
            | ExtensionType::InterestBearingConfig
            | ExtensionType::ScaledUiAmount
            | ExtensionType::MetadataPointer
            | ExtensionType::TokenMetadata
            | ExtensionType::GroupPointer
            | ExtensionType::TokenGroup
            | ExtensionType::GroupMemberPointer
            | ExtensionType::TokenGroupMember => {}
            ExtensionType::DefaultAccountState => {
                let default = state.get_extension::<DefaultAccountState>()?;
                require!(
                    default.state != AccountState::Frozen as u8,
                    EscrowError::MintDefaultFrozen
                );
            }
            ExtensionType::PermanentDelegate => return err!(EscrowError::MintHasPermanentDelegate),
            ExtensionType::TransferHook => return err!(EscrowError::MintHasTransferHook),
            ExtensionType::NonTransferable => return err!(EscrowError::MintNonTransferable),
            ExtensionType::ConfidentialTransferMint
            | ExtensionType::ConfidentialTransferFeeConfig
            | ExtensionType::ConfidentialMintBurn => {
                return err!(EscrowError::MintConfidentialTransfer)
            }
            ExtensionType::Pausable => return err!(EscrowError::MintPausable),
            _ => return err!(EscrowError::MintExtensionNotSupported),
        }
    }
    Ok(())
}

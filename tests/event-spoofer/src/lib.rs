//! A program for the tests only: it logs its instruction data with `sol_log_data`, so its
//! `Program data:` line carries whatever bytes the caller chose, such as a `Released` event
//! the escrow never emitted. Watchers must attribute log lines to the program that wrote them;
//! the tests check that they do.
#![allow(unexpected_cfgs)]

use anchor_lang::solana_program::{
    account_info::AccountInfo, entrypoint::ProgramResult, log::sol_log_data, pubkey::Pubkey,
};

/// Where the tests load it; no keypair exists for it.
pub const ID: Pubkey = anchor_lang::pubkey!("SpoofEvents11111111111111111111111111111111");

#[cfg(target_os = "solana")]
use solana_compiler_builtins as _;

#[cfg(target_os = "solana")]
anchor_lang::solana_program::entrypoint!(process);

pub fn process(_program: &Pubkey, _accounts: &[AccountInfo], data: &[u8]) -> ProgramResult {
    sol_log_data(&[data]);
    Ok(())
}

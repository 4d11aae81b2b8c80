//! SPL-token escrow for goods: a buyer locks tokens for a deal; they reach the seller or return
//! to the buyer only under the policy fixed at creation (m-of-n approvals plus a timelock).
//! The state machine is described in this crate's README.
#![allow(unexpected_cfgs)]

#[cfg(any(test, target_os = "solana"))]
mod sbf_support;

#[cfg(not(target_os = "solana"))]
pub mod client;
pub mod errors;
#[cfg(not(target_os = "solana"))]
pub mod event_log;
pub mod events;
pub mod instructions;
pub mod mint_policy;
pub mod state;

use anchor_lang::prelude::*;

pub use instructions::*;
pub use state::{Escrow, EscrowStatus, Outcome, Party, RefundReason};

declare_id!("kezMH112WRrx5vJiwW9hvvrjkqGoheCWKrq9KGPoBKx");

#[program]
pub mod escrow {
    use super::*;

    pub fn create(ctx: Context<Create>, args: CreateArgs) -> Result<()> {
        Create::create(ctx, args)
    }

    pub fn deposit(ctx: Context<Deposit>) -> Result<()> {
        Deposit::deposit(ctx)
    }

    pub fn cancel(ctx: Context<Cancel>) -> Result<()> {
        Cancel::cancel(ctx)
    }

    pub fn approve(ctx: Context<Approve>, outcome: Outcome, created_slot: u64) -> Result<()> {
        Approve::approve(ctx, outcome, created_slot)
    }

    pub fn revoke(ctx: Context<Revoke>, outcome: Outcome, created_slot: u64) -> Result<()> {
        Revoke::revoke(ctx, outcome, created_slot)
    }

    pub fn dispute(ctx: Context<Dispute>, created_slot: u64) -> Result<()> {
        Dispute::dispute(ctx, created_slot)
    }

    pub fn release(ctx: Context<Release>, created_slot: u64) -> Result<()> {
        Release::release(ctx, created_slot)
    }

    pub fn refund(ctx: Context<Refund>, created_slot: u64) -> Result<()> {
        Refund::refund(ctx, created_slot)
    }
}

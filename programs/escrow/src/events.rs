//! One event per state change, with what an auditor needs to follow the money.
//!
//! Every event names its deal by the escrow's address and `created_slot`: an address is reused
//! after a deal closes, so the address alone does not say which deal an event belongs to.
//!
//! Emitted with `emit!` (program logs), not `emit_cpi!`: a self-CPI costs ~5k CU and an extra
//! account on every instruction, and these events stay far below the log truncation limit.
//! Clients that must not depend on logs read the escrow account itself; `event_log` reads the
//! creation and settlement events back out of a transaction's logs.
use anchor_lang::prelude::*;

use crate::state::{Outcome, Party, RefundReason};

#[event]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub escrow: Pubkey,
    pub created_slot: u64,
    pub buyer: Pubkey,
    pub seller: Pubkey,
    pub mint: Pubkey,
    pub token_program: Pubkey,
    pub vault: Pubkey,
    pub id: u64,
    pub amount: u64,
    pub deal_ref: [u8; 32],
    pub approvers: Vec<Pubkey>,
    pub threshold: u8,
    pub timelock_secs: u32,
    pub refund_after: i64,
}

#[event]
pub struct Deposited {
    pub escrow: Pubkey,
    pub created_slot: u64,
    pub buyer: Pubkey,
    /// What left the buyer's account.
    pub amount: u64,
    /// What the vault received (less any transfer fee).
    pub received: u64,
}

#[event]
pub struct Approved {
    pub escrow: Pubkey,
    pub created_slot: u64,
    pub approver: Pubkey,
    pub outcome: Outcome,
    pub approvals: u8,
    pub threshold: u8,
}

#[event]
pub struct Revoked {
    pub escrow: Pubkey,
    pub created_slot: u64,
    pub approver: Pubkey,
    pub outcome: Outcome,
    pub approvals: u8,
}

#[event]
pub struct Scheduled {
    pub escrow: Pubkey,
    pub created_slot: u64,
    pub outcome: Outcome,
    pub eta: i64,
}

#[event]
pub struct Disputed {
    pub escrow: Pubkey,
    pub created_slot: u64,
    pub by: Party,
    pub cancelled: Outcome,
    /// The refund deadline after the dispute (pushed back to give the approvers time to decide).
    pub refund_after: i64,
}

#[event]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Released {
    pub escrow: Pubkey,
    pub created_slot: u64,
    pub seller: Pubkey,
    pub seller_token_account: Pubkey,
    /// Tokens that left the vault (the seller gets this less any transfer fee).
    pub amount: u64,
}

#[event]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refunded {
    pub escrow: Pubkey,
    pub created_slot: u64,
    pub buyer: Pubkey,
    pub buyer_token_account: Pubkey,
    pub amount: u64,
    pub reason: RefundReason,
}

#[event]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cancelled {
    pub escrow: Pubkey,
    pub created_slot: u64,
    pub buyer: Pubkey,
}

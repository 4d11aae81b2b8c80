use anchor_lang::prelude::*;

use crate::errors::EscrowError;

/// Most approvers a deal can name.
pub const MAX_APPROVERS: usize = 8;
/// Longest dispute window between reaching the threshold and paying out: 30 days.
pub const MAX_TIMELOCK_SECS: u32 = 30 * 24 * 60 * 60;

pub const ESCROW_SEED: &[u8] = b"escrow";
pub const VAULT_SEED: &[u8] = b"vault";

/// Where the deal's money is. Terminal states (released, refunded, cancelled) have no value here:
/// the escrow account is closed and the event log records which one happened.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EscrowStatus {
    /// Created, vault empty; the buyer may deposit or cancel.
    AwaitingDeposit,
    /// The vault holds `received`; approvals, disputes and payouts apply.
    Funded,
}

/// The two ways money can leave a funded escrow.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// To the seller.
    Release,
    /// Back to the buyer.
    Refund,
}

/// Who raised a dispute.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Party {
    Buyer,
    Seller,
}

/// One deal. PDA at `["escrow", buyer, id (u64 LE)]`; its token vault is the PDA token account
/// `["vault", escrow]`, owned by this account.
///
/// The address is reused once a deal closes (the buyer may create the same id again), so a deal
/// is named by its address *and* `created_slot`: every instruction a party signs on an existing
/// deal carries that slot and is refused on any other deal (see `require_deal`).
///
/// Zero-copy: every instruction reads it in place instead of decoding 512 bytes with borsh.
/// Enums are stored as `u8` (see the accessors); field order keeps the layout free of padding.
#[account(zero_copy)]
#[derive(Debug)]
pub struct Escrow {
    pub buyer: Pubkey,
    pub seller: Pubkey,
    pub mint: Pubkey,
    /// Token program that owns `mint` (SPL Token or Token-2022); no other is accepted later.
    pub token_program: Pubkey,
    pub vault: Pubkey,
    /// The deal this escrow pays for, e.g. sha256 of the order id and tracking number.
    pub deal_ref: [u8; 32],
    /// `approvers[..approver_count]` are distinct, non-default keys; the rest are zero.
    pub approvers: [Pubkey; MAX_APPROVERS],
    /// Buyer-chosen id, part of the address.
    pub id: u64,
    /// What the buyer must deposit (before any Token-2022 transfer fee).
    pub amount: u64,
    /// What the vault actually received at deposit (after any transfer fee); 0 before.
    pub received: u64,
    /// Unix time after which anyone may refund the buyer unless a release is scheduled.
    pub refund_after: i64,
    /// Unix time from which the scheduled outcome may be executed; 0 when nothing is scheduled.
    pub eta: i64,
    /// The slot `create` ran in. Unique per address: a deal cannot close in the slot it was
    /// created in (`require_closable`), so a later deal at this address has a later slot.
    pub created_slot: u64,
    /// Dispute window added to the time an outcome reaches the threshold.
    pub timelock_secs: u32,
    pub approver_count: u8,
    pub threshold: u8,
    /// Bit `i` set: `approvers[i]` approved a release.
    pub release_approvals: u8,
    /// Bit `i` set: `approvers[i]` approved a refund.
    pub refund_approvals: u8,
    /// `EscrowStatus` as u8.
    pub status: u8,
    /// 0: nothing scheduled, 1: release, 2: refund.
    pub scheduled: u8,
    /// Bit 0: the buyer has disputed, bit 1: the seller has disputed (each at most once).
    pub disputes: u8,
    pub decimals: u8,
    pub bump: u8,
    pub vault_bump: u8,
    pub _reserved: [u8; 2],
}

impl Escrow {
    pub const SPACE: usize = 8 + core::mem::size_of::<Escrow>();

    pub fn status(&self) -> EscrowStatus {
        if self.status == EscrowStatus::Funded as u8 {
            EscrowStatus::Funded
        } else {
            EscrowStatus::AwaitingDeposit
        }
    }

    pub fn scheduled(&self) -> Option<Outcome> {
        match self.scheduled {
            1 => Some(Outcome::Release),
            2 => Some(Outcome::Refund),
            _ => None,
        }
    }

    pub fn approvers(&self) -> &[Pubkey] {
        &self.approvers[..self.approver_count as usize]
    }

    fn approvals_mut(&mut self, outcome: Outcome) -> &mut u8 {
        match outcome {
            Outcome::Release => &mut self.release_approvals,
            Outcome::Refund => &mut self.refund_approvals,
        }
    }

    pub fn approvals(&self, outcome: Outcome) -> u8 {
        match outcome {
            Outcome::Release => self.release_approvals,
            Outcome::Refund => self.refund_approvals,
        }
    }

    pub fn signer_seeds(&self) -> [&[u8]; 4] {
        [
            ESCROW_SEED,
            self.buyer.as_ref(),
            bytemuck::bytes_of(&self.id),
            core::slice::from_ref(&self.bump),
        ]
    }

    /// Refuses an instruction signed for another deal at this address: the signer named the
    /// deal by its creation slot, which no other deal here can share.
    pub fn require_deal(&self, created_slot: u64) -> Result<()> {
        require!(self.created_slot == created_slot, EscrowError::WrongDeal);
        Ok(())
    }

    /// A deal closes in a later slot than the one it was created in, which keeps `created_slot`
    /// unique per address: a deal created and closed within one slot could otherwise be followed
    /// by another created in that same slot, and signatures for the first would count on it.
    pub fn require_closable(&self, slot: u64) -> Result<()> {
        require!(slot > self.created_slot, EscrowError::ClosedInCreationSlot);
        Ok(())
    }

    pub fn require_funded(&self) -> Result<()> {
        require!(
            self.status() == EscrowStatus::Funded,
            EscrowError::NotFunded
        );
        Ok(())
    }

    /// Records `approver`'s vote for `outcome`; schedules it when the threshold is reached.
    /// Returns the number of approvals and, when this vote scheduled the outcome, its eta.
    pub fn approve(
        &mut self,
        approver: &Pubkey,
        outcome: Outcome,
        now: i64,
    ) -> Result<(u8, Option<i64>)> {
        self.require_funded()?;
        let bit = self.approver_bit(approver)?;
        match self.scheduled() {
            Some(s) if s == outcome => return err!(EscrowError::OutcomeAlreadyScheduled),
            Some(_) => return err!(EscrowError::OtherOutcomeScheduled),
            None => {}
        }
        require!(
            self.approvals(outcome) & bit == 0,
            EscrowError::AlreadyApproved
        );
        let other = match outcome {
            Outcome::Release => Outcome::Refund,
            Outcome::Refund => Outcome::Release,
        };
        require!(
            self.approvals(other) & bit == 0,
            EscrowError::ApprovedOtherOutcome
        );

        *self.approvals_mut(outcome) |= bit;
        let count = self.approvals(outcome).count_ones() as u8;
        if count < self.threshold {
            return Ok((count, None));
        }
        let eta = now
            .checked_add(i64::from(self.timelock_secs))
            .ok_or(EscrowError::ArithmeticOverflow)?;
        self.scheduled = outcome as u8 + 1;
        self.eta = eta;
        Ok((count, Some(eta)))
    }

    /// Withdraws `approver`'s vote for an outcome that is not scheduled yet.
    pub fn revoke(&mut self, approver: &Pubkey, outcome: Outcome) -> Result<u8> {
        self.require_funded()?;
        let bit = self.approver_bit(approver)?;
        require!(
            self.scheduled() != Some(outcome),
            EscrowError::OutcomeAlreadyScheduled
        );
        require!(self.approvals(outcome) & bit != 0, EscrowError::NotApproved);
        *self.approvals_mut(outcome) &= !bit;
        Ok(self.approvals(outcome).count_ones() as u8)
    }

    /// The buyer disputes a scheduled release, the seller a scheduled refund: each once, before
    /// the eta. Clears the schedule and that outcome's approvals, and leaves the approvers one
    /// more timelock to decide before the deadline refund applies: otherwise a buyer could dispute
    /// a release at the deadline and take the deadline refund in the same transaction.
    /// Returns the cancelled outcome.
    pub fn dispute(&mut self, by: Party, now: i64) -> Result<Outcome> {
        self.require_funded()?;
        let (outcome, flag) = match by {
            Party::Buyer => (Outcome::Release, 1u8),
            Party::Seller => (Outcome::Refund, 2u8),
        };
        require!(
            self.scheduled() == Some(outcome),
            EscrowError::NothingToDispute
        );
        require!(self.disputes & flag == 0, EscrowError::AlreadyDisputed);
        require!(now < self.eta, EscrowError::DisputeWindowClosed);
        let decide_until = now
            .checked_add(i64::from(self.timelock_secs))
            .ok_or(EscrowError::ArithmeticOverflow)?;
        self.disputes |= flag;
        self.scheduled = 0;
        self.eta = 0;
        self.refund_after = self.refund_after.max(decide_until);
        *self.approvals_mut(outcome) = 0;
        Ok(outcome)
    }

    /// A release may be cranked once it is scheduled and its eta has come.
    pub fn require_release_due(&self, now: i64) -> Result<()> {
        self.require_funded()?;
        require!(
            self.scheduled() == Some(Outcome::Release),
            EscrowError::ReleaseNotScheduled
        );
        require!(now >= self.eta, EscrowError::TimelockNotElapsed);
        Ok(())
    }

    /// Why a refund is allowed now, or the refusal.
    pub fn refund_reason(&self, caller: &Pubkey, now: i64) -> Result<RefundReason> {
        self.require_funded()?;
        if *caller == self.seller {
            return Ok(RefundReason::SellerWaived);
        }
        match self.scheduled() {
            Some(Outcome::Refund) if now >= self.eta => Ok(RefundReason::Approved),
            Some(Outcome::Refund) => err!(EscrowError::TimelockNotElapsed),
            Some(Outcome::Release) => err!(EscrowError::ReleaseScheduled),
            None if now >= self.refund_after => Ok(RefundReason::DeadlinePassed),
            None => err!(EscrowError::RefundNotAllowed),
        }
    }

    fn approver_bit(&self, approver: &Pubkey) -> Result<u8> {
        self.approvers()
            .iter()
            .position(|a| a == approver)
            .map(|i| 1u8 << i)
            .ok_or_else(|| error!(EscrowError::NotAnApprover))
    }
}

/// Why a refund went through; recorded in the `Refunded` event.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundReason {
    /// The refund reached the threshold and its dispute window passed.
    Approved,
    /// The seller gave the money back.
    SellerWaived,
    /// `refund_after` passed with no release scheduled.
    DeadlinePassed,
}

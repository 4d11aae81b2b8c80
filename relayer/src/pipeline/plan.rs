//! Stage 1, pure: what a job should do, given its offer and the escrow as read. No database, no
//! chain: the submit stage carries the plan out.
use anchor_lang::prelude::Pubkey;
use escrow::{Escrow, EscrowStatus, Outcome};

use crate::{
    deal::EscrowAt,
    domain::offer::{JobAction, Offer, OnChainTerms},
};

/// The transaction a job asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    Approve(Outcome),
    /// Crank the scheduled release (to the seller).
    Release,
    /// Crank the refund that is due (to the buyer).
    Refund,
}

/// What to do once nothing needs signing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FollowUp {
    /// Queue the crank of whatever the escrow has scheduled.
    QueueCrank,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Done {
        note: String,
        then: Option<FollowUp>,
    },
    Send(Intent),
    /// Too early on the chain's clock: run again in `secs` (the attempt does not count).
    Later {
        secs: i64,
        what: &'static str,
    },
    /// Worth another attempt later.
    Retry(String),
    /// Retrying cannot help: an operator must look.
    Refuse(String),
}

#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// Bind the offer to this deal (its creation slot) before anything else.
    pub bind: Option<u64>,
    pub step: Step,
}

impl From<Step> for Plan {
    fn from(step: Step) -> Self {
        Self { bind: None, step }
    }
}

fn done(note: impl Into<String>) -> Step {
    Step::Done {
        note: note.into(),
        then: None,
    }
}

/// Decides `action` for `offer`, with the escrow at its address as read and the chain's clock
/// (`now`); `me` is the relayer's key.
pub fn plan(action: JobAction, offer: &Offer, escrow: &EscrowAt, now: i64, me: &Pubkey) -> Plan {
    if let Some(settlement) = offer.settlement {
        return done(format!(
            "the offer's deal has {}: nothing left to do",
            settlement.as_str()
        ))
        .into();
    }
    let state = match escrow {
        EscrowAt::Foreign(why) => return Step::Refuse(why.clone()).into(),
        EscrowAt::Nothing => return nothing_there(action, offer).into(),
        EscrowAt::Open(state) => state,
    };
    if let Some(bound) = offer.deal_slot.filter(|s| *s != state.created_slot) {
        return Step::Retry(format!(
            "escrow {} holds a later deal (created at slot {}) than the one this offer is bound \
             to (slot {bound}), which has closed: nothing is signed for the later deal; the \
             watchtower records how the bound one ended",
            offer.escrow, state.created_slot
        ))
        .into();
    }
    if let Err(mismatch) = offer.check_deal(&OnChainTerms::from(&**state)) {
        return Step::Refuse(mismatch.to_string()).into();
    }
    if state.threshold < 2 {
        return Step::Refuse(format!(
            "escrow {} needs only {} approval: the relayer's alone would move the funds, so it \
             does not approve escrows with a threshold below 2",
            offer.escrow, state.threshold
        ))
        .into();
    }
    Plan {
        bind: offer.deal_slot.is_none().then_some(state.created_slot),
        step: on_deal(action, offer, state, now, me),
    }
}

fn nothing_there(action: JobAction, offer: &Offer) -> Step {
    match (action, offer.deal_slot) {
        (JobAction::ApproveRelease | JobAction::ApproveRefund, None) => Step::Retry(format!(
            "no escrow at {} yet: the buyer has not created it",
            offer.escrow
        )),
        (JobAction::ApproveRelease | JobAction::ApproveRefund, Some(_)) => done(format!(
            "escrow {} is closed: nothing left to approve",
            offer.escrow
        )),
        (JobAction::CrankRelease | JobAction::CrankRefund, _) => done(format!(
            "escrow {} is closed: nothing left to crank (the watchtower records how it ended)",
            offer.escrow
        )),
    }
}

fn on_deal(action: JobAction, offer: &Offer, state: &Escrow, now: i64, me: &Pubkey) -> Step {
    match action {
        JobAction::ApproveRelease | JobAction::ApproveRefund => {
            let outcome = if action == JobAction::ApproveRelease {
                Outcome::Release
            } else {
                Outcome::Refund
            };
            let Some(index) = state.approvers().iter().position(|a| a == me) else {
                return Step::Refuse(format!(
                    "this relayer ({me}) is not an approver of {}",
                    offer.escrow
                ));
            };
            if state.status() != EscrowStatus::Funded {
                return Step::Retry("the escrow is not funded yet".into());
            }
            if state.scheduled() == Some(outcome) || state.approvals(outcome) & (1 << index) != 0 {
                return Step::Done {
                    note: "already approved on-chain".into(),
                    then: Some(FollowUp::QueueCrank),
                };
            }
            if state.scheduled().is_some() {
                return Step::Refuse(format!(
                    "the other outcome is scheduled on {}; it must be disputed before this \
                     approval can count",
                    offer.escrow
                ));
            }
            Step::Send(Intent::Approve(outcome))
        }
        JobAction::CrankRelease => match state.scheduled() {
            Some(Outcome::Release) if now < state.eta => {
                later(state.eta - now, "the release's eta")
            }
            Some(Outcome::Release) => Step::Send(Intent::Release),
            _ => done("no release is scheduled any more (disputed); nothing to crank"),
        },
        JobAction::CrankRefund => match state.scheduled() {
            Some(Outcome::Refund) if now < state.eta => later(state.eta - now, "the refund's eta"),
            Some(Outcome::Refund) => Step::Send(Intent::Refund),
            Some(Outcome::Release) => done("a release is scheduled instead; nothing to refund"),
            None if now < state.refund_after => {
                later(state.refund_after - now, "the refund deadline")
            }
            None => Step::Send(Intent::Refund),
        },
    }
}

fn later(secs: i64, what: &'static str) -> Step {
    Step::Later { secs, what }
}

#[cfg(test)]
mod tests;

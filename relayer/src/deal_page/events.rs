//! The program's events, as the deal page tells them: one sentence each.
use anchor_lang::{prelude::Pubkey, AnchorDeserialize, Discriminator};
use escrow::{
    events::{
        Approved, Cancelled, Created, Deposited, Disputed, Refunded, Released, Revoked, Scheduled,
    },
    Outcome, Party, RefundReason,
};

use super::Roles;
use crate::blinks::{human_duration, human_time};

pub(super) fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Release => "release",
        Outcome::Refund => "refund",
    }
}

fn party(p: Party) -> &'static str {
    match p {
        Party::Buyer => "buyer",
        Party::Seller => "seller",
    }
}

/// One event's deal, kind and sentence; `None` for bytes that are no event of this program.
pub(super) fn describe(
    bytes: &[u8],
    roles: &Roles<'_>,
    units: &dyn Fn(u64) -> String,
) -> Option<(Pubkey, u64, &'static str, String)> {
    fn parse<T: AnchorDeserialize>(mut body: &[u8]) -> Option<T> {
        let event = T::deserialize(&mut body).ok()?;
        body.is_empty().then_some(event)
    }
    let (discriminator, body) = bytes.split_at_checked(8)?;
    Some(match discriminator {
        d if d == Created::DISCRIMINATOR => {
            let e: Created = parse(body)?;
            let text = format!(
                "The buyer opened the escrow: {} of {} approvers, a {} dispute window",
                e.threshold,
                e.approvers.len(),
                human_duration(e.timelock_secs)
            );
            (e.escrow, e.created_slot, "created", text)
        }
        d if d == Deposited::DISCRIMINATOR => {
            let e: Deposited = parse(body)?;
            let text = format!("Funded: {} locked in the vault", units(e.received));
            (e.escrow, e.created_slot, "funded", text)
        }
        d if d == Approved::DISCRIMINATOR => {
            let e: Approved = parse(body)?;
            let text = format!(
                "The {} approved the {} ({} of {})",
                roles.of(&e.approver),
                outcome(e.outcome),
                e.approvals,
                e.threshold
            );
            (e.escrow, e.created_slot, "approved", text)
        }
        d if d == Revoked::DISCRIMINATOR => {
            let e: Revoked = parse(body)?;
            let text = format!(
                "The {} withdrew their approval of the {}",
                roles.of(&e.approver),
                outcome(e.outcome)
            );
            (e.escrow, e.created_slot, "revoked", text)
        }
        d if d == Scheduled::DISCRIMINATOR => {
            let e: Scheduled = parse(body)?;
            let text = format!(
                "The {} is scheduled: due after {} unless disputed",
                outcome(e.outcome),
                human_time(e.eta)
            );
            (e.escrow, e.created_slot, "scheduled", text)
        }
        d if d == Disputed::DISCRIMINATOR => {
            let e: Disputed = parse(body)?;
            let text = format!(
                "The {} disputed the scheduled {}; refundable to the buyer after {}",
                party(e.by),
                outcome(e.cancelled),
                human_time(e.refund_after)
            );
            (e.escrow, e.created_slot, "disputed", text)
        }
        d if d == Released::DISCRIMINATOR => {
            let e: Released = parse(body)?;
            let text = format!("Released: {} paid to the seller", units(e.amount));
            (e.escrow, e.created_slot, "released", text)
        }
        d if d == Refunded::DISCRIMINATOR => {
            let e: Refunded = parse(body)?;
            let why = match e.reason {
                RefundReason::Approved => "approved by the approvers",
                RefundReason::SellerWaived => "the seller gave it back",
                RefundReason::DeadlinePassed => "the refund deadline passed",
            };
            let text = format!(
                "Refunded: {} returned to the buyer ({why})",
                units(e.amount)
            );
            (e.escrow, e.created_slot, "refunded", text)
        }
        d if d == Cancelled::DISCRIMINATOR => {
            let e: Cancelled = parse(body)?;
            let text = "The buyer cancelled the escrow before any deposit".to_owned();
            (e.escrow, e.created_slot, "cancelled", text)
        }
        _ => return None,
    })
}

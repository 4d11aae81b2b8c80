//! Whether a deal on-chain is an offer's deal: checked in one place, for the pipeline before it
//! signs, the watchtower before it binds, and the Actions before they build.
use anchor_lang::prelude::Pubkey;
use escrow::{events::Created, Escrow};

use super::{deal_ref, Offer};

/// A deal's terms as the chain holds them, from its escrow account or its `Created` event.
pub struct OnChainTerms<'a> {
    pub buyer: Pubkey,
    pub seller: Pubkey,
    pub mint: Pubkey,
    pub amount: u64,
    pub approvers: &'a [Pubkey],
    pub threshold: u8,
    pub timelock_secs: u32,
    pub refund_after: i64,
    pub deal_ref: [u8; 32],
}

impl<'a> From<&'a Escrow> for OnChainTerms<'a> {
    fn from(e: &'a Escrow) -> Self {
        Self {
            buyer: e.buyer,
            seller: e.seller,
            mint: e.mint,
            amount: e.amount,
            approvers: e.approvers(),
            threshold: e.threshold,
            timelock_secs: e.timelock_secs,
            refund_after: e.refund_after,
            deal_ref: e.deal_ref,
        }
    }
}

impl<'a> From<&'a Created> for OnChainTerms<'a> {
    fn from(e: &'a Created) -> Self {
        Self {
            buyer: e.buyer,
            seller: e.seller,
            mint: e.mint,
            amount: e.amount,
            approvers: &e.approvers,
            threshold: e.threshold,
            timelock_secs: e.timelock_secs,
            refund_after: e.refund_after,
            deal_ref: e.deal_ref,
        }
    }
}

/// What differs between an offer and a deal on-chain.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("escrow {escrow} does not match its offer ({}): refusing to act; check the offer's registration", fields.join(", "))]
pub struct DealMismatch {
    pub escrow: Pubkey,
    pub fields: Vec<&'static str>,
}

pub(super) fn check(offer: &Offer, deal: &OnChainTerms) -> Result<(), DealMismatch> {
    let terms = offer.terms.as_ref();
    let fields: Vec<&'static str> = [
        ("mint", deal.mint != offer.mint),
        ("buyer", deal.buyer != offer.buyer),
        ("seller", deal.seller != offer.seller),
        ("amount", deal.amount != offer.amount),
        (
            "approvers",
            terms.is_some_and(|t| deal.approvers != t.approvers.as_slice()),
        ),
        (
            "threshold",
            terms.is_some_and(|t| deal.threshold != t.threshold),
        ),
        (
            "timelock",
            terms.is_some_and(|t| deal.timelock_secs != t.timelock_secs),
        ),
        // A dispute moves the deadline later on-chain, never earlier.
        (
            "refund deadline",
            terms.is_some_and(|t| deal.refund_after < t.refund_after),
        ),
        (
            "deal_ref",
            terms.is_some() && deal.deal_ref != deal_ref(offer.id),
        ),
    ]
    .into_iter()
    .filter_map(|(field, differs)| differs.then_some(field))
    .collect();
    if fields.is_empty() {
        Ok(())
    } else {
        Err(DealMismatch {
            escrow: offer.escrow,
            fields,
        })
    }
}

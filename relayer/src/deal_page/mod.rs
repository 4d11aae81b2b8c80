//! What the deal page (`GET /deals/{offer}`) shows of a deal, in plain words: the registered
//! terms, the escrow as the chain holds it, the program's own events for this deal with their
//! transactions, and which wallet actions are open.
//!
//! Public, like the Actions: whoever holds the offer's id sees its parties and terms, which the
//! chain shows anyway. Never the tracking number. The events are read as the watchtower reads
//! them (`escrow::event_log`): successful transactions only, lines this program wrote, and only
//! for the deal the offer is bound to, never a later deal at the same address.
mod cluster;
mod events;

use anchor_lang::prelude::Pubkey;
use escrow::{client, Escrow, EscrowStatus, Outcome};
use serde::Serialize;
use uuid::Uuid;

pub use self::cluster::ClusterView;
use self::events::{describe, outcome};
use crate::{
    blinks::{self, human_time, ActionError, ActionKind, OnChain, Policy, NO_TERMS},
    chain::Chain,
    domain::offer::Offer,
};

/// The escrow's transactions read for its timeline (the watchtower reads as many).
const HISTORY: usize = crate::deal::HISTORY_WINDOW;

#[derive(Serialize)]
pub struct DealView {
    pub offer: Uuid,
    pub escrow: String,
    pub buyer: String,
    pub seller: String,
    pub mint: String,
    /// Base units, as a string: a u64 does not fit a JavaScript number.
    pub amount: String,
    /// "25.000000 tokens", or "25000000 base units" when the mint's decimals are unknown.
    pub amount_text: String,
    pub carrier: String,
    /// The relayer's view of the shipment (`awaiting_shipment`, `delivered`, ...).
    pub shipment: &'static str,
    pub settlement: Option<&'static str>,
    /// Where the deal stands, in a sentence.
    pub state_text: String,
    pub policy: Option<PolicyView>,
    /// The escrow, while it is open; `None` before it is created and after it closes.
    pub escrow_state: Option<EscrowView>,
    /// The chain's clock, which the timelocks follow (not the browser's).
    pub chain_time: Option<i64>,
    /// The program's events for this deal, oldest first.
    pub events: Vec<ChainEvent>,
    pub actions: Vec<ActionView>,
    /// Why the chain could not be read, when it could not: the rest is the relayer's record.
    pub chain_problem: Option<String>,
    pub cluster: ClusterView,
}

#[derive(Serialize)]
pub struct PolicyView {
    pub approvers: Vec<Approver>,
    pub threshold: u8,
    pub timelock_secs: u32,
    pub refund_after: i64,
    pub text: String,
}

#[derive(Serialize)]
pub struct Approver {
    pub address: String,
    /// "buyer", "seller", "relayer" or "approver".
    pub role: &'static str,
}

#[derive(Serialize)]
pub struct EscrowView {
    /// "awaiting_deposit" or "funded".
    pub status: &'static str,
    pub received_text: String,
    /// Roles of those who approved each outcome, in approver order.
    pub release_approved_by: Vec<&'static str>,
    pub refund_approved_by: Vec<&'static str>,
    /// "release" or "refund", once its approvals reached the threshold.
    pub scheduled: Option<&'static str>,
    /// When the scheduled outcome may be paid out: the dispute window's end.
    pub eta: Option<i64>,
    pub refund_after: i64,
    pub disputed_by: Vec<&'static str>,
    pub created_slot: u64,
}

#[derive(Serialize)]
pub struct ChainEvent {
    pub kind: &'static str,
    pub text: String,
    pub signature: String,
    pub slot: u64,
}

#[derive(Serialize)]
pub struct ActionView {
    pub kind: &'static str,
    pub label: &'static str,
    pub href: String,
    /// Why it is not open now.
    pub closed: Option<String>,
}

/// Names an address of the deal by its part in it.
pub(crate) struct Roles<'a> {
    offer: &'a Offer,
    relayer: Option<Pubkey>,
}

impl Roles<'_> {
    pub(crate) fn of(&self, address: &Pubkey) -> &'static str {
        if *address == self.offer.buyer {
            "buyer"
        } else if *address == self.offer.seller {
            "seller"
        } else if Some(*address) == self.relayer {
            "relayer"
        } else {
            "approver"
        }
    }

    /// The roles of the approvers whose bits are set in `bitmap`.
    fn approved(&self, approvers: &[Pubkey], bitmap: u8) -> Vec<&'static str> {
        approvers
            .iter()
            .enumerate()
            .filter(|(i, _)| bitmap & (1 << i) != 0)
            .map(|(_, a)| self.of(a))
            .collect()
    }
}

/// Reads the chain once and describes the deal. A chain that cannot be read leaves the
/// registered terms and the relayer's record, with the reason in `chain_problem`.
pub async fn view(
    chain: Option<&dyn Chain>,
    offer: &Offer,
    relayer: Option<Pubkey>,
    cluster: ClusterView,
) -> DealView {
    let roles = Roles { offer, relayer };
    let mut chain_problem = None;
    let mut on_chain = None;
    let mut chain_time = None;
    let mut events = Vec::new();
    if let Some(chain) = chain {
        match read(chain, offer, &roles).await {
            Ok((state, time, history)) => {
                on_chain = Some(state);
                chain_time = Some(time);
                events = history;
            }
            Err(e) => chain_problem = Some(e.to_string()),
        }
    }
    let escrow = on_chain.as_ref().and_then(|c| c.escrow.as_ref());
    let policy = escrow
        .map(Policy::from_escrow)
        .or_else(|| Policy::from_offer(offer));
    let tokens = amounts(on_chain.as_ref().and_then(|c| c.decimals));
    let actions = ActionKind::ALL
        .into_iter()
        .map(|kind| ActionView {
            kind: kind.as_str(),
            label: kind.label(),
            href: format!("/api/actions/{}/{}", kind.as_str(), offer.id),
            closed: match &chain_problem {
                Some(problem) => Some(problem.clone()),
                None => blinks::closed(kind, on_chain.as_ref(), policy.is_some()),
            },
        })
        .collect();
    let escrow_state = escrow.map(|e| escrow_view(e, &roles, &tokens));
    let state_text = match &chain_problem {
        // The chain's word is missing: say so rather than guess from the relayer's record.
        Some(problem) => sentence(problem),
        None => state_text(offer, escrow_state.as_ref(), &events),
    };
    DealView {
        offer: offer.id,
        escrow: offer.escrow.to_string(),
        buyer: offer.buyer.to_string(),
        seller: offer.seller.to_string(),
        mint: offer.mint.to_string(),
        amount: offer.amount.to_string(),
        amount_text: tokens(offer.amount),
        carrier: offer.carrier.clone(),
        shipment: offer.status.as_str(),
        settlement: offer.settlement.map(|s| s.as_str()),
        policy: policy.map(|p| PolicyView {
            approvers: p
                .approvers
                .iter()
                .map(|a| Approver {
                    address: a.to_string(),
                    role: roles.of(a),
                })
                .collect(),
            threshold: p.threshold,
            timelock_secs: p.timelock_secs,
            refund_after: p.refund_after,
            text: p.summary(offer),
        }),
        state_text,
        escrow_state,
        chain_time,
        events,
        actions,
        chain_problem,
        cluster,
    }
}

async fn read(
    chain: &dyn Chain,
    offer: &Offer,
    roles: &Roles<'_>,
) -> Result<(OnChain, i64, Vec<ChainEvent>), ActionError> {
    let on_chain = blinks::read_chain(chain, offer).await?;
    let tokens = amounts(on_chain.decimals);
    let time = chain.unix_time().await?;
    let txs = chain.transactions(&offer.escrow, HISTORY).await?;
    // The offer's deal: the one it is bound to, or the open one that matches it (read_chain
    // refused any other), or the closed one the watchtower would bind it to.
    let deal = offer
        .deal_slot
        .or_else(|| on_chain.escrow.as_ref().map(|e| e.created_slot))
        .or_else(|| {
            crate::deal::first_matching_in(&crate::deal::genuine(&txs, &offer.escrow), offer)
        });
    let mut events = Vec::new();
    if let Some(slot) = deal {
        for tx in txs.iter().rev().filter(|tx| tx.succeeded()) {
            for bytes in escrow::event_log::emitted_by_program(&tx.logs) {
                if let Some((escrow, created_slot, kind, text)) = describe(&bytes, roles, &tokens) {
                    if escrow == offer.escrow && created_slot == slot {
                        events.push(ChainEvent {
                            kind,
                            text,
                            signature: tx.signature.to_string(),
                            slot: tx.slot,
                        });
                    }
                }
            }
        }
    }
    Ok((on_chain, time, events))
}

fn state_text(offer: &Offer, escrow: Option<&EscrowView>, events: &[ChainEvent]) -> String {
    let ended = events
        .iter()
        .rev()
        .find(|e| matches!(e.kind, "released" | "refunded" | "cancelled"))
        .map(|e| e.kind)
        .or(offer.settlement.map(|s| s.as_str()));
    let Some(e) = escrow else {
        return match ended {
            Some("released") => "Released: the seller has been paid.".into(),
            Some("refunded") => "Refunded: the payment went back to the buyer.".into(),
            Some(_) => "Cancelled: the buyer closed the escrow before paying into it.".into(),
            None if offer.terms.is_none() => sentence(&format!("Not funded yet: {NO_TERMS}")),
            None => "Not funded yet: the buyer pays into the escrow from their wallet.".into(),
        };
    };
    if e.status == "awaiting_deposit" {
        return "The escrow is open but holds nothing yet: the buyer's deposit is next.".into();
    }
    let mut text = format!("Funded: {} held in the escrow.", e.received_text);
    match (e.scheduled, e.eta) {
        (Some(outcome), Some(eta)) => {
            let to = if outcome == "release" {
                "to the seller"
            } else {
                "back to the buyer"
            };
            text.push_str(&format!(
                " The {outcome} {to} is scheduled: it can be paid out after {} unless the buyer \
                 or the seller disputes it.",
                human_time(eta)
            ));
        }
        _ if e.release_approved_by.is_empty() => {
            text.push_str(" No one has approved the release yet.")
        }
        _ => text.push_str(&format!(
            " The release is approved by the {}.",
            e.release_approved_by.join(" and the ")
        )),
    }
    text
}

/// "the chain is down" → "The chain is down."
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let first = chars.next().map(|c| c.to_uppercase().to_string());
    format!("{}{}.", first.unwrap_or_default(), chars.as_str())
}

/// Writes amounts in tokens when the mint's decimals are known.
fn amounts(decimals: Option<u8>) -> impl Fn(u64) -> String {
    move |units| match decimals {
        Some(d) => format!("{} tokens", client::ui_amount(units, d)),
        None => format!("{units} base units"),
    }
}

fn escrow_view(e: &Escrow, roles: &Roles<'_>, tokens: &dyn Fn(u64) -> String) -> EscrowView {
    let funded = e.status() == EscrowStatus::Funded;
    let parties = [(1u8, "buyer"), (2, "seller")];
    EscrowView {
        status: if funded { "funded" } else { "awaiting_deposit" },
        received_text: tokens(e.received),
        release_approved_by: roles.approved(e.approvers(), e.approvals(Outcome::Release)),
        refund_approved_by: roles.approved(e.approvers(), e.approvals(Outcome::Refund)),
        scheduled: e.scheduled().map(outcome),
        eta: e.scheduled().map(|_| e.eta),
        refund_after: e.refund_after,
        disputed_by: parties
            .iter()
            .filter(|(bit, _)| e.disputes & bit != 0)
            .map(|(_, who)| *who)
            .collect(),
        created_slot: e.created_slot,
    }
}

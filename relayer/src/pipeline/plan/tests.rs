//! The plan step alone: offers and escrows as values, no Postgres, no chain.
use anchor_lang::prelude::Pubkey;
use bytemuck::Zeroable;
use escrow::{Escrow, EscrowStatus, Outcome};

use super::*;
use crate::domain::offer::{OfferStatus, Settlement};

const NOW: i64 = 1_800_000_000;
const SLOT: u64 = 77;

struct Case {
    offer: Offer,
    escrow: Escrow,
    me: Pubkey,
}

/// A funded 2-of-3 escrow (buyer, seller, this relayer) and its offer, bound to it.
fn case() -> Case {
    let (buyer, seller, me, mint) = (
        Pubkey::new_unique(),
        Pubkey::new_unique(),
        Pubkey::new_unique(),
        Pubkey::new_unique(),
    );
    let mut escrow = Escrow::zeroed();
    escrow.buyer = buyer;
    escrow.seller = seller;
    escrow.mint = mint;
    escrow.amount = 1_000;
    escrow.approvers[..3].copy_from_slice(&[buyer, seller, me]);
    escrow.approver_count = 3;
    escrow.threshold = 2;
    escrow.status = EscrowStatus::Funded as u8;
    escrow.refund_after = NOW + 3_600;
    escrow.created_slot = SLOT;
    let offer = Offer {
        id: uuid::Uuid::new_v4(),
        escrow: Pubkey::new_unique(),
        buyer,
        seller,
        mint,
        amount: 1_000,
        tracking_number: "1Z".into(),
        carrier: "ups".into(),
        status: OfferStatus::Delivered,
        status_at: None,
        terms: None,
        deal_slot: Some(SLOT),
        settlement: None,
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
    };
    Case { offer, escrow, me }
}

impl Case {
    fn plan(&self, action: JobAction) -> Plan {
        let at = EscrowAt::Open(Box::new(self.escrow));
        plan(action, &self.offer, &at, NOW, &self.me)
    }

    fn step(&self, action: JobAction) -> Step {
        self.plan(action).step
    }
}

fn refused(step: Step, says: &str) {
    match step {
        Step::Refuse(why) => assert!(why.contains(says), "{why}"),
        other => panic!("expected a refusal saying {says:?}, got {other:?}"),
    }
}

#[test]
fn an_approval_is_sent_once_and_counts_as_done_when_already_on_chain() {
    let mut c = case();
    assert_eq!(
        c.step(JobAction::ApproveRelease),
        Step::Send(Intent::Approve(Outcome::Release))
    );
    assert_eq!(
        c.step(JobAction::ApproveRefund),
        Step::Send(Intent::Approve(Outcome::Refund))
    );
    c.escrow.release_approvals = 1 << 2;
    let queue_crank = Step::Done {
        note: "already approved on-chain".into(),
        then: Some(FollowUp::QueueCrank),
    };
    assert_eq!(c.step(JobAction::ApproveRelease), queue_crank);
    c.escrow.release_approvals = 0b11;
    c.escrow.scheduled = 1;
    assert_eq!(c.step(JobAction::ApproveRelease), queue_crank);
    refused(
        c.step(JobAction::ApproveRefund),
        "the other outcome is scheduled",
    );
}

#[test]
fn approvals_wait_for_the_deposit_and_need_the_relayer_among_the_approvers() {
    let mut c = case();
    c.escrow.status = EscrowStatus::AwaitingDeposit as u8;
    assert_eq!(
        c.step(JobAction::ApproveRelease),
        Step::Retry("the escrow is not funded yet".into())
    );
    c.me = Pubkey::new_unique();
    refused(c.step(JobAction::ApproveRelease), "is not an approver");
}

#[test]
fn cranks_wait_for_the_chains_clock() {
    let mut c = case();
    c.escrow.scheduled = 1;
    c.escrow.eta = NOW + 60;
    assert_eq!(
        c.step(JobAction::CrankRelease),
        Step::Later {
            secs: 60,
            what: "the release's eta"
        }
    );
    c.escrow.eta = NOW;
    assert_eq!(c.step(JobAction::CrankRelease), Step::Send(Intent::Release));
    assert!(
        matches!(c.step(JobAction::CrankRefund), Step::Done { .. }),
        "a release instead"
    );

    c.escrow.scheduled = 2;
    c.escrow.eta = NOW + 5;
    assert!(matches!(
        c.step(JobAction::CrankRefund),
        Step::Later { secs: 5, .. }
    ));
    assert!(
        matches!(c.step(JobAction::CrankRelease), Step::Done { .. }),
        "disputed away"
    );

    c.escrow.scheduled = 0;
    assert_eq!(
        c.step(JobAction::CrankRefund),
        Step::Later {
            secs: 3_600,
            what: "the refund deadline"
        }
    );
    c.escrow.refund_after = NOW;
    assert_eq!(c.step(JobAction::CrankRefund), Step::Send(Intent::Refund));
}

#[test]
fn an_unbound_offer_is_bound_to_the_deal_it_matches() {
    let mut c = case();
    c.offer.deal_slot = None;
    let p = c.plan(JobAction::ApproveRelease);
    assert_eq!(p.bind, Some(SLOT));
    assert_eq!(p.step, Step::Send(Intent::Approve(Outcome::Release)));
    assert_eq!(
        case().plan(JobAction::ApproveRelease).bind,
        None,
        "bound already"
    );
}

#[test]
fn a_later_deal_at_the_address_gets_nothing() {
    let mut c = case();
    c.escrow.created_slot = SLOT + 10;
    let p = c.plan(JobAction::ApproveRefund);
    assert_eq!(p.bind, None);
    assert!(
        matches!(&p.step, Step::Retry(why) if why.contains("later deal")),
        "{p:?}"
    );
}

#[test]
fn a_deal_that_is_not_the_offers_or_too_weak_is_refused() {
    let mut c = case();
    c.offer.deal_slot = None;
    c.escrow.seller = Pubkey::new_unique();
    let p = c.plan(JobAction::ApproveRelease);
    assert_eq!(p.bind, None, "a mismatching deal is never bound");
    refused(p.step, "does not match its offer (seller)");

    let mut c = case();
    c.escrow.threshold = 1;
    refused(c.step(JobAction::ApproveRelease), "threshold below 2");
}

#[test]
fn settled_offers_closed_escrows_and_foreign_accounts() {
    let mut c = case();
    c.offer.settlement = Some(Settlement::Released);
    assert!(matches!(c.step(JobAction::CrankRelease), Step::Done { .. }));

    let c = case();
    let foreign = EscrowAt::Foreign("not an escrow account".into());
    refused(
        plan(JobAction::ApproveRelease, &c.offer, &foreign, NOW, &c.me).step,
        "not an escrow",
    );
    let closed = |offer: &Offer, action| plan(action, offer, &EscrowAt::Nothing, NOW, &c.me).step;
    assert!(matches!(
        closed(&c.offer, JobAction::ApproveRelease),
        Step::Done { .. }
    ));
    assert!(matches!(
        closed(&c.offer, JobAction::CrankRefund),
        Step::Done { .. }
    ));
    let mut unbound = c.offer.clone();
    unbound.deal_slot = None;
    assert!(
        matches!(closed(&unbound, JobAction::ApproveRelease), Step::Retry(ref why) if why.contains("not created it")),
        "no escrow yet: the buyer may still create it"
    );
}

//! Every instruction's success path, with balances, schedules and closed accounts checked.
use escrow::{EscrowStatus, Outcome};
use escrow_tests::fixtures::*;
use solana_signer::Signer;

#[test]
fn create_and_deposit_lock_exactly_the_amount() {
    let mut w = World::new();
    let rent_before = w.svm.lamports(&w.buyer.pubkey());
    w.create().expect("create");
    let state = w.state().expect("escrow exists");
    assert_eq!(state.status(), EscrowStatus::AwaitingDeposit);
    assert_eq!(state.buyer, w.buyer.pubkey());
    assert_eq!(state.seller, w.seller.pubkey());
    assert_eq!(state.approvers(), w.args.approvers.as_slice());
    assert_eq!(state.threshold, 2);
    assert_eq!(state.vault, w.deal.vault);
    assert!(
        w.svm.lamports(&w.buyer.pubkey()) < rent_before,
        "buyer paid the rent"
    );
    assert_eq!(w.svm.token_balance(&w.deal.vault), 0);

    w.deposit().expect("deposit");
    let state = w.state().unwrap();
    assert_eq!(state.status(), EscrowStatus::Funded);
    assert_eq!(state.received, AMOUNT);
    assert_eq!(w.svm.token_balance(&w.deal.vault), AMOUNT);
    assert_eq!(w.svm.token_balance(&w.buyer_token), BUYER_FUNDS - AMOUNT);
}

#[test]
fn release_after_threshold_and_timelock_pays_the_seller_and_closes_everything() {
    let mut w = World::new();
    let buyer_lamports = w.svm.lamports(&w.buyer.pubkey());
    w.fund();
    w.approve(Who::Relayer, Outcome::Release).unwrap();
    assert_eq!(
        w.state().unwrap().scheduled(),
        None,
        "one approval is below the threshold"
    );
    w.approve(Who::Seller, Outcome::Release).unwrap();
    let state = w.state().unwrap();
    assert_eq!(state.scheduled(), Some(Outcome::Release));
    assert_eq!(state.eta, w.svm.now() + i64::from(TIMELOCK));

    w.svm.advance(i64::from(TIMELOCK));
    w.release().expect("release at eta");
    assert_eq!(w.svm.token_balance(&w.seller_token), AMOUNT);
    assert!(w.svm.is_closed(&w.deal.escrow));
    assert!(w.svm.is_closed(&w.deal.vault));
    // The buyer paid both rents and got both back; the harness payer paid the fees.
    assert_eq!(w.svm.lamports(&w.buyer.pubkey()), buyer_lamports);
}

#[test]
fn cancel_before_deposit_closes_everything_and_returns_the_rent() {
    let mut w = World::new();
    let buyer_lamports = w.svm.lamports(&w.buyer.pubkey());
    w.create().unwrap();
    w.cancel().expect("cancel");
    assert!(w.svm.is_closed(&w.deal.escrow));
    assert!(w.svm.is_closed(&w.deal.vault));
    assert_eq!(w.svm.lamports(&w.buyer.pubkey()), buyer_lamports);
    assert_eq!(w.svm.token_balance(&w.buyer_token), BUYER_FUNDS);
}

#[test]
fn approved_refund_after_its_timelock_returns_the_money() {
    let mut w = World::new();
    w.fund();
    w.schedule(Outcome::Refund);
    assert_eq!(w.state().unwrap().scheduled(), Some(Outcome::Refund));
    w.svm.advance(i64::from(TIMELOCK));
    w.refund(Who::Anyone).expect("crank the refund");
    assert_eq!(w.svm.token_balance(&w.buyer_token), BUYER_FUNDS);
    assert_eq!(w.svm.token_balance(&w.seller_token), 0);
    assert!(w.svm.is_closed(&w.deal.escrow));
    assert!(w.svm.is_closed(&w.deal.vault));
}

#[test]
fn the_seller_may_refund_at_once() {
    let mut w = World::new();
    w.fund();
    w.refund(Who::Seller).expect("seller waives");
    assert_eq!(w.svm.token_balance(&w.buyer_token), BUYER_FUNDS);
    assert!(w.svm.is_closed(&w.deal.escrow));
}

#[test]
fn anyone_may_refund_after_the_deadline_when_no_release_is_scheduled() {
    let mut w = World::new();
    w.fund();
    w.approve(Who::Relayer, Outcome::Release).unwrap();
    w.svm.advance(REFUND_AFTER);
    w.refund(Who::Anyone).expect("deadline refund");
    assert_eq!(w.svm.token_balance(&w.buyer_token), BUYER_FUNDS);
    assert!(w.svm.is_closed(&w.deal.vault));
}

#[test]
fn revoke_withdraws_a_vote() {
    let mut w = World::new();
    w.fund();
    w.approve(Who::Relayer, Outcome::Release).unwrap();
    w.revoke(Who::Relayer, Outcome::Release).expect("revoke");
    assert_eq!(w.state().unwrap().release_approvals, 0);
    w.approve(Who::Seller, Outcome::Release).unwrap();
    assert_eq!(
        w.state().unwrap().scheduled(),
        None,
        "the revoked vote no longer counts"
    );
}

#[test]
fn after_a_dispute_the_arbiter_can_decide() {
    let mut w = World::new();
    w.fund();
    w.schedule(Outcome::Release);
    w.dispute(Who::Buyer).expect("buyer disputes");
    let state = w.state().unwrap();
    assert_eq!(state.scheduled(), None);
    assert_eq!(state.eta, 0);
    // Arbiter sides with the buyer: refund needs a fresh 2-of-4 (arbiter + buyer).
    w.approve(Who::Arbiter, Outcome::Refund).unwrap();
    w.approve(Who::Buyer, Outcome::Refund).unwrap();
    w.svm.advance(i64::from(TIMELOCK));
    w.refund(Who::Anyone).expect("refund after arbitration");
    assert_eq!(w.svm.token_balance(&w.buyer_token), BUYER_FUNDS);
}

//! An escrow's address is reused once its deal closes: the buyer may create the same id again.
//! A deal is therefore named by its address and the slot it was created in, and these tests try
//! what an attacker would do with a reused address: count a signature made for one deal on the
//! next one, and make a settled address say it settled the other way.
use anchor_lang::{solana_program::instruction::Instruction, Event};
use base64::Engine;
use escrow::{
    client::Deal,
    errors::EscrowError,
    event_log::{deal_events, DealEvent},
    events, Outcome,
};
use escrow_tests::fixtures::*;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// The buyer opens a new deal at the same address (same id), with `edit` applied to its terms;
/// the fixture's `deal` then names the new one.
fn reopen(w: &mut World, edit: impl FnOnce(&mut World)) {
    w.args.refund_after = w.svm.now() + REFUND_AFTER;
    edit(w);
    w.fund();
}

fn logs_of(r: &litesvm::types::TransactionResult) -> Vec<String> {
    match r {
        Ok(meta) => meta.logs.clone(),
        Err(failed) => failed.meta.logs.clone(),
    }
}

#[test]
fn create_records_the_slot_it_ran_in() {
    let mut w = World::new();
    let slot = w.svm.slot();
    w.create().unwrap();
    assert_eq!(w.state().unwrap().created_slot, slot);
    assert_eq!(w.deal.created_slot, slot);
}

/// Attack 1 of issue 12: the relayer signs `approve(Refund)` for deal 1 (funded, past its
/// deadline); before it lands, the buyer takes the deadline refund, opens deal 2 at the same
/// address with another seller and approves a refund of it. The relayer's signature must not
/// count on deal 2, whose seller never dealt with this relayer.
#[test]
fn an_approval_signed_for_one_deal_does_not_count_on_the_next_at_its_address() {
    let mut w = World::new();
    w.fund();
    w.svm.advance(REFUND_AFTER);
    let signed_for_deal_1 = w.deal.approve(&w.relayer.pubkey(), Outcome::Refund);

    w.refund(Who::Anyone).expect("deadline refund of deal 1");
    let other_seller = w.svm.wallet();
    reopen(&mut w, |w| {
        w.args.seller = other_seller.pubkey();
        w.args.approvers[1] = other_seller.pubkey();
        w.deal.seller = other_seller.pubkey();
    });
    w.approve(Who::Buyer, Outcome::Refund).unwrap();

    let relayer = w.relayer.insecure_clone();
    let r = w.svm.send(&[signed_for_deal_1], &[&relayer]);
    assert_escrow_error(r, EscrowError::WrongDeal);
    let state = w.state().unwrap();
    assert_eq!(
        state.refund_approvals, 0b0001,
        "only the buyer's vote counts"
    );
    assert_eq!(
        state.scheduled(),
        None,
        "no refund scheduled against the new seller"
    );

    // The same approval made for deal 2 would count: the slot is what refused it.
    let r = w.svm.send(
        &[w.deal.approve(&relayer.pubkey(), Outcome::Refund)],
        &[&relayer],
    );
    assert!(r.is_ok());
}

#[test]
fn every_signed_instruction_names_its_deal() {
    let mut w = World::new();
    w.create().unwrap();
    let deal_1: Deal = w.deal;
    w.cancel().unwrap();
    reopen(&mut w, |_| {});
    w.schedule(Outcome::Release);
    assert_ne!(deal_1.created_slot, w.deal.created_slot);

    let stale: [(Instruction, Keypair); 5] = [
        (
            deal_1.approve(&w.arbiter.pubkey(), Outcome::Release),
            w.key(Who::Arbiter),
        ),
        (
            deal_1.revoke(&w.arbiter.pubkey(), Outcome::Release),
            w.key(Who::Arbiter),
        ),
        (deal_1.dispute(&w.buyer.pubkey()), w.key(Who::Buyer)),
        (
            deal_1.refund(&w.seller.pubkey(), &w.buyer_token),
            w.key(Who::Seller),
        ),
        (deal_1.release(&w.seller_token), w.key(Who::Anyone)),
    ];
    w.svm.advance(i64::from(TIMELOCK));
    for (ix, signer) in stale {
        assert_escrow_error(w.svm.send(&[ix], &[&signer]), EscrowError::WrongDeal);
    }
    assert_eq!(w.svm.token_balance(&w.deal.vault), AMOUNT);
    w.release()
        .expect("the release named for deal 2 goes through");
}

/// What keeps the creation slot unique per address: a deal cannot close in the slot it was
/// created in, so no second deal can be created in that slot.
#[test]
fn a_deal_cannot_close_in_the_slot_it_was_created_in() {
    let mut w = World::new();
    let slot = w.svm.slot();
    let mut deal = w.deal;
    deal.created_slot = slot;

    let r = w.svm.send_in_this_slot(
        &[w.create_ix(), deal.cancel(&w.buyer_token)],
        &[&w.buyer.insecure_clone()],
    );
    assert_escrow_error(r, EscrowError::ClosedInCreationSlot);
    let r = w.svm.send_in_this_slot(
        &[
            w.create_ix(),
            deal.deposit(&w.buyer_token),
            deal.refund(&w.seller.pubkey(), &w.buyer_token),
        ],
        &[&w.buyer.insecure_clone(), &w.seller.insecure_clone()],
    );
    assert_escrow_error(r, EscrowError::ClosedInCreationSlot);
    assert!(w.state().is_none(), "refused transactions change nothing");

    // Created in one transaction and cancelled in the next, still in the same slot: refused.
    w.svm
        .send_in_this_slot(&[w.create_ix()], &[&w.buyer.insecure_clone()])
        .unwrap();
    let r = w
        .svm
        .send_in_this_slot(&[deal.cancel(&w.buyer_token)], &[&w.buyer.insecure_clone()]);
    assert_escrow_error(r, EscrowError::ClosedInCreationSlot);
    w.svm.svm.warp_to_slot(slot + 1);
    w.svm
        .send(&[deal.cancel(&w.buyer_token)], &[&w.buyer.insecure_clone()])
        .expect("cancel in a later slot");
}

/// Attack 2 of issue 12: deal 1 is released; the buyer opens deal 2 at the same address with
/// themselves as sole approver and an immediate deadline, funds it and takes the refund. The
/// address's newest event is a genuine `Refunded`, but it names deal 2.
#[test]
fn a_settled_deal_keeps_its_settlement_when_the_address_settles_again() {
    let mut w = World::new();
    w.fund();
    let deal_1 = w.deal;
    w.schedule(Outcome::Release);
    w.svm.advance(i64::from(TIMELOCK));
    let released = w.release().expect("release deal 1");

    let buyer = w.buyer.pubkey();
    reopen(&mut w, |w| {
        w.args.approvers = vec![buyer];
        w.args.threshold = 1;
        w.args.refund_after = w.svm.now() + 1;
    });
    w.svm.advance(2);
    let refunded = w.refund(Who::Buyer).expect("refund deal 2");

    let [earlier] = deal_events(&released.logs).try_into().unwrap();
    assert!(matches!(earlier, DealEvent::Released(_)));
    assert_eq!(earlier.deal(), (deal_1.escrow, deal_1.created_slot));
    let [later] = deal_events(&refunded.logs).try_into().unwrap();
    assert!(matches!(later, DealEvent::Refunded(_)));
    assert_eq!(
        later.deal(),
        (deal_1.escrow, w.deal.created_slot),
        "deal 2's refund names deal 2, not deal 1"
    );
    assert_ne!(deal_1.created_slot, w.deal.created_slot);
}

/// Any program can log the bytes of a `Released` event; only lines the escrow program wrote
/// while it was executing are its events.
#[test]
fn an_event_logged_by_another_program_is_not_the_escrows() {
    let mut w = World::new();
    w.svm.load_event_spoofer();
    w.fund();
    let refunded = w.refund(Who::Seller).expect("the seller refunds");
    let forged = events::Released {
        escrow: w.deal.escrow,
        created_slot: w.deal.created_slot,
        seller: w.seller.pubkey(),
        seller_token_account: w.seller_token,
        amount: AMOUNT,
    };
    let spoof = Instruction {
        program_id: event_spoofer::ID,
        // The escrow is named so that the transaction is listed under its address.
        accounts: vec![anchor_lang::prelude::AccountMeta::new_readonly(
            w.deal.escrow,
            false,
        )],
        data: forged.data(),
    };
    let spoofed = w.svm.send(&[spoof], &[]).expect("the spoofer runs");
    let data_line = format!(
        "Program data: {}",
        base64::engine::general_purpose::STANDARD.encode(forged.data())
    );
    assert!(
        spoofed.logs.contains(&data_line),
        "the forged line is byte for byte what emit! writes"
    );
    assert!(deal_events(&spoofed.logs).is_empty());
    let [genuine] = deal_events(&refunded.logs).try_into().unwrap();
    assert!(matches!(genuine, DealEvent::Refunded(_)));
    assert_eq!(genuine.deal(), (w.deal.escrow, w.deal.created_slot));
}

/// A failed transaction's logs carry the events its instructions emitted before the failure,
/// though every change was rolled back: watchers must look at the transaction's status.
#[test]
fn a_failed_transaction_logs_events_that_did_not_happen() {
    let mut w = World::new();
    w.fund();
    w.schedule(Outcome::Release);
    w.svm.advance(i64::from(TIMELOCK));
    let release = w.deal.release(&w.seller_token);
    let failed = w.svm.send(&[release.clone(), release], &[]);
    assert!(
        failed.is_err(),
        "the second release fails: the escrow is closed"
    );
    let [logged] = deal_events(&logs_of(&failed)).try_into().unwrap();
    assert!(
        matches!(logged, DealEvent::Released(_)),
        "the log alone says released"
    );
    assert_eq!(logged.deal(), (w.deal.escrow, w.deal.created_slot));
    assert_eq!(w.svm.token_balance(&w.deal.vault), AMOUNT, "nothing moved");
    assert!(w.state().is_some());
}

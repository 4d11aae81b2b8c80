//! An escrow's address is reused once its deal closes, and these are the attacks that reuse
//! allows, tried against the relayer: a signature of the relayer's made for one deal landing on
//! the next deal at the address, a settled address gaining a contradicting settlement, an event
//! forged by another program, and an event in a failed transaction. Each must leave the
//! relayer's record and the money where they belong.
use std::sync::{atomic::Ordering, Arc};

use anchor_lang::{prelude::AccountMeta, solana_program::instruction::Instruction, Event};
use escrow::{client::Deal, events, Outcome};
use relayer::deal;
use solana_signer::Signer;
use uuid::Uuid;

use crate::support::{
    doubles::Network,
    eventually,
    ledger::{ata, create_ata, Ledger, Parties, Relayer},
};

pub async fn all(ledger: &Ledger) {
    a_signature_for_one_deal_never_counts_on_the_next(ledger).await;
    a_settled_deal_keeps_its_settlement_when_its_address_settles_again(ledger).await;
    an_event_forged_by_another_program_settles_nothing(ledger).await;
    an_event_in_a_failed_transaction_settles_nothing(ledger).await;
}

/// Attack 1: the relayer signs `approve(Refund)` for deal 1 (funded, past its deadline); before
/// it lands, the buyer takes the deadline refund, opens deal 2 at the same address with another
/// seller and approves a refund of it. The relayer's transaction then lands within its
/// blockhash's lifetime.
async fn a_signature_for_one_deal_never_counts_on_the_next(ledger: &Ledger) {
    let p = ledger.parties().await;
    let relayer_key = ledger.kms.pubkey();
    let refund_in = if ledger.is_node() { 6 } else { 60 };
    let deal_1 = ledger
        .open(&p, p.args(relayer_key, ledger.now().await, 2, refund_in))
        .await;
    let network = Arc::new(Network::new(ledger.chain.clone()));
    network.hold_sends.store(true, Ordering::SeqCst);
    let r = ledger.relayer(network.clone()).await;
    let offer = r.register(&p, &deal_1, "1ZREUSE1").await;
    r.webhook("1ZREUSE1", "reuse-1", "returned").await;
    eventually("the relayer signed its approval", || async {
        network.held() == 1
    })
    .await;

    // Before it lands: the deadline refund, and deal 2 at the same address.
    let deal_1_state = ledger.escrow(&deal_1.escrow).await.unwrap();
    ledger.wait_until(deal_1_state.refund_after).await;
    ledger
        .send(
            &[deal_1.refund(&p.buyer.pubkey(), &ata(&p.buyer.pubkey(), &p.mint))],
            &[&p.buyer],
        )
        .await;
    let other_seller = ledger.wallet().await;
    let mut args = p.args(relayer_key, ledger.now().await, 2, 3_600);
    args.seller = other_seller.pubkey();
    args.approvers[1] = other_seller.pubkey();
    let deal_2 = ledger.open(&p, args).await;
    assert_eq!(deal_2.escrow, deal_1.escrow, "the same address");
    ledger
        .send(
            &[deal_2.approve(&p.buyer.pubkey(), Outcome::Refund)],
            &[&p.buyer],
        )
        .await;

    let [landed] = network.deliver_held().await.try_into().unwrap();
    eventually("the held approval landed", || async {
        r.signed().await.first().is_some_and(|tx| tx.1 == "failed")
    })
    .await;
    let (signature, _, error) = r.signed().await.remove(0);
    assert_eq!(signature, landed.to_string());
    let error = error.unwrap();
    assert!(
        error.contains("Custom(6041)"),
        "refused as WrongDeal: {error}"
    );
    let state = ledger.escrow(&deal_2.escrow).await.unwrap();
    assert_eq!(
        state.refund_approvals, 0b0001,
        "only the buyer's vote counts"
    );
    assert_eq!(
        state.scheduled(),
        None,
        "no refund scheduled against the new seller"
    );

    // The watchtower reads how deal 1 ended; the relayer's job then has nothing left to do,
    // and it never signed anything for deal 2.
    r.reconcile().await;
    assert_eq!(r.settlement(offer).await.as_deref(), Some("refunded"));
    r.wait_for("approve_refund", "succeeded").await;
    assert_eq!(r.signer.signed.load(Ordering::SeqCst), 1);
    assert_eq!(r.signed().await.len(), 1);
    r.app.stop().await;
}

/// Attack 2: deal 1 is released (cranked by the seller, so the watchtower reads it from the
/// chain); the buyer opens deal 2 at the same address as its sole approver with an immediate
/// deadline, funds it and refunds it. The address's newest event is a genuine `Refunded`.
async fn a_settled_deal_keeps_its_settlement_when_its_address_settles_again(ledger: &Ledger) {
    let p = ledger.parties().await;
    let relayer_key = ledger.kms.pubkey();
    let deal_1 = ledger
        .open(&p, p.args(relayer_key, ledger.now().await, 2, 3_600))
        .await;
    let r = ledger.relayer(ledger.chain.clone()).await;
    let offer = r.register(&p, &deal_1, "1ZREUSE2").await;
    r.webhook("1ZREUSE2", "reuse-2", "delivered").await;
    r.wait_for("approve_release", "succeeded").await;
    ledger
        .send(
            &[deal_1.approve(&p.seller.pubkey(), Outcome::Release)],
            &[&p.seller],
        )
        .await;
    let eta = ledger.escrow(&deal_1.escrow).await.unwrap().eta;
    ledger.wait_until(eta).await;
    let seller = p.seller.pubkey();
    ledger
        .send(
            &[
                create_ata(&seller, &seller, &p.mint),
                deal_1.release(&ata(&seller, &p.mint)),
            ],
            &[&p.seller],
        )
        .await;

    let mut args = p.args(
        relayer_key,
        ledger.now().await,
        0,
        if ledger.is_node() { 3 } else { 1 },
    );
    args.approvers = vec![p.buyer.pubkey()];
    args.threshold = 1;
    let deal_2 = ledger.open(&p, args).await;
    let deadline = ledger.escrow(&deal_2.escrow).await.unwrap().refund_after;
    ledger.wait_until(deadline).await;
    ledger
        .send(
            &[deal_2.refund(&p.buyer.pubkey(), &ata(&p.buyer.pubkey(), &p.mint))],
            &[&p.buyer],
        )
        .await;

    r.reconcile().await;
    assert_eq!(
        r.settlement(offer).await.as_deref(),
        Some("released"),
        "deal 2's refund says nothing about the offer's deal"
    );
    r.app.stop().await;
}

/// A funded deal, its offer registered and bound by one watchtower pass that saw it open.
async fn watched_deal(ledger: &Ledger, tracking: &str) -> (Parties, Deal, Relayer, Uuid) {
    let p = ledger.parties().await;
    let args = p.args(ledger.kms.pubkey(), ledger.now().await, 2, 3_600);
    let deal = ledger.open(&p, args).await;
    let r = ledger.relayer(ledger.chain.clone()).await;
    let offer = r.register(&p, &deal, tracking).await;
    r.reconcile().await;
    (p, deal, r, offer)
}

/// Another program logs the exact bytes of a `Released` event for the offer's deal, in a
/// transaction that names the escrow, after the deal was refunded.
async fn an_event_forged_by_another_program_settles_nothing(ledger: &Ledger) {
    let (p, deal, r, offer) = watched_deal(ledger, "1ZSPOOF").await;
    ledger
        .send(
            &[deal.refund(&p.seller.pubkey(), &ata(&p.buyer.pubkey(), &p.mint))],
            &[&p.seller],
        )
        .await;
    let forged = events::Released {
        escrow: deal.escrow,
        created_slot: deal.created_slot,
        seller: p.seller.pubkey(),
        seller_token_account: ata(&p.seller.pubkey(), &p.mint),
        amount: crate::support::ledger::AMOUNT,
    };
    let attacker = ledger.wallet().await;
    ledger
        .send(
            &[Instruction {
                program_id: event_spoofer::ID,
                accounts: vec![AccountMeta::new_readonly(deal.escrow, false)],
                data: forged.data(),
            }],
            &[&attacker],
        )
        .await;

    r.reconcile().await;
    assert_eq!(r.settlement(offer).await.as_deref(), Some("refunded"));
    r.app.stop().await;
}

/// A transaction releases the offer's deal and then fails: its logs carry a genuine `Released`
/// event of the escrow program, but nothing happened.
async fn an_event_in_a_failed_transaction_settles_nothing(ledger: &Ledger) {
    let (p, deal, r, offer) = watched_deal(ledger, "1ZFAILED").await;
    for who in [&p.buyer, &p.seller] {
        ledger
            .send(&[deal.approve(&who.pubkey(), Outcome::Release)], &[who])
            .await;
    }
    let eta = ledger.escrow(&deal.escrow).await.unwrap().eta;
    ledger.wait_until(eta).await;
    let seller = p.seller.pubkey();
    let release = deal.release(&ata(&seller, &p.mint));
    ledger
        .send_to_fail(
            &[
                create_ata(&seller, &seller, &p.mint),
                release.clone(),
                release,
            ],
            &[&p.seller],
        )
        .await;
    let txs = ledger.chain.transactions(&deal.escrow, 10).await.unwrap();
    let failed = txs
        .iter()
        .find(|tx| !tx.succeeded())
        .expect("the failed one is listed");
    assert!(
        escrow::event_log::deal_events(&failed.logs)
            .iter()
            .any(|e| matches!(e, escrow::event_log::DealEvent::Released(_))),
        "its logs say released"
    );

    // What the watchtower reads a closed deal's ending with finds none.
    assert_eq!(
        deal::ending(&*ledger.chain, &deal.escrow, deal.created_slot)
            .await
            .unwrap(),
        None
    );
    assert!(ledger.escrow(&deal.escrow).await.is_some(), "still open");
    assert_eq!(r.settlement(offer).await, None);
    r.app.stop().await;
}

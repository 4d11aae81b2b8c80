//! What the stories need not run twice: the pipeline's refusals and settings, on the embedded
//! chain, where each takes milliseconds.
use std::{
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use relayer::{startup::Role, worker::JobHandler};
use serde_json::json;
use solana_signer::Signer;

use crate::support::{
    doubles::Counting,
    ledger::{Ledger, Parties, Relayer, Setup, AMOUNT},
};

/// A fresh embedded ledger, a funded 2-of-4 deal (buyer, seller, arbiter, the relayer) adjusted
/// by `adjust`, and a relayer of `setup` with its offer registered (no terms).
async fn deal_with(
    adjust: impl FnOnce(&mut escrow::CreateArgs),
    setup: impl FnOnce(&Ledger) -> Setup,
) -> (Ledger, Parties, escrow::client::Deal, Relayer) {
    let ledger = Ledger::embedded().await;
    let p = ledger.parties().await;
    let mut args = p.args(ledger.kms.pubkey(), ledger.now().await, 3_600, 7 * 86_400);
    adjust(&mut args);
    let deal = ledger.open(&p, args).await;
    let r = ledger.start(setup(&ledger)).await;
    r.register(&p, &deal, "1ZEMB").await;
    (ledger, p, deal, r)
}

#[tokio::test]
async fn a_worker_that_lost_its_lease_does_not_sign() {
    let (ledger, _, _, r) = deal_with(
        |_| {},
        |l| Setup {
            role: Role::Http,
            ..l.setup()
        },
    )
    .await;
    r.webhook("1ZEMB", "fence-1", "delivered").await;
    // Worker A claims the job; its lease expires and worker B takes it over.
    let a = relayer::queue::claim(&r.app.pool, "worker-a", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("claimed");
    sqlx::query("UPDATE jobs SET locked_by = 'worker-b' WHERE id = $1")
        .bind(a.id)
        .execute(&r.app.pool)
        .await
        .unwrap();
    // A, unaware, goes on with the attempt it started.
    let signer = Arc::new(Counting {
        inner: ledger.kms.clone(),
        signed: Default::default(),
    });
    let pipeline = ledger.pipeline(
        &r.database_url,
        ledger.chain.clone(),
        signer.clone(),
        &ledger.setup(),
    );
    let err = relayer::pipeline::Handler(pipeline)
        .run(&a)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("lost the job's lease before signing"),
        "{err}"
    );
    assert_eq!(
        signer.signed.load(Ordering::SeqCst),
        0,
        "nothing was signed"
    );
    assert_eq!(r.app.count("chain_txs").await, 0);
    r.app.stop().await;
}

#[tokio::test]
async fn a_configured_priority_fee_is_paid() {
    let (ledger, _, _, r) = deal_with(
        |_| {},
        |l| Setup {
            priority_fee_micro_lamports: 1_000_000,
            ..l.setup()
        },
    )
    .await;
    let relayer = ledger.kms.pubkey();
    let balance = || ledger.svm().unwrap().svm().get_balance(&relayer).unwrap();
    let before = balance();
    r.webhook("1ZEMB", "fee-1", "delivered").await;
    r.wait_for("approve_release", "succeeded").await;
    let paid = before - balance();
    // 5,000 lamports for the signature plus 1 lamport per compute unit of the limit.
    assert!(paid > 5_000, "paid {paid} lamports: no priority fee");
    assert!(
        paid < 5_000 + 200_000,
        "paid {paid} lamports: the limit was not derived from the simulation"
    );
    r.app.stop().await;
}

#[tokio::test]
async fn an_ended_shipment_whose_escrow_never_settles_is_flagged_stuck() {
    let (_, _, _, r) = deal_with(
        |_| {},
        |l| Setup {
            role: Role::Http,
            ..l.setup()
        },
    )
    .await;
    r.webhook("1ZEMB", "stuck-1", "delivered").await;
    assert_eq!(
        r.app
            .metric("relayer_offers_stuck{reason=\"settle_overdue\"}")
            .await,
        0.0,
        "just delivered: not stuck yet"
    );
    sqlx::query("UPDATE offers SET updated_at = now() - interval '2 days'")
        .execute(&r.app.pool)
        .await
        .unwrap();
    assert_eq!(
        r.app
            .metric("relayer_offers_stuck{reason=\"settle_overdue\"}")
            .await,
        1.0
    );
    r.app.stop().await;
}

#[tokio::test]
async fn with_openclaw_execute_false_the_relayer_simulates_and_records_but_never_signs_or_sends() {
    let (ledger, _, deal, r) = deal_with(
        |_| {},
        |l| Setup {
            execute: false,
            ..l.setup()
        },
    )
    .await;
    r.webhook("1ZEMB", "sim-1", "delivered").await;
    r.wait_for("approve_release", "succeeded").await;
    let result = r.result("approve_release").await.unwrap();
    assert!(
        result.contains("simulated approve_release")
            && result.contains("nothing sent (OPENCLAW_EXECUTE=false)"),
        "{result}"
    );
    assert_eq!(r.signer.signed.load(Ordering::SeqCst), 0, "nothing signed");
    assert_eq!(
        r.app.count("chain_txs").await,
        0,
        "nothing recorded as sent"
    );
    assert_eq!(
        ledger.escrow(&deal.escrow).await.unwrap().release_approvals,
        0,
        "nothing changed on-chain"
    );
    r.app.stop().await;
}

#[tokio::test]
async fn an_escrow_the_relayer_alone_could_release_is_refused() {
    let (ledger, _, deal, r) = deal_with(|args| args.threshold = 1, |l| l.setup()).await;
    r.webhook("1ZEMB", "t1-1", "delivered").await;
    r.wait_for("approve_release", "dead").await;
    let error = r.last_error("approve_release").await.unwrap();
    assert!(error.contains("threshold below 2"), "{error}");
    assert_eq!(r.signer.signed.load(Ordering::SeqCst), 0, "nothing signed");
    assert_eq!(
        ledger.escrow(&deal.escrow).await.unwrap().release_approvals,
        0
    );
    r.app.stop().await;
}

#[tokio::test]
async fn an_escrow_whose_policy_differs_from_the_registered_terms_is_refused() {
    let ledger = Ledger::embedded().await;
    let p = ledger.parties().await;
    let args = p.args(ledger.kms.pubkey(), ledger.now().await, 3_600, 7 * 86_400);
    ledger.open(&p, args.clone()).await;
    let r = ledger.relayer(ledger.chain.clone()).await;
    // Registered: a one-day dispute window; the escrow on-chain has one hour.
    let body = json!({
        "buyer": p.buyer.pubkey().to_string(), "seller": p.seller.pubkey().to_string(),
        "mint": p.mint.to_string(), "amount": AMOUNT, "tracking_number": "1ZTERMS",
        "carrier": "ups",
        "terms": {
            "id": args.id,
            "approvers": args.approvers.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "threshold": args.threshold, "timelock_secs": 86_400,
            "refund_after": args.refund_after.max(chrono::Utc::now().timestamp() + 3_600),
        },
    });
    r.app.create_offer(&body).await;
    r.webhook("1ZTERMS", "terms-1", "delivered").await;
    r.wait_for("approve_release", "dead").await;
    let error = r.last_error("approve_release").await.unwrap();
    assert!(
        error.contains("does not match its offer (") && error.contains("timelock"),
        "{error}"
    );
    assert_eq!(r.signer.signed.load(Ordering::SeqCst), 0);
    r.app.stop().await;
}

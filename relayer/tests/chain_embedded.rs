//! The whole story on the embedded chain (LiteSVM with the compiled program), signed by a real
//! OpenBao: a verified delivery ends in a release the program accepted, and a crash between
//! send and confirm never produces a second transaction.
mod support;

use std::{
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use anchor_lang::prelude::Pubkey;
use escrow::Outcome;
use escrow_tests::fixtures::AMOUNT;
use relayer::{reconcile, signer::TxSigner, startup::Role};
use serde_json::json;
use solana_signer::Signer;
use support::{
    doubles::Network,
    embedded::{story, story_with, Story},
    *,
};

/// Waits until the offer's `action` job reaches `state`.
async fn wait_for_job(app: &TestApp, action: &str, state: &str) {
    eventually(&format!("{action} {state}"), || async {
        job_state(&app.pool, action).await.as_deref() == Some(state)
    })
    .await;
}

async fn job_state(pool: &sqlx::PgPool, action: &str) -> Option<String> {
    sqlx::query_scalar("SELECT state FROM jobs WHERE action = $1")
        .bind(action)
        .fetch_optional(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_verified_delivery_ends_in_a_kms_signed_release() {
    let s = story().await;
    let app = s.app().await;
    let offer = s.register(&app).await;

    // The carrier says delivered: the relayer approves the release, signed by OpenBao.
    assert_eq!(
        app.webhook(&event("e2e-1", "1ZE2E", "delivered")).await.0,
        200
    );
    wait_for_job(&app, "approve_release", "succeeded").await;
    let state = s.escrow().unwrap();
    assert_eq!(
        state.release_approvals,
        1 << 3,
        "the relayer's approval landed"
    );
    assert_eq!(state.scheduled(), None, "one approval of two");

    // The seller approves from their wallet: the release is scheduled; the watchtower sees it.
    s.party_sends(
        s.world
            .deal
            .approve(&s.world.seller.pubkey(), Outcome::Release),
        &s.world.seller,
    );
    let eta = s.escrow().unwrap().eta;
    // The dispute window passes on the chain's clock, then the reconciler queues the crank.
    {
        let mut svm = s.chain.svm();
        let mut clock = svm.get_sysvar::<anchor_lang::prelude::Clock>();
        clock.unix_timestamp = eta;
        svm.set_sysvar(&clock);
    }
    reconcile::reconcile_once(&app.pool, &s.chain, 5)
        .await
        .unwrap();
    wait_for_job(&app, "crank_release", "succeeded").await;

    assert_eq!(
        s.token_balance(&s.world.seller_token) + s.token_balance(&s.seller_ata()),
        AMOUNT,
        "the seller got paid"
    );
    assert!(s.escrow().is_none(), "escrow closed");
    let settlement: Option<String> =
        sqlx::query_scalar("SELECT settlement FROM offers WHERE id = $1")
            .bind(offer)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(settlement.as_deref(), Some("released"));
    assert_eq!(
        app.metric("relayer_offers_settled{settlement=\"released\"}")
            .await,
        1.0
    );
    let confirmed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM chain_txs WHERE state = 'confirmed'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(confirmed, 2, "approve and release");
    assert_eq!(
        s.signer.signed.load(Ordering::SeqCst),
        2,
        "two KMS signatures in all"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_relayer_killed_between_send_and_confirm_never_sends_twice() {
    let s = story().await;
    let hanging = Arc::new(Network::new(Arc::new(s.chain.clone())));
    hanging.hang_status.store(true, Ordering::SeqCst);
    let mut cfg = config(&s.database_url);
    cfg.queue.workers = 1;
    let first = spawn(cfg.clone(), Role::All, s.executor(hanging.clone())).await;
    s.register(&first).await;
    assert_eq!(
        first.webhook(&event("e2e-2", "1ZE2E", "delivered")).await.0,
        200
    );
    // Signed, recorded and sent; the worker now hangs waiting for the confirmation...
    eventually("transaction recorded", || async {
        first.count("chain_txs").await == 1
    })
    .await;
    eventually("transaction landed", || async {
        s.escrow().is_some_and(|e| e.release_approvals != 0)
    })
    .await;
    // ...and the process dies: no graceful hand-back, the job keeps its lease.
    first.task.abort();
    let pool = first.pool.clone();
    sqlx::query("UPDATE jobs SET locked_until = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();

    let second = spawn(cfg, Role::All, s.executor(Arc::new(s.chain.clone()))).await;
    eventually("job completed after restart", || async {
        job_state(&pool, "approve_release").await.as_deref() == Some("succeeded")
    })
    .await;
    let (signatures, confirmed): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE state = 'confirmed') FROM chain_txs",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (signatures, confirmed),
        (1, 1),
        "the restarted relayer confirmed the first transaction"
    );
    assert_eq!(
        s.signer.signed.load(Ordering::SeqCst),
        1,
        "the KMS signed exactly once"
    );
    let result: Option<String> =
        sqlx::query_scalar("SELECT result FROM jobs WHERE action = 'approve_release'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(result.unwrap().contains("sent by an earlier attempt"));
    second.stop().await;
}

impl Story {
    fn seller_ata(&self) -> Pubkey {
        spl_associated_token_account_interface::address::get_associated_token_address_with_program_id(
            &self.world.seller.pubkey(),
            &self.world.mint,
            &self.world.token_program,
        )
    }
}

impl Story {
    fn buyer_ata(&self) -> Pubkey {
        spl_associated_token_account_interface::address::get_associated_token_address_with_program_id(
            &self.world.buyer.pubkey(),
            &self.world.mint,
            &self.world.token_program,
        )
    }

    /// Moves the chain's clock to `unix_timestamp`.
    fn set_chain_time(&self, unix_timestamp: i64) {
        let mut svm = self.chain.svm();
        let mut clock = svm.get_sysvar::<anchor_lang::prelude::Clock>();
        clock.unix_timestamp = unix_timestamp;
        svm.set_sysvar(&clock);
    }
}

async fn last_error(pool: &sqlx::PgPool, action: &str) -> Option<String> {
    sqlx::query_scalar("SELECT last_error FROM jobs WHERE action = $1")
        .bind(action)
        .fetch_optional(pool)
        .await
        .unwrap()
        .flatten()
}

#[tokio::test]
async fn a_returned_parcel_ends_in_a_refund() {
    let s = story().await;
    let app = s.app().await;
    let offer = s.register(&app).await;
    assert_eq!(
        app.webhook(&event("ret-1", "1ZE2E", "returned")).await.0,
        200
    );
    wait_for_job(&app, "approve_refund", "succeeded").await;
    assert_eq!(s.escrow().unwrap().refund_approvals, 1 << 3);
    // The buyer confirms the return from their wallet: 2 of 4, the refund is scheduled.
    s.party_sends(
        s.world
            .deal
            .approve(&s.world.buyer.pubkey(), Outcome::Refund),
        &s.world.buyer,
    );
    s.set_chain_time(s.escrow().unwrap().eta);
    reconcile::reconcile_once(&app.pool, &s.chain, 5)
        .await
        .unwrap();
    wait_for_job(&app, "crank_refund", "succeeded").await;
    assert_eq!(
        s.token_balance(&s.buyer_ata()),
        AMOUNT,
        "the buyer got the deposit back"
    );
    assert!(s.escrow().is_none());
    let settlement: Option<String> =
        sqlx::query_scalar("SELECT settlement FROM offers WHERE id = $1")
            .bind(offer)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(settlement.as_deref(), Some("refunded"));
    app.stop().await;
}

#[tokio::test]
async fn a_buyer_dispute_in_the_window_stops_the_release() {
    let s = story().await;
    let app = s.app().await;
    s.register(&app).await;
    assert_eq!(
        app.webhook(&event("dsp-1", "1ZE2E", "delivered")).await.0,
        200
    );
    wait_for_job(&app, "approve_release", "succeeded").await;
    s.party_sends(
        s.world
            .deal
            .approve(&s.world.seller.pubkey(), Outcome::Release),
        &s.world.seller,
    );
    // The watchtower queues the crank; before the eta it is deferred, its attempt not counted...
    reconcile::reconcile_once(&app.pool, &s.chain, 5)
        .await
        .unwrap();
    eventually("crank deferred until the eta", || async {
        last_error(&app.pool, "crank_release")
            .await
            .is_some_and(|e| e.contains("eta is"))
    })
    .await;
    let (state, attempts): (String, i32) =
        sqlx::query_as("SELECT state, attempts FROM jobs WHERE action = 'crank_release'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), attempts), ("pending", 0));
    // ...and the buyer disputes inside the window. When the crank's time comes, nothing is due.
    s.party_sends(
        s.world.deal.dispute(&s.world.buyer.pubkey()),
        &s.world.buyer,
    );
    sqlx::query("UPDATE jobs SET run_at = now() WHERE action = 'crank_release'")
        .execute(&app.pool)
        .await
        .unwrap();
    wait_for_job(&app, "crank_release", "succeeded").await;
    let result: Option<String> =
        sqlx::query_scalar("SELECT result FROM jobs WHERE action = 'crank_release'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(result.unwrap().contains("no release is scheduled"));
    let state = s.escrow().expect("still open");
    assert_eq!((state.scheduled(), state.release_approvals), (None, 0));
    assert_eq!(s.token_balance(&s.seller_ata()), 0, "nothing paid");
    assert_eq!(
        s.signer.signed.load(Ordering::SeqCst),
        1,
        "only the approval was signed"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_worker_that_lost_its_lease_does_not_sign() {
    let s = story().await;
    let app = spawn(
        config(&s.database_url),
        Role::Http,
        Arc::new(relayer::worker::Simulate),
    )
    .await;
    s.register(&app).await;
    assert_eq!(
        app.webhook(&event("fence-1", "1ZE2E", "delivered")).await.0,
        200
    );
    // Worker A claims the job; its lease expires and worker B takes it over.
    let a = relayer::queue::claim(&app.pool, "worker-a", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("claimed");
    sqlx::query("UPDATE jobs SET locked_by = 'worker-b' WHERE id = $1")
        .bind(a.id)
        .execute(&app.pool)
        .await
        .unwrap();
    // A, unaware, goes on with the attempt it started.
    let executor = s.executor(Arc::new(s.chain.clone()));
    let err = relayer::worker::JobHandler::run(executor.as_ref(), &a)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("lost the job's lease before signing"),
        "{err}"
    );
    assert_eq!(
        s.signer.signed.load(Ordering::SeqCst),
        0,
        "nothing was signed"
    );
    assert_eq!(app.count("chain_txs").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn openbao_down_means_retries_then_success() {
    let s = story().await;
    let app = s.app().await;
    s.register(&app).await;
    // Process-wide (other tests in this binary sign too): it only has to move.
    let signer_down = "relayer_signer_errors_total{kind=\"unavailable\"}";
    let before = app.metric(signer_down).await;
    let pid = s.bao.child.id().to_string();
    // Frozen, not gone: requests hang until the signer's timeout.
    std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap();
    assert_eq!(
        app.webhook(&event("down-1", "1ZE2E", "delivered")).await.0,
        200
    );
    eventually("a failed attempt", || async {
        last_error(&app.pool, "approve_release")
            .await
            .is_some_and(|e| e.contains("signer unavailable"))
    })
    .await;
    assert!(app.metric("relayer_job_retries_total").await >= 1.0);
    assert!(
        app.metric(signer_down).await > before,
        "the signer alert's metric moved"
    );
    std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap();
    wait_for_job(&app, "approve_release", "succeeded").await;
    let attempts: i32 =
        sqlx::query_scalar("SELECT attempts FROM jobs WHERE action = 'approve_release'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(attempts >= 2, "attempts: {attempts}");
    assert_eq!(s.escrow().unwrap().release_approvals, 1 << 3);
    app.stop().await;
}

#[tokio::test]
async fn a_configured_priority_fee_is_paid() {
    let s = story().await;
    let mut executor = s.executor(Arc::new(s.chain.clone()));
    Arc::get_mut(&mut executor)
        .unwrap()
        .config
        .priority_fee_micro_lamports = 1_000_000;
    let app = spawn(config(&s.database_url), Role::All, executor).await;
    s.register(&app).await;
    let relayer = s.signer.pubkey();
    let before = s.chain.svm().get_balance(&relayer).unwrap();
    assert_eq!(
        app.webhook(&event("fee-1", "1ZE2E", "delivered")).await.0,
        200
    );
    wait_for_job(&app, "approve_release", "succeeded").await;
    let paid = before - s.chain.svm().get_balance(&relayer).unwrap();
    // 5,000 lamports for the signature plus 1 lamport per compute unit of the limit.
    assert!(paid > 5_000, "paid {paid} lamports: no priority fee");
    assert!(
        paid < 5_000 + 200_000,
        "paid {paid} lamports: the limit was not derived from the simulation"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_ended_shipment_whose_escrow_never_settles_is_flagged_stuck() {
    let s = story().await;
    let app = spawn(
        config(&s.database_url),
        Role::Http,
        Arc::new(relayer::worker::Simulate),
    )
    .await;
    let offer = s.register(&app).await;
    assert_eq!(
        app.webhook(&event("stuck-1", "1ZE2E", "delivered")).await.0,
        200
    );
    assert_eq!(
        app.metric("relayer_offers_stuck").await,
        0.0,
        "just delivered: not stuck yet"
    );
    sqlx::query("UPDATE offers SET updated_at = now() - interval '2 days' WHERE id = $1")
        .bind(offer)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(app.metric("relayer_offers_stuck").await, 1.0);
    app.stop().await;
}

#[tokio::test]
async fn with_openclaw_execute_false_the_relayer_simulates_and_records_but_never_signs_or_sends() {
    let s = story().await;
    let mut executor = s.executor(Arc::new(s.chain.clone()));
    Arc::get_mut(&mut executor).unwrap().config.execute = false;
    let app = spawn(config(&s.database_url), Role::All, executor).await;
    s.register(&app).await;
    assert_eq!(
        app.webhook(&event("sim-1", "1ZE2E", "delivered")).await.0,
        200
    );
    wait_for_job(&app, "approve_release", "succeeded").await;
    let result: Option<String> =
        sqlx::query_scalar("SELECT result FROM jobs WHERE action = 'approve_release'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let result = result.unwrap();
    assert!(
        result.contains("simulated approve_release")
            && result.contains("nothing sent (OPENCLAW_EXECUTE=false)"),
        "{result}"
    );
    assert_eq!(s.signer.signed.load(Ordering::SeqCst), 0, "nothing signed");
    assert_eq!(app.count("chain_txs").await, 0, "nothing recorded as sent");
    assert_eq!(
        s.escrow().unwrap().release_approvals,
        0,
        "nothing changed on-chain"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_watchtower_reads_how_an_escrow_settled_when_someone_else_cranked_it() {
    let s = story().await;
    let app = s.app().await;
    let offer = s.register(&app).await;
    assert_eq!(
        app.webhook(&event("ext-1", "1ZE2E", "delivered")).await.0,
        200
    );
    wait_for_job(&app, "approve_release", "succeeded").await;
    s.party_sends(
        s.world
            .deal
            .approve(&s.world.seller.pubkey(), Outcome::Release),
        &s.world.seller,
    );
    s.set_chain_time(s.escrow().unwrap().eta);
    // The seller cranks the release before the relayer does.
    s.party_sends(s.world.deal.release(&s.world.seller_token), &s.world.seller);
    assert!(s.escrow().is_none());
    reconcile::reconcile_once(&app.pool, &s.chain, 5)
        .await
        .unwrap();
    let settlement: Option<String> =
        sqlx::query_scalar("SELECT settlement FROM offers WHERE id = $1")
            .bind(offer)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        settlement.as_deref(),
        Some("released"),
        "read from the escrow's Released event"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_escrow_the_relayer_alone_could_release_is_refused() {
    let s = story_with(|args| args.threshold = 1).await;
    let app = s.app().await;
    s.register(&app).await;
    app.webhook(&event("t1-1", "1ZE2E", "delivered")).await;
    wait_for_job(&app, "approve_release", "dead").await;
    let error = last_error(&app.pool, "approve_release").await.unwrap();
    assert!(error.contains("threshold below 2"), "{error}");
    assert_eq!(s.signer.signed.load(Ordering::SeqCst), 0, "nothing signed");
    assert_eq!(s.escrow().unwrap().release_approvals, 0);
    app.stop().await;
}

#[tokio::test]
async fn an_escrow_whose_policy_differs_from_the_registered_terms_is_refused() {
    let s = story().await;
    let app = s.app().await;
    let w = &s.world;
    // Registered: a one-day dispute window; the escrow on-chain has one hour.
    let body = json!({
        "buyer": w.buyer.pubkey().to_string(), "seller": w.seller.pubkey().to_string(),
        "mint": w.mint.to_string(), "amount": AMOUNT, "tracking_number": "1ZE2E", "carrier": "ups",
        "terms": {
            "id": w.args.id,
            "approvers": w.args.approvers.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "threshold": w.args.threshold, "timelock_secs": 86_400,
            "refund_after": w.args.refund_after.max(chrono::Utc::now().timestamp() + 3_600),
        },
    });
    app.create_offer(&body).await;
    app.webhook(&event("terms-1", "1ZE2E", "delivered")).await;
    wait_for_job(&app, "approve_release", "dead").await;
    let error = last_error(&app.pool, "approve_release").await.unwrap();
    assert!(
        error.contains("does not match its offer (") && error.contains("timelock"),
        "{error}"
    );
    assert_eq!(s.signer.signed.load(Ordering::SeqCst), 0);
    app.stop().await;
}

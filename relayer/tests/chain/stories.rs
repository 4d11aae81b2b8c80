//! The six stories, written once and run on both chain backends: a verified delivery ends in a
//! KMS-signed approval, the seller's approval, a crank and the release; a returned parcel
//! ends in a refund; a buyer's dispute inside the window stops the release; a relayer killed
//! between send and confirm resumes without a second KMS signature; OpenBao frozen then back
//! means retries, then success; the watchtower reads a settlement someone else made.
use std::{
    process::{Command, Stdio},
    sync::{atomic::Ordering, Arc},
};

use anchor_lang::prelude::Pubkey;
use escrow::Outcome;
use solana_signer::Signer;

use crate::support::{
    doubles::Network,
    eventually, fresh_database,
    ledger::{ata, create_ata, Ledger, Parties, Relayer, Setup, AMOUNT},
    node::free_port,
};

pub async fn all(ledger: &Ledger) {
    with_any_signer(ledger).await;
    openbao_down_means_retries_then_success(ledger).await;
}

/// The stories that hold whichever KMS holds the relayer's key.
pub async fn with_any_signer(ledger: &Ledger) {
    a_verified_delivery_ends_in_a_kms_signed_release(ledger).await;
    a_returned_parcel_ends_in_a_refund(ledger).await;
    a_buyer_dispute_in_the_window_stops_the_release(ledger).await;
    a_relayer_killed_between_send_and_confirm_never_sends_twice(ledger).await;
    the_watchtower_reads_how_an_escrow_settled_elsewhere(ledger).await;
}

/// A funded 2-of-4 deal (buyer, seller, arbiter, this relayer) with a `timelock`-second window.
async fn open(ledger: &Ledger, timelock: u32) -> (Parties, escrow::client::Deal) {
    let p = ledger.parties().await;
    let args = p.args(ledger.kms.pubkey(), ledger.now().await, timelock, 3_600);
    let deal = ledger.open(&p, args).await;
    (p, deal)
}

/// A funded deal whose offer is registered with a relayer, after the carrier's `status`
/// webhook made the relayer's approval land (`approve_release` or `approve_refund`).
async fn approved(
    ledger: &Ledger,
    timelock: u32,
    tracking: &str,
    status: &str,
) -> (Parties, escrow::client::Deal, Relayer, uuid::Uuid) {
    let (p, deal) = open(ledger, timelock).await;
    let r = ledger.relayer(ledger.chain.clone()).await;
    let offer = r.register(&p, &deal, tracking).await;
    r.webhook(tracking, &format!("{tracking}-1"), status).await;
    let job = if status == "returned" {
        "approve_refund"
    } else {
        "approve_release"
    };
    r.wait_for(job, "succeeded").await;
    (p, deal, r, offer)
}

/// `who` approves `outcome` from their wallet, its second approval, which schedules it; then
/// the dispute window passes on the chain's clock.
async fn scheduled_and_due(
    ledger: &Ledger,
    deal: &escrow::client::Deal,
    who: &solana_keypair::Keypair,
    outcome: Outcome,
) {
    ledger
        .party(deal.approve(&who.pubkey(), outcome), who)
        .await;
    let eta = ledger.escrow(&deal.escrow).await.unwrap().eta;
    ledger.wait_until(eta).await;
}

async fn a_verified_delivery_ends_in_a_kms_signed_release(ledger: &Ledger) {
    // The carrier says delivered: the relayer approves the release, signed by OpenBao.
    let (p, deal, r, offer) =
        approved(ledger, ledger.timelock(3_600, 3), "1ZSTORY1", "delivered").await;
    let state = ledger.escrow(&deal.escrow).await.unwrap();
    assert_eq!(
        state.release_approvals,
        1 << 3,
        "the relayer's approval landed"
    );
    assert_eq!(state.scheduled(), None, "one approval of two");

    seller_approves_and_is_paid(ledger, &p, &deal, &r, offer).await;
    assert_eq!(
        r.app
            .metric("relayer_offers_settled{settlement=\"released\"}")
            .await,
        1.0
    );
    let signed = r.signed().await;
    assert_eq!(signed.len(), 2, "approve and release");
    assert!(signed.iter().all(|tx| tx.1 == "confirmed"), "{signed:?}");
    assert_eq!(
        r.signer.signed.load(Ordering::SeqCst),
        2,
        "two KMS signatures in all"
    );
    r.app.stop().await;
}

/// After the relayer's approval: the seller approves from their wallet, the release is
/// scheduled, and after the window the watchtower queues the crank that pays them.
async fn seller_approves_and_is_paid(
    ledger: &Ledger,
    p: &Parties,
    deal: &escrow::client::Deal,
    r: &Relayer,
    offer: uuid::Uuid,
) {
    scheduled_and_due(ledger, deal, &p.seller, Outcome::Release).await;
    r.reconcile().await;
    r.wait_for("crank_release", "succeeded").await;
    assert_eq!(
        ledger
            .token_balance(&ata(&p.seller.pubkey(), &p.mint))
            .await,
        AMOUNT,
        "the seller got paid"
    );
    assert!(ledger.escrow(&deal.escrow).await.is_none(), "escrow closed");
    assert_eq!(r.settlement(offer).await.as_deref(), Some("released"));
}

/// Each tracking provider's own "delivered" webhook, verified its way, ends in the release.
pub async fn a_delivery_reported_by_each_provider_ends_in_a_release(ledger: &Ledger) {
    use crate::support::providers as fixtures;
    let shipengine = fixtures::ShipEngine::start().await;
    for provider in relayer::providers::Provider::ALL {
        let (p, deal) = open(ledger, ledger.timelock(3_600, 3)).await;
        let r = ledger
            .start(Setup {
                providers_jwks: Some(shipengine.jwks_url.clone()),
                ..ledger.setup()
            })
            .await;
        let tracking = format!("1ZPROV{}", provider.name().to_uppercase());
        let offer = r
            .register_with(&p, &deal, &tracking, fixtures::carrier(provider))
            .await;
        let now = chrono::Utc::now();
        let body = fixtures::body(
            provider,
            &tracking,
            fixtures::words(provider, "delivered"),
            now,
        );
        let headers = fixtures::headers(provider, &body, now, &shipengine);
        let (code, answer) = r.app.provider_webhook(provider, &body, &headers).await;
        assert_eq!(code, 200, "{}: {answer}", provider.name());
        r.wait_for("approve_release", "succeeded").await;
        seller_approves_and_is_paid(ledger, &p, &deal, &r, offer).await;
        r.app.stop().await;
    }
}

async fn a_returned_parcel_ends_in_a_refund(ledger: &Ledger) {
    let (p, deal, r, offer) =
        approved(ledger, ledger.timelock(3_600, 3), "1ZSTORY2", "returned").await;
    assert_eq!(
        ledger.escrow(&deal.escrow).await.unwrap().refund_approvals,
        1 << 3
    );
    // The buyer confirms the return from their wallet: 2 of 4, the refund is scheduled.
    scheduled_and_due(ledger, &deal, &p.buyer, Outcome::Refund).await;
    r.reconcile().await;
    r.wait_for("crank_refund", "succeeded").await;
    assert_eq!(
        ledger.token_balance(&ata(&p.buyer.pubkey(), &p.mint)).await,
        5 * AMOUNT,
        "the buyer has it all back"
    );
    assert!(ledger.escrow(&deal.escrow).await.is_none());
    assert_eq!(r.settlement(offer).await.as_deref(), Some("refunded"));
    r.app.stop().await;
}

async fn a_buyer_dispute_in_the_window_stops_the_release(ledger: &Ledger) {
    let (p, deal, r, _) = approved(ledger, 3_600, "1ZSTORY3", "delivered").await;
    ledger
        .party(
            deal.approve(&p.seller.pubkey(), Outcome::Release),
            &p.seller,
        )
        .await;
    // The watchtower queues the crank for the eta; it waits, no attempt counted (queued for the
    // eta, or run and deferred when the chain's clock lags the wall clock, as the embedded one's).
    r.reconcile().await;
    eventually("the crank waits for the eta", || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT state = 'pending' AND attempts = 0
                    AND (run_at > now() + interval '1 minute'
                         OR COALESCE(last_error LIKE '%eta is%', false))
             FROM jobs WHERE action = 'crank_release'",
        )
        .fetch_optional(&r.app.pool)
        .await
        .unwrap()
        .unwrap_or(false)
    })
    .await;
    // ...and the buyer disputes inside the window. When the crank's time comes, nothing is due.
    ledger
        .party(deal.dispute(&p.buyer.pubkey()), &p.buyer)
        .await;
    sqlx::query("UPDATE jobs SET run_at = now() WHERE action = 'crank_release'")
        .execute(&r.app.pool)
        .await
        .unwrap();
    r.wait_for("crank_release", "succeeded").await;
    let result = r.result("crank_release").await.unwrap();
    assert!(result.contains("no release is scheduled"), "{result}");
    let state = ledger.escrow(&deal.escrow).await.expect("still open");
    assert_eq!((state.scheduled(), state.release_approvals), (None, 0));
    assert_eq!(
        ledger
            .token_balance(&ata(&p.seller.pubkey(), &p.mint))
            .await,
        0,
        "nothing paid"
    );
    assert_eq!(
        r.signer.signed.load(Ordering::SeqCst),
        1,
        "only the approval was signed"
    );
    r.app.stop().await;
}

async fn a_relayer_killed_between_send_and_confirm_never_sends_twice(ledger: &Ledger) {
    let (p, deal) = open(ledger, 3_600).await;
    let hanging = Arc::new(Network::new(ledger.chain.clone()));
    hanging.hang_status.store(true, Ordering::SeqCst);
    let first = ledger
        .start(Setup {
            chain: hanging.clone(),
            workers: 1,
            ..ledger.setup()
        })
        .await;
    first.register(&p, &deal, "1ZSTORY4").await;
    first.webhook("1ZSTORY4", "story4-1", "delivered").await;
    // Signed, recorded and sent; the confirm stage now hangs asking for its status...
    eventually("transaction recorded", || async {
        first.app.count("chain_txs").await == 1
    })
    .await;
    eventually("transaction landed", || async {
        ledger
            .escrow(&deal.escrow)
            .await
            .is_some_and(|e| e.release_approvals != 0)
    })
    .await;
    // ...and the process dies: no graceful hand-back.
    first.app.task.abort();
    let database_url = first.database_url.clone();
    let second = ledger
        .start(Setup {
            database_url: Some(database_url),
            ..ledger.setup()
        })
        .await;
    second.wait_for("approve_release", "succeeded").await;
    let signed = second.signed().await;
    assert_eq!(signed.len(), 1, "{signed:?}");
    assert_eq!(
        signed[0].1, "confirmed",
        "the restarted relayer confirmed the first transaction"
    );
    assert_eq!(
        first.signer.signed.load(Ordering::SeqCst) + second.signer.signed.load(Ordering::SeqCst),
        1,
        "the KMS signed exactly once"
    );
    let result = second.result("approve_release").await.unwrap();
    assert!(result.contains("sent by an earlier attempt"), "{result}");
    second.app.stop().await;
}

async fn openbao_down_means_retries_then_success(ledger: &Ledger) {
    let (p, deal) = open(ledger, 3_600).await;
    let r = ledger.relayer(ledger.chain.clone()).await;
    r.register(&p, &deal, "1ZSTORY5").await;
    // Process-wide (other tests in this binary sign too): it only has to move.
    let signer_down = "relayer_signer_errors_total{kind=\"unavailable\"}";
    let before = r.app.metric(signer_down).await;
    let pid = ledger.bao().child.id().to_string();
    // Frozen, not gone: requests hang until the signer's timeout.
    Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    r.webhook("1ZSTORY5", "story5-1", "delivered").await;
    eventually("a failed attempt", || async {
        r.last_error("approve_release")
            .await
            .is_some_and(|e| e.contains("signer unavailable"))
    })
    .await;
    assert!(r.app.metric("relayer_job_retries_total").await >= 1.0);
    assert!(
        r.app.metric(signer_down).await > before,
        "the signer alert's metric moved"
    );
    Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    r.wait_for("approve_release", "succeeded").await;
    let attempts: i32 =
        sqlx::query_scalar("SELECT attempts FROM jobs WHERE action = 'approve_release'")
            .fetch_one(&r.app.pool)
            .await
            .unwrap();
    assert!(attempts >= 2, "attempts: {attempts}");
    assert_eq!(
        ledger.escrow(&deal.escrow).await.unwrap().release_approvals,
        1 << 3
    );
    r.app.stop().await;
}

async fn the_watchtower_reads_how_an_escrow_settled_elsewhere(ledger: &Ledger) {
    let (p, deal, r, offer) =
        approved(ledger, ledger.timelock(3_600, 3), "1ZSTORY6", "delivered").await;
    scheduled_and_due(ledger, &deal, &p.seller, Outcome::Release).await;
    // The seller cranks the release before the relayer's watchtower does.
    let seller = p.seller.pubkey();
    ledger
        .send(
            &[
                create_ata(&seller, &seller, &p.mint),
                deal.release(&ata(&seller, &p.mint)),
            ],
            &[&p.seller],
        )
        .await;
    r.reconcile().await;
    assert_eq!(
        r.settlement(offer).await.as_deref(),
        Some("released"),
        "read from the escrow's Released event"
    );
    assert!(
        r.job("crank_release").await.is_none(),
        "nothing left to crank"
    );
    r.app.stop().await;
}

/// The `relayer` binary on the node: it refuses to execute without `RELAYER_ADDRESS` or with
/// another key's, and starts with the right one.
pub async fn serve_refuses_to_execute_without_the_right_relayer_address(ledger: &Ledger) {
    let node = ledger.real_node().expect("a real node");
    let database_url = fresh_database().await;
    let port = free_port();
    let serve = |address: Option<String>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_relayer"));
        cmd.arg("serve")
            .env_clear()
            .env("DATABASE_URL", &database_url)
            .env("TRACKING_HMAC_SECRET", "serve-test-secret-0123456789")
            .env(
                "ACCESS_JWT_SECRET",
                "serve-test-jwt-secret-0123456789abcdef",
            )
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("OPENCLAW_EXECUTE", "true")
            .env("CLUSTER", &node.validator.url)
            .env("SIGNER_MODE", "vault")
            .env("VAULT_URL", &node.bao.url)
            .env("VAULT_TOKEN", crate::support::openbao::TOKEN)
            .env("VAULT_KEY_ID", "relayer")
            .env("RUST_LOG", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(a) = address {
            cmd.env("RELAYER_ADDRESS", a);
        }
        cmd
    };
    for (address, reason) in [
        (None, "RELAYER_ADDRESS is required"),
        (
            Some(Pubkey::new_unique().to_string()),
            "but RELAYER_ADDRESS is",
        ),
    ] {
        let out = serve(address).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(reason),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut server = serve(Some(node.kms.pubkey().to_string())).spawn().unwrap();
    let http = reqwest::Client::new();
    eventually("serve is ready", || async {
        http.get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let _ = server.kill();
    let _ = server.wait();
}

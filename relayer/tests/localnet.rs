//! The stories on a real JSON-RPC node: `solana-test-validator` on loopback with the compiled
//! program, the relayer's RPC backend, and OpenBao signing. Everything goes through RPC.
//!
//! One validator serves every scenario (it costs ~1 core while running), so they run in
//! sequence inside one test, each with its own wallets, mint, escrow and database.
mod support;

use std::{
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use anchor_lang::prelude::Pubkey;
use escrow::Outcome;
use relayer::{
    chain::Chain,
    executor::{ChainExecutor, ExecutorConfig},
    reconcile,
    startup::Role,
};
use solana_signer::Signer;
use support::{
    doubles::{Counting, Network},
    node::{ata, free_port, Node, NodeDeal, AMOUNT, TOKEN},
    *,
};

/// One relayer on a fresh database, for one scenario.
struct Relayer {
    app: TestApp,
    signer: Arc<Counting>,
    database_url: String,
}

impl Node {
    /// A buyer creates and funds an escrow from their own wallet; the relayer is the fourth
    /// approver of a 2-of-4 policy (buyer, seller, an arbiter, the relayer).
    async fn open_deal(&self, tracking: &str, timelock_secs: u32) -> NodeDeal {
        self.open_escrow(tracking, timelock_secs, &[Pubkey::new_unique()])
            .await
    }

    /// A relayer on its own database, acting on `chain` (the node, or a double around it).
    async fn relayer(&self, chain: Arc<dyn Chain>, workers: usize) -> Relayer {
        let database_url = fresh_database().await;
        let signer = Arc::new(Counting {
            inner: self.kms.clone(),
            signed: AtomicUsize::new(0),
        });
        let executor = executor(&database_url, chain, signer.clone());
        let mut cfg = config(&database_url);
        cfg.queue.workers = workers;
        let app = spawn(cfg, Role::All, executor).await;
        Relayer {
            app,
            signer,
            database_url,
        }
    }
}

/// The executor every relayer in these scenarios runs, executing for real.
fn executor(
    database_url: &str,
    chain: Arc<dyn Chain>,
    signer: Arc<Counting>,
) -> Arc<ChainExecutor> {
    Arc::new(ChainExecutor {
        pool: relayer::db::pool(database_url).unwrap(),
        chain,
        signer,
        config: ExecutorConfig {
            execute: true,
            confirm_window: Duration::from_secs(30),
            poll: Duration::from_millis(200),
            max_attempts: 5,
            priority_fee_micro_lamports: 0,
        },
    })
}

impl Relayer {
    async fn register(&self, d: &NodeDeal) {
        self.app.create_offer(&d.offer_body()).await;
    }

    async fn webhook(&self, d: &NodeDeal, id: &str, status: &str) {
        assert_eq!(
            self.app.webhook(&event(id, &d.tracking, status)).await.0,
            200
        );
    }

    async fn job(&self, action: &str) -> Option<(String, Option<String>)> {
        sqlx::query_as("SELECT state, last_error FROM jobs WHERE action = $1")
            .bind(action)
            .fetch_optional(&self.app.pool)
            .await
            .unwrap()
    }

    async fn wait_for(&self, action: &str, state: &str) {
        eventually(&format!("{action} {state}"), || async {
            self.job(action).await.is_some_and(|j| j.0 == state)
        })
        .await;
    }

    async fn settlement(&self) -> Option<String> {
        sqlx::query_scalar("SELECT settlement FROM offers")
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn the_stories_on_a_real_node() {
    let node = Node::start().await;
    delivery_ends_in_a_kms_signed_release(&node).await;
    a_returned_parcel_ends_in_a_refund(&node).await;
    a_buyer_dispute_in_the_window_stops_the_release(&node).await;
    a_relayer_killed_between_send_and_confirm_never_sends_twice(&node).await;
    openbao_down_means_retries_then_success(&node).await;
    the_watchtower_reads_how_an_escrow_settled_elsewhere(&node).await;
    serve_refuses_to_execute_without_the_right_relayer_address(&node).await;
}

async fn delivery_ends_in_a_kms_signed_release(node: &Node) {
    let d = node.open_deal("1ZNODE1", 3).await;
    let r = node.relayer(node.chain.clone(), 2).await;
    r.register(&d).await;
    r.webhook(&d, "n1-1", "delivered").await;
    r.wait_for("approve_release", "succeeded").await;
    assert_eq!(
        node.escrow(&d).await.unwrap().release_approvals,
        1 << 3,
        "the relayer's approval is on-chain"
    );
    node.send(
        &[d.deal.approve(&d.seller.pubkey(), Outcome::Release)],
        &[&d.seller],
    )
    .await;
    node.wait_for_eta(&d).await;
    reconcile::reconcile_once(&r.app.pool, node.chain.as_ref(), 5)
        .await
        .unwrap();
    r.wait_for("crank_release", "succeeded").await;
    assert_eq!(
        node.token_balance(&ata(&d.seller.pubkey(), &d.deal.mint))
            .await,
        AMOUNT,
        "the seller got paid"
    );
    assert!(node.escrow(&d).await.is_none(), "escrow closed");
    assert_eq!(r.settlement().await.as_deref(), Some("released"));
    assert_eq!(
        r.app
            .metric("relayer_offers_settled{settlement=\"released\"}")
            .await,
        1.0
    );
    assert_eq!(
        r.signer.signed.load(Ordering::SeqCst),
        2,
        "approve and release"
    );
    r.app.stop().await;
}

async fn a_returned_parcel_ends_in_a_refund(node: &Node) {
    let d = node.open_deal("1ZNODE2", 3).await;
    let r = node.relayer(node.chain.clone(), 2).await;
    r.register(&d).await;
    r.webhook(&d, "n2-1", "returned").await;
    r.wait_for("approve_refund", "succeeded").await;
    node.send(
        &[d.deal.approve(&d.buyer.pubkey(), Outcome::Refund)],
        &[&d.buyer],
    )
    .await;
    node.wait_for_eta(&d).await;
    reconcile::reconcile_once(&r.app.pool, node.chain.as_ref(), 5)
        .await
        .unwrap();
    r.wait_for("crank_refund", "succeeded").await;
    assert_eq!(
        node.token_balance(&ata(&d.buyer.pubkey(), &d.deal.mint))
            .await,
        5 * AMOUNT,
        "the buyer has it all back"
    );
    assert_eq!(r.settlement().await.as_deref(), Some("refunded"));
    r.app.stop().await;
}

async fn a_buyer_dispute_in_the_window_stops_the_release(node: &Node) {
    let d = node.open_deal("1ZNODE3", 60).await;
    let r = node.relayer(node.chain.clone(), 2).await;
    r.register(&d).await;
    r.webhook(&d, "n3-1", "delivered").await;
    r.wait_for("approve_release", "succeeded").await;
    node.send(
        &[d.deal.approve(&d.seller.pubkey(), Outcome::Release)],
        &[&d.seller],
    )
    .await;
    assert_eq!(
        node.escrow(&d).await.unwrap().scheduled(),
        Some(Outcome::Release)
    );
    node.send(&[d.deal.dispute(&d.buyer.pubkey())], &[&d.buyer])
        .await;
    reconcile::reconcile_once(&r.app.pool, node.chain.as_ref(), 5)
        .await
        .unwrap();
    assert!(
        r.job("crank_release").await.is_none(),
        "nothing scheduled, nothing to crank"
    );
    let state = node.escrow(&d).await.expect("still open");
    assert_eq!((state.scheduled(), state.release_approvals), (None, 0));
    assert_eq!(
        node.token_balance(&ata(&d.seller.pubkey(), &d.deal.mint))
            .await,
        0
    );
    r.app.stop().await;
}

async fn a_relayer_killed_between_send_and_confirm_never_sends_twice(node: &Node) {
    let d = node.open_deal("1ZNODE4", 3).await;
    let hanging = Arc::new(Network::new(node.chain.clone()));
    hanging.hang_status.store(true, Ordering::SeqCst);
    let first = node.relayer(hanging, 1).await;
    first.register(&d).await;
    first.webhook(&d, "n4-1", "delivered").await;
    eventually("transaction recorded", || async {
        first.app.count("chain_txs").await == 1
    })
    .await;
    eventually("transaction landed", || async {
        node.escrow(&d)
            .await
            .is_some_and(|e| e.release_approvals != 0)
    })
    .await;
    // The process dies: no graceful hand-back.
    first.app.task.abort();
    let pool = first.app.pool.clone();
    sqlx::query("UPDATE jobs SET locked_until = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    // A new relayer process on the same database.
    let executor = executor(
        &first.database_url,
        node.chain.clone(),
        first.signer.clone(),
    );
    let second = spawn(config(&first.database_url), Role::All, executor).await;
    eventually("job completed after restart", || async {
        sqlx::query_scalar::<_, String>("SELECT state FROM jobs WHERE action = 'approve_release'")
            .fetch_one(&pool)
            .await
            .is_ok_and(|s| s == "succeeded")
    })
    .await;
    assert_eq!(
        first.signer.signed.load(Ordering::SeqCst),
        1,
        "the KMS signed exactly once"
    );
    let (rows, confirmed): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE state = 'confirmed') FROM chain_txs",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((rows, confirmed), (1, 1));
    second.stop().await;
}

async fn openbao_down_means_retries_then_success(node: &Node) {
    let d = node.open_deal("1ZNODE5", 3).await;
    let r = node.relayer(node.chain.clone(), 2).await;
    r.register(&d).await;
    let pid = node.bao.child.id().to_string();
    Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    r.webhook(&d, "n5-1", "delivered").await;
    eventually("a failed attempt", || async {
        r.job("approve_release")
            .await
            .and_then(|j| j.1)
            .is_some_and(|e| e.contains("signer unavailable"))
    })
    .await;
    Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    r.wait_for("approve_release", "succeeded").await;
    assert_eq!(node.escrow(&d).await.unwrap().release_approvals, 1 << 3);
    r.app.stop().await;
}

async fn the_watchtower_reads_how_an_escrow_settled_elsewhere(node: &Node) {
    let d = node.open_deal("1ZNODE6", 3).await;
    let r = node.relayer(node.chain.clone(), 2).await;
    r.register(&d).await;
    r.webhook(&d, "n6-1", "delivered").await;
    r.wait_for("approve_release", "succeeded").await;
    node.send(
        &[d.deal.approve(&d.seller.pubkey(), Outcome::Release)],
        &[&d.seller],
    )
    .await;
    node.wait_for_eta(&d).await;
    // The seller cranks the release before the relayer's watchtower does.
    use spl_associated_token_account_interface::instruction::create_associated_token_account_idempotent;
    let seller_ata = ata(&d.seller.pubkey(), &d.deal.mint);
    node.send(
        &[
            create_associated_token_account_idempotent(
                &d.seller.pubkey(),
                &d.seller.pubkey(),
                &d.deal.mint,
                &TOKEN,
            ),
            d.deal.release(&seller_ata),
        ],
        &[&d.seller],
    )
    .await;
    reconcile::reconcile_once(&r.app.pool, node.chain.as_ref(), 5)
        .await
        .unwrap();
    assert_eq!(
        r.settlement().await.as_deref(),
        Some("released"),
        "read from the escrow's Released event"
    );
    assert!(
        r.job("crank_release").await.is_none(),
        "nothing left to crank"
    );
    r.app.stop().await;
}

async fn serve_refuses_to_execute_without_the_right_relayer_address(node: &Node) {
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
            .env("VAULT_TOKEN", support::openbao::TOKEN)
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

//! The stories on a real JSON-RPC node: `solana-test-validator` on loopback with the compiled
//! program, the relayer's RPC backend, and OpenBao signing. Everything goes through RPC.
//!
//! One validator serves every scenario (it costs ~1 core while running), so they run in
//! sequence inside one test, each with its own wallets, mint, escrow and database.
mod support;

use std::{
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use anchor_lang::{prelude::Pubkey, solana_program::instruction::Instruction, AccountDeserialize};
use escrow::{client, client::Deal, CreateArgs, Escrow, Outcome};
use relayer::{
    chain::{rpc::RpcChain, Chain},
    executor::{ChainExecutor, ExecutorConfig},
    reconcile,
    signer::{self, SignerConfig, TxSigner},
    startup::Role,
};
use serde_json::json;
use solana_commitment_config::CommitmentConfig;
use solana_keypair::Keypair;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_signer::Signer;
use solana_transaction::Transaction;
use support::{
    doubles::{Counting, Hanging},
    openbao::OpenBao,
    *,
};

const TOKEN: Pubkey = anchor_spl::token::ID;
const AMOUNT: u64 = 1_000_000;

/// A throwaway validator; stopped on drop.
struct Validator {
    child: Child,
    url: String,
    ledger: std::path::PathBuf,
}

impl Drop for Validator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.ledger);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_validator() -> Validator {
    let bin =
        std::env::var("SOLANA_TEST_VALIDATOR").unwrap_or_else(|_| "solana-test-validator".into());
    let so = escrow_tests::program_path();
    let ledger = std::env::temp_dir().join(format!("ledger-{}", uuid::Uuid::new_v4()));
    let (rpc, faucet, gossip) = (free_port(), free_port(), free_port());
    let base = 30_000 + (rpc % 20_000);
    let child = Command::new(&bin)
        .args(["--reset", "--quiet", "--bind-address", "127.0.0.1"])
        .arg("--ledger")
        .arg(&ledger)
        .args([
            "--rpc-port",
            &rpc.to_string(),
            "--faucet-port",
            &faucet.to_string(),
            "--gossip-port",
            &gossip.to_string(),
        ])
        .args(["--dynamic-port-range", &format!("{base}-{}", base + 30)])
        .args(["--bpf-program", &escrow::ID.to_string()])
        .arg(&so)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {bin} ({e}): scripts/test.sh installs it; or set SOLANA_TEST_VALIDATOR"
            )
        });
    let validator = Validator {
        child,
        url: format!("http://127.0.0.1:{rpc}"),
        ledger,
    };
    let client = RpcClient::new(validator.url.clone());
    eventually("validator healthy", || async {
        client.get_health().await.is_ok()
    })
    .await;
    validator
}

/// The node, its RPC clients, and the OpenBao key the relayer signs with.
struct Node {
    validator: Validator,
    rpc: RpcClient,
    chain: Arc<RpcChain>,
    bao: OpenBao,
    kms: Arc<dyn TxSigner>,
}

/// One deal on the node: fresh wallets, mint and funded escrow.
struct NodeDeal {
    deal: Deal,
    buyer: Keypair,
    seller: Keypair,
    tracking: String,
}

/// One relayer on a fresh database, for one scenario.
struct Relayer {
    app: TestApp,
    signer: Arc<Counting>,
    database_url: String,
}

impl Node {
    async fn start() -> Self {
        let validator = start_validator().await;
        let rpc =
            RpcClient::new_with_commitment(validator.url.clone(), CommitmentConfig::confirmed());
        let chain = Arc::new(RpcChain::new(&validator.url));
        let bao = OpenBao::start().await;
        bao.create_key("relayer", json!({ "type": "ed25519" }))
            .await;
        let kms = signer::connect(
            &SignerConfig::Vault(bao.config("relayer", None)),
            None,
            true,
        )
        .await
        .unwrap();
        let node = Self {
            validator,
            rpc,
            chain,
            bao,
            kms,
        };
        node.fund(&node.kms.pubkey()).await;
        node
    }

    async fn send(&self, ixs: &[Instruction], signers: &[&Keypair]) {
        let blockhash = self.rpc.get_latest_blockhash().await.unwrap();
        let tx =
            Transaction::new_signed_with_payer(ixs, Some(&signers[0].pubkey()), signers, blockhash);
        self.rpc
            .send_and_confirm_transaction(&tx)
            .await
            .unwrap_or_else(|e| panic!("transaction failed: {e}"));
    }

    async fn fund(&self, to: &Pubkey) {
        let sig = self.rpc.request_airdrop(to, 10_000_000_000).await.unwrap();
        eventually("airdrop confirmed", || async {
            self.rpc.confirm_transaction(&sig).await.unwrap_or(false)
        })
        .await;
    }

    /// A buyer creates and funds an escrow from their own wallet; the relayer is the fourth
    /// approver of a 2-of-4 policy.
    async fn open_deal(&self, tracking: &str, timelock_secs: u32) -> NodeDeal {
        use anchor_spl::token_2022::spl_token_2022::instruction as token_ix;
        use spl_associated_token_account_interface::instruction::create_associated_token_account_idempotent;
        let (buyer, seller, arbiter, mint) = (
            Keypair::new(),
            Keypair::new(),
            Keypair::new(),
            Keypair::new(),
        );
        for who in [buyer.pubkey(), seller.pubkey()] {
            self.fund(&who).await;
        }
        let rent = self
            .rpc
            .get_minimum_balance_for_rent_exemption(82)
            .await
            .unwrap();
        let buyer_ata = ata(&buyer.pubkey(), &mint.pubkey());
        self.send(
            &[
                anchor_lang::solana_program::system_instruction::create_account(
                    &buyer.pubkey(),
                    &mint.pubkey(),
                    rent,
                    82,
                    &TOKEN,
                ),
                token_ix::initialize_mint2(&TOKEN, &mint.pubkey(), &buyer.pubkey(), None, 6)
                    .unwrap(),
                create_associated_token_account_idempotent(
                    &buyer.pubkey(),
                    &buyer.pubkey(),
                    &mint.pubkey(),
                    &TOKEN,
                ),
                token_ix::mint_to(
                    &TOKEN,
                    &mint.pubkey(),
                    &buyer_ata,
                    &buyer.pubkey(),
                    &[],
                    5 * AMOUNT,
                )
                .unwrap(),
            ],
            &[&buyer, &mint],
        )
        .await;
        let now = self.chain.unix_time().await.unwrap();
        let args = CreateArgs {
            id: 1,
            seller: seller.pubkey(),
            amount: AMOUNT,
            deal_ref: [9; 32],
            approvers: vec![
                buyer.pubkey(),
                seller.pubkey(),
                arbiter.pubkey(),
                self.kms.pubkey(),
            ],
            threshold: 2,
            timelock_secs,
            refund_after: now + 3_600,
        };
        let escrow = client::escrow_address(&buyer.pubkey(), 1).0;
        let deal = Deal {
            escrow,
            buyer: buyer.pubkey(),
            seller: seller.pubkey(),
            mint: mint.pubkey(),
            vault: client::vault_address(&escrow).0,
            token_program: TOKEN,
        };
        self.send(
            &[
                client::create(&buyer.pubkey(), &mint.pubkey(), &TOKEN, args),
                deal.deposit(&buyer_ata),
            ],
            &[&buyer],
        )
        .await;
        NodeDeal {
            deal,
            buyer,
            seller,
            tracking: tracking.into(),
        }
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

    async fn escrow(&self, d: &NodeDeal) -> Option<Escrow> {
        let account = self
            .rpc
            .get_account_with_commitment(&d.deal.escrow, CommitmentConfig::confirmed())
            .await
            .unwrap()
            .value?;
        Escrow::try_deserialize(&mut account.data.as_slice()).ok()
    }

    async fn token_balance(&self, account: &Pubkey) -> u64 {
        self.rpc
            .get_account_with_commitment(account, CommitmentConfig::confirmed())
            .await
            .unwrap()
            .value
            .map_or(0, |a| {
                u64::from_le_bytes(a.data[64..72].try_into().unwrap())
            })
    }

    async fn wait_for_eta(&self, d: &NodeDeal) {
        let eta = self.escrow(d).await.unwrap().eta;
        eventually("the node's clock passed the eta", || async {
            self.chain.unix_time().await.unwrap() >= eta
        })
        .await;
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

fn ata(owner: &Pubkey, mint: &Pubkey) -> Pubkey {
    spl_associated_token_account_interface::address::get_associated_token_address_with_program_id(
        owner, mint, &TOKEN,
    )
}

impl Relayer {
    async fn register(&self, d: &NodeDeal) {
        let body = json!({
            "escrow": d.deal.escrow.to_string(), "buyer": d.buyer.pubkey().to_string(),
            "seller": d.seller.pubkey().to_string(), "mint": d.deal.mint.to_string(),
            "amount": AMOUNT, "tracking_number": d.tracking, "carrier": "ups",
        });
        let resp = self
            .app
            .http
            .post(self.app.url("/v1/offers"))
            .bearer_auth(self.app.token())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
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
    let hanging = Arc::new(Hanging {
        inner: node.chain.clone(),
        hang_status: AtomicBool::new(true),
    });
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

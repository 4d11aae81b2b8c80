//! The story on a real JSON-RPC node: `solana-test-validator` on loopback with the compiled
//! program, the relayer's RPC backend, and OpenBao signing. Everything goes through RPC.
mod support;

use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use anchor_lang::{prelude::Pubkey, solana_program::instruction::Instruction, AccountDeserialize};
use escrow::{client, CreateArgs, Escrow, Outcome};
use relayer::{
    chain::{rpc::RpcChain, Chain},
    executor::{ChainExecutor, ExecutorConfig},
    reconcile,
    signer::{self, SignerConfig},
    startup::Role,
};
use serde_json::json;
use solana_commitment_config::CommitmentConfig;
use solana_keypair::Keypair;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_signer::Signer;
use solana_transaction::Transaction;
use support::{openbao::OpenBao, *};

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

async fn send(rpc: &RpcClient, ixs: &[Instruction], signers: &[&Keypair]) {
    let blockhash = rpc.get_latest_blockhash().await.unwrap();
    let tx =
        Transaction::new_signed_with_payer(ixs, Some(&signers[0].pubkey()), signers, blockhash);
    rpc.send_and_confirm_transaction(&tx)
        .await
        .unwrap_or_else(|e| panic!("transaction failed: {e}"));
}

async fn fund(rpc: &RpcClient, to: &Pubkey) {
    let sig = rpc.request_airdrop(to, 10_000_000_000).await.unwrap();
    eventually("airdrop confirmed", || async {
        rpc.confirm_transaction(&sig).await.unwrap_or(false)
    })
    .await;
}

fn ata(owner: &Pubkey, mint: &Pubkey) -> Pubkey {
    spl_associated_token_account_interface::address::get_associated_token_address_with_program_id(
        owner, mint, &TOKEN,
    )
}

async fn token_balance(rpc: &RpcClient, account: &Pubkey) -> u64 {
    rpc.get_account_with_commitment(account, CommitmentConfig::confirmed())
        .await
        .unwrap()
        .value
        .map_or(0, |a| {
            u64::from_le_bytes(a.data[64..72].try_into().unwrap())
        })
}

#[tokio::test]
async fn on_a_real_node_a_verified_delivery_ends_in_a_kms_signed_release() {
    let validator = start_validator().await;
    let rpc = RpcClient::new_with_commitment(validator.url.clone(), CommitmentConfig::confirmed());
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
    let relayer_key = kms.pubkey();

    // Wallets, a mint, and the buyer's tokens — all through RPC.
    let (buyer, seller, arbiter, mint) = (
        Keypair::new(),
        Keypair::new(),
        Keypair::new(),
        Keypair::new(),
    );
    for who in [
        buyer.pubkey(),
        seller.pubkey(),
        arbiter.pubkey(),
        relayer_key,
    ] {
        fund(&rpc, &who).await;
    }
    let rent = rpc
        .get_minimum_balance_for_rent_exemption(82)
        .await
        .unwrap();
    use anchor_spl::token_2022::spl_token_2022::instruction as token_ix;
    use spl_associated_token_account_interface::instruction::create_associated_token_account_idempotent;
    send(
        &rpc,
        &[
            anchor_lang::solana_program::system_instruction::create_account(
                &buyer.pubkey(),
                &mint.pubkey(),
                rent,
                82,
                &TOKEN,
            ),
            token_ix::initialize_mint2(&TOKEN, &mint.pubkey(), &buyer.pubkey(), None, 6).unwrap(),
            create_associated_token_account_idempotent(
                &buyer.pubkey(),
                &buyer.pubkey(),
                &mint.pubkey(),
                &TOKEN,
            ),
            token_ix::mint_to(
                &TOKEN,
                &mint.pubkey(),
                &ata(&buyer.pubkey(), &mint.pubkey()),
                &buyer.pubkey(),
                &[],
                5 * AMOUNT,
            )
            .unwrap(),
        ],
        &[&buyer, &mint],
    )
    .await;

    // The buyer creates and funds the escrow from their own wallet; the timelock is 3 s.
    let now = chain.unix_time().await.unwrap();
    let args = CreateArgs {
        id: 1,
        seller: seller.pubkey(),
        amount: AMOUNT,
        deal_ref: [9; 32],
        approvers: vec![
            buyer.pubkey(),
            seller.pubkey(),
            arbiter.pubkey(),
            relayer_key,
        ],
        threshold: 2,
        timelock_secs: 3,
        refund_after: now + 3_600,
    };
    let escrow = client::escrow_address(&buyer.pubkey(), 1).0;
    let deal = client::Deal {
        escrow,
        buyer: buyer.pubkey(),
        seller: seller.pubkey(),
        mint: mint.pubkey(),
        vault: client::vault_address(&escrow).0,
        token_program: TOKEN,
    };
    send(
        &rpc,
        &[
            client::create(&buyer.pubkey(), &mint.pubkey(), &TOKEN, args),
            deal.deposit(&ata(&buyer.pubkey(), &mint.pubkey())),
        ],
        &[&buyer],
    )
    .await;

    // The relayer, on this node.
    let database_url = fresh_database().await;
    let executor = Arc::new(ChainExecutor {
        pool: relayer::db::pool(&database_url).unwrap(),
        chain: chain.clone(),
        signer: kms,
        config: ExecutorConfig {
            execute: true,
            confirm_window: Duration::from_secs(30),
            poll: Duration::from_millis(200),
            max_attempts: 5,
            priority_fee_micro_lamports: 0,
        },
    });
    let app = spawn(config(&database_url), Role::All, executor).await;
    let body = json!({
        "escrow": escrow.to_string(), "buyer": buyer.pubkey().to_string(), "seller": seller.pubkey().to_string(),
        "mint": mint.pubkey().to_string(), "amount": AMOUNT, "tracking_number": "1ZNODE", "carrier": "ups",
    });
    let resp = app
        .http
        .post(app.url("/v1/offers"))
        .bearer_auth(app.token())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    let read_escrow = || async {
        let account = rpc
            .get_account_with_commitment(&escrow, CommitmentConfig::confirmed())
            .await
            .unwrap()
            .value?;
        Escrow::try_deserialize(&mut account.data.as_slice()).ok()
    };
    let job_state = |action: &'static str| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT state FROM jobs WHERE action = $1")
                .bind(action)
                .fetch_optional(&pool)
                .await
                .unwrap()
        }
    };

    assert_eq!(
        app.webhook(&event("node-1", "1ZNODE", "delivered")).await.0,
        200
    );
    eventually("approval landed", || async {
        job_state("approve_release").await.as_deref() == Some("succeeded")
    })
    .await;
    assert_eq!(
        read_escrow().await.unwrap().release_approvals,
        1 << 3,
        "the relayer's approval is on-chain"
    );

    send(
        &rpc,
        &[deal.approve(&seller.pubkey(), Outcome::Release)],
        &[&seller],
    )
    .await;
    let eta = read_escrow().await.unwrap().eta;
    eventually("the node's clock passed the eta", || async {
        chain.unix_time().await.unwrap() >= eta
    })
    .await;
    reconcile::reconcile_once(&app.pool, chain.as_ref(), 5)
        .await
        .unwrap();
    eventually("release cranked", || async {
        job_state("crank_release").await.as_deref() == Some("succeeded")
    })
    .await;

    assert_eq!(
        token_balance(&rpc, &ata(&seller.pubkey(), &mint.pubkey())).await,
        AMOUNT,
        "the seller got paid"
    );
    assert!(read_escrow().await.is_none(), "escrow closed");
    let confirmed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM chain_txs WHERE state = 'confirmed'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(confirmed, 2);
    assert_eq!(
        app.metric("relayer_offers_settled{settlement=\"released\"}")
            .await,
        1.0
    );
    app.stop().await;

    // `relayer serve` acting on this node: it refuses to execute without RELAYER_ADDRESS or with
    // another key's, and starts with the right one.
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
            .env("CLUSTER", &validator.url)
            .env("SIGNER_MODE", "vault")
            .env("VAULT_URL", &bao.url)
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
    let mut server = serve(Some(relayer_key.to_string())).spawn().unwrap();
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

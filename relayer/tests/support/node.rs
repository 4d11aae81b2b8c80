//! A real JSON-RPC node for the tests: `solana-test-validator` on loopback with the compiled
//! program, a dev OpenBao holding the relayer's key, and buyers who create and fund escrows
//! from their own wallets. Shared by `localnet` and `faults`.
use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
};

use anchor_lang::{prelude::Pubkey, solana_program::instruction::Instruction, AccountDeserialize};
use escrow::{client, client::Deal, CreateArgs, Escrow};
use relayer::{
    chain::{rpc::RpcChain, Chain},
    signer::TxSigner,
};
use solana_commitment_config::CommitmentConfig;
use solana_keypair::Keypair;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_signer::Signer;
use solana_transaction::Transaction;

use super::{eventually, openbao::OpenBao};

pub const TOKEN: Pubkey = anchor_spl::token::ID;
pub const AMOUNT: u64 = 1_000_000;

/// A throwaway validator; stopped on drop.
pub struct Validator {
    child: Child,
    pub url: String,
    ledger: std::path::PathBuf,
}

impl Drop for Validator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.ledger);
    }
}

pub fn free_port() -> u16 {
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
        // An attacker's program that logs forged escrow events (tests/event-spoofer).
        .args(["--bpf-program", &event_spoofer::ID.to_string()])
        .arg(escrow_tests::event_spoofer_path())
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
pub struct Node {
    pub validator: Validator,
    pub rpc: RpcClient,
    pub chain: Arc<RpcChain>,
    pub bao: OpenBao,
    pub kms: Arc<dyn TxSigner>,
}

/// One deal on the node: fresh wallets, mint and funded escrow.
pub struct NodeDeal {
    pub deal: Deal,
    pub buyer: Keypair,
    pub seller: Keypair,
    pub tracking: String,
}

impl Node {
    pub async fn start() -> Self {
        let validator = start_validator().await;
        let rpc =
            RpcClient::new_with_commitment(validator.url.clone(), CommitmentConfig::confirmed());
        let chain = Arc::new(RpcChain::new(&validator.url));
        let bao = OpenBao::start().await;
        let kms = bao.signer("relayer").await;
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

    pub async fn send(&self, ixs: &[Instruction], signers: &[&Keypair]) {
        let blockhash = self.rpc.get_latest_blockhash().await.unwrap();
        let tx =
            Transaction::new_signed_with_payer(ixs, Some(&signers[0].pubkey()), signers, blockhash);
        self.rpc
            .send_and_confirm_transaction(&tx)
            .await
            .unwrap_or_else(|e| panic!("transaction failed: {e}"));
    }

    pub async fn fund(&self, to: &Pubkey) {
        let sig = self.rpc.request_airdrop(to, 10_000_000_000).await.unwrap();
        eventually("airdrop confirmed", || async {
            self.rpc.confirm_transaction(&sig).await.unwrap_or(false)
        })
        .await;
    }

    /// A buyer creates and funds an escrow from their own wallet, holding 5 × `AMOUNT` of a new
    /// mint first. The approvers are buyer, seller, `others`, then the relayer; threshold 2.
    pub async fn open_escrow(
        &self,
        tracking: &str,
        timelock_secs: u32,
        others: &[Pubkey],
    ) -> NodeDeal {
        let (buyer, seller, mint) = (Keypair::new(), Keypair::new(), Keypair::new());
        for who in [buyer.pubkey(), seller.pubkey()] {
            self.fund(&who).await;
        }
        let rent = self
            .rpc
            .get_minimum_balance_for_rent_exemption(82)
            .await
            .unwrap();
        let buyer_ata = ata(&buyer.pubkey(), &mint.pubkey());
        let (b, m) = (buyer.pubkey(), mint.pubkey());
        let funded = client::new_mint_with_balance(&b, &m, &b, 6, &b, 5 * AMOUNT, rent).unwrap();
        self.send(&funded, &[&buyer, &mint]).await;
        let now = self.chain.unix_time().await.unwrap();
        let approvers = [buyer.pubkey(), seller.pubkey()]
            .into_iter()
            .chain(others.iter().copied())
            .chain([self.kms.pubkey()])
            .collect();
        let args = CreateArgs {
            id: 1,
            seller: seller.pubkey(),
            amount: AMOUNT,
            deal_ref: [9; 32],
            approvers,
            threshold: 2,
            timelock_secs,
            refund_after: now + 3_600,
        };
        let mut deal =
            Deal::before_create(&buyer.pubkey(), 1, &seller.pubkey(), &mint.pubkey(), &TOKEN);
        self.send(
            &[
                client::create(&buyer.pubkey(), &mint.pubkey(), &TOKEN, args),
                deal.deposit(&buyer_ata),
            ],
            &[&buyer],
        )
        .await;
        let mut opened = NodeDeal {
            deal,
            buyer,
            seller,
            tracking: tracking.into(),
        };
        deal.created_slot = self
            .escrow(&opened)
            .await
            .expect("escrow created")
            .created_slot;
        opened.deal = deal;
        opened
    }

    pub async fn escrow(&self, d: &NodeDeal) -> Option<Escrow> {
        let account = self
            .rpc
            .get_account_with_commitment(&d.deal.escrow, CommitmentConfig::confirmed())
            .await
            .unwrap()
            .value?;
        Escrow::try_deserialize(&mut account.data.as_slice()).ok()
    }

    pub async fn token_balance(&self, account: &Pubkey) -> u64 {
        self.rpc
            .get_account_with_commitment(account, CommitmentConfig::confirmed())
            .await
            .unwrap()
            .value
            .map_or(0, |a| {
                u64::from_le_bytes(a.data[64..72].try_into().unwrap())
            })
    }

    pub async fn wait_for_eta(&self, d: &NodeDeal) {
        let eta = self.escrow(d).await.unwrap().eta;
        eventually("the node's clock passed the eta", || async {
            self.chain.unix_time().await.unwrap() >= eta
        })
        .await;
    }
}

impl NodeDeal {
    /// The offer a marketplace registers for this deal (`POST /v1/offers`).
    pub fn offer_body(&self) -> serde_json::Value {
        serde_json::json!({
            "escrow": self.deal.escrow.to_string(), "buyer": self.buyer.pubkey().to_string(),
            "seller": self.seller.pubkey().to_string(), "mint": self.deal.mint.to_string(),
            "amount": AMOUNT, "tracking_number": self.tracking, "carrier": "ups",
        })
    }
}

pub fn ata(owner: &Pubkey, mint: &Pubkey) -> Pubkey {
    spl_associated_token_account_interface::address::get_associated_token_address_with_program_id(
        owner, mint, &TOKEN,
    )
}

//! One chain for a story, whichever backend: the embedded SVM (LiteSVM with the compiled
//! program) or a real `solana-test-validator` over JSON-RPC. Parties sign their own transactions
//! through the same `Chain` interface the relayer uses, and the clock is moved (embedded) or
//! waited for (node), so a story written against a `Ledger` runs unchanged on both.
use std::{
    sync::{atomic::AtomicUsize, Arc},
    time::Duration,
};

use anchor_lang::{prelude::Pubkey, solana_program::instruction::Instruction, AccountDeserialize};
use escrow::{client, client::Deal, CreateArgs, Escrow};
use relayer::{
    chain::{self, embedded::EmbeddedChain, Chain, ConfirmError},
    pipeline::{Handler, Pipeline, PipelineConfig},
    signer::TxSigner,
    startup::Role,
};
use serde_json::json;
use solana_keypair::Keypair;
use solana_signature::Signature;
use solana_signer::Signer;
use solana_transaction::Transaction;
use uuid::Uuid;

use super::{
    config, doubles::Counting, event, eventually, eventually_within, fresh_database, node::Node,
    openbao::OpenBao, spawn, TestApp,
};

pub const TOKEN: Pubkey = anchor_spl::token::ID;
pub const AMOUNT: u64 = 1_000_000;
/// How often parties poll for their transactions (the node confirms in ~0.4 s).
const POLL: Duration = Duration::from_millis(50);

enum Backend {
    /// The OpenBao holding the key, unless the ledger was given another signer.
    Embedded {
        svm: EmbeddedChain,
        bao: Option<OpenBao>,
    },
    Node(Node),
}

pub struct Ledger {
    pub chain: Arc<dyn Chain>,
    /// The relayer's key, held by a real OpenBao (or another KMS: `embedded_signed_by`).
    pub kms: Arc<dyn TxSigner>,
    backend: Backend,
}

/// How a relayer under test runs: on which chain (the ledger's, or a double around it), with how
/// many workers, on which database (a fresh one unless given), executing or simulating.
pub struct Setup {
    pub chain: Arc<dyn Chain>,
    pub workers: usize,
    pub database_url: Option<String>,
    pub execute: bool,
    pub priority_fee_micro_lamports: u64,
    pub role: Role,
    /// Tracking providers' webhooks on, ShipEngine's keys at this JWKS URL.
    pub providers_jwks: Option<String>,
}

/// A buyer, a seller and an arbiter with SOL, and a mint of which the buyer holds 5 × `AMOUNT`.
pub struct Parties {
    pub buyer: Keypair,
    pub seller: Keypair,
    pub arbiter: Keypair,
    pub mint: Pubkey,
}

impl Ledger {
    /// The compiled program (and the event spoofer) in an in-process SVM; the relayer's key in
    /// a real OpenBao.
    pub async fn embedded() -> Self {
        let bao = OpenBao::start().await;
        let kms = bao.signer("relayer").await;
        Self::embedded_with(kms, Some(bao)).await
    }

    /// The embedded chain with the relayer's key in another KMS.
    pub async fn embedded_signed_by(kms: Arc<dyn TxSigner>) -> Self {
        Self::embedded_with(kms, None).await
    }

    async fn embedded_with(kms: Arc<dyn TxSigner>, bao: Option<OpenBao>) -> Self {
        let mut svm = escrow_tests::Svm::new();
        svm.load_event_spoofer();
        let svm = EmbeddedChain::from_svm(svm.svm);
        let ledger = Self {
            chain: Arc::new(svm.clone()),
            kms,
            backend: Backend::Embedded { svm, bao },
        };
        ledger.airdrop(&ledger.kms.pubkey()).await;
        ledger
    }

    /// A fresh `solana-test-validator` with the program (and the event spoofer).
    pub async fn node() -> Self {
        let node = Node::start().await;
        Self {
            chain: node.chain.clone(),
            kms: node.kms.clone(),
            backend: Backend::Node(node),
        }
    }

    pub fn is_node(&self) -> bool {
        matches!(self.backend, Backend::Node(_))
    }

    /// The OpenBao server holding the relayer's key (to freeze it).
    pub fn bao(&self) -> &OpenBao {
        match &self.backend {
            Backend::Embedded { bao, .. } => {
                bao.as_ref().expect("this ledger's key is not in OpenBao")
            }
            Backend::Node(node) => &node.bao,
        }
    }

    /// The node, for what only a real validator has (its URL, the `relayer` binary on it).
    pub fn real_node(&self) -> Option<&Node> {
        match &self.backend {
            Backend::Node(node) => Some(node),
            Backend::Embedded { .. } => None,
        }
    }

    /// The in-process SVM, for what only it can do (read balances without a token account).
    pub fn svm(&self) -> Option<&EmbeddedChain> {
        match &self.backend {
            Backend::Embedded { svm, .. } => Some(svm),
            Backend::Node(_) => None,
        }
    }

    /// Seconds a dispute window must last for a story to act inside it: the node's clock moves
    /// with the wall clock, so its windows are short.
    pub fn timelock(&self, embedded: u32, node: u32) -> u32 {
        if self.is_node() {
            node
        } else {
            embedded
        }
    }

    async fn airdrop(&self, to: &Pubkey) {
        chain::airdrop_and_confirm(&*self.chain, to, 10_000_000_000, POLL)
            .await
            .expect("airdrop");
    }

    pub async fn wallet(&self) -> Keypair {
        let key = Keypair::new();
        self.airdrop(&key.pubkey()).await;
        key
    }

    pub async fn parties(&self) -> Parties {
        let (buyer, seller, arbiter) = (
            self.wallet().await,
            self.wallet().await,
            self.wallet().await,
        );
        let mint = Keypair::new();
        let b = buyer.pubkey();
        let rent = solana_rent_for_mint();
        let ixs =
            client::new_mint_with_balance(&b, &mint.pubkey(), &b, 6, &b, 5 * AMOUNT, rent).unwrap();
        self.send(&ixs, &[&buyer, &mint]).await;
        Parties {
            buyer,
            seller,
            arbiter,
            mint: mint.pubkey(),
        }
    }

    /// Signs `ixs` (the first signer pays), sends and waits; `Err` when it failed on-chain.
    pub async fn try_send(
        &self,
        ixs: &[Instruction],
        signers: &[&Keypair],
    ) -> Result<Signature, ConfirmError> {
        chain::sign_send_and_confirm(&*self.chain, ixs, signers, POLL).await
    }

    pub async fn send(&self, ixs: &[Instruction], signers: &[&Keypair]) -> Signature {
        self.try_send(ixs, signers)
            .await
            .unwrap_or_else(|e| panic!("transaction failed: {e}"))
    }

    /// Sends without a preflight, so that a transaction that fails still lands (fees paid, its
    /// logs recorded), as an attacker's would; returns once it landed, failed or not.
    pub async fn send_to_fail(&self, ixs: &[Instruction], signers: &[&Keypair]) -> Signature {
        let blockhash = self.chain.latest_blockhash().await.unwrap();
        let tx = Transaction::new_signed_with_payer(
            ixs,
            Some(&signers[0].pubkey()),
            signers,
            blockhash.hash,
        );
        let signature = self.chain.send(&tx).await.expect("sent");
        eventually("the transaction landed", || async {
            self.chain.status(&signature).await.unwrap() != chain::TxStatus::Unknown
        })
        .await;
        signature
    }

    pub async fn now(&self) -> i64 {
        self.chain.unix_time().await.unwrap()
    }

    /// Until the chain's clock reads at least `unix`: set on the embedded chain, waited for on
    /// a node (whose clock follows the wall clock, slot by slot).
    pub async fn wait_until(&self, unix: i64) {
        match &self.backend {
            Backend::Embedded { svm, .. } => {
                let mut svm = svm.svm();
                let mut clock = svm.get_sysvar::<anchor_lang::prelude::Clock>();
                clock.unix_timestamp = clock.unix_timestamp.max(unix);
                svm.set_sysvar(&clock);
            }
            Backend::Node(_) => {
                eventually_within("the node's clock", Duration::from_secs(120), || async {
                    self.now().await >= unix
                })
                .await
            }
        }
    }

    pub async fn escrow(&self, address: &Pubkey) -> Option<Escrow> {
        let account = self.chain.account(address).await.unwrap()?;
        Escrow::try_deserialize(&mut account.data.as_slice()).ok()
    }

    /// The buyer creates and funds an escrow from their own wallet, in one transaction; the
    /// deal it returns names the new escrow's creation slot.
    pub async fn open(&self, parties: &Parties, args: CreateArgs) -> Deal {
        let buyer = parties.buyer.pubkey();
        let mut deal = Deal::before_create(&buyer, args.id, &args.seller, &parties.mint, &TOKEN);
        let ixs = [
            client::create(&buyer, &parties.mint, &TOKEN, args),
            deal.deposit(&ata(&buyer, &parties.mint)),
        ];
        self.send(&ixs, &[&parties.buyer]).await;
        deal.created_slot = self
            .escrow(&deal.escrow)
            .await
            .expect("escrow")
            .created_slot;
        deal
    }

    /// The default setup: this ledger's chain, two workers, a fresh database, executing.
    pub fn setup(&self) -> Setup {
        Setup {
            chain: self.chain.clone(),
            workers: 2,
            database_url: None,
            execute: true,
            priority_fee_micro_lamports: 0,
            role: Role::All,
            providers_jwks: None,
        }
    }

    /// A relayer executing on `chain` (this ledger's, or a double around it), on a fresh
    /// database, with its workers and confirm stage running; it has no watchtower of its own
    /// (`Relayer::reconcile`).
    pub async fn relayer(&self, chain: Arc<dyn Chain>) -> Relayer {
        self.start(Setup {
            chain,
            ..self.setup()
        })
        .await
    }

    pub async fn start(&self, setup: Setup) -> Relayer {
        let database_url = match &setup.database_url {
            Some(url) => url.clone(),
            None => fresh_database().await,
        };
        let signer = Arc::new(Counting {
            inner: self.kms.clone(),
            signed: AtomicUsize::new(0),
        });
        let pipeline = self.pipeline(&database_url, setup.chain.clone(), signer.clone(), &setup);
        let mut cfg = config(&database_url);
        cfg.queue.workers = setup.workers;
        // Stories that hold the relayer back need attempts to spare.
        cfg.queue.max_attempts = 100;
        if let Some(jwks) = &setup.providers_jwks {
            super::providers::enable(&mut cfg, jwks);
        }
        Relayer {
            app: spawn(cfg, setup.role, Arc::new(Handler(pipeline))).await,
            chain: setup.chain,
            signer,
            database_url,
        }
    }

    /// The pipeline a relayer of `setup` runs, signing through `signer`.
    pub fn pipeline(
        &self,
        database_url: &str,
        chain: Arc<dyn Chain>,
        signer: Arc<Counting>,
        setup: &Setup,
    ) -> Arc<Pipeline> {
        Pipeline::new(
            relayer::db::pool(database_url).unwrap(),
            chain,
            signer,
            PipelineConfig {
                execute: setup.execute,
                confirm_poll: Duration::from_millis(if self.is_node() { 100 } else { 10 }),
                max_attempts: 5,
                priority_fee_micro_lamports: setup.priority_fee_micro_lamports,
            },
        )
    }

    /// A token account's balance; 0 when it does not exist (yet).
    pub async fn token_balance(&self, account: &Pubkey) -> u64 {
        self.chain.account(account).await.unwrap().map_or(0, |a| {
            u64::from_le_bytes(a.data[64..72].try_into().unwrap())
        })
    }

    /// A party signs one instruction with their own wallet.
    pub async fn party(&self, ix: Instruction, who: &Keypair) -> Signature {
        self.send(&[ix], &[who]).await
    }
}

impl Parties {
    /// A 2-of-4 policy (buyer, seller, arbiter, the relayer) with these windows.
    pub fn args(
        &self,
        relayer: Pubkey,
        now: i64,
        timelock_secs: u32,
        refund_in: i64,
    ) -> CreateArgs {
        CreateArgs {
            id: 1,
            seller: self.seller.pubkey(),
            amount: AMOUNT,
            deal_ref: [9; 32],
            approvers: vec![
                self.buyer.pubkey(),
                self.seller.pubkey(),
                self.arbiter.pubkey(),
                relayer,
            ],
            threshold: 2,
            timelock_secs,
            refund_after: now + refund_in,
        }
    }
}

/// What a cluster charges in rent for a mint account (82 bytes).
fn solana_rent_for_mint() -> u64 {
    anchor_lang::prelude::Rent::default().minimum_balance(82)
}

pub fn ata(owner: &Pubkey, mint: &Pubkey) -> Pubkey {
    spl_associated_token_account_interface::address::get_associated_token_address_with_program_id(
        owner, mint, &TOKEN,
    )
}

/// The owner's associated token account, created by `payer` if missing.
pub fn create_ata(payer: &Pubkey, owner: &Pubkey, mint: &Pubkey) -> Instruction {
    spl_associated_token_account_interface::instruction::create_associated_token_account_idempotent(
        payer, owner, mint, &TOKEN,
    )
}

/// A relayer under test: the real app with workers and the confirm stage.
pub struct Relayer {
    pub app: TestApp,
    pub chain: Arc<dyn Chain>,
    pub signer: Arc<Counting>,
    pub database_url: String,
}

impl Relayer {
    /// Registers the offer for an escrow made elsewhere (no terms); its tracking number is
    /// `tracking`.
    pub async fn register(&self, parties: &Parties, deal: &Deal, tracking: &str) -> Uuid {
        self.register_with(parties, deal, tracking, "ups").await
    }

    pub async fn register_with(
        &self,
        parties: &Parties,
        deal: &Deal,
        tracking: &str,
        carrier: &str,
    ) -> Uuid {
        self.app
            .create_offer(&json!({
                "escrow": deal.escrow.to_string(), "buyer": parties.buyer.pubkey().to_string(),
                "seller": parties.seller.pubkey().to_string(), "mint": parties.mint.to_string(),
                "amount": AMOUNT, "tracking_number": tracking, "carrier": carrier,
            }))
            .await
    }

    pub async fn webhook(&self, tracking: &str, event_id: &str, status: &str) {
        let (code, body) = self.app.webhook(&event(event_id, tracking, status)).await;
        assert_eq!(code, 200, "{body}");
    }

    pub async fn job(&self, action: &str) -> Option<(String, Option<String>, Option<String>)> {
        sqlx::query_as("SELECT state, last_error, result FROM jobs WHERE action = $1")
            .bind(action)
            .fetch_optional(&self.app.pool)
            .await
            .unwrap()
    }

    pub async fn wait_for(&self, action: &str, state: &str) {
        eventually_within(
            &format!("{action} {state}"),
            Duration::from_secs(90),
            || async { self.job(action).await.is_some_and(|j| j.0 == state) },
        )
        .await;
    }

    pub async fn settlement(&self, offer: Uuid) -> Option<String> {
        sqlx::query_scalar("SELECT settlement FROM offers WHERE id = $1")
            .bind(offer)
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }

    /// One pass of the watchtower.
    pub async fn reconcile(&self) {
        relayer::reconcile::reconcile_once(&self.app.pool, &*self.chain, 5)
            .await
            .unwrap();
    }

    pub async fn last_error(&self, action: &str) -> Option<String> {
        self.job(action).await.and_then(|j| j.1)
    }

    pub async fn result(&self, action: &str) -> Option<String> {
        self.job(action).await.and_then(|j| j.2)
    }

    /// Transactions the relayer signed, oldest first: (signature, state, error).
    pub async fn signed(&self) -> Vec<(String, String, Option<String>)> {
        sqlx::query_as("SELECT signature, state, error FROM chain_txs ORDER BY id")
            .fetch_all(&self.app.pool)
            .await
            .unwrap()
    }
}

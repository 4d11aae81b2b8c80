//! An escrow on the embedded chain (LiteSVM with the compiled program) whose approvers include
//! a real OpenBao key, with a fresh database: the setting of `chain_embedded` and `faults`.
use std::{
    sync::{atomic::AtomicUsize, Arc},
    time::Duration,
};

use anchor_lang::{prelude::Pubkey, solana_program::instruction::Instruction};
use escrow_tests::fixtures::{World, AMOUNT};
use relayer::{
    chain::{embedded::EmbeddedChain, Chain},
    executor::{ChainExecutor, ExecutorConfig},
    startup::Role,
};
use serde_json::json;
use solana_keypair::Keypair;
use solana_signer::Signer;
use solana_transaction::Transaction;

use super::{config, doubles::Counting, fresh_database, openbao::OpenBao, spawn, TestApp};

pub struct Story {
    pub world: World,
    pub chain: EmbeddedChain,
    /// Every KMS signature, counted.
    pub signer: Arc<Counting>,
    pub bao: OpenBao,
    pub database_url: String,
}

/// A funded escrow whose approvers include the relayer's OpenBao key, on an embedded chain.
pub async fn story() -> Story {
    story_with(|_| {}).await
}

/// The same, with the escrow's creation arguments adjusted first.
pub async fn story_with(adjust: impl FnOnce(&mut escrow::CreateArgs)) -> Story {
    let bao = OpenBao::start().await;
    let kms = bao.signer("relayer").await;
    let relayer = kms.pubkey();
    let mut world = World::new();
    world.args.approvers[3] = relayer;
    adjust(&mut world.args);
    world.fund();
    world.svm.svm.airdrop(&relayer, 10_000_000_000).unwrap();
    let chain = EmbeddedChain::from_svm(std::mem::take(&mut world.svm.svm));
    Story {
        world,
        chain,
        signer: Arc::new(Counting {
            inner: kms,
            signed: AtomicUsize::new(0),
        }),
        bao,
        database_url: fresh_database().await,
    }
}

impl Story {
    pub fn executor(&self, chain: Arc<dyn Chain>) -> Arc<ChainExecutor> {
        Arc::new(ChainExecutor {
            pool: relayer::db::pool(&self.database_url).unwrap(),
            chain,
            signer: self.signer.clone(),
            config: ExecutorConfig {
                execute: true,
                confirm_window: Duration::from_secs(5),
                poll: Duration::from_millis(20),
                max_attempts: 5,
                priority_fee_micro_lamports: 0,
            },
        })
    }

    /// The relayer, executing on this story's chain.
    pub async fn app(&self) -> TestApp {
        spawn(
            config(&self.database_url),
            Role::All,
            self.executor(Arc::new(self.chain.clone())),
        )
        .await
    }

    pub async fn register(&self, app: &TestApp) -> uuid::Uuid {
        let w = &self.world;
        let body = json!({
            "escrow": w.deal.escrow.to_string(), "buyer": w.buyer.pubkey().to_string(),
            "seller": w.seller.pubkey().to_string(), "mint": w.mint.to_string(),
            "amount": AMOUNT, "tracking_number": "1ZE2E", "carrier": "ups",
        });
        app.create_offer(&body).await
    }

    /// A party signs with its own wallet, outside the relayer.
    pub fn party_sends(&self, ix: Instruction, signer: &Keypair) {
        let blockhash = {
            let mut svm = self.chain.svm();
            svm.expire_blockhash();
            svm.latest_blockhash()
        };
        let message = solana_message::Message::new(&[ix], Some(&signer.pubkey()));
        let tx = Transaction::new(&[signer], message, blockhash);
        self.chain.submit(&tx).expect("party's transaction");
    }

    pub fn escrow(&self) -> Option<escrow::Escrow> {
        let account = self.chain.svm().get_account(&self.world.deal.escrow)?;
        anchor_lang::AccountDeserialize::try_deserialize(&mut account.data.as_slice()).ok()
    }

    /// A token account's balance; 0 when it does not exist (yet).
    pub fn token_balance(&self, account: &Pubkey) -> u64 {
        self.chain.svm().get_account(account).map_or(0, |a| {
            u64::from_le_bytes(a.data[64..72].try_into().unwrap())
        })
    }
}

//! A buyer and a seller with wallets, a mint and a relayer serving Actions and the deal page on
//! the embedded chain: what the Actions and deal-page suites start from.

use std::sync::Arc;

use crate::support::*;
use anchor_lang::prelude::Pubkey;
use base64::Engine;
use escrow_tests::fixtures::{World, AMOUNT, BUYER_FUNDS};
use relayer::chain::embedded::EmbeddedChain;
use serde_json::{json, Value};
use solana_keypair::Keypair;
use solana_signer::Signer;
use solana_transaction::Transaction;
use uuid::Uuid;

pub struct Market {
    pub world: World,
    pub chain: EmbeddedChain,
    pub buyer_token: Pubkey,
    pub seller_token: Pubkey,
    /// A week from now by the wall clock: the relayer checks deadlines against it.
    pub refund_after: i64,
    pub app: TestApp,
}

/// A buyer with tokens in their wallet's token account, and a relayer serving Actions on the
/// same chain. Nothing exists on-chain for the deal yet.
pub async fn market() -> Market {
    market_with(|_, _| {}).await
}

/// `market()` with the relayer's configuration changed by `edit`, which sees the wallets.
pub async fn market_with(edit: impl FnOnce(&mut relayer::config::Config, &World)) -> Market {
    let mut world = World::new();
    let buyer_token = world
        .svm
        .associated_token_account(&world.mint, &world.buyer.pubkey());
    world.svm.mint_to(&world.mint, &buyer_token, BUYER_FUNDS);
    let seller_token = world
        .svm
        .associated_token_account(&world.mint, &world.seller.pubkey());
    let chain = EmbeddedChain::from_svm(std::mem::take(&mut world.svm.svm));
    let mut config = config(&fresh_database().await);
    edit(&mut config, &world);
    let app = spawn_with_chain(config, Arc::new(chain.clone())).await;
    Market {
        world,
        chain,
        buyer_token,
        seller_token,
        refund_after: chrono::Utc::now().timestamp() + 7 * 86_400,
        app,
    }
}

impl Market {
    pub fn terms(&self) -> Value {
        let a = &self.world.args;
        json!({
            "id": a.id,
            "approvers": a.approvers.iter().map(Pubkey::to_string).collect::<Vec<_>>(),
            "threshold": a.threshold, "timelock_secs": a.timelock_secs,
            "refund_after": self.refund_after,
        })
    }

    /// Registers the offer with its terms (no escrow address: the relayer derives it).
    pub async fn register(&self) -> (Uuid, Value) {
        self.register_shipment("ups", "1ZACTION").await
    }

    pub async fn register_shipment(&self, carrier: &str, tracking_number: &str) -> (Uuid, Value) {
        self.register_offer(carrier, tracking_number, Some(self.terms()))
            .await
    }

    /// Registers an offer; without `terms` it names an escrow address where no deal exists.
    pub async fn register_offer(
        &self,
        carrier: &str,
        tracking_number: &str,
        terms: Option<Value>,
    ) -> (Uuid, Value) {
        let w = &self.world;
        let mut body = json!({
            "buyer": w.buyer.pubkey().to_string(), "seller": w.seller.pubkey().to_string(),
            "mint": w.mint.to_string(), "amount": AMOUNT,
            "tracking_number": tracking_number, "carrier": carrier,
        });
        match terms {
            Some(terms) => body["terms"] = terms,
            None => body["escrow"] = json!(Pubkey::new_unique().to_string()),
        }
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
        let offer: Value = resp.json().await.unwrap();
        (offer["id"].as_str().unwrap().parse().unwrap(), offer)
    }

    pub async fn get(
        &self,
        path: &str,
    ) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
        let resp = self.app.http.get(self.app.url(path)).send().await.unwrap();
        (
            resp.status(),
            resp.headers().clone(),
            resp.json().await.unwrap(),
        )
    }

    /// POSTs `{"account": account}` to an action; returns the status and body.
    pub async fn post(&self, action: &str, offer: Uuid, account: &Pubkey) -> (u16, Value) {
        let resp = self
            .app
            .http
            .post(self.app.url(&format!("/api/actions/{action}/{offer}")))
            .json(&json!({ "account": account.to_string() }))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    /// Asks for an action's transaction as `wallet`, signs it with that key and lands it.
    pub async fn act(&self, action: &str, offer: Uuid, wallet: &Keypair) {
        let (status, body) = self.post(action, offer, &wallet.pubkey()).await;
        assert_eq!(status, 200, "{action}: {body}");
        let mut tx = decode(&body);
        assert_eq!(tx.message.account_keys[0], wallet.pubkey(), "fee payer");
        let blockhash = tx.message.recent_blockhash;
        tx.try_sign(&[wallet], blockhash).expect("the wallet signs");
        self.chain
            .submit(&tx)
            .unwrap_or_else(|e| panic!("{action} landed: {:?}", e.meta.logs));
    }

    pub fn escrow(&self) -> Option<escrow::Escrow> {
        use anchor_lang::AccountDeserialize;
        let account = self.chain.svm().get_account(&self.world.deal.escrow)?;
        escrow::Escrow::try_deserialize(&mut account.data.as_slice()).ok()
    }

    pub fn balance(&self, token_account: &Pubkey) -> u64 {
        let data = self.chain.svm().get_account(token_account).unwrap().data;
        u64::from_le_bytes(data[64..72].try_into().unwrap())
    }

    pub fn set_chain_time(&self, unix_timestamp: i64) {
        let mut svm = self.chain.svm();
        let mut clock = svm.get_sysvar::<anchor_lang::prelude::Clock>();
        clock.unix_timestamp = unix_timestamp;
        svm.set_sysvar(&clock);
    }
}

pub fn decode(body: &Value) -> Transaction {
    assert_eq!(body["type"], "transaction");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body["transaction"].as_str().expect("transaction"))
        .expect("base64");
    bincode::deserialize(&bytes).expect("a serialized transaction")
}

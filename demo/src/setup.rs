//! The cast and the props: wallets with SOL, a token mint, the buyer's tokens; and what a
//! wallet does with a transaction an Action hands it.
use anchor_lang::{
    prelude::{Pubkey, Rent},
    AccountDeserialize,
};
use anchor_spl::associated_token::get_associated_token_address_with_program_id;
use anyhow::Context;
use base64::Engine;
use escrow_chain::{airdrop_and_confirm, send_and_confirm, sign_send_and_confirm, Chain};
use serde_json::Value;
use solana_keypair::Keypair;
use solana_signer::Signer;
use solana_transaction::Transaction;
use std::time::Duration;

const TOKEN: Pubkey = anchor_spl::token::ID;
const MINT_LEN: usize = 82;
const POLL: Duration = Duration::from_millis(200);

pub struct Wallets {
    pub buyer: Keypair,
    pub seller: Keypair,
    /// Issues the demo's token (a stand-in for a stablecoin's issuer).
    pub issuer: Keypair,
}

impl Wallets {
    pub fn new() -> Self {
        Self {
            buyer: Keypair::new(),
            seller: Keypair::new(),
            issuer: Keypair::new(),
        }
    }
}

pub struct Deal {
    pub mint: Pubkey,
}

/// SOL for everyone (the relayer pays its own fees), a mint, and the buyer's tokens.
pub async fn market(
    chain: &dyn Chain,
    wallets: &Wallets,
    relayer: &Pubkey,
    decimals: u8,
    buyer_funds: u64,
) -> anyhow::Result<Deal> {
    for who in [
        wallets.buyer.pubkey(),
        wallets.seller.pubkey(),
        wallets.issuer.pubkey(),
        *relayer,
    ] {
        airdrop_and_confirm(chain, &who, 2_000_000_000, POLL).await?;
    }
    let mint = Keypair::new();
    let issuer = wallets.issuer.pubkey();
    let ixs = escrow::client::new_mint_with_balance(
        &issuer,
        &mint.pubkey(),
        &issuer,
        decimals,
        &wallets.buyer.pubkey(),
        buyer_funds,
        Rent::default().minimum_balance(MINT_LEN),
    )?;
    sign_send_and_confirm(chain, &ixs, &[&wallets.issuer, &mint], POLL).await?;
    Ok(Deal {
        mint: mint.pubkey(),
    })
}

/// Where a wallet keeps its tokens of the deal's mint.
pub fn wallet_token(owner: &Pubkey, deal: &Deal) -> Pubkey {
    get_associated_token_address_with_program_id(owner, &deal.mint, &TOKEN)
}

/// Decodes an Action's transaction, signs it with the wallet's key, sends it, waits for it.
pub async fn sign_and_send(
    chain: &dyn Chain,
    action: &Value,
    wallet: &Keypair,
) -> anyhow::Result<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(action["transaction"].as_str().context("no transaction")?)?;
    let mut tx: Transaction = bincode::deserialize(&bytes)?;
    let blockhash = tx.message.recent_blockhash;
    tx.try_sign(&[wallet], blockhash)?;
    let last_valid = chain.latest_blockhash().await?.last_valid_block_height;
    Ok(send_and_confirm(chain, &tx, last_valid, POLL)
        .await?
        .to_string())
}

pub async fn balance(chain: &dyn Chain, token_account: &Pubkey) -> anyhow::Result<u64> {
    Ok(chain
        .account(token_account)
        .await?
        .and_then(|a| {
            a.data
                .get(64..72)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        })
        .unwrap_or(0))
}

pub async fn escrow_state(
    chain: &dyn Chain,
    escrow: &Pubkey,
) -> anyhow::Result<Option<escrow::Escrow>> {
    Ok(match chain.account(escrow).await? {
        Some(a) => Some(escrow::Escrow::try_deserialize(&mut a.data.as_slice())?),
        None => None,
    })
}

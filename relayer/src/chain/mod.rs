//! Chain access behind one small interface, so the pipeline runs the same against a real
//! cluster (RPC) and against the in-process SVM (`embedded`, tests and the demo).
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod rpc;

use std::{future::Future, pin::Pin};

use anchor_lang::prelude::Pubkey;
use solana_hash::Hash;
use solana_signature::Signature;
use solana_transaction::Transaction;

pub type ChainFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ChainError>> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The node could not be reached or failed; retry later.
    #[error("chain unavailable: {0}")]
    Unavailable(String),
    /// The node refused the transaction before executing it (e.g. blockhash not found).
    #[error("transaction rejected: {0}")]
    Rejected(String),
}

#[derive(Clone, Debug)]
pub struct ChainAccount {
    pub owner: Pubkey,
    pub lamports: u64,
    pub data: Vec<u8>,
}

#[derive(Clone, Copy, Debug)]
pub struct RecentBlockhash {
    pub hash: Hash,
    /// The transaction can no longer land once the block height passes this.
    pub last_valid_block_height: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Simulation {
    /// The program error, if the transaction would fail.
    pub err: Option<String>,
    pub logs: Vec<String>,
    pub compute_units: u64,
}

/// What the cluster knows about a signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// Not seen (yet, or ever).
    Unknown,
    /// Landed (confirmed commitment); `err` when it failed on-chain.
    Landed { err: Option<String> },
}

pub trait Chain: Send + Sync + 'static {
    fn account<'a>(&'a self, address: &'a Pubkey) -> ChainFuture<'a, Option<ChainAccount>>;
    fn latest_blockhash(&self) -> ChainFuture<'_, RecentBlockhash>;
    fn block_height(&self) -> ChainFuture<'_, u64>;
    /// Runs the transaction without checking signatures or committing anything.
    fn simulate<'a>(&'a self, tx: &'a Transaction) -> ChainFuture<'a, Simulation>;
    fn send<'a>(&'a self, tx: &'a Transaction) -> ChainFuture<'a, Signature>;
    fn status<'a>(&'a self, signature: &'a Signature) -> ChainFuture<'a, TxStatus>;
    /// The cluster's clock (unix seconds), which the program's timelocks use.
    fn unix_time(&self) -> ChainFuture<'_, i64>;
    /// Log lines of up to `limit` recent transactions that touched `address`, newest first.
    /// (The embedded chain keeps no index by address and returns recent transactions; callers
    /// match what they decode against the address.)
    fn transaction_logs<'a>(
        &'a self,
        address: &'a Pubkey,
        limit: usize,
    ) -> ChainFuture<'a, Vec<Vec<String>>>;
}

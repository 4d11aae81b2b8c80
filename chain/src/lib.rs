//! Chain access behind one small interface, so the pipeline runs the same against a real
//! cluster (RPC) and against the in-process SVM (`embedded`, tests and the demo).
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod rpc;

use std::{future::Future, pin::Pin};

use anchor_lang::{prelude::Pubkey, solana_program::instruction::Instruction};
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_signature::Signature;
use solana_signer::Signer;
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

impl Simulation {
    /// Why the transaction would fail, in the program's own words when it logged an Anchor
    /// error, else the runtime's error; `None` when it would succeed.
    pub fn failure(&self) -> Option<String> {
        self.err
            .as_deref()
            .map(|err| explain_failure(err, &self.logs))
    }
}

/// "message (ErrorName)" from an Anchor error log line (`… Error Code: X. Error Number: N.
/// Error Message: message.`), or `err` unchanged when no program error was logged.
pub fn explain_failure(err: &str, logs: &[String]) -> String {
    logs.iter()
        .rev()
        .find_map(|line| {
            let code = line.split("Error Code: ").nth(1)?.split('.').next()?;
            let message = line.split("Error Message: ").nth(1)?.trim_end_matches('.');
            Some(format!("{message} ({code})"))
        })
        .unwrap_or_else(|| err.to_owned())
}

/// A transaction that touched an address, as the cluster recorded it.
#[derive(Clone, Debug)]
pub struct ChainTx {
    pub signature: Signature,
    pub slot: u64,
    /// Why it failed, if it did: a failed transaction's logs describe changes that were rolled
    /// back, so nothing in them happened.
    pub err: Option<String>,
    pub logs: Vec<String>,
}

impl ChainTx {
    pub fn succeeded(&self) -> bool {
        self.err.is_none()
    }
}

/// Most signatures one `statuses` request may ask about (the node's `getSignatureStatuses` limit).
pub const MAX_STATUSES: usize = 256;

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
    /// One signature's status, searching the node's whole history (slower; for the last word
    /// on a transaction about to be declared expired).
    fn status<'a>(&'a self, signature: &'a Signature) -> ChainFuture<'a, TxStatus>;
    /// The statuses of up to `MAX_STATUSES` recent signatures, in one request, in order.
    fn statuses<'a>(&'a self, signatures: &'a [Signature]) -> ChainFuture<'a, Vec<TxStatus>>;
    /// The cluster's clock (unix seconds), which the program's timelocks use.
    fn unix_time(&self) -> ChainFuture<'_, i64>;
    /// The genesis block's hash: which cluster this is (CAIP-2 `solana:<first 32 characters>`).
    fn genesis_hash(&self) -> ChainFuture<'_, Hash>;
    /// Asks the cluster's faucet for lamports (development clusters only; mainnet has none).
    fn airdrop<'a>(&'a self, to: &'a Pubkey, lamports: u64) -> ChainFuture<'a, Signature>;
    /// Up to `limit` recent transactions that named `address`, newest first, failed ones
    /// included (with their error).
    fn transactions<'a>(
        &'a self,
        address: &'a Pubkey,
        limit: usize,
    ) -> ChainFuture<'a, Vec<ChainTx>>;
}

/// Sends `tx` and waits until it lands or its blockhash expires, polling every `poll`.
/// Returns the signature when it landed without error.
pub async fn send_and_confirm(
    chain: &dyn Chain,
    tx: &Transaction,
    last_valid_block_height: u64,
    poll: std::time::Duration,
) -> Result<Signature, ConfirmError> {
    let signature = chain.send(tx).await?;
    confirm(chain, signature, last_valid_block_height, poll).await
}

/// Signs `ixs` on a fresh blockhash (the first signer pays), sends and confirms them.
pub async fn sign_send_and_confirm(
    chain: &dyn Chain,
    ixs: &[Instruction],
    signers: &[&Keypair],
    poll: std::time::Duration,
) -> Result<Signature, ConfirmError> {
    let payer = signers
        .first()
        .map(|s| s.pubkey())
        .ok_or_else(|| ChainError::Rejected("no signer to pay the fee".into()))?;
    let blockhash = chain.latest_blockhash().await?;
    let tx = Transaction::new_signed_with_payer(ixs, Some(&payer), signers, blockhash.hash);
    send_and_confirm(chain, &tx, blockhash.last_valid_block_height, poll).await
}

/// Asks the faucet for lamports and waits until they land (development clusters only).
pub async fn airdrop_and_confirm(
    chain: &dyn Chain,
    to: &Pubkey,
    lamports: u64,
    poll: std::time::Duration,
) -> Result<Signature, ConfirmError> {
    // The faucet signs on a blockhash at least this recent: its transaction expires no earlier.
    let last_valid = chain.latest_blockhash().await?.last_valid_block_height;
    let signature = chain.airdrop(to, lamports).await?;
    confirm(chain, signature, last_valid, poll).await
}

async fn confirm(
    chain: &dyn Chain,
    signature: Signature,
    last_valid_block_height: u64,
    poll: std::time::Duration,
) -> Result<Signature, ConfirmError> {
    loop {
        match chain.status(&signature).await? {
            TxStatus::Landed { err: None } => return Ok(signature),
            TxStatus::Landed { err: Some(err) } => {
                return Err(ConfirmError::Failed(signature, err))
            }
            TxStatus::Unknown if chain.block_height().await? > last_valid_block_height => {
                return Err(ConfirmError::Expired(signature))
            }
            TxStatus::Unknown => tokio::time::sleep(poll).await,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error("transaction {0} failed on-chain: {1}")]
    Failed(Signature, String),
    #[error("transaction {0} expired before it landed; nothing changed, send it again")]
    Expired(Signature),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_anchor_errors_in_the_programs_words() {
        let logs = vec![
            "Program kez… invoke [1]".to_owned(),
            "Program log: AnchorError occurred. Error Code: NotAnApprover. Error Number: 6027. \
             Error Message: signer is not an approver of this escrow."
                .to_owned(),
        ];
        assert_eq!(
            explain_failure("InstructionError(0, Custom(6027))", &logs),
            "signer is not an approver of this escrow (NotAnApprover)"
        );
        assert_eq!(explain_failure("AccountNotFound", &[]), "AccountNotFound");
    }
}

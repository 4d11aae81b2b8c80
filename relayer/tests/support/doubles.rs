//! Test doubles around the real parts: a signer that counts KMS signatures, a chain whose
//! status lookups can hang (a relayer stuck between send and confirm), and a chain whose node
//! can be switched off.
use std::sync::{
    atomic::{AtomicBool, AtomicUsize, Ordering},
    Arc,
};

use anchor_lang::prelude::Pubkey;
use relayer::{
    chain::{Chain, ChainAccount, ChainError, ChainFuture, RecentBlockhash, Simulation, TxStatus},
    signer::{SignFuture, TxSigner},
};
use solana_signature::Signature;
use solana_transaction::Transaction;

/// Counts the KMS signatures: the key lives only in OpenBao, so this is every transaction the
/// relayer could have produced.
pub struct Counting {
    pub inner: Arc<dyn TxSigner>,
    pub signed: AtomicUsize,
}

impl TxSigner for Counting {
    fn pubkey(&self) -> Pubkey {
        self.inner.pubkey()
    }
    fn sign_unchecked<'a>(&'a self, message: &'a [u8]) -> SignFuture<'a> {
        self.signed.fetch_add(1, Ordering::SeqCst);
        self.inner.sign_unchecked(message)
    }
}

/// The embedded chain, with the status lookups able to hang: a relayer stuck there is a
/// relayer between send and confirm.
pub struct Hanging {
    pub inner: Arc<dyn Chain>,
    pub hang_status: AtomicBool,
}

impl Chain for Hanging {
    fn account<'a>(&'a self, a: &'a Pubkey) -> ChainFuture<'a, Option<ChainAccount>> {
        self.inner.account(a)
    }
    fn latest_blockhash(&self) -> ChainFuture<'_, RecentBlockhash> {
        self.inner.latest_blockhash()
    }
    fn block_height(&self) -> ChainFuture<'_, u64> {
        self.inner.block_height()
    }
    fn simulate<'a>(&'a self, tx: &'a Transaction) -> ChainFuture<'a, Simulation> {
        self.inner.simulate(tx)
    }
    fn send<'a>(&'a self, tx: &'a Transaction) -> ChainFuture<'a, Signature> {
        self.inner.send(tx)
    }
    fn status<'a>(&'a self, s: &'a Signature) -> ChainFuture<'a, TxStatus> {
        if self.hang_status.load(Ordering::SeqCst) {
            return Box::pin(std::future::pending());
        }
        self.inner.status(s)
    }
    fn transaction_logs<'a>(
        &'a self,
        address: &'a Pubkey,
        limit: usize,
    ) -> ChainFuture<'a, Vec<Vec<String>>> {
        self.inner.transaction_logs(address, limit)
    }
    fn unix_time(&self) -> ChainFuture<'_, i64> {
        self.inner.unix_time()
    }
    fn genesis_hash(&self) -> ChainFuture<'_, solana_hash::Hash> {
        self.inner.genesis_hash()
    }
    fn airdrop<'a>(&'a self, to: &'a Pubkey, lamports: u64) -> ChainFuture<'a, Signature> {
        self.inner.airdrop(to, lamports)
    }
}

/// The embedded chain behind an RPC node that can go down: while `down` is on, every call fails
/// with `ChainError::Unavailable`, as `RpcChain` reports a node that refuses connections, times
/// out or answers with errors. `calls_while_down` counts what the relayer tried meanwhile.
pub struct Down {
    pub inner: Arc<dyn Chain>,
    pub down: AtomicBool,
    pub calls_while_down: AtomicUsize,
}

impl Down {
    pub fn new(inner: Arc<dyn Chain>) -> Self {
        Self {
            inner,
            down: AtomicBool::new(false),
            calls_while_down: AtomicUsize::new(0),
        }
    }

    /// `None` while the node answers; the error to return while it is down.
    fn refused(&self) -> Option<ChainError> {
        if !self.down.load(Ordering::SeqCst) {
            return None;
        }
        self.calls_while_down.fetch_add(1, Ordering::SeqCst);
        Some(ChainError::Unavailable(
            "the node is down (switched off by the test)".into(),
        ))
    }
}

/// The inner chain's answer, or the outage's error.
macro_rules! unless_down {
    ($self:ident, $call:expr) => {
        match $self.refused() {
            Some(e) => Box::pin(std::future::ready(Err(e))),
            None => $call,
        }
    };
}

impl Chain for Down {
    fn account<'a>(&'a self, a: &'a Pubkey) -> ChainFuture<'a, Option<ChainAccount>> {
        unless_down!(self, self.inner.account(a))
    }
    fn latest_blockhash(&self) -> ChainFuture<'_, RecentBlockhash> {
        unless_down!(self, self.inner.latest_blockhash())
    }
    fn block_height(&self) -> ChainFuture<'_, u64> {
        unless_down!(self, self.inner.block_height())
    }
    fn simulate<'a>(&'a self, tx: &'a Transaction) -> ChainFuture<'a, Simulation> {
        unless_down!(self, self.inner.simulate(tx))
    }
    fn send<'a>(&'a self, tx: &'a Transaction) -> ChainFuture<'a, Signature> {
        unless_down!(self, self.inner.send(tx))
    }
    fn status<'a>(&'a self, s: &'a Signature) -> ChainFuture<'a, TxStatus> {
        unless_down!(self, self.inner.status(s))
    }
    fn transaction_logs<'a>(
        &'a self,
        address: &'a Pubkey,
        limit: usize,
    ) -> ChainFuture<'a, Vec<Vec<String>>> {
        unless_down!(self, self.inner.transaction_logs(address, limit))
    }
    fn unix_time(&self) -> ChainFuture<'_, i64> {
        unless_down!(self, self.inner.unix_time())
    }
    fn genesis_hash(&self) -> ChainFuture<'_, solana_hash::Hash> {
        unless_down!(self, self.inner.genesis_hash())
    }
    fn airdrop<'a>(&'a self, to: &'a Pubkey, lamports: u64) -> ChainFuture<'a, Signature> {
        unless_down!(self, self.inner.airdrop(to, lamports))
    }
}

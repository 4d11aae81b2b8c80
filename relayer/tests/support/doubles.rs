//! Test doubles around the real parts: a signer that counts KMS signatures, and the network
//! between the relayer and a real chain, which the test can break.
use std::sync::{
    atomic::{AtomicBool, AtomicUsize, Ordering},
    Arc, Mutex,
};

use anchor_lang::prelude::Pubkey;
use relayer::{
    chain::{
        Chain, ChainAccount, ChainError, ChainFuture, ChainTx, RecentBlockhash, Simulation,
        TxStatus,
    },
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

/// A chain seen through a network the test can break: while `down` is on, every call fails with
/// `ChainError::Unavailable`, as `RpcChain` reports a node that refuses connections, times out
/// or answers with errors (`calls_while_down` counts what the relayer tried meanwhile); while
/// `hang_status` is on, status lookups never answer (a relayer stuck there is a relayer between
/// send and confirm); while `hold_sends` is on, sent transactions are kept back, as by a slow
/// network, until `deliver_held` passes them on.
pub struct Network {
    pub inner: Arc<dyn Chain>,
    pub down: AtomicBool,
    pub hang_status: AtomicBool,
    pub hold_sends: AtomicBool,
    pub calls_while_down: AtomicUsize,
    held: Mutex<Vec<Transaction>>,
}

impl Network {
    pub fn new(inner: Arc<dyn Chain>) -> Self {
        Self {
            inner,
            down: AtomicBool::new(false),
            hang_status: AtomicBool::new(false),
            hold_sends: AtomicBool::new(false),
            calls_while_down: AtomicUsize::new(0),
            held: Mutex::default(),
        }
    }

    /// How many sent transactions are held back.
    pub fn held(&self) -> usize {
        self.held.lock().unwrap().len()
    }

    /// Sends every held transaction to the chain, in order; returns their signatures.
    pub async fn deliver_held(&self) -> Vec<Signature> {
        let held = std::mem::take(&mut *self.held.lock().unwrap());
        let mut delivered = Vec::with_capacity(held.len());
        for tx in &held {
            delivered.push(
                self.inner
                    .send(tx)
                    .await
                    .expect("deliver a held transaction"),
            );
        }
        delivered
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

impl Chain for Network {
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
        if self.hold_sends.load(Ordering::SeqCst) && !self.down.load(Ordering::SeqCst) {
            // The same transaction sent again (the relayer resends until it lands) is held once.
            let mut held = self.held.lock().unwrap();
            if !held.iter().any(|t| t.signatures == tx.signatures) {
                held.push(tx.clone());
            }
            return Box::pin(std::future::ready(Ok(tx.signatures[0])));
        }
        unless_down!(self, self.inner.send(tx))
    }
    fn status<'a>(&'a self, s: &'a Signature) -> ChainFuture<'a, TxStatus> {
        if self.hang_status.load(Ordering::SeqCst) {
            return Box::pin(std::future::pending());
        }
        unless_down!(self, self.inner.status(s))
    }
    fn statuses<'a>(&'a self, s: &'a [Signature]) -> ChainFuture<'a, Vec<TxStatus>> {
        if self.hang_status.load(Ordering::SeqCst) {
            return Box::pin(std::future::pending());
        }
        unless_down!(self, self.inner.statuses(s))
    }
    fn transactions<'a>(
        &'a self,
        address: &'a Pubkey,
        limit: usize,
    ) -> ChainFuture<'a, Vec<ChainTx>> {
        unless_down!(self, self.inner.transactions(address, limit))
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

//! Test doubles around the real parts: a signer that counts KMS signatures, and a chain whose
//! status lookups can hang (a relayer stuck between send and confirm).
use std::sync::{
    atomic::{AtomicBool, AtomicUsize, Ordering},
    Arc,
};

use anchor_lang::prelude::Pubkey;
use relayer::{
    chain::{Chain, ChainAccount, ChainFuture, RecentBlockhash, Simulation, TxStatus},
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

//! The chain in-process: LiteSVM with the compiled escrow program and the real token programs.
//! Transactions execute when sent; block height is the slot, advanced by one per transaction,
//! and a blockhash stays valid for 150 blocks as on a cluster.
use std::sync::{Arc, Mutex};

use anchor_lang::prelude::Pubkey;
use litesvm::LiteSVM;
use solana_signature::Signature;
use solana_transaction::Transaction;

use super::{
    Chain, ChainAccount, ChainError, ChainFuture, ChainTx, RecentBlockhash, Simulation, TxStatus,
};

/// Blocks a blockhash stays usable for, as on mainnet.
const BLOCKHASH_VALIDITY: u64 = 150;

/// A submitted transaction: the accounts it named, its signature and the slot it ran in.
type Submitted = (Vec<Pubkey>, Signature, u64);

#[derive(Clone)]
pub struct EmbeddedChain {
    svm: Arc<Mutex<LiteSVM>>,
    /// Every transaction submitted, with the accounts it named: the index an RPC node keeps
    /// for `getSignaturesForAddress`.
    history: Arc<Mutex<Vec<Submitted>>>,
}

impl EmbeddedChain {
    pub fn from_svm(svm: LiteSVM) -> Self {
        Self {
            svm: Arc::new(Mutex::new(svm)),
            history: Arc::default(),
        }
    }

    /// The SVM itself, for tests and the demo to set up accounts and move the clock.
    pub fn svm(&self) -> std::sync::MutexGuard<'_, LiteSVM> {
        self.svm.lock().expect("SVM lock poisoned")
    }

    /// Executes a transaction, as any client of this chain would send it; it is indexed by the
    /// accounts it names. Each transaction is its own block: the slot moves on.
    #[allow(clippy::result_large_err)] // litesvm's own result type, handed back unchanged
    pub fn submit(&self, tx: &Transaction) -> litesvm::types::TransactionResult {
        let mut svm = self.svm();
        let result = svm.send_transaction(tx.clone());
        let slot = Self::slot(&svm);
        svm.warp_to_slot(slot + 1);
        self.history.lock().expect("history lock poisoned").push((
            tx.message.account_keys.clone(),
            tx.signatures[0],
            slot,
        ));
        result
    }

    fn slot(svm: &LiteSVM) -> u64 {
        svm.get_sysvar::<anchor_lang::prelude::Clock>().slot
    }
}

impl Chain for EmbeddedChain {
    fn account<'a>(&'a self, address: &'a Pubkey) -> ChainFuture<'a, Option<ChainAccount>> {
        Box::pin(async move {
            Ok(self
                .svm()
                .get_account(address)
                .filter(|a| a.lamports > 0)
                .map(|a| ChainAccount {
                    owner: a.owner,
                    lamports: a.lamports,
                    data: a.data,
                }))
        })
    }

    fn latest_blockhash(&self) -> ChainFuture<'_, RecentBlockhash> {
        Box::pin(async move {
            let svm = self.svm();
            Ok(RecentBlockhash {
                hash: svm.latest_blockhash(),
                last_valid_block_height: Self::slot(&svm) + BLOCKHASH_VALIDITY,
            })
        })
    }

    fn block_height(&self) -> ChainFuture<'_, u64> {
        Box::pin(async move { Ok(Self::slot(&self.svm())) })
    }

    fn simulate<'a>(&'a self, tx: &'a Transaction) -> ChainFuture<'a, Simulation> {
        Box::pin(async move {
            let mut svm = self.svm();
            // LiteSVM only switches signature checks per instance: off for the simulation, on after.
            let unverified = std::mem::take(&mut *svm).with_sigverify(false);
            let result = unverified.simulate_transaction(tx.clone());
            *svm = unverified.with_sigverify(true);
            Ok(match result {
                Ok(info) => Simulation {
                    err: None,
                    logs: info.meta.logs,
                    compute_units: info.meta.compute_units_consumed,
                },
                Err(failed) => Simulation {
                    err: Some(format!("{:?}", failed.err)),
                    logs: failed.meta.logs,
                    compute_units: failed.meta.compute_units_consumed,
                },
            })
        })
    }

    fn send<'a>(&'a self, tx: &'a Transaction) -> ChainFuture<'a, Signature> {
        Box::pin(async move {
            let signature = tx.signatures[0];
            match self.submit(tx) {
                Ok(_) => Ok(signature),
                // Executed and failed: it landed (fees paid); its status tells the error.
                Err(_) if self.svm().get_transaction(&signature).is_some() => Ok(signature),
                Err(failed) => Err(ChainError::Rejected(format!("{:?}", failed.err))),
            }
        })
    }

    fn status<'a>(&'a self, signature: &'a Signature) -> ChainFuture<'a, TxStatus> {
        Box::pin(async move {
            Ok(match self.svm().get_transaction(signature) {
                None => TxStatus::Unknown,
                Some(Ok(_)) => TxStatus::Landed { err: None },
                Some(Err(failed)) => TxStatus::Landed {
                    err: Some(format!("{:?}", failed.err)),
                },
            })
        })
    }

    fn statuses<'a>(&'a self, signatures: &'a [Signature]) -> ChainFuture<'a, Vec<TxStatus>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(signatures.len());
            for signature in signatures {
                out.push(self.status(signature).await?);
            }
            Ok(out)
        })
    }

    fn transactions<'a>(
        &'a self,
        address: &'a Pubkey,
        limit: usize,
    ) -> ChainFuture<'a, Vec<ChainTx>> {
        Box::pin(async move {
            let named: Vec<(Signature, u64)> = self
                .history
                .lock()
                .expect("history lock poisoned")
                .iter()
                .rev()
                .filter(|(accounts, ..)| accounts.contains(address))
                .map(|(_, signature, slot)| (*signature, *slot))
                .take(limit)
                .collect();
            let svm = self.svm();
            Ok(named
                .into_iter()
                .filter_map(|(signature, slot)| {
                    let (err, logs) = match svm.get_transaction(&signature)? {
                        Ok(meta) => (None, meta.logs.clone()),
                        Err(failed) => {
                            (Some(format!("{:?}", failed.err)), failed.meta.logs.clone())
                        }
                    };
                    Some(ChainTx {
                        signature,
                        slot,
                        err,
                        logs,
                    })
                })
                .collect())
        })
    }

    fn genesis_hash(&self) -> ChainFuture<'_, solana_hash::Hash> {
        // An in-process chain has no genesis block; a fixed hash names it.
        Box::pin(async move {
            Ok(solana_hash::Hash::new_from_array(
                *b"openclaw-embedded-chain-00000000",
            ))
        })
    }

    fn airdrop<'a>(&'a self, to: &'a Pubkey, lamports: u64) -> ChainFuture<'a, Signature> {
        Box::pin(async move {
            self.svm()
                .airdrop(to, lamports)
                .map(|meta| meta.signature)
                .map_err(|failed| ChainError::Rejected(format!("airdrop: {:?}", failed.err)))
        })
    }

    fn unix_time(&self) -> ChainFuture<'_, i64> {
        Box::pin(async move {
            Ok(self
                .svm()
                .get_sysvar::<anchor_lang::prelude::Clock>()
                .unix_timestamp)
        })
    }
}

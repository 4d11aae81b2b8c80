//! A real cluster over JSON-RPC (`solana-rpc-client`, nonblocking), at `confirmed` commitment.
use anchor_lang::prelude::Pubkey;
use solana_commitment_config::CommitmentConfig;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_rpc_client_api::config::{RpcSendTransactionConfig, RpcSimulateTransactionConfig};
use solana_signature::Signature;
use solana_transaction::Transaction;

use super::{
    Chain, ChainAccount, ChainError, ChainFuture, ChainTx, RecentBlockhash, Simulation, TxStatus,
};

/// The Clock sysvar's address and the offset of `unix_timestamp` in its 40-byte layout
/// (slot, epoch_start_timestamp, epoch, leader_schedule_epoch, unix_timestamp).
const CLOCK_SYSVAR: Pubkey = solana_sdk_ids::sysvar::clock::ID;
const UNIX_TIMESTAMP_OFFSET: usize = 32;

pub struct RpcChain {
    client: RpcClient,
}

impl RpcChain {
    /// `cluster`: localnet, devnet, mainnet-beta, or an RPC URL.
    pub fn new(cluster: &str) -> Self {
        let url = match cluster {
            "localnet" => "http://127.0.0.1:8899",
            "devnet" => "https://api.devnet.solana.com",
            "mainnet-beta" => "https://api.mainnet-beta.solana.com",
            url => url,
        };
        Self {
            client: RpcClient::new_with_commitment(url.to_owned(), CommitmentConfig::confirmed()),
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> ChainError {
    ChainError::Unavailable(e.to_string())
}

/// A node's status entry as ours: landed once confirmed, with its error if it failed.
fn landed(status: Option<solana_transaction_status_client_types::TransactionStatus>) -> TxStatus {
    match status {
        Some(s) if s.satisfies_commitment(CommitmentConfig::confirmed()) => TxStatus::Landed {
            err: s.err.map(|e| format!("{e:?}")),
        },
        _ => TxStatus::Unknown,
    }
}

impl Chain for RpcChain {
    fn account<'a>(&'a self, address: &'a Pubkey) -> ChainFuture<'a, Option<ChainAccount>> {
        Box::pin(async move {
            let response = self
                .client
                .get_account_with_commitment(address, CommitmentConfig::confirmed())
                .await
                .map_err(unavailable)?;
            Ok(response.value.map(|a| ChainAccount {
                owner: a.owner,
                lamports: a.lamports,
                data: a.data,
            }))
        })
    }

    fn latest_blockhash(&self) -> ChainFuture<'_, RecentBlockhash> {
        Box::pin(async move {
            let (hash, last_valid_block_height) = self
                .client
                .get_latest_blockhash_with_commitment(CommitmentConfig::confirmed())
                .await
                .map_err(unavailable)?;
            Ok(RecentBlockhash {
                hash,
                last_valid_block_height,
            })
        })
    }

    fn block_height(&self) -> ChainFuture<'_, u64> {
        Box::pin(async move {
            self.client
                .get_block_height_with_commitment(CommitmentConfig::confirmed())
                .await
                .map_err(unavailable)
        })
    }

    fn simulate<'a>(&'a self, tx: &'a Transaction) -> ChainFuture<'a, Simulation> {
        Box::pin(async move {
            let config = RpcSimulateTransactionConfig {
                sig_verify: false,
                replace_recent_blockhash: false,
                commitment: Some(CommitmentConfig::confirmed()),
                ..Default::default()
            };
            let result = self
                .client
                .simulate_transaction_with_config(tx, config)
                .await
                .map_err(unavailable)?
                .value;
            Ok(Simulation {
                err: result.err.map(|e| format!("{e:?}")),
                logs: result.logs.unwrap_or_default(),
                compute_units: result.units_consumed.unwrap_or(0),
            })
        })
    }

    fn send<'a>(&'a self, tx: &'a Transaction) -> ChainFuture<'a, Signature> {
        Box::pin(async move {
            // Preflight is the simulation the executor already ran.
            let config = RpcSendTransactionConfig {
                skip_preflight: true,
                max_retries: Some(0),
                ..Default::default()
            };
            self.client
                .send_transaction_with_config(tx, config)
                .await
                .map_err(unavailable)
        })
    }

    fn status<'a>(&'a self, signature: &'a Signature) -> ChainFuture<'a, TxStatus> {
        Box::pin(async move {
            let statuses = self
                .client
                .get_signature_statuses_with_history(&[*signature])
                .await
                .map_err(unavailable)?
                .value;
            Ok(statuses
                .into_iter()
                .next()
                .map_or(TxStatus::Unknown, landed))
        })
    }

    fn statuses<'a>(&'a self, signatures: &'a [Signature]) -> ChainFuture<'a, Vec<TxStatus>> {
        Box::pin(async move {
            let statuses = self
                .client
                .get_signature_statuses(signatures)
                .await
                .map_err(unavailable)?
                .value;
            Ok(statuses.into_iter().map(landed).collect())
        })
    }

    fn transactions<'a>(
        &'a self,
        address: &'a Pubkey,
        limit: usize,
    ) -> ChainFuture<'a, Vec<ChainTx>> {
        Box::pin(async move {
            use solana_rpc_client::rpc_client::GetConfirmedSignaturesForAddress2Config;
            use solana_rpc_client_api::config::RpcTransactionConfig;
            use solana_transaction_status_client_types::UiTransactionEncoding;
            let config = GetConfirmedSignaturesForAddress2Config {
                limit: Some(limit),
                commitment: Some(CommitmentConfig::confirmed()),
                ..Default::default()
            };
            let signatures = self
                .client
                .get_signatures_for_address_with_config(address, config)
                .await
                .map_err(unavailable)?;
            let mut txs = Vec::with_capacity(signatures.len());
            for entry in signatures {
                let signature: Signature = entry.signature.parse().map_err(unavailable)?;
                let config = RpcTransactionConfig {
                    encoding: Some(UiTransactionEncoding::Json),
                    commitment: Some(CommitmentConfig::confirmed()),
                    max_supported_transaction_version: Some(0),
                };
                let tx = self
                    .client
                    .get_transaction_with_config(&signature, config)
                    .await
                    .map_err(unavailable)?;
                // Without its status meta, a transaction cannot be shown to have succeeded.
                let Some(meta) = tx.transaction.meta else {
                    continue;
                };
                let logs: Option<Vec<String>> = meta.log_messages.into();
                txs.push(ChainTx {
                    signature,
                    slot: tx.slot,
                    err: meta.err.map(|e| format!("{e:?}")),
                    logs: logs.unwrap_or_default(),
                });
            }
            Ok(txs)
        })
    }

    fn genesis_hash(&self) -> ChainFuture<'_, solana_hash::Hash> {
        Box::pin(async move { self.client.get_genesis_hash().await.map_err(unavailable) })
    }

    fn airdrop<'a>(&'a self, to: &'a Pubkey, lamports: u64) -> ChainFuture<'a, Signature> {
        Box::pin(async move {
            self.client
                .request_airdrop(to, lamports)
                .await
                .map_err(unavailable)
        })
    }

    fn unix_time(&self) -> ChainFuture<'_, i64> {
        Box::pin(async move {
            let clock = self
                .account(&CLOCK_SYSVAR)
                .await?
                .ok_or_else(|| ChainError::Unavailable("the Clock sysvar is missing".into()))?;
            let bytes = clock
                .data
                .get(UNIX_TIMESTAMP_OFFSET..UNIX_TIMESTAMP_OFFSET + 8)
                .ok_or_else(|| ChainError::Unavailable("the Clock sysvar is too short".into()))?;
            Ok(i64::from_le_bytes(bytes.try_into().expect("8 bytes")))
        })
    }
}

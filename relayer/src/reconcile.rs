//! The watchtower: compares open offers with their escrows on-chain. When an outcome was
//! scheduled by approvals other than ours (the seller's, an arbiter's), the crank for its eta
//! is queued here, since no job of ours saw it happen.
use std::{str::FromStr, sync::Arc, time::Duration};

use anchor_lang::{prelude::Pubkey, AccountDeserialize};
use escrow::Escrow;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{chain::Chain, executor::queue_crank};

/// One pass over the unsettled offers; returns how many escrows were read.
pub async fn reconcile_once(
    pool: &PgPool,
    chain: &dyn Chain,
    max_attempts: i32,
) -> anyhow::Result<usize> {
    let escrows: Vec<String> = sqlx::query_scalar(
        "SELECT escrow FROM offers WHERE settlement IS NULL ORDER BY created_at",
    )
    .fetch_all(pool)
    .await?;
    for escrow in &escrows {
        let address = Pubkey::from_str(escrow)?;
        let Some(account) = chain.account(&address).await? else {
            continue;
        };
        if account.owner != escrow::ID {
            tracing::warn!(%escrow, "offer's escrow is not owned by the escrow program; check the registration");
            continue;
        }
        if let Ok(state) = Escrow::try_deserialize(&mut account.data.as_slice()) {
            let note = queue_crank(pool, address, &state, max_attempts).await?;
            tracing::debug!(%escrow, %note, "reconciled");
        }
    }
    Ok(escrows.len())
}

/// Runs `reconcile_once` every `interval` until shutdown, and logs each stuck offer (also
/// counted by `relayer_offers_stuck`).
pub async fn run(
    pool: PgPool,
    chain: Arc<dyn Chain>,
    interval: Duration,
    max_attempts: i32,
    stuck_after: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    while tokio::select! { _ = tick.tick() => true, _ = shutdown.cancelled() => false } {
        if let Err(e) = reconcile_once(&pool, chain.as_ref(), max_attempts).await {
            tracing::warn!(error = %e, "reconciliation pass failed; next pass in {interval:?}");
        }
        match crate::metrics::stuck_offers(&pool, stuck_after).await {
            Ok(stuck) => {
                for escrow in stuck {
                    tracing::warn!(%escrow, "offer ended but its escrow has not settled: check its jobs (GET /v1/jobs?state=dead) and the escrow on-chain");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not look for stuck offers"),
        }
    }
}

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
            // Closed by someone else (our own cranks record their settlement): read how from
            // the escrow's own events.
            if let Some(settlement) = settlement_from_events(chain, &address).await? {
                let mut tx = pool.begin().await?;
                let offer: uuid::Uuid =
                    sqlx::query_scalar("SELECT id FROM offers WHERE escrow = $1")
                        .bind(escrow)
                        .fetch_one(&mut *tx)
                        .await?;
                crate::executor::record_settlement(
                    &mut tx,
                    offer,
                    settlement,
                    "read from the chain",
                )
                .await?;
                tx.commit().await?;
                tracing::info!(%escrow, settlement, "settlement read from the chain");
            }
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

/// How a closed escrow settled, from its `Released` / `Refunded` event in recent transaction logs.
async fn settlement_from_events(
    chain: &dyn Chain,
    escrow_address: &Pubkey,
) -> anyhow::Result<Option<&'static str>> {
    use anchor_lang::{AnchorDeserialize, Discriminator};
    use base64::Engine;
    use escrow::events::{Refunded, Released};
    for logs in chain.transaction_logs(escrow_address, 20).await? {
        for data in logs.iter().filter_map(|l| l.strip_prefix("Program data: ")) {
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data) else {
                continue;
            };
            let (discriminator, body) = bytes.split_at(bytes.len().min(8));
            if discriminator == Released::DISCRIMINATOR {
                if Released::try_from_slice(body).is_ok_and(|e| e.escrow == *escrow_address) {
                    return Ok(Some("released"));
                }
            } else if discriminator == Refunded::DISCRIMINATOR
                && Refunded::try_from_slice(body).is_ok_and(|e| e.escrow == *escrow_address)
            {
                return Ok(Some("refunded"));
            }
        }
    }
    Ok(None)
}

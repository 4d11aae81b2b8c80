//! The watchtower: compares open offers with their deals on-chain. When an outcome was
//! scheduled by approvals other than ours (the seller's, an arbiter's), the crank for its eta
//! is queued here, since no job of ours saw it happen; when the offer's deal closed without us,
//! how it ended is read from the deal's own events.
//!
//! Everything is about the deal the offer is bound to (`crate::deal`): a later deal at the same
//! address is never cranked, and its events never settle the offer.
use std::{sync::Arc, time::Duration};

use anchor_lang::AccountDeserialize;
use escrow::Escrow;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{
    chain::Chain,
    deal::{self, OfferKeys, OnChainTerms},
    executor::queue_crank,
};

/// One pass over the unsettled offers; returns how many were looked at.
pub async fn reconcile_once(
    pool: &PgPool,
    chain: &dyn Chain,
    max_attempts: i32,
) -> anyhow::Result<usize> {
    let offers = deal::unsettled(pool).await?;
    for offer in &offers {
        reconcile_offer(pool, chain, offer, max_attempts).await?;
    }
    Ok(offers.len())
}

async fn reconcile_offer(
    pool: &PgPool,
    chain: &dyn Chain,
    offer: &OfferKeys,
    max_attempts: i32,
) -> anyhow::Result<()> {
    let escrow = offer.escrow;
    let open = match chain.account(&escrow).await? {
        None => None,
        Some(account) if account.owner != escrow::ID => {
            tracing::warn!(%escrow, "offer's escrow is not owned by the escrow program; check the registration");
            return Ok(());
        }
        Some(account) => Escrow::try_deserialize(&mut account.data.as_slice()).ok(),
    };
    match (open, offer.created_slot) {
        // The bound deal is open: queue the crank of whatever is scheduled on it.
        (Some(state), Some(bound)) if state.created_slot == bound => {
            let note = queue_crank(pool, offer.id, &state, max_attempts).await?;
            tracing::debug!(%escrow, %note, "reconciled");
        }
        // The bound deal closed; the address is empty or holds a later deal.
        (_, Some(bound)) => settle_from_history(pool, chain, offer, bound).await?,
        // Not bound yet and open: bind it if it is the registered deal.
        (Some(state), None) => match deal::check_matches(&OnChainTerms::from(&state), offer) {
            Ok(()) => {
                let mut conn = pool.acquire().await?;
                deal::bind(&mut conn, offer.id, state.created_slot).await?;
                drop(conn);
                queue_crank(pool, offer.id, &state, max_attempts).await?;
            }
            Err(why) => tracing::warn!(%escrow, "{why}"),
        },
        // Never seen open: its creation event says which deal was the registered one.
        (None, None) => {
            if let Some(slot) = deal::first_matching(chain, offer).await? {
                let mut conn = pool.acquire().await?;
                deal::bind(&mut conn, offer.id, slot).await?;
                drop(conn);
                settle_from_history(pool, chain, offer, slot).await?;
            }
        }
    }
    Ok(())
}

async fn settle_from_history(
    pool: &PgPool,
    chain: &dyn Chain,
    offer: &OfferKeys,
    created_slot: u64,
) -> anyhow::Result<()> {
    let escrow = offer.escrow;
    match deal::ending(chain, &escrow, created_slot).await? {
        Some(ending) => {
            if deal::record_ending(pool, offer.id, created_slot, ending).await? {
                tracing::info!(%escrow, created_slot, ending = ending.as_str(), "the offer's deal ended; read from the chain");
            }
        }
        None => tracing::warn!(
            %escrow, created_slot,
            "the offer's deal has closed but its ending is not among the escrow's last {} transactions; check the escrow's history",
            deal::HISTORY_WINDOW
        ),
    }
    Ok(())
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

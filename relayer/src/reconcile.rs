//! The watchtower: compares open offers with their deals on-chain. When an outcome was
//! scheduled by approvals other than ours (the seller's, an arbiter's), the crank for its eta
//! is queued here, since no job of ours saw it happen; when the offer's deal closed without us,
//! how it ended is read from the deal's own events.
//!
//! Everything is about the deal the offer is bound to (`crate::deal`): a later deal at the same
//! address is never cranked, and its events never settle the offer.
use std::{sync::Arc, time::Duration};

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{
    chain::Chain,
    config::StuckConfig,
    deal::{self, EscrowAt},
    domain::offer::{Offer, OnChainTerms},
    offers,
    pipeline::queue_crank,
};

/// One pass over the unsettled offers; returns how many were looked at.
pub async fn reconcile_once(
    pool: &PgPool,
    chain: &dyn Chain,
    max_attempts: i32,
) -> anyhow::Result<usize> {
    let unsettled = offers::unsettled(pool).await?;
    for offer in &unsettled {
        reconcile_offer(pool, chain, offer, max_attempts).await?;
    }
    Ok(unsettled.len())
}

async fn reconcile_offer(
    pool: &PgPool,
    chain: &dyn Chain,
    offer: &Offer,
    max_attempts: i32,
) -> anyhow::Result<()> {
    let escrow = offer.escrow;
    let open = match deal::read(chain, &escrow).await? {
        EscrowAt::Nothing => None,
        EscrowAt::Foreign(why) => {
            tracing::warn!(%escrow, "{why}; check the offer's registration");
            return Ok(());
        }
        EscrowAt::Open(state) => Some(state),
    };
    match (open, offer.deal_slot) {
        // The bound deal is open: queue the crank of whatever is scheduled on it.
        (Some(state), Some(bound)) if state.created_slot == bound => {
            let note = queue_crank(pool, offer.id, &state, max_attempts).await?;
            tracing::debug!(%escrow, %note, "reconciled");
        }
        // The bound deal closed; the address is empty or holds a later deal.
        (_, Some(bound)) => settle_from_history(pool, chain, offer, bound).await?,
        // Not bound yet and open: bind it if it is the registered deal.
        (Some(state), None) => match offer.check_deal(&OnChainTerms::from(&*state)) {
            Ok(()) => {
                let mut conn = pool.acquire().await?;
                offers::bind_deal(&mut conn, offer.id, state.created_slot).await?;
                drop(conn);
                queue_crank(pool, offer.id, &state, max_attempts).await?;
            }
            Err(why) => tracing::warn!(%escrow, "{why}"),
        },
        // Never seen open: its creation event says which deal was the registered one.
        (None, None) => {
            if let Some(slot) = deal::first_matching(chain, offer).await? {
                let mut conn = pool.acquire().await?;
                offers::bind_deal(&mut conn, offer.id, slot).await?;
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
    offer: &Offer,
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
    stuck: StuckConfig,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    while tokio::select! { _ = tick.tick() => true, _ = shutdown.cancelled() => false } {
        if let Err(e) = reconcile_once(&pool, chain.as_ref(), max_attempts).await {
            tracing::warn!(error = %e, "reconciliation pass failed; next pass in {interval:?}");
        }
        match offers::stuck(&pool, stuck).await {
            Ok(stuck) => {
                for (escrow, reason) in stuck {
                    let what = match reason.as_str() {
                        "settle_overdue" => "offer ended but its escrow has not settled: check its jobs (GET /v1/jobs?state=dead) and the escrow on-chain",
                        "frozen_in_transit" => "offer's status is dated in the future, so carrier events are ignored as older: check its events (GET /v1/offers/<id>) and correct status_at",
                        _ => "shipment in transit with no carrier event for TRANSIT_SILENT_AFTER_SECS: ask the carrier, check that its webhooks still arrive",
                    };
                    tracing::warn!(%escrow, %reason, "{what}");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not look for stuck offers"),
        }
    }
}

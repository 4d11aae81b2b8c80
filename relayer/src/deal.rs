//! An offer's deal on the chain: the escrow account at the offer's address, and the escrow's
//! history, read for the deal the offer is bound to.
//!
//! An escrow's address is reused once its deal closes (the buyer may create the same id again),
//! so the address alone does not name a deal. An offer is bound to the first deal the relayer
//! sees at its address that matches its registration (`Offer::deal_slot`, its creation slot);
//! from then on only that deal is approved, cranked, or read as the offer's settlement. Every
//! instruction the relayer signs names the deal by that slot, and the program refuses it on any
//! other deal.
use anchor_lang::{prelude::Pubkey, AccountDeserialize};
use escrow::{event_log::DealEvent, Escrow};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    chain::{Chain, ChainError, ChainTx},
    domain::offer::{Offer, OnChainTerms, Settlement},
    offers,
};

/// How many recent transactions of an escrow the watchtower reads to learn how a deal ended.
pub const HISTORY_WINDOW: usize = 50;

/// What is at an escrow address.
pub enum EscrowAt {
    /// No account: the deal there closed (or none was created yet).
    Nothing,
    /// An account the escrow program does not own, or not an escrow.
    Foreign(String),
    Open(Box<Escrow>),
}

/// Reads and decodes the account at `address`.
pub async fn read(chain: &dyn Chain, address: &Pubkey) -> Result<EscrowAt, ChainError> {
    Ok(match chain.account(address).await? {
        None => EscrowAt::Nothing,
        Some(account) if account.owner != escrow::ID => {
            EscrowAt::Foreign(format!("{address} is not owned by the escrow program"))
        }
        Some(account) => match Escrow::try_deserialize(&mut account.data.as_slice()) {
            Ok(state) => EscrowAt::Open(Box::new(state)),
            Err(_) => EscrowAt::Foreign(format!("{address} is not an escrow account")),
        },
    })
}

/// How a closed deal ended, from its own events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Settled(Settlement),
    /// Closed by its buyer before any deposit.
    Cancelled,
}

impl Ending {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Settled(s) => s.as_str(),
            Self::Cancelled => "cancelled",
        }
    }
}

/// The events the escrow program emitted in the escrow's recent successful transactions, newest
/// transaction first. Failed transactions are skipped (their changes were rolled back), and
/// lines other programs wrote are not the program's events (`escrow::event_log`).
async fn genuine_events(chain: &dyn Chain, escrow: &Pubkey) -> Result<Vec<DealEvent>, ChainError> {
    Ok(genuine(
        &chain.transactions(escrow, HISTORY_WINDOW).await?,
        escrow,
    ))
}

/// `genuine_events` of transactions already read.
pub fn genuine(txs: &[ChainTx], escrow: &Pubkey) -> Vec<DealEvent> {
    txs.iter()
        .filter(|tx| tx.succeeded())
        .flat_map(|tx| escrow::event_log::deal_events(&tx.logs))
        .filter(|e| e.deal().0 == *escrow)
        .collect()
}

/// How the deal created at `created_slot` ended, if its ending is in the escrow's recent history.
/// Events of other deals at the same address are ignored.
pub async fn ending(
    chain: &dyn Chain,
    escrow: &Pubkey,
    created_slot: u64,
) -> Result<Option<Ending>, ChainError> {
    Ok(genuine_events(chain, escrow)
        .await?
        .iter()
        .filter(|e| e.deal().1 == created_slot)
        .find_map(|e| match e {
            DealEvent::Released(_) => Some(Ending::Settled(Settlement::Released)),
            DealEvent::Refunded(_) => Some(Ending::Settled(Settlement::Refunded)),
            DealEvent::Cancelled(_) => Some(Ending::Cancelled),
            DealEvent::Created(_) => None,
        }))
}

/// The oldest deal in the escrow's recent history whose creation matches the offer: the one it
/// was registered for, when the relayer never saw it open.
pub async fn first_matching(chain: &dyn Chain, offer: &Offer) -> Result<Option<u64>, ChainError> {
    Ok(first_matching_in(
        &genuine_events(chain, &offer.escrow).await?,
        offer,
    ))
}

/// `first_matching` among events already read (newest first).
pub fn first_matching_in(events: &[DealEvent], offer: &Offer) -> Option<u64> {
    events.iter().rev().find_map(|e| match e {
        DealEvent::Created(created) if offer.check_deal(&OnChainTerms::from(created)).is_ok() => {
            Some(created.created_slot)
        }
        _ => None,
    })
}

/// Records what the watchtower learnt of a closed bound deal: its settlement (once), or, for a
/// cancelled one, that the offer is free again. Returns whether anything changed.
pub async fn record_ending(
    pool: &PgPool,
    offer: Uuid,
    created_slot: u64,
    ending: Ending,
) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let changed = match ending {
        Ending::Cancelled => offers::unbind_cancelled(&mut tx, offer, created_slot).await?,
        Ending::Settled(s) => {
            offers::record_settlement(&mut tx, offer, s, "read from the chain").await?
        }
    };
    tx.commit().await?;
    Ok(changed)
}

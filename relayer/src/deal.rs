//! The deal an offer is bound to: the escrow at the offer's address that was created in one
//! particular slot.
//!
//! An escrow's address is reused once its deal closes (the buyer may create the same id again),
//! so the address alone does not name a deal. An offer is bound to the first deal the relayer
//! sees at its address that matches its registration (`offers.escrow_created_slot`); from then on
//! only that deal is approved, cranked, or read as the offer's settlement. Every instruction the
//! relayer signs names the deal by that slot, and the program refuses it on any other deal.
use anchor_lang::prelude::Pubkey;
use escrow::{event_log::DealEvent, events::Created, Escrow};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    audit,
    chain::{Chain, ChainError},
};

/// How many recent transactions of an escrow the watchtower reads to learn how a deal ended.
pub const HISTORY_WINDOW: usize = 50;

/// An offer as the chain side needs it.
pub struct OfferKeys {
    pub id: Uuid,
    pub escrow: Pubkey,
    pub buyer: Pubkey,
    pub seller: Pubkey,
    pub mint: Pubkey,
    pub amount: u64,
    /// The policy registered with the offer, when it was (see `DealTermsBody`).
    pub terms: Option<Terms>,
    /// The creation slot of the deal the offer is bound to, once the relayer has seen it.
    pub created_slot: Option<u64>,
    /// `released` or `refunded` once the bound deal has settled.
    pub settlement: Option<String>,
}

pub struct Terms {
    pub approvers: Vec<Pubkey>,
    pub threshold: u8,
    pub timelock_secs: u32,
    pub refund_after: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A value the relayer checked at registration no longer parses: retrying cannot help.
    #[error("offer {0}: {1}")]
    Corrupt(Uuid, String),
}

#[derive(sqlx::FromRow)]
struct OfferRow {
    id: Uuid,
    escrow: String,
    buyer: String,
    seller: String,
    mint: String,
    amount: i64,
    approvers: Option<Vec<String>>,
    threshold: Option<i16>,
    timelock_secs: Option<i32>,
    refund_after: Option<i64>,
    escrow_created_slot: Option<i64>,
    settlement: Option<String>,
}

const SELECT_OFFERS: &str = "SELECT id, escrow, buyer, seller, mint, amount, approvers, \
     threshold, timelock_secs, refund_after, escrow_created_slot, settlement FROM offers";

impl TryFrom<OfferRow> for OfferKeys {
    type Error = LoadError;
    fn try_from(row: OfferRow) -> Result<Self, LoadError> {
        let id = row.id;
        let corrupt = |what: &str| LoadError::Corrupt(id, what.to_owned());
        let key = |s: &str| s.parse::<Pubkey>().map_err(|_| corrupt("bad address"));
        let terms = match (
            row.approvers,
            row.threshold,
            row.timelock_secs,
            row.refund_after,
        ) {
            (Some(approvers), Some(threshold), Some(timelock), Some(refund_after)) => Some(Terms {
                approvers: approvers.iter().map(|a| key(a)).collect::<Result<_, _>>()?,
                threshold: u8::try_from(threshold).map_err(|_| corrupt("bad threshold"))?,
                timelock_secs: u32::try_from(timelock).map_err(|_| corrupt("bad timelock"))?,
                refund_after,
            }),
            _ => None,
        };
        Ok(Self {
            id,
            escrow: key(&row.escrow)?,
            buyer: key(&row.buyer)?,
            seller: key(&row.seller)?,
            mint: key(&row.mint)?,
            amount: u64::try_from(row.amount).map_err(|_| corrupt("negative amount"))?,
            terms,
            created_slot: row
                .escrow_created_slot
                .map(|s| u64::try_from(s).map_err(|_| corrupt("negative slot")))
                .transpose()?,
            settlement: row.settlement,
        })
    }
}

pub async fn load(pool: &PgPool, id: Uuid) -> Result<OfferKeys, LoadError> {
    let row: OfferRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_OFFERS} WHERE id = $1"
    )))
    .bind(id)
    .fetch_one(pool)
    .await?;
    row.try_into()
}

/// Offers whose deal has not settled, oldest first: what the watchtower follows.
pub async fn unsettled(pool: &PgPool) -> Result<Vec<OfferKeys>, LoadError> {
    let rows: Vec<OfferRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_OFFERS} WHERE settlement IS NULL ORDER BY created_at"
    )))
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(OfferKeys::try_from).collect()
}

/// A deal's terms as the chain holds them, from its escrow account or its `Created` event.
pub struct OnChainTerms<'a> {
    pub buyer: Pubkey,
    pub seller: Pubkey,
    pub mint: Pubkey,
    pub amount: u64,
    pub approvers: &'a [Pubkey],
    pub threshold: u8,
    pub timelock_secs: u32,
    pub refund_after: i64,
    pub deal_ref: [u8; 32],
}

impl<'a> From<&'a Escrow> for OnChainTerms<'a> {
    fn from(e: &'a Escrow) -> Self {
        Self {
            buyer: e.buyer,
            seller: e.seller,
            mint: e.mint,
            amount: e.amount,
            approvers: e.approvers(),
            threshold: e.threshold,
            timelock_secs: e.timelock_secs,
            refund_after: e.refund_after,
            deal_ref: e.deal_ref,
        }
    }
}

impl<'a> From<&'a Created> for OnChainTerms<'a> {
    fn from(e: &'a Created) -> Self {
        Self {
            buyer: e.buyer,
            seller: e.seller,
            mint: e.mint,
            amount: e.amount,
            approvers: &e.approvers,
            threshold: e.threshold,
            timelock_secs: e.timelock_secs,
            refund_after: e.refund_after,
            deal_ref: e.deal_ref,
        }
    }
}

/// The deal on-chain and the offer must describe the same deal, under a policy where the
/// relayer's approval alone cannot move the money; with registered terms, exactly that policy.
/// The refusal says what differs.
pub fn check_matches(deal: &OnChainTerms, offer: &OfferKeys) -> Result<(), String> {
    if deal.threshold < 2 {
        return Err(format!(
            "escrow {} needs only {} approval: the relayer's alone would move the funds, so it \
             does not approve escrows with a threshold below 2",
            offer.escrow, deal.threshold
        ));
    }
    let terms = offer.terms.as_ref();
    let mismatch = [
        ("mint", deal.mint != offer.mint),
        ("buyer", deal.buyer != offer.buyer),
        ("seller", deal.seller != offer.seller),
        ("amount", deal.amount != offer.amount),
        (
            "approvers",
            terms.is_some_and(|t| deal.approvers != t.approvers.as_slice()),
        ),
        (
            "threshold",
            terms.is_some_and(|t| deal.threshold != t.threshold),
        ),
        (
            "timelock",
            terms.is_some_and(|t| deal.timelock_secs != t.timelock_secs),
        ),
        // A dispute moves the deadline later on-chain, never earlier.
        (
            "refund deadline",
            terms.is_some_and(|t| deal.refund_after < t.refund_after),
        ),
        (
            "deal_ref",
            terms.is_some() && deal.deal_ref != crate::domain::offer::deal_ref(offer.id),
        ),
    ]
    .into_iter()
    .filter(|(_, differs)| *differs)
    .map(|(field, _)| field)
    .collect::<Vec<_>>();
    if mismatch.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "escrow {} does not match its offer ({}): refusing to act; check the offer's registration",
            offer.escrow,
            mismatch.join(", ")
        ))
    }
}

/// Binds the offer to the deal created at `created_slot`, unless it is bound already.
/// Returns whether this call bound it.
pub async fn bind(conn: &mut PgConnection, offer: Uuid, created_slot: u64) -> sqlx::Result<bool> {
    rebind(
        conn,
        offer,
        created_slot,
        "UPDATE offers SET escrow_created_slot = $2, updated_at = now()
         WHERE id = $1 AND escrow_created_slot IS NULL",
        "deal_bound",
    )
    .await
}

/// The bound deal was cancelled before any deposit: no money moved and no approval of it can
/// count elsewhere, so the offer is free to bind the buyer's next deal at the address.
async fn unbind_cancelled(
    conn: &mut PgConnection,
    offer: Uuid,
    created_slot: u64,
) -> sqlx::Result<bool> {
    rebind(
        conn,
        offer,
        created_slot,
        "UPDATE offers SET escrow_created_slot = NULL, updated_at = now()
         WHERE id = $1 AND escrow_created_slot = $2 AND settlement IS NULL",
        "deal_cancelled",
    )
    .await
}

/// Runs one binding change (`update` takes the offer and the slot) and, when it changed the
/// offer, records it in the audit log as `kind`.
async fn rebind(
    conn: &mut PgConnection,
    offer: Uuid,
    created_slot: u64,
    update: &'static str,
    kind: &str,
) -> sqlx::Result<bool> {
    let changed = sqlx::query(update)
        .bind(offer)
        .bind(created_slot as i64)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        == 1;
    if changed {
        audit::append(
            conn,
            kind,
            Some(offer),
            json!({ "offer_id": offer, "created_slot": created_slot }),
        )
        .await?;
    }
    Ok(changed)
}

/// How a closed deal ended, from its own events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Released,
    Refunded,
    /// Closed by its buyer before any deposit.
    Cancelled,
}

impl Ending {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Released => "released",
            Self::Refunded => "refunded",
            Self::Cancelled => "cancelled",
        }
    }
}

/// The events the escrow program emitted in the escrow's recent successful transactions, newest
/// transaction first. Failed transactions are skipped (their changes were rolled back), and
/// lines other programs wrote are not the program's events (`escrow::event_log`).
async fn genuine_events(chain: &dyn Chain, escrow: &Pubkey) -> Result<Vec<DealEvent>, ChainError> {
    Ok(chain
        .transactions(escrow, HISTORY_WINDOW)
        .await?
        .iter()
        .filter(|tx| tx.succeeded())
        .flat_map(|tx| escrow::event_log::deal_events(&tx.logs))
        .filter(|e| e.deal().0 == *escrow)
        .collect())
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
            DealEvent::Released(_) => Some(Ending::Released),
            DealEvent::Refunded(_) => Some(Ending::Refunded),
            DealEvent::Cancelled(_) => Some(Ending::Cancelled),
            DealEvent::Created(_) => None,
        }))
}

/// The oldest deal in the escrow's recent history whose creation matches the offer: the one it
/// was registered for, when the relayer never saw it open.
pub async fn first_matching(
    chain: &dyn Chain,
    offer: &OfferKeys,
) -> Result<Option<u64>, ChainError> {
    Ok(genuine_events(chain, &offer.escrow)
        .await?
        .iter()
        .rev()
        .find_map(|e| match e {
            DealEvent::Created(created)
                if check_matches(&OnChainTerms::from(created), offer).is_ok() =>
            {
                Some(created.created_slot)
            }
            _ => None,
        }))
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
        Ending::Cancelled => unbind_cancelled(&mut tx, offer, created_slot).await?,
        settled => {
            record_settlement(&mut tx, offer, settled.as_str(), "read from the chain").await?
        }
    };
    tx.commit().await?;
    Ok(changed)
}

/// Records how an offer's deal settled, once; `source` says who closed it.
pub async fn record_settlement(
    conn: &mut PgConnection,
    offer: Uuid,
    settlement: &str,
    source: &str,
) -> sqlx::Result<bool> {
    let first = sqlx::query(
        "UPDATE offers SET settlement = $2, updated_at = now() WHERE id = $1 AND settlement IS NULL",
    )
    .bind(offer)
    .bind(settlement)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if first {
        audit::append(
            conn,
            "offer_settled",
            Some(offer),
            json!({ "offer_id": offer, "settlement": settlement, "source": source }),
        )
        .await?;
    }
    Ok(first)
}

//! The one place that reads and writes `offers`: rows become `domain::offer::Offer` here, checked
//! again on the way out, and every change is appended to the audit log in its transaction.
use anchor_lang::prelude::Pubkey;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::{
    audit,
    config::StuckConfig,
    domain::offer::{DealTerms, NewOffer, Offer, Settlement},
};

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    escrow: String,
    tracking_number: String,
    carrier: String,
    status: String,
    status_at: Option<DateTime<Utc>>,
    buyer: String,
    seller: String,
    mint: String,
    amount: i64,
    escrow_id: Option<i64>,
    approvers: Option<Vec<String>>,
    threshold: Option<i16>,
    timelock_secs: Option<i32>,
    refund_after: Option<i64>,
    escrow_created_slot: Option<i64>,
    settlement: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, escrow, tracking_number, carrier, status, status_at, buyer, seller, \
     mint, amount, escrow_id, approvers, threshold, timelock_secs, refund_after, \
     escrow_created_slot, settlement, created_at, updated_at";

impl TryFrom<Row> for Offer {
    type Error = sqlx::Error;
    fn try_from(r: Row) -> Result<Self, sqlx::Error> {
        let id = r.id;
        let bad = |what: &str| sqlx::Error::Decode(format!("offer {id}: bad {what}").into());
        let key = |s: &str| s.parse::<Pubkey>().map_err(|_| bad("address"));
        let terms = match (
            r.escrow_id,
            r.approvers,
            r.threshold,
            r.timelock_secs,
            r.refund_after,
        ) {
            (
                Some(escrow_id),
                Some(approvers),
                Some(threshold),
                Some(timelock),
                Some(refund_after),
            ) => Some(DealTerms {
                id: u64::try_from(escrow_id).map_err(|_| bad("escrow id"))?,
                approvers: approvers.iter().map(|a| key(a)).collect::<Result<_, _>>()?,
                threshold: u8::try_from(threshold).map_err(|_| bad("threshold"))?,
                timelock_secs: u32::try_from(timelock).map_err(|_| bad("timelock"))?,
                refund_after,
            }),
            _ => None,
        };
        Ok(Offer {
            id,
            escrow: key(&r.escrow)?,
            buyer: key(&r.buyer)?,
            seller: key(&r.seller)?,
            mint: key(&r.mint)?,
            amount: u64::try_from(r.amount).map_err(|_| bad("amount"))?,
            tracking_number: r.tracking_number,
            carrier: r.carrier,
            status: r.status.parse().map_err(|_| bad("status"))?,
            status_at: r.status_at,
            terms,
            deal_slot: r
                .escrow_created_slot
                .map(|s| u64::try_from(s).map_err(|_| bad("slot")))
                .transpose()?,
            settlement: r
                .settlement
                .map(|s| Settlement::parse(&s).ok_or_else(|| bad("settlement")))
                .transpose()?,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

fn select(filter: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM offers {filter}"))
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("an offer for this escrow or tracking number exists")]
    Conflict,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Stores a checked new offer and its audit entry (with a commitment to the operator, who is not
/// named in the public log), in `conn`'s transaction.
pub async fn register(
    conn: &mut PgConnection,
    offer: &NewOffer,
    operator: &str,
) -> Result<Offer, RegisterError> {
    let terms = offer.terms.as_ref();
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO offers (id, escrow, tracking_number, carrier, buyer, seller, mint, amount,
                             escrow_id, approvers, threshold, timelock_secs, refund_after)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING {COLUMNS}"
    )))
    .bind(Uuid::new_v4())
    .bind(offer.escrow.to_string())
    .bind(&offer.tracking_number)
    .bind(&offer.carrier)
    .bind(offer.buyer.to_string())
    .bind(offer.seller.to_string())
    .bind(offer.mint.to_string())
    .bind(offer.amount)
    // Checked to fit: DealTermsBody::check bounds the id by i64::MAX and the rest by the
    // program's limits.
    .bind(terms.map(|t| t.id as i64))
    .bind(terms.map(|t| {
        t.approvers
            .iter()
            .map(Pubkey::to_string)
            .collect::<Vec<_>>()
    }))
    .bind(terms.map(|t| i16::from(t.threshold)))
    .bind(terms.map(|t| t.timelock_secs as i32))
    .bind(terms.map(|t| t.refund_after))
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => RegisterError::Conflict,
        _ => RegisterError::Db(e),
    })?;
    let offer = Offer::try_from(row)?;
    let operator = audit::operators::commit(&mut *conn, operator).await?;
    let t = offer.terms.as_ref();
    let entry = json!({
        "escrow": offer.escrow.to_string(), "buyer": offer.buyer.to_string(),
        "seller": offer.seller.to_string(), "mint": offer.mint.to_string(),
        "amount": offer.amount, "carrier": offer.carrier, "escrow_id": t.map(|t| t.id),
        "approvers": t.map(|t| t.approvers.iter().map(Pubkey::to_string).collect::<Vec<_>>()),
        "threshold": t.map(|t| t.threshold), "timelock_secs": t.map(|t| t.timelock_secs),
        "refund_after": t.map(|t| t.refund_after), "operator_commitment": operator,
    });
    audit::append(&mut *conn, "offer_registered", Some(offer.id), entry).await?;
    Ok(offer)
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Offer>> {
    sqlx::query_as::<_, Row>(select("WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await?
        .map(Offer::try_from)
        .transpose()
}

/// Offers whose deal has not settled, oldest first: what the watchtower follows.
pub async fn unsettled(pool: &PgPool) -> sqlx::Result<Vec<Offer>> {
    sqlx::query_as::<_, Row>(select("WHERE settlement IS NULL ORDER BY created_at"))
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(Offer::try_from)
        .collect()
}

/// Binds the offer to the deal created at `created_slot`, unless it is bound already.
/// Returns whether this call bound it.
pub async fn bind_deal(conn: &mut PgConnection, id: Uuid, created_slot: u64) -> sqlx::Result<bool> {
    rebind(
        conn,
        id,
        created_slot,
        "UPDATE offers SET escrow_created_slot = $2, updated_at = now()
         WHERE id = $1 AND escrow_created_slot IS NULL",
        "deal_bound",
    )
    .await
}

/// The bound deal was cancelled before any deposit: no money moved and no approval of it can
/// count elsewhere, so the offer is free to bind the buyer's next deal at the address.
pub async fn unbind_cancelled(
    conn: &mut PgConnection,
    id: Uuid,
    created_slot: u64,
) -> sqlx::Result<bool> {
    rebind(
        conn,
        id,
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
    id: Uuid,
    created_slot: u64,
    update: &'static str,
    kind: &str,
) -> sqlx::Result<bool> {
    let changed = sqlx::query(update)
        .bind(id)
        .bind(created_slot as i64)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        == 1;
    if changed {
        audit::append(
            conn,
            kind,
            Some(id),
            json!({ "offer_id": id, "created_slot": created_slot }),
        )
        .await?;
    }
    Ok(changed)
}

/// Records how the offer's deal settled, once; `source` says who closed it.
pub async fn record_settlement(
    conn: &mut PgConnection,
    id: Uuid,
    settlement: Settlement,
    source: &str,
) -> sqlx::Result<bool> {
    let first = sqlx::query(
        "UPDATE offers SET settlement = $2, updated_at = now() WHERE id = $1 AND settlement IS NULL",
    )
    .bind(id)
    .bind(settlement.as_str())
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if first {
        audit::append(
            conn,
            "offer_settled",
            Some(id),
            json!({ "offer_id": id, "settlement": settlement.as_str(), "source": source }),
        )
        .await?;
    }
    Ok(first)
}

/// (status, offers) for every status in use.
pub async fn count_by_status(pool: &PgPool) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as("SELECT status, count(*) FROM offers GROUP BY status")
        .fetch_all(pool)
        .await
}

/// (settlement, offers) for every settlement recorded.
pub async fn count_by_settlement(pool: &PgPool) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT settlement, count(*) FROM offers WHERE settlement IS NOT NULL GROUP BY settlement",
    )
    .fetch_all(pool)
    .await
}

/// Why an unsettled offer needs a human.
pub const STUCK_REASONS: [&str; 3] = ["settle_overdue", "frozen_in_transit", "silent_in_transit"];

/// (escrow, reason) of every unsettled offer that needs a human: its shipment ended longer than
/// `settle_after` ago (`settle_overdue`); its latest status is dated beyond the clock-skew bound,
/// so every genuine event would read as older and be ignored (`frozen_in_transit`: webhooks
/// refuse such dates, so this means data from before that check, or written behind the
/// relayer's back); or it is in transit without a carrier event for `silent_after`
/// (`silent_in_transit`: lost, or the carrier's webhooks stopped).
pub async fn stuck(pool: &PgPool, rules: StuckConfig) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT escrow, CASE
             WHEN status IN ('delivered', 'returned') THEN 'settle_overdue'
             WHEN status_at > now() + make_interval(secs => $3) THEN 'frozen_in_transit'
             ELSE 'silent_in_transit' END
         FROM offers
         WHERE settlement IS NULL AND (
             (status IN ('delivered', 'returned')
              AND updated_at < now() - make_interval(secs => $1))
          OR (status NOT IN ('delivered', 'returned')
              AND status_at > now() + make_interval(secs => $3))
          OR (status IN ('in_transit', 'out_for_delivery', 'exception')
              AND status_at < now() - make_interval(secs => $2)))",
    )
    .bind(rules.settle_after.as_secs_f64())
    .bind(rules.silent_after.as_secs_f64())
    .bind(crate::domain::tracking::MAX_CLOCK_SKEW.as_seconds_f64())
    .fetch_all(pool)
    .await
}

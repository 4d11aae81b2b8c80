//! Operator API for offers: register an escrow's shipment, and read an offer with its history.
use anchor_lang::prelude::Pubkey;
use axum::{
    extract::{rejection::JsonRejection, Path, State},
    http::StatusCode,
    Json,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{
    audit,
    auth::Operator,
    domain::offer::{NewOffer, NewOfferBody},
    error::ApiError,
    queue::Job,
    state::AppState,
};

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Offer {
    pub id: Uuid,
    pub escrow: String,
    pub tracking_number: String,
    pub carrier: String,
    pub status: String,
    pub status_at: Option<DateTime<Utc>>,
    pub buyer: String,
    pub seller: String,
    pub mint: String,
    pub amount: i64,
    /// The deal terms, when the offer was registered before its escrow exists (see
    /// `DealTermsBody`); the deposit action builds the buyer's transaction from them.
    pub escrow_id: Option<i64>,
    pub approvers: Option<Vec<String>>,
    pub threshold: Option<i16>,
    pub timelock_secs: Option<i32>,
    pub refund_after: Option<i64>,
    /// The creation slot of the deal at `escrow` this offer is bound to, once the relayer has
    /// seen it (an escrow address is reused after its deal closes).
    pub escrow_created_slot: Option<i64>,
    /// `released` or `refunded` once that deal has settled.
    pub settlement: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct StoredEvent {
    pub event_id: String,
    pub status: String,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub payload: Value,
}

pub async fn create(
    State(app): State<AppState>,
    Operator(operator): Operator,
    body: Result<Json<NewOfferBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Offer>), ApiError> {
    let Json(body) = body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let offer = NewOffer::try_from(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let terms = offer.terms.as_ref();
    let mut tx = app.pool.begin().await?;
    let row = sqlx::query_as::<_, Offer>(
        "INSERT INTO offers (id, escrow, tracking_number, carrier, buyer, seller, mint, amount,
                             escrow_id, approvers, threshold, timelock_secs, refund_after)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING *",
    )
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
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => ApiError::new(
            StatusCode::CONFLICT,
            "an offer for this escrow or tracking number exists",
        ),
        _ => ApiError::from(e),
    })?;
    audit::append(
        &mut tx,
        "offer_registered",
        Some(row.id),
        json!({ "escrow": row.escrow, "buyer": row.buyer, "seller": row.seller, "mint": row.mint,
                "amount": row.amount, "carrier": row.carrier, "escrow_id": row.escrow_id,
                "approvers": row.approvers, "threshold": row.threshold,
                "timelock_secs": row.timelock_secs, "refund_after": row.refund_after,
                "operator": operator }),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(%operator, offer_id = %row.id, escrow = %row.escrow, "offer registered");
    Ok((StatusCode::CREATED, Json(row)))
}

pub async fn get(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<Uuid>,
) -> Result<Json<Value>, ApiError> {
    let offer = sqlx::query_as::<_, Offer>("SELECT * FROM offers WHERE id = $1")
        .bind(id)
        .fetch_optional(&app.pool)
        .await?
        .ok_or_else(|| ApiError::not_found("offer"))?;
    let events = sqlx::query_as::<_, StoredEvent>(
        "SELECT event_id, status, occurred_at, received_at, payload FROM tracking_events
         WHERE offer_id = $1 ORDER BY occurred_at, id",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await?;
    let jobs = sqlx::query_as::<_, Job>("SELECT * FROM jobs WHERE offer_id = $1 ORDER BY id")
        .bind(id)
        .fetch_all(&app.pool)
        .await?;
    Ok(Json(
        json!({ "offer": offer, "events": events, "jobs": jobs }),
    ))
}

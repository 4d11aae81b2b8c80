//! Operator API for offers: register an escrow's shipment, and read an offer with its history.
use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{
    auth::Operator,
    domain::offer::{NewOffer, NewOfferBody, Offer},
    error::ApiError,
    ingest, offers, queue,
    routes::strict_json::StrictJson,
    state::AppState,
};

pub async fn create(
    State(app): State<AppState>,
    Operator(operator): Operator,
    StrictJson(body): StrictJson<NewOfferBody>,
) -> Result<(StatusCode, Json<Offer>), ApiError> {
    let offer = NewOffer::try_from(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let mut tx = app.pool.begin().await?;
    let offer = offers::register(&mut tx, &offer, &operator)
        .await
        .map_err(|e| match e {
            offers::RegisterError::Conflict => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            offers::RegisterError::Db(e) => ApiError::from(e),
        })?;
    tx.commit().await?;
    tracing::info!(%operator, offer_id = %offer.id, escrow = %offer.escrow, "offer registered");
    Ok((StatusCode::CREATED, Json(offer)))
}

pub async fn get(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<Uuid>,
) -> Result<Json<Value>, ApiError> {
    let offer = offers::get(&app.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found("offer"))?;
    let events = ingest::events_of(&app.pool, id).await?;
    let jobs = queue::of_offer(&app.pool, id).await?;
    Ok(Json(
        json!({ "offer": offer, "events": events, "jobs": jobs }),
    ))
}

//! Public reads of the audit log: anyone can fetch it and check it with `relayer audit verify`
//! against the relayer's public key. Entries hold what is public on-chain anyway (addresses,
//! amounts, signatures) plus statuses and job outcomes; never secrets or tracking numbers.
use axum::{
    extract::{Path, Query, State},
    Json,
};
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    audit::{self, Checkpoint, Entry},
    auth::Operator,
    error::ApiError,
    state::AppState,
};

/// The most entries one page returns.
pub const PAGE: i64 = 1000;

#[derive(Deserialize)]
pub struct Page {
    /// Entries with `seq` greater than this (default 0: from the start).
    after: Option<i64>,
    limit: Option<i64>,
}

pub async fn entries(
    State(app): State<AppState>,
    Query(page): Query<Page>,
) -> Result<Json<Vec<Entry>>, ApiError> {
    let limit = page.limit.unwrap_or(PAGE).clamp(1, PAGE);
    Ok(Json(
        audit::entries_after(&app.pool, page.after.unwrap_or(0), limit).await?,
    ))
}

pub async fn of_offer(
    State(app): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<Json<Vec<Entry>>, ApiError> {
    Ok(Json(audit::entries_of_offer(&app.pool, id).await?))
}

pub async fn checkpoints(State(app): State<AppState>) -> Result<Json<Vec<Checkpoint>>, ApiError> {
    Ok(Json(audit::checkpoints(&app.pool).await?))
}

/// The first checkpoint whose log includes entry `seq`, or `null` while none does (not a 404:
/// browsers log those as errors, and "not yet" is an answer). The deal page checks a deal's
/// entries up to it, however long the log has grown since.
pub async fn covering_checkpoint(
    State(app): State<AppState>,
    Path(seq): Path<i64>,
) -> Result<Json<Option<Checkpoint>>, ApiError> {
    Ok(Json(audit::checkpoint_covering(&app.pool, seq).await?))
}

/// Opens an entry's `operator_commitment` (operators only): who it was, and the nonce that
/// makes `sha256("openclaw-escrow operator\n" || nonce hex || "\n" || operator)` the commitment.
pub async fn operator(
    State(app): State<AppState>,
    _: Operator,
    Path(commitment): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let valid = commitment.len() == 64 && commitment.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "a commitment is 64 hex characters",
        ));
    }
    let (operator, nonce) = audit::operators::open(&app.pool, &commitment)
        .await?
        .ok_or_else(|| ApiError::not_found("commitment"))?;
    Ok(Json(serde_json::json!({
        "commitment": commitment, "operator": operator, "nonce": hex::encode(nonce),
    })))
}

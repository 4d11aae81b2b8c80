//! Operator API for jobs: list by state (dead ones, typically) and retry a dead job.
use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    Json,
};
use serde::Deserialize;

use crate::{auth::Operator, error::ApiError, metrics::JOB_STATES, queue, state::AppState};

#[derive(Deserialize)]
pub struct ListQuery {
    state: Option<String>,
}

pub async fn list(
    State(app): State<AppState>,
    _: Operator,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<queue::Job>>, ApiError> {
    let state = q.state.unwrap_or_else(|| "dead".into());
    if !JOB_STATES.contains(&state.as_str()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("state must be one of {}", JOB_STATES.join(", ")),
        ));
    }
    Ok(Json(queue::list_by_state(&app.pool, &state, 500).await?))
}

pub async fn retry(
    State(app): State<AppState>,
    Operator(operator): Operator,
    Path(id): Path<i64>,
) -> Result<Json<queue::Job>, ApiError> {
    if !queue::retry(&app.pool, id, &operator).await? {
        return Err(match queue::get(&app.pool, id).await? {
            None => ApiError::not_found("job"),
            Some(job) => ApiError::new(
                StatusCode::CONFLICT,
                format!("job is {}, only dead jobs can be retried", job.state),
            ),
        });
    }
    tracing::info!(%operator, job_id = id, "dead job retried by an operator");
    let job = queue::get(&app.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found("job"))?;
    Ok(Json(job))
}

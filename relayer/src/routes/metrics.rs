use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};

use crate::{error::ApiError, state::AppState};

pub async fn metrics(State(app): State<AppState>) -> Response {
    match app.metrics.render(&app.pool, app.config.stuck_after).await {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            text,
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::IntoResponse,
};

use crate::{auth::Operator, state::AppState};

pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    let text = app.metrics.render(&app.pool, app.config.stuck).await;
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
}

/// `/metrics` on the main listener: business volumes are not for the internet.
pub async fn authorized(State(app): State<AppState>, _: Operator) -> impl IntoResponse {
    metrics(State(app)).await
}

//! `GET /healthz` (the process answers) and `GET /readyz` (Postgres answers within 2 s), both
//! `application/health+json`.
use std::time::Duration;

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};

use crate::state::AppState;

fn health(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/health+json")],
        body.to_string(),
    )
        .into_response()
}

pub async fn live() -> Response {
    health(StatusCode::OK, serde_json::json!({ "status": "pass" }))
}

pub async fn ready(State(app): State<AppState>) -> Response {
    let probe = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&app.pool);
    match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(Ok(_)) => health(StatusCode::OK, serde_json::json!({ "status": "pass" })),
        Ok(Err(e)) => {
            // The cause goes to the log, not to whoever can reach /readyz.
            tracing::warn!(error = %e, "readiness: database unreachable");
            health(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({ "status": "fail", "output": "database unreachable" }),
            )
        }
        Err(_) => health(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "status": "fail", "output": "database: no answer within 2 s" }),
        ),
    }
}

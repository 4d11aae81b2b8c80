//! The HTTP surface, and what stands in front of every route: rate limits per surface, body size
//! and body timeouts, security headers, no compressed bodies.
pub mod audit;
pub mod blinks;
pub mod deals;
pub mod health;
pub mod jobs;
pub mod limits;
pub mod metrics;
pub mod offers;
pub mod strict_json;
pub mod webhooks;

use axum::{
    extract::{ConnectInfo, DefaultBodyLimit, Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};

use crate::{error::ApiError, state::AppState, tls::Peer};

/// The largest body any route but the webhooks' accepts (operator API and Actions bodies are a
/// few hundred bytes).
const API_MAX_BODY: usize = 16 * 1024;

pub fn router(state: AppState) -> Router {
    let http = &state.config.http;
    let webhook_limit = http.webhook_max_body;
    let operator = Router::new()
        .route("/v1/offers", post(offers::create))
        .route("/v1/offers/{id}", get(offers::get))
        .route("/v1/jobs", get(jobs::list))
        .route("/v1/jobs/{id}/retry", post(jobs::retry))
        .route("/v1/audit/operators/{commitment}", get(audit::operator));
    // Without a listener of its own, /metrics is an operator route.
    let operator = match http.metrics_bind {
        None => operator.route("/metrics", get(metrics::authorized)),
        Some(_) => operator,
    };
    let operator = operator.layer(middleware::from_fn_with_state(
        state.clone(),
        per_ip_operator,
    ));
    let public_audit = Router::new()
        .route("/v1/audit/entries", get(audit::entries))
        .route("/v1/audit/offers/{id}", get(audit::of_offer))
        .route("/v1/audit/checkpoints", get(audit::checkpoints))
        .route(
            "/v1/audit/checkpoints/covering/{seq}",
            get(audit::covering_checkpoint),
        )
        .layer(middleware::from_fn_with_state(state.clone(), per_ip_audit));
    let https = http.tls.is_some();
    Router::new()
        .route(
            "/webhooks/tracking",
            post(webhooks::tracking).layer(DefaultBodyLimit::max(webhook_limit)),
        )
        .route(
            "/webhooks/{provider}",
            post(webhooks::provider).layer(DefaultBodyLimit::max(webhook_limit)),
        )
        .merge(blinks::router(state.clone()))
        .merge(deals::router(state.clone()))
        .merge(operator)
        .merge(public_audit)
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .layer(DefaultBodyLimit::max(API_MAX_BODY))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            http.limits.body_timeout,
        ))
        .layer(middleware::from_fn_with_state(
            https,
            crate::server::headers::security,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// `/metrics` alone, for `METRICS_BIND_ADDR`.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::metrics))
        .with_state(state)
}

/// 429 in the surface's own error shape.
fn too_many(actions_shape: bool) -> Response {
    let message = "too many requests, try again in a minute";
    if actions_shape {
        (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(serde_json::json!({ "message": message })),
        )
            .into_response()
    } else {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, message).into_response()
    }
}

async fn per_ip(
    app: &AppState,
    limiter: &limits::PerIp,
    peer: Peer,
    request: Request,
    next: Next,
    actions_shape: bool,
) -> Response {
    let ip = app.client_ip(request.headers(), peer.addr);
    if limiter.check_key(&ip).is_err() {
        return too_many(actions_shape);
    }
    next.run(request).await
}

async fn per_ip_operator(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    request: Request,
    next: Next,
) -> Response {
    per_ip(&app, &app.limits.operator, peer, request, next, false).await
}

async fn per_ip_audit(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    request: Request,
    next: Next,
) -> Response {
    per_ip(&app, &app.limits.audit, peer, request, next, false).await
}

/// Solana Actions, GET and POST alike.
pub(crate) async fn per_ip_actions(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    request: Request,
    next: Next,
) -> Response {
    per_ip(&app, &app.limits.actions, peer, request, next, true).await
}

//! `POST /webhooks/tracking`: rate limit, size cap, signature, parse, then the event is stored
//! with the offer's move and the job it implies, all or nothing (`crate::ingest`).
use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, ConnectInfo, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use chrono::Utc;
use serde_json::json;

use crate::{
    domain::{
        signature::{self, SignatureError},
        tracking::TrackingEvent,
    },
    error::ApiError,
    ingest::{Recorded, StoreError},
    state::AppState,
    tls::Peer,
};

pub async fn tracking(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let ip = app.client_ip(&headers, peer.addr);
    if app.limits.webhooks.check_key(&ip).is_err() {
        return refuse(
            &app,
            "rate_limited",
            StatusCode::TOO_MANY_REQUESTS,
            "rate limit exceeded",
        );
    }
    let body = match body {
        Ok(body) => body,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return refuse(
                &app,
                "too_large",
                StatusCode::PAYLOAD_TOO_LARGE,
                "body too large",
            );
        }
        Err(_) => {
            return refuse(
                &app,
                "malformed",
                StatusCode::BAD_REQUEST,
                "unreadable body",
            )
        }
    };
    let verified = match signature::verify(
        &headers,
        &body,
        &app.secrets().tracking,
        Utc::now().timestamp(),
    ) {
        Ok(v) => v,
        Err(e) => {
            let result = match e {
                SignatureError::Missing => "unsigned",
                SignatureError::Stale => "stale",
                SignatureError::Malformed | SignatureError::Mismatch => "bad_signature",
            };
            tracing::info!(%ip, reason = %e, "webhook refused");
            return refuse(&app, result, StatusCode::UNAUTHORIZED, &e.to_string());
        }
    };
    let event = match TrackingEvent::parse(&body, verified.header_id, Utc::now()) {
        Ok(event) => event,
        Err(e) => return refuse(&app, "malformed", StatusCode::BAD_REQUEST, &e.to_string()),
    };
    match app.ingest.record(event).await {
        Ok(outcome) => {
            app.metrics.webhook(outcome.result());
            outcome.into_response()
        }
        Err(e) => {
            let (result, status, message) = match &e {
                StoreError::Unavailable(_) => {
                    tracing::warn!(error = %e, "tracking event not stored; the sender will retry");
                    (
                        "unavailable",
                        StatusCode::SERVICE_UNAVAILABLE,
                        "database unavailable, retry later",
                    )
                }
                StoreError::Failed(_) => {
                    tracing::error!(error = %e, "tracking event not stored");
                    ("error", StatusCode::INTERNAL_SERVER_ERROR, "internal error")
                }
            };
            refuse(&app, result, status, message)
        }
    }
}

fn refuse(app: &AppState, result: &str, status: StatusCode, reason: &str) -> Response {
    app.metrics.webhook(result);
    ApiError::new(status, reason).into_response()
}

impl IntoResponse for Recorded {
    fn into_response(self) -> Response {
        match self {
            Self::Accepted {
                event_id,
                offer_id,
                status,
                job_enqueued,
            } => (
                StatusCode::OK,
                Json(
                    json!({ "result": "accepted", "event_id": event_id, "offer_id": offer_id,
                             "offer_status": status.as_str(), "job_enqueued": job_enqueued }),
                ),
            ),
            Self::Duplicate { event_id } => (
                StatusCode::OK,
                Json(json!({ "result": "duplicate", "event_id": event_id })),
            ),
            Self::UnknownTracking { event_id } => (
                StatusCode::ACCEPTED,
                Json(json!({ "result": "unknown_tracking", "event_id": event_id })),
            ),
        }
        .into_response()
    }
}

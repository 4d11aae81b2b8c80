//! `POST /webhooks/tracking` (the relayer's own format) and `POST /webhooks/{provider}` (a
//! tracking provider's, `crate::providers`): rate limit, size cap, signature, parse, then the
//! event is stored with the offer's move and the job it implies, all or nothing
//! (`crate::ingest`).
use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, ConnectInfo, Path, State},
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
    providers::{self, shipengine::Refusal, Parsed, Provider},
    state::AppState,
    tls::Peer,
};

/// The metrics label of the relayer's own endpoint.
const OWN: &str = "tracking";

pub async fn tracking(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (ip, body) = match admit(&app, OWN, &headers, peer, body) {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
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
            return refuse(&app, OWN, result, StatusCode::UNAUTHORIZED, &e.to_string());
        }
    };
    let event = match TrackingEvent::parse(&body, verified.header_id, Utc::now()) {
        Ok(event) => event,
        Err(e) => {
            return refuse(
                &app,
                OWN,
                "malformed",
                StatusCode::BAD_REQUEST,
                &e.to_string(),
            )
        }
    };
    store(&app, OWN, event).await
}

/// `POST /webhooks/{provider}`: a provider's webhook, verified its way. A provider without its
/// secret (or JWKS URL) configured is not there: 404, before the body is read for anything.
pub async fn provider(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let secrets = app.secrets();
    let provider = Provider::from_path(&name).filter(|p| match p {
        Provider::ShipEngine => app.shipengine.is_some(),
        p => !secrets.providers.of(*p).is_empty(),
    });
    let Some(provider) = provider else {
        return ApiError::new(StatusCode::NOT_FOUND, "no such webhook endpoint").into_response();
    };
    let label = provider.name();
    let (ip, body) = match admit(&app, label, &headers, peer, body) {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let now = Utc::now();
    let keys = secrets.providers.of(provider);
    let verified = match provider {
        Provider::EasyPost => providers::easypost::verify(&headers, &body, keys),
        Provider::AfterShip => providers::aftership::verify(&headers, &body, keys),
        Provider::Shippo => providers::shippo::verify(&headers, &body, keys, now.timestamp()),
        Provider::SeventeenTrack => providers::seventeen_track::verify(&headers, &body, keys),
        Provider::ShipEngine => {
            let jwks = app.shipengine.as_ref().expect("checked above");
            match jwks.verify(&headers, &body, now.timestamp()).await {
                Ok(()) => Ok(()),
                Err(Refusal::Signature(e)) => Err(e),
                Err(e @ Refusal::KeysUnavailable(_)) => {
                    tracing::warn!(error = %e, "ShipEngine webhook not verified; it will retry (check SHIPENGINE_JWKS_URL)");
                    return refuse(
                        &app,
                        label,
                        "unavailable",
                        StatusCode::SERVICE_UNAVAILABLE,
                        "signing keys unavailable, retry later",
                    );
                }
            }
        }
    };
    if let Err(e) = verified {
        let result = match e {
            SignatureError::Missing => "unsigned",
            SignatureError::Stale => "stale",
            SignatureError::Malformed | SignatureError::Mismatch => "bad_signature",
        };
        tracing::info!(%ip, provider = label, reason = %e, "webhook refused");
        return refuse(
            &app,
            label,
            result,
            StatusCode::UNAUTHORIZED,
            &e.to_string(),
        );
    }
    match provider.parse(&body, now) {
        Ok(Parsed::Event(event)) => store(&app, label, event).await,
        Ok(Parsed::Ignored(what)) => {
            app.metrics.webhook(label, "ignored");
            (
                StatusCode::ACCEPTED,
                Json(json!({ "result": "ignored", "reason": format!("{what}: not a tracking update") })),
            )
                .into_response()
        }
        Err(e) => refuse(
            &app,
            label,
            "malformed",
            StatusCode::BAD_REQUEST,
            &e.to_string(),
        ),
    }
}

/// The checks before any signature: the sender's rate and the body's size.
#[allow(clippy::result_large_err)]
fn admit(
    app: &AppState,
    label: &str,
    headers: &HeaderMap,
    peer: Peer,
    body: Result<Bytes, BytesRejection>,
) -> Result<(std::net::IpAddr, Bytes), Response> {
    let ip = app.client_ip(headers, peer.addr);
    if app.limits.webhooks.check_key(&ip).is_err() {
        return Err(refuse(
            app,
            label,
            "rate_limited",
            StatusCode::TOO_MANY_REQUESTS,
            "rate limit exceeded",
        ));
    }
    match body {
        Ok(body) => Ok((ip, body)),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(refuse(
            app,
            label,
            "too_large",
            StatusCode::PAYLOAD_TOO_LARGE,
            "body too large",
        )),
        Err(_) => Err(refuse(
            app,
            label,
            "malformed",
            StatusCode::BAD_REQUEST,
            "unreadable body",
        )),
    }
}

async fn store(app: &AppState, label: &str, event: TrackingEvent) -> Response {
    match app.ingest.record(event).await {
        Ok(outcome) => {
            app.metrics.webhook(label, outcome.result());
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
            refuse(app, label, result, status, message)
        }
    }
}

fn refuse(app: &AppState, label: &str, result: &str, status: StatusCode, reason: &str) -> Response {
    app.metrics.webhook(label, result);
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

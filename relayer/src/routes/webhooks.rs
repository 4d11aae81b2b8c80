//! `POST /webhooks/tracking`: rate limit, size cap, signature, parse, then one transaction that
//! stores the event, moves the offer and enqueues the job it implies.
use std::net::{IpAddr, SocketAddr};

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, ConnectInfo, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::{
    audit,
    domain::{
        offer::OfferStatus,
        signature::{self, SignatureError},
        tracking::TrackingEvent,
    },
    error::{is_unavailable, ApiError},
    queue,
    state::AppState,
    tls::Peer,
};

pub async fn tracking(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let ip = client_ip(&headers, peer.addr, app.config.http.trust_forwarded_for);
    if app.webhook_limiter.check_key(&ip).is_err() {
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
    let event = match TrackingEvent::parse(&body, verified.header_id) {
        Ok(event) => event,
        Err(e) => return refuse(&app, "malformed", StatusCode::BAD_REQUEST, &e.to_string()),
    };
    match record(&app, &event).await {
        Ok(outcome) => {
            app.metrics.webhook(outcome.result());
            outcome.into_response()
        }
        Err(e) => {
            app.metrics.webhook(if is_unavailable(&e) {
                "unavailable"
            } else {
                "error"
            });
            ApiError::from(e).into_response()
        }
    }
}

fn refuse(app: &AppState, result: &str, status: StatusCode, reason: &str) -> Response {
    app.metrics.webhook(result);
    ApiError::new(status, reason).into_response()
}

/// The peer address, or with `TRUST_FORWARDED_FOR` the last `X-Forwarded-For` hop (the one our
/// own proxy appended; earlier hops are whatever the client claimed).
pub(crate) fn client_ip(
    headers: &HeaderMap,
    peer: SocketAddr,
    trust_forwarded_for: bool,
) -> IpAddr {
    if trust_forwarded_for {
        // The last hop of the last header line: a proxy may add its own line after the
        // client's instead of extending it.
        let last_line = headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok());
        if let Some(ip) = last_line
            .and_then(|v| v.rsplit(',').next())
            .and_then(|s| s.trim().parse().ok())
        {
            return ip;
        }
    }
    peer.ip()
}

enum Recorded {
    Accepted {
        event_id: String,
        offer_id: Uuid,
        status: OfferStatus,
        job_enqueued: bool,
    },
    Duplicate {
        event_id: String,
    },
    UnknownTracking {
        event_id: String,
    },
}

impl Recorded {
    fn result(&self) -> &'static str {
        match self {
            Self::Accepted { .. } => "accepted",
            Self::Duplicate { .. } => "duplicate",
            Self::UnknownTracking { .. } => "unknown_tracking",
        }
    }
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

/// One transaction: all of it commits or none does.
async fn record(app: &AppState, event: &TrackingEvent) -> sqlx::Result<Recorded> {
    let mut tx = app.pool.begin().await?;
    // Lock the offer first, then insert: every webhook transaction takes locks in this order.
    let offer: Option<(Uuid, String, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT id, status, status_at FROM offers WHERE carrier = $1 AND tracking_number = $2 FOR UPDATE",
    )
    .bind(&event.carrier)
    .bind(&event.tracking_number)
    .fetch_optional(&mut *tx)
    .await?;
    let inserted = sqlx::query(
        "INSERT INTO tracking_events (event_id, offer_id, tracking_number, carrier, status, occurred_at, payload)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&event.event_id)
    .bind(offer.as_ref().map(|o| o.0))
    .bind(&event.tracking_number)
    .bind(&event.carrier)
    .bind(event.status.as_str())
    .bind(event.occurred_at)
    .bind(&event.payload)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    let event_id = event.event_id.clone();
    if !inserted {
        return Ok(Recorded::Duplicate { event_id });
    }
    let event_entry = |offer_id: Option<Uuid>| {
        json!({ "event_id": event.event_id, "carrier": event.carrier,
                "status": event.status.as_str(), "occurred_at": event.occurred_at, "offer_id": offer_id })
    };
    let Some((offer_id, status, status_at)) = offer else {
        audit::append(&mut tx, "tracking_event", None, event_entry(None)).await?;
        tx.commit().await?;
        tracing::info!(event_id = %event.event_id, "event for an unknown tracking number stored");
        return Ok(Recorded::UnknownTracking { event_id });
    };
    let mut current: OfferStatus = status
        .parse()
        .map_err(|e: String| sqlx::Error::Decode(e.into()))?;
    let mut job_enqueued = false;
    let mut entries = vec![("tracking_event", event_entry(Some(offer_id)))];
    let in_order = status_at.is_none_or(|at| event.occurred_at >= at);
    if let Some((next, job)) = current.apply(event.status).filter(|_| in_order) {
        sqlx::query(
            "UPDATE offers SET status = $2, status_at = $3, updated_at = now() WHERE id = $1",
        )
        .bind(offer_id)
        .bind(next.as_str())
        .bind(event.occurred_at)
        .execute(&mut *tx)
        .await?;
        entries.push((
            "offer_status",
            json!({ "offer_id": offer_id, "from": current.as_str(), "to": next.as_str() }),
        ));
        if let Some(action) = job {
            job_enqueued =
                queue::enqueue(&mut tx, offer_id, action, app.config.queue.max_attempts).await?;
            if job_enqueued {
                entries.push((
                    "job_enqueued",
                    json!({ "offer_id": offer_id, "action": action.as_str() }),
                ));
            }
        }
        current = next;
    }
    audit::append_all(&mut tx, Some(offer_id), entries).await?;
    tx.commit().await?;
    crate::failpoint::hit("after_event_commit");
    tracing::info!(event_id = %event.event_id, %offer_id, status = current.as_str(), job_enqueued, "tracking event recorded");
    Ok(Recorded::Accepted {
        event_id,
        offer_id,
        status: current,
        job_enqueued,
    })
}

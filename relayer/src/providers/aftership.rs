//! AfterShip Tracking (https://www.aftership.com/docs/tracking/webhook/webhook-signature,
//! https://www.aftership.com/docs/tracking/enum/delivery-sub-statuses):
//! `aftership-hmac-sha256: <base64 HMAC-SHA256(body)>` with the webhook secret. The event is
//! `tracking_update` with the Tracking in `msg`; `event_id` is a UUID per webhook event.
use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{date, event, header, hmac_matches, text, Parsed, Provider};
use crate::{
    config::Secret,
    domain::{
        signature::SignatureError,
        tracking::{ParseError, Reported, TrackingStatus},
    },
};

pub const SIGNATURE: &str = "aftership-hmac-sha256";

pub fn verify(
    headers: &axum::http::HeaderMap,
    body: &[u8],
    secrets: &[Secret],
) -> Result<(), SignatureError> {
    let expected = STANDARD
        .decode(header(headers, SIGNATURE)?)
        .map_err(|_| SignatureError::Malformed)?;
    if hmac_matches(secrets, &[body], &expected) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// `tag` (and `subtag`) → ours. `Exception_011` is "returned to sender" (received back);
/// `Exception_010`, "returning", is not the end yet. `Pending`, `InfoReceived` and `Expired`
/// change nothing.
pub fn status(tag: &str, subtag: &str) -> TrackingStatus {
    match (tag, subtag) {
        ("Exception", "Exception_011") => TrackingStatus::Returned,
        ("InTransit" | "AvailableForPickup", _) => TrackingStatus::InTransit,
        ("OutForDelivery", _) => TrackingStatus::OutForDelivery,
        ("Delivered", _) => TrackingStatus::Delivered,
        ("AttemptFail" | "Exception", _) => TrackingStatus::Exception,
        _ => TrackingStatus::Unrecognised,
    }
}

pub fn parse(payload: Value, now: DateTime<Utc>) -> Result<Parsed, ParseError> {
    let kind = text(&payload, "/event")?;
    if kind != "tracking_update" {
        return Ok(Parsed::Ignored(format!("AfterShip event {kind}")));
    }
    let occurred_at = match payload.get("ts").and_then(Value::as_i64) {
        Some(ts) => DateTime::from_timestamp(ts, 0)
            .ok_or_else(|| ParseError::Json(format!("ts {ts} is not a time")))?,
        None => date(&payload, "/msg/updated_at")?,
    };
    let subtag = payload
        .pointer("/msg/subtag")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let reported = Reported {
        event_id: format!(
            "{}:{}",
            Provider::AfterShip.name(),
            text(&payload, "/event_id")?
        ),
        tracking_number: text(&payload, "/msg/tracking_number")?.to_owned(),
        carrier: text(&payload, "/msg/slug")?.to_owned(),
        status: status(text(&payload, "/msg/tag")?, subtag),
        occurred_at,
    };
    event(reported, payload, now)
}

//! EasyPost (https://docs.easypost.com/docs/webhooks, https://docs.easypost.com/docs/trackers):
//! `X-Hmac-Signature: hmac-sha256-hex=<hex>`, HMAC-SHA256 of the raw body keyed with the webhook
//! secret in Unicode NFKD form (as EasyPost's client libraries' `validate_webhook` key it). The
//! event is `tracker.updated` (or `tracker.created`) with the Tracker in `result`.
use chrono::{DateTime, Utc};
use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

use super::{date, event, header, hmac_matches, text, Parsed, Provider};
use crate::{
    config::Secret,
    domain::{
        signature::SignatureError,
        tracking::{ParseError, Reported, TrackingStatus},
    },
};

pub const SIGNATURE: &str = "x-hmac-signature";

/// The HMAC key EasyPost uses for `secret`.
pub fn normalise(secret: &str) -> Vec<u8> {
    secret.nfkd().collect::<String>().into_bytes()
}

pub fn verify(
    headers: &axum::http::HeaderMap,
    body: &[u8],
    secrets: &[Secret],
) -> Result<(), SignatureError> {
    let value = header(headers, SIGNATURE)?;
    let hex_digest = value
        .strip_prefix("hmac-sha256-hex=")
        .ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(hex_digest).map_err(|_| SignatureError::Malformed)?;
    if hmac_matches(secrets, &[body], &expected) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Tracker `status` → ours. `pre_transit` (a label, nothing shipped), `unknown`, `error` and
/// `cancelled` change nothing; a parcel waiting at a pickup point is not yet with the buyer.
pub fn status(tracker_status: &str) -> TrackingStatus {
    match tracker_status {
        "in_transit" | "available_for_pickup" => TrackingStatus::InTransit,
        "out_for_delivery" => TrackingStatus::OutForDelivery,
        "delivered" => TrackingStatus::Delivered,
        "return_to_sender" => TrackingStatus::Returned,
        "failure" => TrackingStatus::Exception,
        _ => TrackingStatus::Unrecognised,
    }
}

pub fn parse(payload: Value, now: DateTime<Utc>) -> Result<Parsed, ParseError> {
    let kind = text(&payload, "/description")?;
    if kind != "tracker.updated" && kind != "tracker.created" {
        return Ok(Parsed::Ignored(format!("EasyPost event {kind}")));
    }
    let id = text(&payload, "/id")?;
    // The newest scan's time; a tracker without scans yet dates from its update.
    let details = payload
        .pointer("/result/tracking_details")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty());
    let occurred_at = match details {
        Some(d) => date(&d[d.len() - 1], "/datetime")?,
        None => date(&payload, "/result/updated_at")?,
    };
    let reported = Reported {
        event_id: format!("{}:{id}", Provider::EasyPost.name()),
        tracking_number: text(&payload, "/result/tracking_code")?.to_owned(),
        carrier: text(&payload, "/result/carrier")?.to_owned(),
        status: status(text(&payload, "/result/status")?),
        occurred_at,
    };
    event(reported, payload, now)
}
